import Foundation
import TraceFormat
import TraceRecording
import VhostUser
import VirtioCore

/// The device core behind a vhost-user socket, recorded or not: what `vtrace
/// serve` runs, and what `vtrace record -- QEMU` runs behind QEMU.
struct VhostService {
    var socket: String
    var pairs = 1
    /// Serve this many sessions, then return (nil: until a stop request).
    var sessions: Int?
    /// Record every session into this trace (nil: no recording).
    var trace: String?
    var recording = RecordingOptions()
    var faults = DeviceFaults()
    /// The trace header's description of the guest.
    var guest: String
    /// Progress lines (connections, memory tables) on standard error; problems always print.
    var verbose = false

    /// What serving did.
    struct Outcome {
        var sessions: [VhostSessionSummary] = []
        var counters = NetCounters()
        var recording: RecordingSummary?
        /// Why serving (or finishing the trace) failed; nil when it did not.
        var failure: String?
    }

    /// Serves until `sessions` end, SIGINT/SIGTERM, or a write to the stop
    /// eventfd `ready` is handed (on this thread, once the socket listens);
    /// `connected` runs on this thread whenever a frontend connects. The
    /// trace is finished however serving ends.
    func run(connected: @escaping () -> Void = {}, ready: (_ stopFD: Int32) -> Void) -> Outcome {
        let config = NetConfig(queuePairs: pairs, queueMaxSize: 32768)
        let verbose = verbose
        let log: (VhostLogLevel, String) -> Void = { level, line in
            if verbose || level == .problem { printError(line) }
        }
        var outcome = Outcome()
        do {
            if let trace {
                let started = Date(), guest = guest, faultSpecs = faults.specs
                let recorder = try TraceRecorder(path: trace, config: config, nics: 1, regions: [], options: recording, header: { header in
                    header.stampProvenance(started: started, guest: guest)
                    header.transport = "vhost-user"
                    header.faults = faultSpecs
                })
                let backend = try VhostUserBackend(
                    device: VirtioNetDevice(config: config, memory: nil, observer: recorder.observer(nic: 0), faults: faults), log: log)
                backend.connected = connected
                // A trigger that fires with --trigger-action stop ends serving.
                // (requestStop only writes the backend's stop eventfd: safe from any thread.)
                nonisolated(unsafe) let stopper = backend
                recorder.onTriggerStop = { stopper.requestStop() }
                do {
                    try backend.stopOnSignals()
                    outcome.sessions = try backend.serve(path: socket, sessions: sessions) { announce(log, backend.stopFD, ready) }
                } catch {
                    outcome.failure = "\(error)"
                }
                outcome.counters = backend.device.counters
                do { outcome.recording = try recorder.finish() } catch { outcome.failure = outcome.failure ?? "\(trace): \(error)" }
            } else {
                let backend = try VhostUserBackend(
                    device: VirtioNetDevice(config: config, memory: nil, observer: NoObserver(), faults: faults), log: log)
                backend.connected = connected
                try backend.stopOnSignals()
                outcome.sessions = try backend.serve(path: socket, sessions: sessions) { announce(log, backend.stopFD, ready) }
                outcome.counters = backend.device.counters
            }
        } catch {
            outcome.failure = "\(error)"
        }
        return outcome
    }

    private func announce(_ log: (VhostLogLevel, String) -> Void, _ stopFD: Int32, _ ready: (Int32) -> Void) {
        log(.progress, "vtrace: serving \(socket)")
        ready(stopFD)
    }
}
