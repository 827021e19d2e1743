// vtrace-bench: device-core throughput, measured beside memcpy in the same run.
//
//   swift run -c release vtrace-bench [--quick]
//
// For each frame size and chains-per-kick, the rings are laid out once by the
// model driver; each iteration then only advances both avail indices by N and
// kicks, so the time measured is the device's drain (pop, walk, capture,
// loopback write, two used publishes, counters, interrupt), not the driver's.

import GuestDriver
import TraceFormat
import TraceAnalysis
import TraceRecording
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// An observer doing the least a recorder must: look at every event and
/// every byte (summing them so the work cannot be optimised away).
struct CountingObserver: DeviceObserver {
    var events = 0
    var bytes = 0
    var checksum: UInt64 = 0
    mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) { events += 1; checksum &+= value }
    mutating func memoryRead(address: UInt64, bytes b: UnsafeRawBufferPointer, succeeded: Bool) {
        events += 1
        bytes += b.count
        checksum &+= address
    }
    mutating func memoryWrite(address: UInt64, bytes b: UnsafeRawBufferPointer, succeeded: Bool) {
        events += 1
        bytes += b.count
        checksum &+= address
    }
    mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        events += 1
        checksum &+= UInt64(descriptors.count)
    }
    mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) { events += 1; checksum &+= UInt64(len) }
    mutating func counterChanged(_ counter: NetCounter, value: UInt64) { events += 1; checksum &+= value }
    mutating func interruptRaised(_ kind: InterruptSignals) { events += 1 }
}

struct Result {
    var framesPerSecond: Double
    var gigabytesPerSecond: Double
    var eventsPerFrame: Double
}

/// Times `body` (which processes `framesPerCall` frames) for about `seconds`, best of `reps`.
func measure(framesPerCall: Int, frameLength: Int, seconds: Double, reps: Int, _ body: () -> Void) -> Result {
    var best = 0.0
    let clock = ContinuousClock()
    for _ in 0..<reps {
        var calls = 0
        let start = clock.now
        var elapsed = 0.0
        while elapsed < seconds {
            for _ in 0..<64 { body() }
            calls += 64
            let d = clock.now - start
            elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        best = max(best, Double(calls * framesPerCall) / elapsed)
    }
    return Result(framesPerSecond: best, gigabytesPerSecond: best * Double(frameLength) / 1e9, eventsPerFrame: 0)
}

/// Builds a device whose rings hold N RX and N TX chains; returns a closure
/// that loops N more frames per call (advance both avail indices, one kick),
/// and one that checks no frame was lost.

/// A recorder writing a real trace (level 3, background compression) to a temporary file.
func makeRecorder(defersEncoding: Bool = false) -> TraceRecorder {
    let path = "/tmp/vtrace-bench-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).vtrace"
    // `--format 1.4` (or 1.3): the recorder writes that version instead of the newest.
    var options = RecordingOptions()
    options.defersEncoding = defersEncoding
    if let i = arguments.firstIndex(of: "--format"), i + 1 < arguments.count, let minor = UInt16(arguments[i + 1].dropFirst(2)) {
        options.formatMinor = minor
    }
    return try! TraceRecorder(path: path, config: NetConfig(), nics: 1, regions: [MemoryRegion(base: 0, size: 16 << 20)], options: options)
}

func makeLoop<O: DeviceObserver>(observer: O, frameLength: Int, chainsPerKick: Int) -> (kick: () -> Void, check: () -> O) {
    let ram = try! GuestRAM(size: 16 << 20)
    var dev = VirtioNetDevice(memory: ram, observer: observer)
    var drv = VirtioNetDriver(memory: ram)
    _ = try! drv.initialize(&dev, queueSize: 256)
    // N RX chains and N TX chains, posted once; every avail slot s names head s % N.
    try! drv.postRx(count: chainsPerKick, length: 12 + frameLength)
    try! drv.sendTx(&dev, count: chainsPerKick, length: frameLength, kick: false)
    let rx = drv.queues[0]!, tx = drv.queues[1]!
    for slot in 0..<256 as Range<UInt16> {
        try! drv.setAvailEntry(queue: 0, slot: slot, head: slot % UInt16(chainsPerKick))
        try! drv.setAvailEntry(queue: 1, slot: slot, head: slot % UInt16(chainsPerKick))
    }
    var index: UInt16 = 0
    try! ram.store(index, at: rx.avail + 2)
    try! ram.store(index, at: tx.avail + 2)
    let before = dev.counters
    let kick = {
        index &+= UInt16(chainsPerKick)
        try! ram.store(index, at: rx.avail + 2)
        try! ram.store(index, at: tx.avail + 2)
        dev.write(offset: MMIORegister.queueNotify.rawValue, width: 4, value: 1)
    }
    let check = {
        // Every frame must have gone through both halves of the loopback.
        let d = dev.counters.delta(since: before)
        precondition(d.txPackets == d.rxPackets && d.txPackets > 0 && d.rxBytes == d.txPackets * UInt64(frameLength),
                     "benchmark lost frames: \(d)")
        return dev.observer
    }
    return (kick, check)
}

func memcpyRun(frameLength: Int, chainsPerKick: Int, seconds: Double, reps: Int) -> Result {
    let src = UnsafeMutableRawPointer.allocate(byteCount: frameLength * chainsPerKick, alignment: 64)
    let dst = UnsafeMutableRawPointer.allocate(byteCount: frameLength * chainsPerKick, alignment: 64)
    src.initializeMemory(as: UInt8.self, repeating: 7, count: frameLength * chainsPerKick)
    dst.initializeMemory(as: UInt8.self, repeating: 0, count: frameLength * chainsPerKick)
    defer { src.deallocate(); dst.deallocate() }
    var sink: UInt8 = 0
    let r = measure(framesPerCall: chainsPerKick, frameLength: frameLength, seconds: seconds, reps: reps) {
        for i in 0..<chainsPerKick {
            (dst + i * frameLength).copyMemory(from: src + i * frameLength, byteCount: frameLength)
        }
        sink &+= dst.load(fromByteOffset: frameLength - 1, as: UInt8.self)
    }
    if sink == 255 { print("") }  // keep the copies observable
    return r
}

let arguments = CommandLine.arguments
let quick = arguments.contains("--quick")
let seconds = quick ? 0.03 : 0.15
let reps = quick ? 2 : 9

func fmt(_ v: Double, _ digits: Int) -> String {
    let negative = v < 0
    var s = String(Int(abs(v) * pow10(digits) + 0.5))
    if digits > 0 {
        while s.count <= digits { s = "0" + s }
        s.insert(".", at: s.index(s.endIndex, offsetBy: -digits))
    }
    return negative ? "-" + s : s
}
func pow10(_ n: Int) -> Double { (0..<n).reduce(1.0) { r, _ in r * 10 } }
func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }

