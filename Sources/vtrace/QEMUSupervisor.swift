import ChildProcess
import Foundation
import HostPrimitives

/// Watches QEMU for `vtrace record -- QEMU` on a thread of its own, while the
/// backend serves on the main thread: QEMU's end (however it comes) stops the
/// backend; QEMU that has not connected within the timeout, or a stop request
/// (vtrace told to stop), ends QEMU (SIGTERM to its group, SIGKILL after 5 s).
final class QEMUSupervisor: @unchecked Sendable {
    struct Outcome {
        var termination: ChildTermination
        /// QEMU connected to vtrace's socket.
        var connected: Bool
        /// It had not connected within the timeout and was stopped.
        var timedOut: Bool
        /// Seconds from QEMU's start to its end.
        var seconds: Double
    }

    /// How long QEMU has to end after SIGTERM before SIGKILL.
    static let graceMilliseconds = 5000

    let child: SupervisedChild
    private let connectedBell: Doorbell
    private let stopBell: Doorbell
    /// A duplicate of the backend's stop eventfd: written when QEMU ends, valid
    /// even after the backend (and its own descriptor) is gone.
    private let stopBackend: Int32
    private var outcome: Outcome?
    private var thread: BackgroundThread?

    /// Starts watching `child`. `connectedBell` rings when QEMU connects;
    /// `backendStopFD` is written when QEMU has ended.
    init(child: SupervisedChild, connectedBell: Doorbell, connectTimeout: Double, backendStopFD: Int32) throws {
        self.child = child
        self.connectedBell = connectedBell
        stopBell = try Doorbell()
        stopBackend = fcntl(backendStopFD, F_DUPFD_CLOEXEC, 0)
        let timeout = Int(connectTimeout * 1000)
        guard let thread = BackgroundThread({ [self] in watch(connectTimeoutMilliseconds: timeout) }) else {
            throw NoThread()
        }
        self.thread = thread
    }

    struct NoThread: Error, CustomStringConvertible {
        var description: String { "the system refused a thread to watch QEMU" }
    }

    deinit {
        if stopBackend >= 0 { close(stopBackend) }
    }

    /// Ends QEMU (SIGTERM to its group, SIGKILL after 5 s) unless it has ended.
    func requestStop() { stopBell.ring() }

    /// Waits for the watching thread: QEMU has ended and been reaped.
    func join() -> Outcome {
        thread?.join()
        thread = nil
        return outcome!
    }

    private func watch(connectTimeoutMilliseconds: Int) {
        let started = monotonicNanoseconds()
        var connected = false, timedOut = false
        var termination: ChildTermination?
        while termination == nil {
            let elapsed = Int((monotonicNanoseconds() - started) / 1_000_000)
            let limit = connected ? -1 : max(0, connectTimeoutMilliseconds - elapsed)
            switch child.wait(orReadable: [connectedBell.fd, stopBell.fd], milliseconds: limit) {
            case .ended(let t):
                termination = t
            case .readable(0):
                connectedBell.answer()
                connected = true
            case .readable:
                termination = child.stop(graceMilliseconds: Self.graceMilliseconds)
            case .timedOut:
                timedOut = true
                termination = child.stop(graceMilliseconds: Self.graceMilliseconds)
            }
        }
        outcome = Outcome(termination: termination!, connected: connected || connectedBell.hasRung, timedOut: timedOut,
                          seconds: Double(monotonicNanoseconds() - started) / 1e9)
        var one: UInt64 = 1
        _ = write(stopBackend, &one, 8)
    }
}
