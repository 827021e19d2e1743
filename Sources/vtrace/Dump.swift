import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis

/// `vtrace dump FILE`
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a trace's events, one per line, with their numbers.",
        discussion: """
            --from jumps straight to the chunk holding that event (the index is searched; \
            the chunks before it are not read). Kinds: mmio (mmio-read, mmio-write), mem \
            (mem-read, mem-write), chain, used, counter, irq, poison, status, features, pairs, \
            reset, warning, memory (guest memory bound or unbound), vhost (vhost-user operations).

            With --json, one JSON object per line: n (event number), t (ns since the first \
            chunk's base timestamp), nic, kind, and per kind: counter/value; \
            offset/register/width/op/value (mmio); queue/id/len (used); \
            address/length/ok/bytes (memory); queue/head/descriptors (chain); the rest in \
            docs/trace-format.md, "The JSON dump".

            Examples:
              vtrace dump run.vtrace --kind counter,irq
              vtrace dump run.vtrace --from 120000 --to 120050
              vtrace dump run.vtrace --json --kind used --nic 1
            """
    )

    @OptionGroup var input: TraceInput

    @Option(parsing: .unconditional, help: "First event to print.")
    var from: UInt64?

    @Option(parsing: .unconditional, help: "Last event to print (inclusive).")
    var to: UInt64?

    @Option(help: "Only these kinds, comma-separated.")
    var kind: String?

    @Option(help: "Only events of this NIC.")
    var nic: Int?

    @Option(help: "Bytes of memory payload to show per event in text mode.")
    var bytes = 16

    @OptionGroup var output: OutputOptions

    /// Every kind by its name (so a new kind is never missing here), plus the
    /// finer and coarser groups: mmio-read, mmio-write, mem.
    static let kindNames: [String: [TraceEventKind]] = {
        var names = Dictionary(grouping: TraceEventKind.allCases, by: \.name)
        names["mmio-read"] = [.mmioRead]
        names["mmio-write"] = [.mmioWrite]
        names["mem"] = [.memoryRead, .memoryWrite]
        return names
    }()

    func validate() throws {
        if let kind {
            if kind.split(separator: ",").isEmpty { throw ValidationError("--kind: no kinds given; kinds are \(Self.kindNames.keys.sorted().joined(separator: ", "))") }
            for k in kind.split(separator: ",") where Self.kindNames[String(k)] == nil {
                throw ValidationError("unknown kind '\(k)'; kinds are \(Self.kindNames.keys.sorted().joined(separator: ", "))")
            }
        }
        if let from, let to, to < from { throw ValidationError("--to \(to) is before --from \(from)") }
    }

    func run() throws {
        let reader = try input.open()
        let wanted: Set<TraceEventKind>? = kind.map { Set($0.split(separator: ",").flatMap { Self.kindNames[String($0)]! }) }
        if let nic, nic < 0 || nic >= reader.header.nics {
            printError("vtrace: --nic \(nic): the trace has \(reader.header.nics) NIC(s)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let start = reader.chunks.first?.firstTime ?? 0
        let first = from ?? reader.firstEvent
        guard reader.eventCount > 0 else { return }
        guard let startChunk = reader.chunkIndex(containing: first) else {
            printError("vtrace: \(input.trace): \(TraceError.noSuchEvent(first, events: reader.events))")
            throw ExitCode(VTrace.usageExitCode)
        }
        var out = ""
        out.reserveCapacity(1 << 16)
        chunks: for i in startChunk..<reader.chunks.count {
            var d: ChunkDecoder
            do throws(TraceError) { d = try reader.decoder(i) } catch {
                print(out, terminator: "")
                printError("vtrace: \(input.trace): \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
            while true {
                let next: TraceEvent?
                do throws(TraceError) { next = try d.next(chunk: i, of: reader) } catch {
                    print(out, terminator: "")
                    printError("vtrace: \(input.trace): \(error)")
                    throw ExitCode(VTrace.usageExitCode)
                }
                guard let e = next else { break }
                if e.number < first { continue }
                if let to, e.number > to { break chunks }
                if let nic, e.nic != nic { continue }
                if let wanted, !wanted.contains(e.kind) { continue }
                out += output.json ? EventFormatting.json(e, d, start: start) : EventFormatting.text(e, d, start: start, byteLimit: bytes)
                out += "\n"
                if out.utf8.count > 1 << 16 {
                    print(out, terminator: "")
                    out.removeAll(keepingCapacity: true)
                }
            }
        }
        print(out, terminator: "")
    }
}
