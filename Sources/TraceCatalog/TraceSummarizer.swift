//! One file to one catalogue row: stat, hash, open, one pass over the events,
//! and optionally a replay. Never throws: what cannot be read becomes a row
//! that says so.

import Foundation
import TraceAnalysis
import TraceFormat
import VirtioCore

/// Summarises trace files for the catalogue (thread-safe: a call shares nothing).
public enum TraceSummarizer {
    /// Everything the catalogue stores of the file at `path` (made absolute);
    /// with `replay`, also the replay verdict against this build's device core,
    /// replaying the faults the header lists (as `vtrace replay --recorded-faults`).
    public static func summarize(path given: String, replay: Bool, replayedBy: String) -> TraceSummary {
        let path = URL(fileURLWithPath: given).standardizedFileURL.path
        var st = stat()
        guard stat(path, &st) == 0 else {
            var s = TraceSummary(path: path, fileBytes: 0, mtimeNanoseconds: 0, contentHash: nil, status: .unreadable,
                                 error: String(cString: strerror(errno)))
            if replay { s.replay = ReplayVerdict(status: .error, actual: s.error, faults: "", replayedBy: replayedBy) }
            return s
        }
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        var s = TraceSummary(path: path, fileBytes: Int64(st.st_size), mtimeNanoseconds: mtime, contentHash: nil, status: .complete)
        do throws(CatalogError) {
            s.contentHash = try ContentHash.sha256(path: path)
        } catch {
            s.status = .unreadable
            s.error = error.description
        }
        if s.contentHash != nil { read(path, into: &s, replay: replay, replayedBy: replayedBy) }
        if replay && s.replay == nil {
            s.replay = ReplayVerdict(status: .error, actual: "not replayed: the trace is \(s.status.rawValue): \(s.error ?? "")",
                                     faults: s.header?.faults.joined(separator: " ") ?? "", replayedBy: replayedBy)
        }
        return s
    }

    /// Opens the trace and makes the pass (and the replay of a trace read to its end).
    static func read(_ path: String, into s: inout TraceSummary, replay: Bool, replayedBy: String) {
        let reader: TraceReader
        do throws(TraceError) {
            reader = try TraceReader(path: path)
        } catch {
            (s.status, s.error) = (status(of: error), error.description)
            return
        }
        reader.verifiesContentChecksums = false  // the index's CRC-32 of every chunk is still checked
        s.header = reader.header
        s.chunks = reader.chunks.count
        s.checkpointChunks = reader.chunks.filter(\.hasCheckpoint).count
        s.firstEvent = reader.firstEvent
        s.events = reader.eventCount &- reader.firstEvent
        if case .incomplete(let lost, let reason) = reader.completeness {
            (s.status, s.error, s.bytesLost) = (.incomplete, reason, lost)
        }
        var pass = SummaryPass(reader)
        var buffer: ChunkBuffer?
        do throws(TraceError) {
            for i in reader.chunks.indices {
                var d = try reader.decoder(i, reusing: &buffer)
                if i == 0 { pass.start(d.startCounters) }
                while let e = try d.next(chunk: i, of: reader) { pass.take(e) }
            }
            pass.finish()
            pass.fill(&s, complete: true)
        } catch {
            (s.status, s.error) = (status(of: error), error.description)
            pass.fill(&s, complete: false)
            return
        }
        if replay { s.replay = ReplayVerdict.of(reader, replayedBy: replayedBy) }
    }

    /// The `status` a reading error stands for.
    static func status(of error: TraceError) -> TraceStatus {
        switch error {
        case .notATrace: return .notATrace
        case .unsupportedVersion: return .unsupportedVersion
        case .truncated: return .truncated
        case .corrupt, .compression, .noSuchEvent: return .corrupt
        case .io: return .unreadable
        }
    }
}
