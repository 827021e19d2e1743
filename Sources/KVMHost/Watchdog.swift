//! The watchdog: ends a run that outlives its time, and stops every vCPU
//! when one ends the run.

import CKVM
import HostPrimitives
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// Ends a run that outlives its time, or stops every vCPU when one ends
/// abnormally: sets each vCPU's immediate_exit and signals its thread, whose
/// KVM_RUN then returns EINTR.
final class Watchdog: @unchecked Sendable {
    let mutex = Mutex()
    let condition = Condition()
    var cancelled = false
    private(set) var firedFlag = false
    var thread: BackgroundThread?
    /// The vCPUs and their threads, as each loop registers.
    var targets: [(VCPU, pthread_t)?]
    static let signal = SIGUSR1
    /// How long past the deadline the vCPUs may take to stop before the process exits.
    static let grace = 10.0

    init(seconds: Double, vcpus: Int) {
        targets = Array(repeating: nil, count: vcpus)
        let deadline = Machine<NoObserver>.now() + seconds
        thread = BackgroundThread { [self] in
            mutex.lock()
            while !cancelled {
                let left = deadline - Machine<NoObserver>.now()
                if left < -Self.grace {
                    // A vCPU did not stop (a signal that cannot land): do not hang.
                    let text = "vtrace: the vCPU did not stop \(Int(Self.grace)) s after the timeout; exiting (a recording stays as .partial)\n"
                    _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
                    _exit(124)
                }
                if left <= 0 {
                    firedFlag = true
                    kickLocked()
                    // Keep kicking until the vCPUs are done (a signal may land before KVM_RUN).
                    condition.wait(mutex, milliseconds: 50)
                    continue
                }
                condition.wait(mutex, milliseconds: max(1, min(1000, Int(left * 1000))))
            }
            mutex.unlock()
        }
    }

    /// Called on each vCPU's thread before its first KVM_RUN.
    func register(_ index: Int, _ vcpu: VCPU) {
        _ = ckvm_install_kick_handler(Self.signal)
        mutex.withLock {
            targets[index] = (vcpu, pthread_self())
            if firedFlag { vcpu.requestImmediateExit(true) }
        }
    }

    /// Called by a vCPU's thread as it leaves its loop.
    func unregister(_ index: Int) { mutex.withLock { targets[index] = nil } }

    func kickLocked() {
        for case let (vcpu, thread)? in targets {
            vcpu.requestImmediateExit(true)
            pthread_kill(thread, Self.signal)
        }
    }

    /// Stops every registered vCPU now (one ended the run).
    func kickAll() { mutex.withLock { kickLocked() } }

    var fired: Bool { mutex.withLock { firedFlag } }

    func cancel() {
        mutex.withLock {
            cancelled = true
            condition.signal()
        }
        thread?.join()
        thread = nil
    }
}
