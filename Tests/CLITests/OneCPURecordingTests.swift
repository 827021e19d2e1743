import Foundation
import Testing

/// A recorder that may run on one CPU only shares it with the device: its
/// compressor takes level 1 at most for every chunk, though no chunk waits.
@Suite("Recording confined to one CPU")
struct OneCPURecordingTests {
    @Test func everyChunkIsCompressedFaster() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") else {
            print("OneCPURecordingTests: /usr/bin/taskset is missing (util-linux); skipped")
            return
        }
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/long-drain.scenario").path
        let out = try temporaryFile("one-cpu.vtrace", [])
        let vtrace = CLI.productsDirectory.appendingPathComponent("vtrace").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = ["-c", "0", vtrace, "record", "--scenario", scenario, "-o", out, "--flush-events", "200", "--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let pinned = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(pinned["chunks"] as? Int == 5 && pinned["faster_chunks"] as? Int == 5 && pinned["stalls"] as? Int == 0, "\(pinned)")
    }
}
