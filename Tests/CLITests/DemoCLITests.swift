import Foundation
import Testing

/// Every in-range combination of `vtrace demo`'s options runs, and each step
/// shows what its title says (issue 19, item 9: `--frames 64 --frame-size
/// 65557` ran out of buffer space; after 744 to 1000 frames the avail index
/// 1000 was legal, so the "corrupt" step poisoned nothing).
@Suite("vtrace demo options")
struct DemoCLITests {
    /// The step lines of the demo's story: title, then its counters.
    func steps(_ output: String) -> [(title: String, counters: String)] {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return lines.indices.compactMap { i in
            guard let dot = lines[i].firstIndex(of: "."), Int(lines[i][..<dot]) != nil, i + 1 < lines.count,
                  lines[i + 1].hasPrefix("   counters: ") else { return nil }
            return (String(lines[i][lines[i].index(dot, offsetBy: 2)...]), String(lines[i + 1].dropFirst("   counters: ".count)))
        }
    }

    func check(frames: Int, size: Int, pairs: Int) throws {
        let r = try CLI.run("demo", "--frames", "\(frames)", "--frame-size", "\(size)", "--pairs", "\(pairs)")
        let label = "--frames \(frames) --frame-size \(size) --pairs \(pairs)"
        #expect(r.status == 0, "\(label): \(r.stderr)")
        let story = steps(r.stdout)
        #expect(story.count == 6, "\(label): \(r.stdout)")
        guard story.count == 6 else { return }
        let bytes = size == 0 ? "" : ", tx_bytes +\(frames * size)"
        let rxBytes = size == 0 ? "" : ", rx_bytes +\(frames * size)"
        #expect(story[1].title == "loop \(frames) frames of \(size) bytes TX→RX", "\(label)")
        #expect(story[1].counters == "tx_packets +\(frames)\(bytes), rx_packets +\(frames)\(rxBytes)", "\(label)")
        #expect(story[2].counters == "tx_packets +1, tx_bytes +64, tx_dropped_no_rx_buffer +1", "\(label)")
        #expect(story[3].counters == "tx_oversize_dropped +1", "\(label)")
        #expect(story[4].counters == "tx_chain_invalid +1", "\(label)")
        // The driver has published one RX chain per frame and the oversize step's one.
        let published = (frames + 1) % 65_536
        #expect(story[5].title == "corrupt RX avail.idx to \((published + 257) % 65_536) (the driver's \(published) + 257 on a 256-entry ring), then send",
                "\(label)")
        #expect(story[5].counters == "tx_packets +1, tx_bytes +64, tx_dropped_rx_poisoned +1, invalid_avail_idx_count +1", "\(label)")
        #expect(r.stdout.contains("device status ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK|NEEDS_RESET"), "\(label)")
    }

    @Test func theTwoFailingCombinationsWork() throws {
        try check(frames: 64, size: 65_557, pairs: 1)
        try check(frames: 744, size: 64, pairs: 1)
    }

    @Test(arguments: [
        (1, 0, 1), (750, 64, 1), (996, 1500, 1), (1000, 64, 1), (1001, 64, 1), (66_280, 0, 1),
        (65, 65_557, 256), (100, 65_557, 2), (1, 65_557, 256), (300, 1, 256),
    ])
    func edgeCombinationsShowEveryStep(_ combination: (Int, Int, Int)) throws {
        try check(frames: combination.0, size: combination.1, pairs: combination.2)
    }
}
