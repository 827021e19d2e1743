#if canImport(Glibc)
import Glibc
#endif

/// A program that could not be started, and why.
public struct SpawnError: Error, Equatable, CustomStringConvertible, Sendable {
    public var program: String
    public var errno: Int32

    public var description: String { "cannot run \(program): \(String(cString: strerror(errno)))" }
}
