import ArgumentParser
import TraceRecording

/// The options of every recording command (`record --scenario`, `record --
/// QEMU`, `run`, `serve`), defined once: an option added here (or to
/// ``RecordingControls``, the window and the trigger) reaches them all, and
/// ``options(defaultLevel:)`` is how each turns them into the recorder's.
struct RecordingFlags: ParsableArguments {
    @Option(help: "zstd level of the trace (1...19, or zstd's fast levels -1...-50 written --level=-5: faster, larger; default 3 for --scenario, 1 where a live guest shares the CPU: QEMU, run, serve; docs/performance.md).")
    var level: Int32?

    @Option(help: "Cut a chunk after this many events.")
    var flushEvents = 65_536

    @Option(name: .customLong("flush-ms"), help: "Cut a chunk once its oldest event is this many milliseconds old (a killed recorder loses at most this window).")
    var flushMilliseconds = 200

    @Flag(help: "Also store zstd's XXH64 checksum of every chunk's content (`zstd -t` then checks the content too). Off by default: the index's CRC-32 of every chunk already proves its bytes, and the XXH64 is a fifth of the writer's work at line rate.")
    var contentChecksums = false

    @OptionGroup var controls: RecordingControls

    func validate() throws {
        if let level, !(Self.levels ~= level) || level == 0 {
            throw ValidationError("--level must be in 1...19 or, for zstd's fast levels, -50...-1 (written --level=-5)")
        }
        if flushEvents < 1 { throw ValidationError("--flush-events must be at least 1") }
        if flushMilliseconds < 1 { throw ValidationError("--flush-ms must be at least 1") }
    }

    /// Levels --level accepts (0 aside, which zstd reads as its default, 3).
    static let levels: ClosedRange<Int32> = -50...19

    /// The recorder's options; `defaultLevel` where --level is not given.
    func options(defaultLevel: Int32) throws -> RecordingOptions {
        var options = RecordingOptions()
        options.level = level ?? defaultLevel
        options.flushEvents = flushEvents
        options.flushMilliseconds = flushMilliseconds
        options.contentChecksums = contentChecksums
        try controls.apply(to: &options)
        return options
    }
}
