import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace bisect FILE --until EXPR`
struct Bisect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bisect",
        abstract: "Find the first event at which a counter predicate holds.",
        discussion: """
            EXPR uses counter names, integer literals, + - *, comparisons (== != < <= > >=), \
            && || ! and parentheses, nested at most \(CounterPredicate.maxDepth) levels deep (each pair \
            of parentheses, each ! or unary -, and each binary operator over its operands is a \
            level: a + b + c is two). Counters are the aggregate over all NICs unless --nic \
            selects one. A predicate that stays true once true (a growing expression compared \
            with > or >= to a constant, and && / || of such) is found by binary search over \
            the chunk checkpoints and a scan of one chunk: at most ⌈log2(chunks)⌉ + 2 chunks \
            are read. Any other predicate is found by a scan, and bisect says so.

            Examples:
              vtrace bisect run.vtrace --until 'invalid_avail_idx_count > 0'
              vtrace bisect run.vtrace --until 'tx_dropped_no_rx_buffer >= 100' --nic 1
              vtrace bisect run.vtrace --until 'rx_packets + 10 < tx_packets' --json
            """
    )

    @OptionGroup var input: TraceInput

    @Option(help: "The predicate to find.")
    var until: String?

    @Flag(help: "Find the first event where the current device core departs from the recording.")
    var divergence = false

    @Option(help: "Counters of this NIC instead of the aggregate.")
    var nic: Int?

    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        /// null when the predicate never holds.
        @NullWhenNil var event: UInt64?
        @NullWhenNil var chunk: Int?
        var chunksReplayed: Int
        var chunks: Int
        var monotone: Bool
        var holdsAtStart: Bool
        var expression: String
        var counters: NetCounters?
        enum CodingKeys: String, CodingKey {
            case event, chunk, chunksReplayed = "chunks_replayed", chunks, monotone, holdsAtStart = "holds_at_start", expression, counters
        }
    }

    func validate() throws {
        if (until == nil) == !divergence { throw ValidationError("give exactly one of --until EXPR and --divergence") }
    }

    func run() throws {
        if divergence { return try findDivergence() }
        let until = self.until!
        let predicate: CounterPredicate
        do {
            predicate = try CounterPredicate.parse(until)
        } catch {
            printError("vtrace: --until '\(until)': \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let reader = try input.open()
        if let nic, nic < 0 || nic >= reader.header.nics {
            printError("vtrace: --nic \(nic): the trace has \(reader.header.nics) NIC\(reader.header.nics == 1 ? "" : "s")")
            throw ExitCode(VTrace.usageExitCode)
        }
        let progress = Progress("bisect", total: reader.chunks.count, enabled: !output.json)
        let result: BisectResult
        do throws(TraceError) {
            result = try CounterBisector(reader: reader, nic: nic).run(predicate) { done, _ in progress.update(done) }
        } catch {
            progress.finish()
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        progress.finish()
        if output.json {
            print(try JSONText.encode(Report(event: result.event, chunk: result.chunk, chunksReplayed: result.chunksReplayed,
                                             chunks: reader.chunks.count, monotone: result.monotone, holdsAtStart: result.holdsAtStart,
                                             expression: predicate.description, counters: result.counters)))
            return
        }
        let bound = Int((log2(Double(max(1, reader.chunks.count)))).rounded(.up)) + 2
        if !result.monotone { print("note: '\(until)' can turn false again, so bisect scanned the trace instead of binary-searching") }
        if result.holdsAtStart {
            print("'\(until)' already holds before the first event")
        } else if let event = result.event {
            print("'\(until)' first holds after event \(event) (chunk \(result.chunk!))")
            let start = reader.chunks.first?.firstTime ?? 0
            var d = try reader.decoder(result.chunk!)
            while let e = try d.next() {
                if e.number + 5 < event { continue }
                if e.number > event + 2 { break }
                print((e.number == event ? "→ " : "  ") + EventFormatting.text(e, d, start: start))
            }
        } else {
            print("'\(until)' never holds in this trace")
        }
        print("read \(result.chunksReplayed) of \(reader.chunks.count) chunks" + (result.monotone ? " (bound ⌈log2 chunks⌉ + 2 = \(bound))" : ""))
    }

    /// Binary search over checkpoint segments, each replayed from its own
    /// checkpoint: the first segment that diverges holds the first divergence,
    /// assuming that once the device core departs from the recording, later
    /// segments depart too (a changed behaviour keeps changing the counters).
    func findDivergence() throws {
        let reader = try input.open()
        let segments = reader.chunks.indices.filter { reader.chunks[$0].hasCheckpoint }
        let replayer = TraceReplayer(reader: reader)
        var replayed = Set<Int>()
        var cache: [Int: TraceReplayer.SegmentResult] = [:]
        func diverges(_ k: Int) throws -> TraceReplayer.SegmentResult {
            if let r = cache[k] { return r }
            let r = try replayer.replaySegment(from: segments[k])
            for c in r.firstChunk..<r.endChunk { replayed.insert(c) }
            cache[k] = r
            return r
        }
        func bad(_ r: TraceReplayer.SegmentResult) -> Bool { r.divergence != nil || r.checkpointMismatch != nil }
        var found: TraceReplayer.SegmentResult?
        var scanned = false
        do {
            if !segments.isEmpty, bad(try diverges(segments.count - 1)) {
                var lo = 0, hi = segments.count - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if bad(try diverges(mid)) { hi = mid } else { lo = mid + 1 }
                }
                found = try diverges(lo)
            } else {
                // The end replays clean: a departure, if any, did not last. Scan.
                scanned = true
                for k in segments.indices where bad(try diverges(k)) {
                    found = try diverges(k)
                    break
                }
            }
        } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let event: UInt64? = found.map { $0.divergence?.event ?? reader.chunks[$0.endChunk].firstEvent }
        if output.json {
            struct R: Encodable {
                @NullWhenNil var event: UInt64?
                var chunksReplayed: Int
                var chunks: Int
                var detail: String?
                enum CodingKeys: String, CodingKey { case event, chunksReplayed = "chunks_replayed", chunks, detail }
            }
            print(try JSONText.encode(R(event: event, chunksReplayed: replayed.count, chunks: reader.chunks.count,
                                        detail: found.map { $0.divergence?.description ?? $0.checkpointMismatch ?? "" })))
        } else if let found, let event {
            if scanned { print("note: the end of the trace replays clean, so the departure did not last; bisect scanned the segments instead") }
            print("the device core first departs from the recording at event \(event): \(found.divergence?.description ?? found.checkpointMismatch ?? "")")
            print("read \(replayed.count) of \(reader.chunks.count) chunks")
        } else {
            print("the device core matches the recording (read \(replayed.count) of \(reader.chunks.count) chunks)")
        }
    }
}
