import CVhost
import Foundation
import Testing
import TraceFormat
import VhostUser
import VirtioCore

/// A polling driver that never lets the TX ring run dry: every used slot is
/// published again at once (DPDK io forwarding does this), so one kick's
/// drain goes on as long as the driver runs.
final class RefillingDriver: @unchecked Sendable {
    let frontend: TestFrontend
    private let lock = NSLock()
    private var stopped = false
    private var thread: Thread?

    init(_ frontend: TestFrontend) { self.frontend = frontend }

    func start() {
        let t = Thread { [self] in
            let f = frontend
            while !isStopped {
                // Both rings stay full: avail = used + 256 (slot i always holds chain i).
                f.publishAvail(ring: 1, idx: f.usedIdx(ring: 1) &+ 256)
                f.publishAvail(ring: 0, idx: f.usedIdx(ring: 0) &+ 256)
            }
        }
        thread = t
        t.start()
    }

    var isStopped: Bool { lock.withLock { stopped } }
    func stop() { lock.withLock { stopped = true } }
}

@Suite("A recording process killed mid-drain", .serialized)
struct KilledRecorderTests {
    static var vtrace: URL {
        var url = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("vtrace").path) && url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("vtrace")
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = vtrace
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `vtrace serve --record` under a driver that keeps one drain going, killed
    /// with SIGKILL at a random instant, again and again: every leftover
    /// `.partial` verifies and replays with `--check` exit 0, every chunk it
    /// keeps has a checkpoint, and what is lost is at most the chunk being written.
    @Test func everyKilledRecordingVerifiesAndReplays() throws {
        var rng = SystemRandomNumberGenerator()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-kill-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var cutsInsideTheDrain = 0
        for round in 0..<6 {
            let sock = dir.appendingPathComponent("k\(round).sock").path
            let trace = dir.appendingPathComponent("k\(round).vtrace").path
            let serve = Process()
            serve.executableURL = Self.vtrace
            serve.arguments = ["serve", "--vhost-user", sock, "--sessions", "1", "--record", trace, "--flush-events", "3000"]
            serve.standardOutput = FileHandle.nullDevice
            serve.standardError = FileHandle.nullDevice
            try serve.run()
            let f = try TestFrontend(path: sock)
            f.send(.setFeatures, TestFrontend.u64(NetFeature.version1))
            f.memTable([(TestFrontend.gpa, UInt64(TestFrontend.size), f.userBase, 0)], fds: [f.memfd])
            for q in 0..<2 {
                f.send(.setVringNum, TestFrontend.u32s(UInt32(q), 256))
                f.ringAddress(q)
                f.send(.setVringKick, TestFrontend.u64(UInt64(q) | 1 << 8))  // no fd: polled
                f.send(.setVringEnable, TestFrontend.u32s(UInt32(q), 1))
            }
            // 256 RX buffers of 2 KiB; 256 TX frames of 12 + 100 bytes.
            for i in 0..<256 {
                f.post(ring: 0, slot: i, bufferOffset: 0x20000 + 0x800 * i, length: 2048, writable: true)
                let at = 0xA0000 + 0x100 * i
                for b in 0..<112 { f.memory.storeBytes(of: b < 12 ? 0 : UInt8(truncatingIfNeeded: b &+ i), toByteOffset: at + b, as: UInt8.self) }
                f.post(ring: 1, slot: i, bufferOffset: at, length: 112, writable: false)
            }
            let driver = RefillingDriver(f)
            driver.start()
            usleep(UInt32.random(in: 150_000...900_000, using: &rng))
            kill(serve.processIdentifier, SIGKILL)
            serve.waitUntilExit()
            driver.stop()
            #expect(serve.terminationReason == .uncaughtSignal)
            let partial = trace + ".partial"
            let reader = try TraceReader(path: partial)
            guard case .incomplete(let lost, _) = reader.completeness else {
                Issue.record("round \(round): a killed recording reads as complete")
                continue
            }
            #expect(reader.chunks.count >= 2, "round \(round): \(reader.chunks.count) chunks")
            let everyChunkHasACheckpoint = reader.chunks.allSatisfy(\.hasCheckpoint)
            #expect(everyChunkHasACheckpoint, "round \(round): a chunk without a checkpoint")
            // At most the chunk being written is lost: less than the largest chunk kept, plus its entry.
            let largest = reader.chunks.map { Int($0.compressedSize) }.max() ?? 0
            #expect(lost <= 2 * largest + 52, "round \(round): \(lost) bytes lost")
            if reader.chunks.last?.endsInsideAccess == true { cutsInsideTheDrain += 1 }
            let verify = try Self.run(["verify", partial])
            #expect(verify.status == 0 && verify.output.contains(": OK"), "round \(round): \(verify.output)")
            let replay = try Self.run(["replay", "--check", partial])
            #expect(replay.status == 0 && replay.output.hasPrefix("match: \(reader.eventCount) events"), "round \(round): \(replay.output)")
        }
        // The drain lasts while the driver refills, so kills land inside it; a
        // loaded machine's driver falls behind now and then (the drain ends and
        // the kill lands between accesses: 4 of 6 seen), but never in every round.
        #expect(cutsInsideTheDrain >= 2, "only \(cutsInsideTheDrain) of 6 recordings ended inside the drain")
    }
}
