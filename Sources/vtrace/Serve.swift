import ArgumentParser
import Foundation
import TraceRecording
import VhostUser
import VirtioCore

/// `vtrace serve --vhost-user SOCKET [--pairs N] [--record OUT.vtrace]`
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the device core to a vhost-user frontend (QEMU, DPDK virtio-user), optionally recording.",
        discussion: """
            A vhost-user-net backend: it listens on a Unix socket; a frontend connects, shares \
            its memory (memfd regions) and hands over each ring with a kick and a call eventfd. \
            Each kick runs the device core exactly as a QueueNotify write does on virtio-mmio: \
            TX frames are captured and looped back to the RX ring of the same pair, with the \
            same counters, poisoning rules and faults. Interrupts leave on the call eventfds.

            Offered: VERSION_1 (and MQ with --pairs > 1); protocol features MQ and REPLY_ACK. \
            The frontend keeps the MAC, the config space and the control queue to itself, so \
            the ctrl_* counters stay 0 here. Ring sizes: powers of two up to 32768 (QEMU's \
            virtio-mmio picks 1024). A ring handed over without a kick fd is polled every \
            millisecond.

            A malformed or hostile message (a ring outside the memory table, overlapping \
            regions, a bad fd count, a file where an eventfd belongs, an oversize message, a \
            peer that vanishes, stalls or trickles mid-message, memory shrunk under the \
            device) ends that session with a message naming it; the device is reset and the \
            backend waits for the next connection. \
            SIGINT or SIGTERM stops serving; with --record the trace is finished (complete up \
            to that point) either way. tools/linux-guest/boot.sh boots a Linux guest against \
            it (docs/vhost-user.md).

            Examples:
              vtrace serve --vhost-user /tmp/vt.sock --record boot.vtrace --sessions 1
              qemu-system-x86_64 -M microvm,memory-backend=mem -object memory-backend-memfd,id=mem,size=256M,share=on \\
                -chardev socket,id=c0,path=/tmp/vt.sock -netdev vhost-user,id=n0,chardev=c0 \\
                -device virtio-net-device,netdev=n0 -global virtio-mmio.force-legacy=false ...
              dpdk-testpmd --no-huge -m 512 --no-pci --vdev net_virtio_user0,path=/tmp/vt.sock -- ...
            """
    )

    @Option(name: .customLong("vhost-user"), help: "The Unix socket to listen on (a stale socket there is replaced; any other file is refused).", completion: .file())
    var socket: String

    @Option(help: "Queue pairs (1...8).")
    var pairs = 1

    @Option(help: "Serve this many frontend sessions, then exit (default: until SIGINT/SIGTERM).")
    var sessions: Int?

    @Option(name: .customLong("record"), help: "Record every session into this trace.")
    var record: String?

    @OptionGroup(title: "Recording (with --record)") var recordingFlags: RecordingFlags

    @Flag(help: "Print progress (connections, memory tables) to standard error; problems always print.")
    var verbose = false

    @OptionGroup var faultOptions: FaultOptions

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if !(1...8).contains(pairs) { throw ValidationError("--pairs must be in 1...8") }
        if let sessions, sessions < 1 { throw ValidationError("--sessions must be at least 1") }
        if let type = (try? FileManager.default.attributesOfItem(atPath: socket))?[.type] as? FileAttributeType, type != .typeSocket {
            throw ValidationError("--vhost-user \(socket) exists and is not a socket; it is not replaced")
        }
    }

    func run() throws {
        if let record {
            try refuseClobbering(record, inputs: [socket], option: "--record", renamedIntoPlace: true)
            try refuseClobbering(record + ".partial", inputs: [socket], option: "--record")
        }
        let started = Date()
        let service = VhostService(socket: socket, pairs: pairs, sessions: sessions, trace: record,
                                   recording: try recordingFlags.options(defaultLevel: 1), faults: try faultOptions.parsed(),
                                   guest: "vhost-user frontend on \(socket)", verbose: verbose)
        let outcome = service.run { _ in }
        if let failure = outcome.failure {
            printError("vtrace: \(failure)")
            throw ExitCode(1)
        }
        let (summaries, counters, recording) = (outcome.sessions, outcome.counters, outcome.recording)
        let seconds = Date().timeIntervalSince(started)
        let fired = recordingFlags.controls.report(recording)
        if outputOptions.json {
            print(try JSONText.encode(ServeReport(socket: socket, seconds: seconds, sessions: summaries,
                                                  counters: counters, recording: recording)))
            if let fired { throw ExitCode(fired) }
            return
        }
        for (i, s) in summaries.enumerated() {
            print("session \(i + 1)  \(s.messages) messages, \(s.kicks) kicks, \(s.callSignals) call signals; ended: \(s.ending)")
        }
        print(CounterTable.render([("nic0", counters)], onlyNonZero: true))
        if let r = recording {
            print("recorded   \(r.events - r.firstEvent) events\(r.firstEvent == 0 ? "" : " (a --keep window from event \(r.firstEvent))") in \(r.chunks) chunk\(r.chunks == 1 ? "" : "s") to \(r.path) (\(r.fileBytes) bytes)")
        }
        if let fired { throw ExitCode(fired) }
    }
}

struct ServeReport: Encodable {
    var socket: String
    var seconds: Double
    var sessions: [VhostSessionSummary]
    var counters: NetCounters
    var recording: RecordingSummary?
}