// Fixed-work mode for instruction counting under callgrind:
//   vtrace-bench --fixed plain|counting|recording|deferred FRAME_LENGTH CHAINS_PER_KICK KICKS
//   vtrace-bench --fixed encoder 0 0 FRAMES     (the chunk encoder alone: EncoderBench.swift)
if let i = arguments.firstIndex(of: "--fixed"), arguments.count >= i + 5,
   let length = Int(arguments[i + 2]), let chains = Int(arguments[i + 3]), let kicks = Int(arguments[i + 4]) {
    switch arguments[i + 1] {
    case "plain":
        let loop = makeLoop(observer: NoObserver(), frameLength: length, chainsPerKick: chains)
        for _ in 0..<kicks { loop.kick() }
        _ = loop.check()
    case "counting":
        let loop = makeLoop(observer: CountingObserver(), frameLength: length, chainsPerKick: chains)
        for _ in 0..<kicks { loop.kick() }
        print(loop.check().events)
    case "recording":
        let recorder = makeRecorder()
        let loop = makeLoop(observer: recorder.observer(nic: 0), frameLength: length, chainsPerKick: chains)
        for _ in 0..<kicks { loop.kick() }
        _ = loop.check()
        print(try! recorder.finish().events)
    case "deferred":
        let recorder = makeRecorder(defersEncoding: true)
        let loop = makeLoop(observer: recorder.deferredObserver(nic: 0), frameLength: length, chainsPerKick: chains)
        for _ in 0..<kicks { loop.kick() }
        _ = loop.check()
        print(try! recorder.finish().events)
    case "encoder":
        print(encoderBenchmark(frames: kicks))
    default:
        print("vtrace-bench: --fixed takes plain, counting, recording, deferred or encoder")
        exit(2)
    }
    exit(0)
}

// zstd on a trace's own chunks, one setting (CompressBench.swift, tools/writer-cost.sh):
//   vtrace-bench --compress TRACE LEVEL own|dfast [CHUNKS] [--as 1.N]
// (`--as 1.N`: the chunks' events encoded again as format 1.N first.)
if let i = arguments.firstIndex(of: "--compress"), arguments.count >= i + 4, let level = Int32(arguments[i + 2]),
   ["own", "dfast"].contains(arguments[i + 3]) {
    let limit = arguments.count > i + 4 ? Int(arguments[i + 4]) ?? .max : .max
    let minor = arguments.firstIndex(of: "--as").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
        .flatMap { $0.hasPrefix("1.") ? UInt16($0.dropFirst(2)) : nil }
    do {
        try compressBenchmark(path: arguments[i + 1], level: level, finder: arguments[i + 3] == "dfast" ? .doubleFast : .levelDefault,
                              limit: limit, minor: minor)
    } catch {
        print("vtrace-bench: \(error)")
        exit(1)
    }
    exit(0)
}

if let i = arguments.firstIndex(of: "--debug"), i + 1 < arguments.count {
    do {
        try debugBenchmark(path: arguments[i + 1])
    } catch {
        print("vtrace-bench: \(error)")
        exit(1)
    }
    exit(0)
}

