// The debugger's answers on a large trace, as `vtrace debug` computes them:
//
//   vtrace-bench --debug FILE
//
// A reverse step (from event P back to P - 1: restore the checkpoint at or
// before P - 1, replay to it, stop there and compute the state `where`
// prints) at positions spread over the trace, each also at the last event of
// a chunk (the most replayed); a watchpoint's reverse-continue and continue
// over the whole trace (the recorded counter transitions, scanned).

import TraceFormat
import TraceAnalysis
import VirtioCore

func debugBenchmark(path: String) throws {
    let reader = try TraceReader(path: path)
    reader.verifiesContentChecksums = false
    let replayer = TraceReplayer(reader: reader)
    var stops = 0
    var sink: UInt64 = 0
    replayer.onStop = { _ in
        stops += 1
        sink &+= replayer.stopState().position
        return false
    }
    /// One reverse step onto `target`: what the debugger does for `rs` at target + 1.
    func stepBack(to target: UInt64) throws -> Double {
        try seconds {
            try replayer.restart(at: target)
            try replayer.runForward()
        }
    }
    print("vtrace-bench: debugger on \(path): \(reader.eventCount) events, \(reader.chunks.count) chunks")
    var times: [Double] = []
    var worst: [Double] = []
    let samples = min(40, reader.chunks.count)
    for k in 0..<samples {
        let chunk = reader.chunks[k * reader.chunks.count / samples]
        // Mid-chunk, and the chunk's last event (a whole chunk replayed).
        times.append(try stepBack(to: chunk.firstEvent + (chunk.endEvent - chunk.firstEvent) / 2))
        worst.append(try stepBack(to: chunk.endEvent - 1))
    }
    precondition(stops == 2 * samples, "every reverse step must stop at its target (\(stops) of \(2 * samples))")
    func summary(_ t: [Double]) -> String {
        let s = t.sorted()
        return "median \(fmt(s[s.count / 2] * 1e3, 1)) ms, max \(fmt(s.last! * 1e3, 1)) ms"
    }
    print("reverse-step to the middle of a chunk      \(summary(times))  (\(samples) positions)")
    print("reverse-step to the last event of a chunk  \(summary(worst))")
    let scanner = WatchpointScanner(reader: reader, watches: [.counter(.rxWriteFailed, nic: nil)])
    let back = try seconds { sink &+= try scanner.previous(before: reader.eventCount).first?.event ?? 0 }
    let forth = try seconds { sink &+= try scanner.next(from: 0).first?.event ?? 0 }
    print("watch rx_write_failed: reverse-continue from the end \(fmt(back, 3)) s, continue from the start \(fmt(forth, 3)) s (no hit: every chunk scanned)")
    if sink == 42 { print("") }
}
