import CSpawn
#if canImport(Glibc)
import Glibc
#endif

/// A pipe one thread rings and another waits on (with ``SupervisedChild/wait(orReadable:milliseconds:)``
/// or poll): ringing never blocks, however often, and is safe from any thread.
public final class Doorbell: Sendable {
    /// The end to poll for readability.
    public let fd: Int32
    let writeEnd: Int32

    public init() throws(SpawnError) {
        var fds: [Int32] = [-1, -1]
        guard cspawn_pipe(&fds) == 0 else { throw SpawnError(program: "pipe", errno: errno) }
        fd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        close(fd)
        close(writeEnd)
    }

    /// Makes ``fd`` readable (a full pipe already is).
    public func ring() {
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)
    }

    /// Whether it has rung since the last ``answer()``.
    public var hasRung: Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 1
    }

    /// Empties the pipe: ``fd`` is not readable again until the next ``ring()``.
    public func answer() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(fd, &buffer, buffer.count) > 0 {}
    }
}
