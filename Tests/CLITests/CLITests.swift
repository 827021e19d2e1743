import Foundation
import Testing

/// Runs the built `vtrace` binary and checks exit codes and output.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The directory holding the built products (the test bundle sits there).
    static var productsDirectory: URL {
        var url = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("vtrace").path) && url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url
    }

    static func run(_ arguments: String...) throws -> Result { try runArguments(arguments) }

    static func runArguments(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("vtrace")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // A process killed by a signal reports the signal number as its status.
        return Result(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite("vtrace command line")
struct CLITests {
    @Test func demoPrintsTheStoryAndTheCounters() throws {
        let r = try CLI.run("demo")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("counters: tx_packets +8, tx_bytes +512, rx_packets +8, rx_bytes +512"))
        #expect(r.stdout.contains("counters: tx_packets +1, tx_bytes +64, tx_dropped_no_rx_buffer +1"))
        #expect(r.stdout.contains("counters: tx_oversize_dropped +1"))
        #expect(r.stdout.contains("counters: tx_chain_invalid +1"))
        #expect(r.stdout.contains("tx_dropped_rx_poisoned +1, invalid_avail_idx_count +1"))
        #expect(r.stdout.contains("NEEDS_RESET"))
    }

    @Test func demoJsonHasExactCounters() throws {
        let r = try CLI.run("demo", "--json", "--frames", "100", "--frame-size", "1500")
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let counters = object["counters"] as! [String: Int]
        #expect(counters.count == 16)
        #expect(counters["tx_packets"] == 102)
        #expect(counters["tx_bytes"] == 100 * 1500 + 128)
        #expect(counters["rx_packets"] == 100)
        #expect(counters["rx_bytes"] == 150_000)
        #expect(counters["tx_oversize_dropped"] == 1)
        #expect(counters["invalid_avail_idx_count"] == 1)
        #expect(object["status"] as? Int == 0x4F)
    }

    @Test func demoMultiqueueSetsPairs() throws {
        let r = try CLI.run("demo", "--pairs", "4", "--events")
        #expect(r.status == 0)
        #expect(r.stdout.contains("ctrl_mq_set +1"))
        #expect(r.stdout.contains("active pairs 1 -> 4"))
    }

    @Test func badUsageExitsTwo() throws {
        let r = try CLI.run("demo", "--frames", "0")
        #expect(r.status == 2)
        #expect(r.stderr.contains("--frames must be in 1...100000"))
        #expect(try CLI.run("demo", "--pairs", "x").status == 2)
        #expect(try CLI.run("demo", "--nope").status == 2)
        #expect(try CLI.run("nosuchcommand").status == 2)
    }

    @Test func helpTeachesWithExamples() throws {
        let r = try CLI.run("demo", "--help")
        #expect(r.status == 0)
        #expect(r.stdout.contains("Examples:"))
        #expect(r.stdout.contains("vtrace demo --pairs 2 --events"))
        let v = try CLI.run("--version")
        #expect(v.status == 0 && v.stdout.hasPrefix("0."))
    }
}
