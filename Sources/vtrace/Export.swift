import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace export FILE --format perfetto|jsonl -o OUT`
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a trace in a format other tools read.",
        discussion: """
            perfetto: Chrome trace-event JSON that ui.perfetto.dev and chrome://tracing open: \
            one counter track per counter and NIC ("ph":"C"), instant events for kicks \
            (QueueNotify writes), interrupts, poisonings and resets; one process per NIC. \
            Times are microseconds since the first access; each instant carries its event number.

            jsonl: one JSON object per event, as `vtrace dump --json` prints them.

            pcapng: every frame the device carried, for Wireshark and `tshark -r`: each TX \
            frame as read from its chain, each RX delivery as written into its chain, the \
            12-byte virtio-net header stripped. Two interfaces per NIC, nicN-tx and nicN-rx; \
            a frame is written when tx_packets or rx_packets counts it, so the file holds \
            exactly tx_packets + rx_packets frames. Each packet's comment names the chain \
            event (for `vtrace debug --break-at`) and the counting event. A trace recorded \
            with --snaplen N holds only each frame's first N bytes: its packets are cut there, \
            with their original length, as tcpdump -s N writes them.

            Examples:
              vtrace export run.vtrace --format perfetto -o run.json
              vtrace export run.vtrace --format jsonl -o - | jq 'select(.kind == "counter")'
              vtrace export run.vtrace --format pcapng -o run.pcapng && tshark -r run.pcapng
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case perfetto, jsonl, pcapng
    }

    @OptionGroup var input: TraceInput

    @Option(help: "perfetto, jsonl or pcapng.")
    var format: Format

    @Option(name: .shortAndLong, help: "The file to write (- for standard output).")
    var output: String

    func run() throws {
        let sink = try OutputFile(output, inputs: [input.trace])
        let reader = try input.open()
        if reader.completeness != .complete {
            printError("vtrace: note: \(input.trace): \(reader.completeness.text); exporting the \(reader.eventCount) events before it")
        }
        var out = ""
        func flush(_ force: Bool = false) throws {
            if force || out.utf8.count > 1 << 16 {
                try sink.write(out)
                out = ""
            }
        }
        let start = reader.chunks.first?.firstTime ?? 0
        if format == .pcapng {
            try writePcapng(reader, to: sink, start: start)
            return
        }
        var first = true
        func item(_ json: String) throws {
            out += (first ? "\n" : ",\n") + json
            first = false
            try flush()
        }
        func ts(_ t: UInt64) -> String { String(format: "%.3f", Double(t &- start) / 1000) }
        if format == .perfetto {
            out += "{\"displayTimeUnit\":\"ns\",\"traceEvents\":["
            for n in 0..<reader.header.nics {
                try item("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":\(n),\"args\":{\"name\":\"nic\(n)\"}}")
            }
        }
        do {
            for i in reader.chunks.indices {
                var d = try reader.decoder(i)
                if i == 0 && format == .perfetto {
                    for (n, values) in d.startCounters.enumerated() {
                        for c in NetCounter.allCases where c.ordinal < values.count {
                            try item("{\"name\":\"\(c.name)\",\"ph\":\"C\",\"ts\":0,\"pid\":\(n),\"args\":{\"value\":\(values[c.ordinal])}}")
                        }
                    }
                }
                while true {
                    let next = try d.next(chunk: i, of: reader)
                    guard let e = next else { break }
                    switch format {
                    case .jsonl:
                        out += EventFormatting.json(e, d, start: start) + "\n"
                        try flush()
                    case .pcapng:
                        break
                    case .perfetto:
                        let instant: String?
                        switch e.body {
                        case .counter(let index, let value):
                            if let c = NetCounter(ordinal: index) {
                                try item("{\"name\":\"\(c.name)\",\"ph\":\"C\",\"ts\":\(ts(e.time)),\"pid\":\(e.nic),\"args\":{\"value\":\(value)}}")
                            }
                            instant = nil
                        case .mmioWrite(let offset, _, let value) where offset == MMIORegister.queueNotify.rawValue:
                            instant = "kick q\(value)"
                        case .interrupt(let k): instant = "irq \(InterruptSignals(rawValue: k))"
                        case .poison(let q, _, _): instant = "poison q\(q)"
                        case .reset: instant = "reset"
                        default: instant = nil
                        }
                        if let instant {
                            try item("{\"name\":\"\(instant)\",\"ph\":\"i\",\"s\":\"p\",\"ts\":\(ts(e.time)),\"pid\":\(e.nic),\"tid\":0,\"args\":{\"event\":\(e.number)}}")
                        }
                    }
                }
            }
        } catch let error as TraceError {
            if output == "-" { try flush(true) }   // what was read, to the pipe; a file is not left half written
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        if format == .perfetto { out += "\n]}\n" }
        try flush(true)
        try sink.commit()
    }
}

extension Export {
    /// Writes every counted frame as a pcapng packet, one interface per NIC and direction.
    func writePcapng(_ reader: TraceReader, to sink: OutputFile, start: UInt64) throws {
        let header = reader.header
        var w = PcapngWriter()
        w.section(application: "vtrace \(VTrace.version)",
                  comment: "\(input.trace): \(header.nics) NIC(s), \(header.queuePairs) queue pair(s)"
                      + (header.scenario.map { ", scenario \($0)" } ?? "")
                      + (header.snaplen.map { ", snaplen \($0): frames past their first \($0) bytes were not stored" } ?? ""))
        for n in 0..<header.nics {
            for dir in PacketDirection.allCases {
                w.interface(name: "nic\(n)-\(dir.rawValue)",
                            description: "vtrace NIC \(n): " + (dir == .tx ? "frames the guest transmitted" : "frames delivered to the guest"),
                            // pcapng has no "none captured": --snaplen 0 shows as no limit, each packet's lengths say it.
                            snapLength: header.snaplen ?? 0)
            }
        }
        var extractor = PacketExtractor(nics: header.nics, queuePairs: header.queuePairs)
        do {
            var buffer: ChunkBuffer?
            for i in reader.chunks.indices {
                var d = try reader.decoder(i, reusing: &buffer)
                while true {
                    let next = try d.next(chunk: i, of: reader)
                    guard let e = next else { break }
                    extractor.consume(e, decoder: d) { p in
                        let counter = p.direction == .tx ? "tx_packets" : "rx_packets"
                        w.packet(interface: UInt32(2 * p.nic + (p.direction == .tx ? 0 : 1)),
                                 nanoseconds: header.startTimeNanoseconds &+ (p.time &- start), data: p.bytes, originalLength: p.length,
                                 comment: "event \(p.chainEvent): nic\(p.nic) \(p.direction.rawValue) queue \(p.queue) head \(p.head); "
                                     + "\(counter) \(p.count) at event \(p.countedEvent)")
                    }
                    if w.bytes.count >= 1 << 20 {
                        try sink.write(w.bytes)
                        w.bytes.removeAll(keepingCapacity: true)
                    }
                }
            }
        } catch let error as TraceError {
            if output == "-" { try sink.write(w.bytes) }
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        try sink.write(w.bytes)
        try sink.commit()
        let tx = extractor.counts[.tx] ?? 0, rx = extractor.counts[.rx] ?? 0
        printError("vtrace: wrote \(tx + rx) frames (\(tx) tx, \(rx) rx) to \(output == "-" ? "standard output" : output)")
    }
}
