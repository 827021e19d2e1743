// Replay speed beside `zstd -d` of the same file, measured in the same run:
//
//   vtrace-bench --replay FILE [--rounds N]
//
// Each round runs, in turn: `zstd -d -c FILE > /dev/null`; reading every
// chunk and checking its CRC-32; decompressing
// every chunk (reading, CRC, zstd); decompressing and decoding every event;
// single-threaded replay; replay with a second thread decompressing (and,
// event by event, decoding) ahead (`vtrace replay --threads 2`); replay of
// the checkpoint segments on all cores (`--keep-going`); and the first two
// again with every segment replayed event by event (no `DirectReplay`).
// Best of N rounds for each, so drift on a shared machine hits all alike.

import TraceFormat
import TraceAnalysis
import TraceRecording
#if canImport(Glibc)
import Glibc
#endif

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let d = clock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func replayBenchmark(path: String, rounds: Int) throws {
    let probe = try TraceReader(path: path)
    let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    print("vtrace-bench: replay of \(path): \(probe.eventCount) events, \(probe.chunks.count) chunks, \(probe.source.size) bytes; best of \(rounds) rounds")
    let names = ["zstd -d -c FILE > /dev/null", "read + CRC-32 of every chunk", "decompress every chunk", "decompress + decode every event",
                 "replay (one thread)", "replay --threads 2", "replay --keep-going (\(cores) threads)",
                 "event by event, one thread", "event by event, --threads 2"]
    var best = [Double](repeating: .infinity, count: names.count)
    var sink: UInt64 = 0
    for _ in 0..<rounds {
        let quoted = "'" + path.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
        let t0 = seconds { _ = system("zstd -q -d -c \(quoted) > /dev/null") }
        let tCRC = try seconds {
            let reader = try TraceReader(path: path)
            for i in reader.chunks.indices { sink &+= UInt64(try reader.compressedChunk(i).count) }
        }
        let t1 = try seconds {
            let reader = try TraceReader(path: path)
            reader.verifiesContentChecksums = false  // as replay does
            var buffer: ChunkBuffer?
            for i in reader.chunks.indices { sink &+= try reader.decoder(i, reusing: &buffer).firstEvent }
        }
        let t2 = try seconds {
            let reader = try TraceReader(path: path)
            reader.verifiesContentChecksums = false  // as replay does
            var buffer: ChunkBuffer?
            for i in reader.chunks.indices {
                var d = try reader.decoder(i, reusing: &buffer)
                while let e = try d.next() { sink &+= e.time }
            }
        }
        var matched = true
        let t3 = try seconds {
            let reader = try TraceReader(path: path)
            reader.verifiesContentChecksums = false
            let replayer = TraceReplayer(reader: reader)
            matched = try replayer.replayAll(keepGoing: false).matched && matched
        }
        let t4 = try seconds {
            let reader = try TraceReader(path: path)
            reader.verifiesContentChecksums = false
            let replayer = TraceReplayer(reader: reader)
            matched = try replayer.replayAll(keepGoing: false, threads: 2).matched && matched
        }
        let t5 = try seconds {
            let reader = try TraceReader(path: path)
            reader.verifiesContentChecksums = false
            matched = try TraceReplayer(reader: reader).replayAll(keepGoing: true, threads: cores).matched && matched
        }
        var eventByEvent: [Double] = []
        for threads in [1, 2] {
            eventByEvent.append(try seconds {
                let reader = try TraceReader(path: path)
                reader.verifiesContentChecksums = false
                let replayer = TraceReplayer(reader: reader)
                replayer.replaysDirectly = false
                matched = try replayer.replayAll(keepGoing: false, threads: threads).matched && matched
            })
        }
        precondition(matched, "the benchmark trace must replay without divergence")
        for (i, t) in ([t0, tCRC, t1, t2, t3, t4, t5] + eventByEvent).enumerated() { best[i] = min(best[i], t) }
    }
    if sink == 42 { print("") }
    for (i, name) in names.enumerated() {
        let ratio = i == 0 ? "" : "  \(fmt(best[i] / best[0], 2))× zstd -d"
        print("\(name)\(String(repeating: " ", count: max(0, 40 - name.count))) \(pad(fmt(best[i], 3), 7)) s\(ratio)")
    }
}
