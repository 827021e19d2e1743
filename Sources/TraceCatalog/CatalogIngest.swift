//! `vtrace catalog add`'s engine: files summarised on every core, rows stored
//! by the calling thread in batches, one transaction each.

import Foundation
import HostPrimitives

/// How to add files.
public struct IngestOptions: Sendable {
    /// Replay each trace against this build's device core (the `replay_*` columns).
    public var replay: Bool
    /// Threads summarising files (the calling thread stores rows).
    public var workers: Int
    /// `replayed_by`: this build's name for itself.
    public var replayedBy: String
    /// Rows per transaction: a crash or a kill loses at most the batch in flight.
    public var batchSize = 64

    public init(replay: Bool, workers: Int, replayedBy: String) {
        self.replay = replay
        self.workers = workers
        self.replayedBy = replayedBy
    }
}

/// What an add did, file by file counted.
public struct IngestReport: Sendable, Hashable {
    /// Files named (a directory's traces each count).
    public var files = 0
    /// Catalogued before with the same path, size and modification time: not read again.
    public var skipped = 0
    public var added = 0, unchanged = 0, refreshed = 0, replaced = 0, moved = 0, copies = 0
    /// Files whose row says they are not whole traces (status other than complete), with why.
    public var problems: [Problem] = []

    public struct Problem: Sendable, Hashable {
        public var path: String
        public var status: TraceStatus
        public var error: String
    }

    mutating func count(_ outcome: StoreOutcome) {
        switch outcome {
        case .added: added += 1
        case .unchanged: unchanged += 1
        case .refreshed: refreshed += 1
        case .replaced: replaced += 1
        case .moved: moved += 1
        case .copyOf: copies += 1
        }
    }
}

public enum CatalogIngest {
    /// Adds `files` (absolute paths) to `catalog`. `progress(done, total)` is
    /// called on this thread as rows are stored.
    /// - Throws: `CatalogError` when the catalogue cannot be written (rows of
    ///   batches stored before stay: adding again goes on from there).
    public static func add(_ files: [String], to catalog: Catalog, options: IngestOptions,
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> IngestReport {
        var report = IngestReport(files: files.count)
        var todo: [String] = []
        for path in files {
            if let known = try catalog.known(path: path), !options.replay || known.replayed,
               Catalog.unchangedOnDisk(path, bytes: known.fileBytes, mtime: known.mtimeNanoseconds) {
                report.skipped += 1
            } else {
                todo.append(path)
            }
        }
        progress(report.skipped, files.count)
        let pool = SummaryPool(todo, options: options)
        defer { pool.stop() }
        var pending: [TraceSummary] = []
        var received = 0
        var lastStore = Date()
        while received < todo.count {
            let arrived = pool.take()
            received += arrived.count
            pending += arrived
            if pending.count >= options.batchSize || received == todo.count || Date().timeIntervalSince(lastStore) > 0.5 {
                for (s, outcome) in zip(pending, try catalog.store(pending)) {
                    report.count(outcome)
                    if s.status != .complete { report.problems.append(.init(path: s.path, status: s.status, error: s.error ?? "")) }
                }
                pending.removeAll(keepingCapacity: true)
                lastStore = Date()
                progress(report.skipped + received, files.count)
            }
        }
        return report
    }
}

/// Worker threads that summarise a list of files, handing summaries over as they finish.
final class SummaryPool: @unchecked Sendable {
    let files: [String]
    let options: IngestOptions
    let lock = Mutex()
    let arrived = Condition()
    var next = 0
    var done: [TraceSummary] = []
    var stopped = false
    var threads: [BackgroundThread] = []

    init(_ files: [String], options: IngestOptions) {
        self.files = files
        self.options = options
        for _ in 0..<max(1, min(options.workers, files.count)) where !files.isEmpty {
            if let t = BackgroundThread({ [self] in work() }) { threads.append(t) }
        }
    }

    func work() {
        while true {
            let i: Int? = lock.withLock {
                guard !stopped, next < files.count else { return nil }
                defer { next += 1 }
                return next
            }
            guard let i else { return }
            let s = TraceSummarizer.summarize(path: files[i], replay: options.replay, replayedBy: options.replayedBy)
            lock.withLock {
                done.append(s)
                arrived.signal()
            }
        }
    }

    /// The summaries finished since the last call, waiting for at least one
    /// (with no thread running, the calling thread summarises the next file).
    func take() -> [TraceSummary] {
        if threads.isEmpty {
            guard next < files.count else { return [] }
            defer { next += 1 }
            return [TraceSummarizer.summarize(path: files[next], replay: options.replay, replayedBy: options.replayedBy)]
        }
        return lock.withLock {
            while done.isEmpty { arrived.wait(lock) }
            defer { done.removeAll(keepingCapacity: true) }
            return done
        }
    }

    /// Lets the workers finish the file each has and joins them.
    func stop() {
        lock.withLock { stopped = true }
        for t in threads { t.join() }
        threads.removeAll()
    }
}