if let i = arguments.firstIndex(of: "--replay"), i + 1 < arguments.count {
    let rounds = arguments.firstIndex(of: "--rounds").flatMap { $0 + 1 < arguments.count ? Int(arguments[$0 + 1]) : nil } ?? 5
    do {
        try replayBenchmark(path: arguments[i + 1], rounds: rounds)
    } catch {
        print("vtrace-bench: \(error)")
        exit(1)
    }
    exit(0)
}

if arguments.contains("--recording") {
    // Recording cost: the same loop with a real recorder (level 3, background
    // compression, 1 MiB chunks) writing a trace.
    print("vtrace-bench: recording cost (best of \(reps) runs of \(seconds) s)")
    print("\(pad("frame", 6)) \(pad("chains/kick", 11)) \(pad("no observer", 24)) \(pad("recording", 24)) \(pad("cost", 8)) \(pad("trace B/frame", 13))")
    for frameLength in [64, 1500] {
        for chains in [1, 64] {
            let plainLoop = makeLoop(observer: NoObserver(), frameLength: frameLength, chainsPerKick: chains)
            let recorder = makeRecorder()
            let recordingLoop = makeLoop(observer: recorder.observer(nic: 0), frameLength: frameLength, chainsPerKick: chains)
            var plain = Result(framesPerSecond: 0, gigabytesPerSecond: 0, eventsPerFrame: 0)
            var recording = plain
            var frames = 0.0
            for _ in 0..<reps {
                let p = measure(framesPerCall: chains, frameLength: frameLength, seconds: seconds, reps: 1, plainLoop.kick)
                let r = measure(framesPerCall: chains, frameLength: frameLength, seconds: seconds, reps: 1, recordingLoop.kick)
                frames += r.framesPerSecond * seconds
                if p.framesPerSecond > plain.framesPerSecond { plain = p }
                if r.framesPerSecond > recording.framesPerSecond { recording = r }
            }
            _ = recordingLoop.check()
            let summary = try! recorder.finish()
            unlink(summary.path)
            func cell(_ r: Result) -> String { "\(fmt(r.framesPerSecond / 1e6, 2)) M/s \(fmt(r.gigabytesPerSecond, 2)) GB/s" }
            print("\(pad(String(frameLength), 6)) \(pad(String(chains), 11)) \(pad(cell(plain), 24)) \(pad(cell(recording), 24)) \(pad(fmt((plain.framesPerSecond / recording.framesPerSecond - 1) * 100, 0) + "%", 8)) \(pad(fmt(Double(summary.fileBytes) / frames, 2), 13))")
        }
    }
    exit(0)
}

print("vtrace-bench: TX→RX loopback through the device core (best of \(reps) runs of \(seconds) s, interleaved)")
print("\(pad("frame", 6)) \(pad("chains/kick", 11)) \(pad("no observer", 24)) \(pad("counting observer", 24)) \(pad("obs. cost", 9)) \(pad("memcpy", 24)) \(pad("device/memcpy", 13))")
for frameLength in [64, 1500] {
    for chains in [1, 64] {
        let plainLoop = makeLoop(observer: NoObserver(), frameLength: frameLength, chainsPerKick: chains)
        let observedLoop = makeLoop(observer: CountingObserver(), frameLength: frameLength, chainsPerKick: chains)
        var plain = Result(framesPerSecond: 0, gigabytesPerSecond: 0, eventsPerFrame: 0)
        var observed = plain
        var copy = plain
        // Interleave the three so drift on a shared machine hits all alike.
        for _ in 0..<reps {
            let p = measure(framesPerCall: chains, frameLength: frameLength, seconds: seconds, reps: 1, plainLoop.kick)
            let o = measure(framesPerCall: chains, frameLength: frameLength, seconds: seconds, reps: 1, observedLoop.kick)
            let c = memcpyRun(frameLength: frameLength, chainsPerKick: chains, seconds: seconds, reps: 1)
            if p.framesPerSecond > plain.framesPerSecond { plain = p }
            if o.framesPerSecond > observed.framesPerSecond { observed = o }
            if c.framesPerSecond > copy.framesPerSecond { copy = c }
        }
        _ = plainLoop.check()
        let obs = observedLoop.check()
        let cost = (plain.framesPerSecond / observed.framesPerSecond - 1) * 100
        func cell(_ r: Result) -> String { "\(fmt(r.framesPerSecond / 1e6, 2)) M/s \(fmt(r.gigabytesPerSecond, 2)) GB/s" }
        print("\(pad(String(frameLength), 6)) \(pad(String(chains), 11)) \(pad(cell(plain), 24)) \(pad(cell(observed), 24)) \(pad(fmt(cost, 1) + "%", 9)) \(pad(cell(copy), 24)) \(pad(fmt(plain.framesPerSecond / copy.framesPerSecond * 100, 1) + "%", 13))")
        precondition(obs.events > 0, "the counting observer saw nothing")
    }
}
