/// How a child process ended.
public enum ChildTermination: Equatable, Sendable {
    /// It exited with this status.
    case exited(Int32)
    /// A signal killed it.
    case killed(signal: Int32)

    /// The status a shell reports for it: the exit status, or 128 + the signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): return code
        case .killed(let signal): return 128 + signal
        }
    }

    /// "exited 3", "killed by SIGKILL".
    public var description: String {
        switch self {
        case .exited(let code): return "exited \(code)"
        case .killed(let signal): return "killed by \(Self.signalName(signal))"
        }
    }

    /// SIGKILL, SIGSEGV, ...; SIG<n> for one without a common name.
    public static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
                                      9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM"]
        return names[signal] ?? "SIG\(signal)"
    }
}
