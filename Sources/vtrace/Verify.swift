import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis

/// `vtrace verify FILE`
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every chunk of a trace and that each checkpoint follows from the chunks before it.",
        discussion: """
            For every chunk: its checksum, that it decompresses to the size the index says, \
            and that every event decodes. Then each run of chunks from one checkpoint to the \
            next is replayed against fresh device cores: every output must match the \
            recording, and the state reached must equal the next checkpoint. The first \
            problem is named by chunk and byte offset.

            Exit status: 0 when everything checks (an incomplete trace is checked up to its \
            last complete chunk and reported as such, with the access its recorder was \
            killed in, if any), 1 when a check fails, 2 when the file cannot be opened as a \
            trace (a complete trace whose last chunk ends inside an access is corrupt).

            Examples:
              vtrace verify run.vtrace
              vtrace verify run.vtrace.partial --json
            """
    )

    @OptionGroup var input: TraceInput
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var path: String
        var ok: Bool
        var complete: Bool
        var chunks: Int
        var checkpointChunks: Int
        var events: UInt64
        var segmentsReplayed: Int
        var problem: String?
        var problemChunk: Int?
        var problemOffset: Int?
        /// Where the recording ends inside an access (a recorder stopped mid-drain), if it does.
        var cut: RecordingCut?
    }

    func run() throws {
        let reader = try input.open(contentChecksums: true)
        var report = Report(path: input.trace, ok: true, complete: reader.completeness == .complete, chunks: reader.chunks.count,
                            checkpointChunks: reader.chunks.filter(\.hasCheckpoint).count, events: reader.eventCount, segmentsReplayed: 0)
        func fail(_ message: String, chunk: Int?, offset: Int?) {
            if report.ok {
                report.ok = false
                report.problem = message
                report.problemChunk = chunk
                report.problemOffset = offset
            }
        }
        let progress = Progress("verify", total: 2 * reader.chunks.count, enabled: !output.json)
        // 1. Every chunk decodes.
        for i in reader.chunks.indices where report.ok {
            progress.update(i)
            do throws(TraceError) {
                try reader.checkEntryFrame(i)
                var d = try reader.decoder(i)
                var count: UInt64 = 0
                while true {
                    do throws(ChunkDecodeError) {
                        guard try d.next() != nil else { break }
                    } catch {
                        throw TraceError.corrupt(offset: Int(reader.chunks[i].offset), chunk: i, error.description)
                    }
                    count += 1
                }
                if count != UInt64(reader.chunks[i].eventCount) {
                    throw TraceError.corrupt(offset: Int(reader.chunks[i].offset), chunk: i, "chunk holds \(count) events, the index says \(reader.chunks[i].eventCount)")
                }
            } catch {
                fail("\(error)", chunk: i, offset: Int(reader.chunks[i].offset))
            }
        }
        // 2. Replay each checkpoint segment.
        if report.ok {
            let replayer = TraceReplayer(reader: reader)
            var i = 0
            while i < reader.chunks.count && report.ok {
                guard reader.chunks[i].hasCheckpoint else { i += 1; continue }
                progress.update(reader.chunks.count + i)
                do throws(TraceError) {
                    let r = try replayer.replaySegment(from: i)
                    report.segmentsReplayed += 1
                    if let c = r.cut { report.cut = c }
                    if let d = r.divergence {
                        fail("replay diverged at \(d)", chunk: d.chunk, offset: Int(reader.chunks[d.chunk].offset))
                    } else if let m = r.checkpointMismatch {
                        fail(m, chunk: r.endChunk, offset: Int(reader.chunks[r.endChunk].offset))
                    }
                    i = r.endChunk
                } catch {
                    fail("\(error)", chunk: i, offset: Int(reader.chunks[i].offset))
                }
            }
        }
        progress.finish()
        if output.json {
            print(try JSONText.encode(report))
        } else if report.ok {
            print("\(input.trace): OK — \(report.chunks) chunks, \(report.events) events, \(report.segmentsReplayed) checkpoint segment\(report.segmentsReplayed == 1 ? "" : "s") replayed\(report.complete ? "" : "; " + reader.completeness.text)\(report.cut.map { "; " + $0.description } ?? "")")
        } else {
            print("\(input.trace): FAILED — \(report.problem!)")
        }
        if !report.ok { throw ExitCode(1) }
    }
}
