import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import TraceRecording
import VirtioCore

extension RecordingTrigger.Action: ExpressibleByArgument {}

/// The options every recording command shares beyond its chunking: a flight
/// recorder's window (`--keep`, `--keep-seconds`), a trigger and a snaplen.
struct RecordingControls: ParsableArguments {
    @Option(help: ArgumentHelp("Keep only the newest SIZE of the recording on disk (e.g. 8MiB, 512KiB, 1G; at least 2MiB): older chunks are dropped and the file stays a complete trace of the newest events.", valueName: "size"))
    var keep: String?

    @Option(help: ArgumentHelp("Keep only the newest S seconds of the recording (between S and 2S are on disk).", valueName: "seconds"))
    var keepSeconds: Double?

    @Option(help: ArgumentHelp("Wait for this counter condition over all NICs (bisect's language, e.g. 'rx_write_failed > 0'); then --trigger-action. Exit 1 when it fired.", valueName: "expr"))
    var trigger: String?

    @Option(help: ArgumentHelp("With --trigger: events recorded after the one at which it held (default: one chunk, --flush-events).", valueName: "n"))
    var after: UInt64?

    @Option(help: "With --trigger: stop (finish the trace and end the run), continue (finish the trace, the run goes on unrecorded) or mark (write a marker event and record on).")
    var triggerAction: RecordingTrigger.Action = .stop

    @Option(help: ArgumentHelp("Store at most the first N bytes of each frame's payload, like tcpdump -s N (0: none, so no payload leaves the machine): the rest of each TX frame read and RX frame write is recorded by its length. Rings, descriptors, virtio-net headers, control commands and counters are always stored; the trace replays, diffs and bisects as a whole one.", valueName: "n"))
    var snaplen: UInt32?

    @Option(help: ArgumentHelp("The trace format to write: 1.7 (default: a ring index the device keeps touching, the next avail ring slot and the next used element take a byte or two each), 1.6, which vtrace before 1.7 reads (addresses named by the access they repeat or follow, or the chain whose buffer they are in; chains and used elements the device just read or wrote, and reads of bytes just read, take a byte or two each), 1.5, which vtrace before 1.6 reads (its address codes reach 256 accesses back, not 4096, and no read names another's bytes), 1.4 (before 1.5) or 1.3 (before 1.4: no repeat records).", valueName: "version"))
    var format: String = "1.7"

    /// The versions `--format` takes, and their minor numbers.
    static let formats: [String: UInt16] = ["1.3": 3, "1.4": 4, "1.5": 5, "1.6": 6, "1.7": 7]

    /// The largest --snaplen, tcpdump's (frames are at most 65,557 bytes here).
    static let largestSnaplen: UInt32 = 262_144

    /// The smallest --keep: two chunks of the size a chunk is cut at.
    static let smallestKeep = UInt64(2 * TraceLayout.chunkTargetSize)

    func validate() throws {
        if let keep {
            guard let bytes = Self.size(keep) else { throw ValidationError("--keep \(keep): not a size (a number with an optional K, M, G, KiB, MiB or GiB)") }
            guard bytes >= Self.smallestKeep else { throw ValidationError("--keep \(keep) is smaller than two chunks (\(Self.smallestKeep / 1_048_576) MiB, the size two chunks are cut at)") }
        }
        if let keepSeconds, !(keepSeconds > 0) || keepSeconds > 1e9 { throw ValidationError("--keep-seconds must be positive") }
        guard Self.formats[format] != nil else { throw ValidationError("--format \(format): vtrace writes format 1.7 (the default), 1.6, 1.5, 1.4 or 1.3") }
        if let snaplen, snaplen > Self.largestSnaplen { throw ValidationError("--snaplen \(snaplen) is over \(Self.largestSnaplen), tcpdump's largest") }
        if let trigger {
            do { _ = try CounterPredicate.parse(trigger) } catch { throw ValidationError("--trigger '\(trigger)': \(error)") }
        } else if after != nil || triggerAction != .stop {
            throw ValidationError("--after and --trigger-action go with --trigger")
        }
    }

    /// A size: bytes, or with a suffix K/M/G (powers of 1024; KiB/MiB/GiB and KB/MB/GB the same).
    static func size(_ text: String) -> UInt64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let digits = t.prefix { $0.isNumber }
        guard let n = UInt64(digits), !digits.isEmpty else { return nil }
        let unit = t.dropFirst(digits.count).lowercased()
        let shifts: [String: UInt64] = ["": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30]
        guard let shift = shifts[unit], n <= UInt64.max >> shift else { return nil }
        return n << shift
    }

    /// Adds the window, the trigger and the snaplen to `options`.
    func apply(to options: inout RecordingOptions) throws {
        options.snaplen = snaplen
        options.formatMinor = Self.formats[format] ?? TraceVersion.minor
        if keep != nil || keepSeconds != nil {
            options.keep = TraceWindow(bytes: keep.flatMap(Self.size), nanoseconds: keepSeconds.map { UInt64($0 * 1e9) })
        }
        if let trigger {
            let predicate = try CounterPredicate.parse(trigger)
            options.trigger = RecordingTrigger(text: trigger, after: after, action: triggerAction) { perNIC in
                predicate.holds(NetCounters.scoped(perNIC, nic: nil))
            }
        }
    }

    /// After the run: says whether the trigger fired (on standard error) and
    /// returns the exit status it calls for (1 when it fired).
    func report(_ summary: RecordingSummary?) -> Int32? {
        guard let trigger else { return nil }
        guard let fired = summary?.triggerFiredAt else {
            printError("vtrace: --trigger '\(trigger)' never held")
            return nil
        }
        let end = summary.map { "; the trace holds events \($0.firstEvent)…\(max($0.events, 1) - 1)" } ?? ""
        printError("vtrace: --trigger '\(trigger)' held at event \(fired)\(triggerAction == .mark ? " (marked)" : "")\(end)")
        return 1
    }
}
