import Foundation

/// A one-line progress bar on standard error, for work that takes more than a
/// second: shown only when standard error is a terminal, and only once the
/// work has run for a second (`VTRACE_PROGRESS_AFTER_MS` changes that, for
/// tests). Erased when the work finishes.
final class Progress {
    let label: String
    let total: Int
    /// What `total` counts, as the line says it.
    let unit: String
    let enabled: Bool
    let started = Date()
    let after: TimeInterval
    var shown = false
    var lastDrawn = -1

    init(_ label: String, total: Int, unit: String = "chunks", enabled: Bool) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled && isatty(2) != 0
        let ms = ProcessInfo.processInfo.environment["VTRACE_PROGRESS_AFTER_MS"].flatMap { Double($0) } ?? 1000
        after = ms / 1000
    }

    /// `done` of `total` are finished.
    func update(_ done: Int) {
        guard enabled, total > 0, done != lastDrawn else { return }
        let elapsed = Date().timeIntervalSince(started)
        guard elapsed >= after else { return }
        shown = true
        lastDrawn = done
        let width = 30
        let clamped = min(done, total)
        let filled = width * clamped / total
        var line = "\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(clamped)/\(total) \(unit)"
        if clamped > 0 && clamped < total {
            let left = elapsed * Double(total - clamped) / Double(clamped)
            line += String(format: ", about %.0f s left", left.rounded(.up))
        }
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
