/// A QEMU command line vtrace will not run, naming the argument at fault.
public struct QEMULaunchError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The argument as written (`-m 12X`, `-netdev user,id=vtrace0`).
    public var argument: String
    public var problem: String

    public init(_ argument: String, _ problem: String) {
        self.argument = argument
        self.problem = problem
    }

    public var description: String { "\(argument): \(problem)" }
}
