//! A summary as the catalogue's rows, in `CatalogSchema`'s column orders.

import Foundation
import VirtioCore

extension TraceSummary {
    /// The `traces` row (without `id`), in `CatalogSchema.traceColumns` order.
    func traceRow(cataloguedAt: Int64) -> [SQLValue] {
        let h = header
        let aggregate = NetCounters.aggregate(finalCounters) ?? NetCounters()
        let known = h != nil
        var row: [SQLValue] = [
            .text(path), .integer(fileBytes), .integer(mtimeNanoseconds), .string(contentHash), .integer(cataloguedAt),
            .text(status.rawValue), .string(error),
            .string(h.map { "\($0.majorVersion).\($0.minorVersion)" }), .string(h?.transport), .string(h?.recorderVersion),
            .string(h?.gitCommit), .string(h?.hostName), .count(h?.startTimeNanoseconds), .string(h.flatMap { Self.iso8601($0.startTimeNanoseconds) }),
            .string(h?.commandLine), .string(h?.scenario), .string(h?.guestDescription), .string(h?.faults.joined(separator: " ")),
            .count(h?.faults.count), .string(h?.window), .string(h?.trigger), .count(h?.snaplen),
            .count(h?.nics), .count(h?.queuePairs),
            known ? .integer(status == .complete ? 1 : 0) : .null, .integer(Int64(bytesLost)),
            known ? .count(events) : .null, known ? .count(firstEvent) : .null, known ? .count(chunks) : .null,
            known ? .count(checkpointChunks) : .null, known ? .count(durationNanoseconds) : .null,
        ]
        row += NetCounter.allCases.map { finalCounters.isEmpty ? .null : .count(aggregate[$0]) }
        row += [.count(firstPoison?.event), .count(firstPoison?.nic), .count(firstPoison?.queue), .string(firstPoison?.reason)]
        row += [check.map { .integer($0.ok ? 1 : 0) } ?? .null, .count(check?.violation?.event),
                .string(check?.violation?.rule), .string(check?.violation?.detail)]
        row += [.string(replay?.status.rawValue), .count(replay?.event), .count(replay?.nic), .string(replay?.counter),
                .string(replay?.expected), .string(replay?.actual), .string(replay?.faults), .string(replay?.replayedBy)]
        assert(row.count == CatalogSchema.traceColumns.count)
        return row
    }

    /// The `counters` rows of trace `id`.
    func counterRows(id: Int64) -> [[SQLValue]] {
        counterStats.map {
            [.integer(id), .count($0.nic), .text($0.counter.name), .count($0.finalValue), .count($0.moves), .count($0.firstEvent), .count($0.lastEvent)]
        }
    }

    /// The `timeline` rows of trace `id`.
    func timelineRows(id: Int64) -> [[SQLValue]] {
        timeline.map { p in
            [.integer(id), .count(p.point), .count(p.event), .count(p.time)] + NetCounter.allCases.map { .count(p.counters[$0]) }
        }
    }

    /// `2026-11-20T09:15:02Z` (UTC, seconds): nil for an unknown (zero) time.
    static func iso8601(_ nanoseconds: UInt64) -> String? {
        guard nanoseconds > 0 else { return nil }
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(nanoseconds) / 1e9))
    }
}
