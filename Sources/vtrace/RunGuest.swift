import ArgumentParser
import Foundation
import KVMHost
import TraceFormat
import TraceAnalysis
import TraceRecording
import VirtioCore

/// `vtrace run --workload NAME[:k=v,...] [--record OUT.vtrace]`
struct RunGuest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot the guest driver on KVM against the device core, optionally recording.",
        discussion: """
            A small VMM: vCPUs in 64-bit mode run tools/guest/guest.c (a freestanding \
            virtio-net driver, built by tools/guest/build.sh) at privilege level 3; NIC n's \
            virtio-mmio window is at 0xC0002000 + n × 0x1000. Every MMIO exit in a window goes \
            to the device core; accesses anywhere else read all-ones and are ignored (and \
            counted). The guest reports its own view on the serial port and ends by writing a \
            status to port 0xf4.

            Workloads (keys: frames, len, pairs, descs, batch = frames per kick):
              burst          frames of len bytes over pairs, each in descs pieces
              mq             VQ_PAIRS_SET 1, 2, … pairs; frames on each setting
            Hostile ones, each a counter path of the spec (key: len):
              bogus-avail    TX avail.idx 1000 ahead: invalid_avail_idx_count
              unmapped       data beyond RAM: tx_chain_invalid, rx_write_failed
              tx-write-only  a device-writable TX descriptor: tx_chain_invalid
              rx-read-only   a device-readable RX buffer: rx_chain_invalid
              oversize       a frame over 65,557 bytes: tx_oversize_dropped
              early-kick     a kick before DRIVER_OK (ignored), then after it
              no-version-1   features without VERSION_1: FEATURES_OK refused
              reset          a reset between two bursts: counters survive
              starve         no RX buffer posted: tx_dropped_no_rx_buffer
              hostile        all of the above in turn
            Bad guests:
              spin           a burst, then a loop until --timeout
              garbage        random writes to every register, and outside
              triple-fault   a burst, then ud2 with no IDT

            With --record, every MMIO access, guest-memory read and write, chain, used publish, \
            counter transition and interrupt goes into the trace, which replays offline \
            (`vtrace replay`) without KVM.

            Exit codes: 0 the guest finished with status 0 and its own counts agree with the \
            device counters; 1 it did not (failed checks, timeout, triple fault); 2 bad usage \
            or no usable KVM.

            Examples:
              vtrace run --workload burst:frames=1000,len=1500
              vtrace run --workload mq:pairs=4,frames=100 --pairs 4 --record mq.vtrace
              vtrace run --workload burst --nics 2 --console --timeout 10
              vtrace run --workload burst --nics 4 --vcpus 4 --record four.vtrace
            """
    )

    @Option(help: "NAME[:key=value,...]: burst, mq, a hostile case or a bad guest (see below).")
    var workload: String

    @Option(help: "NICs (1...8).")
    var nics = 1

    @Option(help: "Queue pairs each NIC offers (1...8; the workload's pairs must fit).")
    var pairs: Int?

    @Option(help: "vCPUs (1...8, at most --nics): vCPU k drives NICs k, k + vcpus, …; the trace records each access's vCPU.")
    var vcpus = 1

    @Option(help: "Guest memory in MiB.")
    var memory = 64

    @Option(help: "Wall-clock limit in seconds.")
    var timeout: Double = 30

    @Flag(help: "Copy the guest's serial output to standard error as it comes.")
    var console = false

    @Option(help: "The guest ELF (default: .build/guest/vtrace-guest.elf beside this build).", completion: .file())
    var guest: String?

    @Option(name: .customLong("record"), help: "Record the run into this trace.")
    var record: String?

    @OptionGroup(title: "Recording (with --record)") var recordingFlags: RecordingFlags

    @Flag(help: "Encode the trace's records on the vCPU's thread, as it goes. By default the vCPU only appends each event's fields and bytes, and the writer's thread encodes them before compressing (the same records; about half the vCPU's recording work moves to the writer's core).")
    var encodeInline = false

    @OptionGroup var faultOptions: FaultOptions

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if !(1...8).contains(nics) { throw ValidationError("--nics must be in 1...8") }
        if let pairs, !(1...8).contains(pairs) { throw ValidationError("--pairs must be in 1...8") }
        if !(1...8).contains(vcpus) || vcpus > nics { throw ValidationError("--vcpus must be in 1...8 and at most --nics (each vCPU drives its own NICs)") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if memory < 32 || memory > 1024 || memory % 2 != 0 { throw ValidationError("--memory must be an even number of MiB in 32...1024") }
    }

    /// The guest tools/guest/build.sh writes into .build/guest/: looked for
    /// above this binary (.build/debug/vtrace, .build/x86_64-…/release/vtrace).
    static var defaultGuest: String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("guest/vtrace-guest.elf").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return ".build/guest/vtrace-guest.elf"
    }

    func run() throws {
        if let record {
            let inputs = guest.map { [$0] } ?? []
            try refuseClobbering(record, inputs: inputs, option: "--record", renamedIntoPlace: true)
            try refuseClobbering(record + ".partial", inputs: inputs, option: "--record")
        }
        let w: GuestWorkload
        switch GuestWorkload.parse(workload) {
        case .success(let parsed): w = parsed
        case .failure(let e):
            printError("vtrace: --workload: \(e.message)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let queuePairs = pairs ?? Int(w.pairs)
        guard Int(w.pairs) <= queuePairs else {
            printError("vtrace: the workload uses \(w.pairs) queue pairs; the NICs offer \(queuePairs) (--pairs)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let path = guest ?? Self.defaultGuest
        let bytes: [UInt8]
        let image: ElfImage
        do {
            bytes = try InputFiles.read(path, limit: 64 << 20)
        } catch {
            printError("vtrace: \(error)\(guest == nil ? " (build the guest with tools/guest/build.sh)" : "")")
            throw ExitCode(VTrace.usageExitCode)
        }
        do {
            image = try ElfImage(bytes)
        } catch {
            printError("vtrace: \(path): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        var options = MachineOptions()
        options.memorySize = UInt64(memory) << 20
        options.nics = nics
        options.queuePairs = queuePairs
        options.vcpus = vcpus
        options.timeoutSeconds = timeout
        options.console = console
        options.faults = try faultOptions.parsed()

        let result: RunResult
        var summary: RecordingSummary?
        if let record {
            let recorder: TraceRecorder
            do {
                var recording = try recordingFlags.options(defaultLevel: 1)
                recording.defersEncoding = !encodeInline
                let faults = options.faults.specs, guestText = "KVM guest \(path), workload \(w)"
                recorder = try TraceRecorder(path: record, config: NetConfig(queuePairs: queuePairs), nics: nics,
                                             regions: [MemoryRegion(base: 0, size: options.memorySize)], options: recording,
                                             header: { header in
                                                 header.stampProvenance(started: Date(), guest: guestText)
                                                 header.faults = faults
                                             })
            } catch {
                printError("vtrace: \(record): \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
            /// The run with `observer(nic)` recording each NIC.
            func recorded<O: DeviceObserver & SendableMetatype>(_ observer: (Int) -> O) throws -> RunResult {
                let machine: Machine<O>
                do {
                    machine = try Machine(image: image, imageBytes: bytes, workload: w, options: options, observer: observer)
                } catch {
                    recorder.abandon()
                    try? FileManager.default.removeItem(atPath: record + ".partial")
                    printError("vtrace: \(error)")
                    throw ExitCode(VTrace.usageExitCode)
                }
                // A trigger that fires with --trigger-action stop ends the run.
                recorder.onTriggerStop = { machine.requestStop() }
                return machine.run()
            }
            let vcpuCount = vcpus
            if recorder.options.defersEncoding {
                result = try recorded { recorder.deferredObserver(nic: $0, vcpu: UInt32($0 % vcpuCount)) }
            } else {
                result = try recorded { recorder.observer(nic: $0, vcpu: UInt32($0 % vcpuCount)) }
            }
            do {
                summary = try recorder.finish()
            } catch {
                printError("vtrace: \(record): \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
        } else {
            let machine: Machine<NoObserver>
            do {
                machine = try Machine(image: image, imageBytes: bytes, workload: w, options: options) { _ in NoObserver() }
            } catch {
                printError("vtrace: \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
            result = machine.run()
        }
        let views = GuestView.parse(result.serial)
        let disagreements = GuestView.compare(views, result.counters)
        if outputOptions.json {
            print(try JSONText.encode(GuestRunReport(result: result, workload: w.description, disagreements: disagreements, recording: summary)))
        } else {
            printText(result, w, views: views, disagreements: disagreements, summary: summary)
        }
        let fired = recordingFlags.controls.report(summary)
        if !result.end.succeeded || !disagreements.isEmpty || fired != nil { throw ExitCode(1) }
    }

    func printText(_ r: RunResult, _ w: GuestWorkload, views: [GuestView], disagreements: [String], summary: RecordingSummary?) {
        if !console {
            for line in r.serial.split(separator: "\n", omittingEmptySubsequences: true).prefix(40) { print("  | \(line)") }
        }
        print("workload   \(w)")
        print("end        \(r.end)")
        print(String(format: "time       %.3f s, %llu MMIO exits (%.0f/s), %llu port exits, %llu stray accesses",
                     r.seconds, r.mmioExits, r.seconds > 0 ? Double(r.mmioExits) / r.seconds : 0, r.ioExits, r.strayAccesses))
        for line in r.log.prefix(8) { print("vmm        \(line)") }
        var columns = r.counters.enumerated().map { ("nic\($0.offset)", $0.element) }
        if r.counters.count > 1, let total = NetCounters.aggregate(r.counters) { columns.append(("total", total)) }
        print(CounterTable.render(columns, onlyNonZero: true))
        if disagreements.isEmpty {
            if !views.isEmpty { print("guest view agrees with the device counters (\(views.count) NIC\(views.count == 1 ? "" : "s"))") }
        } else {
            for d in disagreements { print("DISAGREE   \(d)") }
        }
        if let summary {
            print("recorded   \(summary.events) events in \(summary.chunks) chunk\(summary.chunks == 1 ? "" : "s") to \(summary.path) (\(summary.fileBytes) bytes)"
                  + (summary.fasterChunks > 0 ? "; \(summary.fasterChunks) compressed faster to keep up" : "")
                  + (summary.stalls > 0 ? "; the guest waited for the compressor \(summary.stalls) time\(summary.stalls == 1 ? "" : "s")" : ""))
        }
    }
}

/// One line of the guest's report: "guest: nicN sent S received R bad B rx_bytes X pairs P".
struct GuestView: Encodable, Equatable {
    var nic: Int
    var sent: UInt64
    var received: UInt64
    var bad: UInt64
    var rxBytes: UInt64

    static func parse(_ serial: String) -> [GuestView] {
        serial.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count >= 10, f[0] == "guest:", f[1].hasPrefix("nic"), let nic = Int(f[1].dropFirst(3)),
                  f[2] == "sent", let s = UInt64(f[3]), f[4] == "received", let r = UInt64(f[5]), f[6] == "bad", let b = UInt64(f[7]),
                  f[8] == "rx_bytes", let x = UInt64(f[9]) else { return nil }
            return GuestView(nic: nic, sent: s, received: r, bad: b, rxBytes: x)
        }
    }

    /// Where the guest's own counts differ from the device's counters.
    static func compare(_ views: [GuestView], _ counters: [NetCounters]) -> [String] {
        var out: [String] = []
        for v in views {
            guard v.nic < counters.count else { out.append("the guest reports nic\(v.nic), which does not exist"); continue }
            let c = counters[v.nic]
            if v.sent != c.txPackets { out.append("nic\(v.nic): the guest sent \(v.sent) frames, tx_packets is \(c.txPackets)") }
            if v.received != c.rxPackets { out.append("nic\(v.nic): the guest received \(v.received) frames, rx_packets is \(c.rxPackets)") }
            if v.rxBytes != c.rxBytes { out.append("nic\(v.nic): the guest received \(v.rxBytes) bytes, rx_bytes is \(c.rxBytes)") }
            if v.bad > 0 { out.append("nic\(v.nic): \(v.bad) frames came back different from what was sent") }
        }
        return out
    }
}

struct GuestRunReport: Encodable {
    var end: String
    var succeeded: Bool
    var seconds: Double
    /// CPU time of the vCPU threads (leaves out time other tenants took).
    var vcpuSeconds: Double
    var mmioExits: UInt64
    var ioExits: UInt64
    var strayAccesses: UInt64
    var workload: String
    var counters: [NetCounters]
    var guest: [GuestView]
    var disagreements: [String]
    var serial: String
    var trace: String?
    var events: UInt64?
    /// What --record wrote, and whether the device's thread ever waited for it.
    var recording: RecordingSummary?

    init(result r: RunResult, workload: String, disagreements: [String], recording summary: RecordingSummary?) {
        end = r.end.description
        succeeded = r.end.succeeded
        seconds = r.seconds
        vcpuSeconds = r.vcpuSeconds
        mmioExits = r.mmioExits
        ioExits = r.ioExits
        strayAccesses = r.strayAccesses
        self.workload = workload
        counters = r.counters
        guest = GuestView.parse(r.serial)
        self.disagreements = disagreements
        serial = r.serial
        trace = summary?.path
        events = summary?.events
        recording = summary
    }
}
