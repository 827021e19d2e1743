import Foundation
import Testing

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A temporary file holding `text`.
func temporaryFile(_ name: String, _ contents: [UInt8]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-cli-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(contents).write(to: url)
    return url.path
}

@Suite("vtrace scenario")
struct ScenarioCLITests {
    static let library: [String] = {
        let dir = repositoryRoot.appendingPathComponent("traces/scenarios")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".scenario") }.sorted().map { dir.appendingPathComponent($0).path }
    }()

    @Test func theLibraryCoversTheSpecTable() {
        // One scenario per row of the spec's path → counters table, plus the rest the issue lists.
        let names = Set(Self.library.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent })
        let required = [
            "kick-noop", "tx-before-driver-ok", "tx-memory-unbound", "tx-already-poisoned", "tx-poison", "tx-poison-not-ready",
            "tx-oversize", "tx-oversize-add-used-fails", "tx-malformed", "tx-malformed-add-used-fails", "loopback-basic",
            "rx-delivered-tx-add-used-fails", "rx-add-used-fails", "rx-no-buffer", "rx-not-ready", "rx-already-poisoned",
            "rx-poison", "rx-shape-recycled", "rx-shape-recycle-fails", "rx-write-fault", "rx-write-fault-recycle-fails",
            "rx-too-small", "ctrl-gates", "ctrl-poison", "ctrl-no-status", "ctrl-status-fault", "ctrl-nak",
            "ctrl-nak-add-used-fails", "ctrl-ok", "ctrl-ok-add-used-fails", "features-ok-rejected", "multiqueue-routing",
            "frame-size-cap", "header-split", "nics-aggregate",
        ]
        #expect(required.filter { !names.contains($0) } == [])
    }

    @Test(arguments: library)
    func libraryScenarioPasses(_ path: String) throws {
        let r = try CLI.run("scenario", "run", path)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains(": passed ("))
    }

    @Test func wholeLibraryInOneRunWithJson() throws {
        let r = try CLI.runArguments(["scenario", "run", "--json"] + Self.library)
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(object["passed"] as? Bool == true)
        let files = object["files"] as! [[String: Any]]
        #expect(files.count == Self.library.count)
        let aggregate = files.first { ($0["file"] as! String).hasSuffix("nics-aggregate.scenario") }!["aggregate"] as! [String: Int]
        #expect(aggregate["tx_bytes"] == 228 && aggregate["tx_oversize_dropped"] == 1)
    }

    @Test func failedExpectationsExitOneWithFileAndLine() throws {
        let path = try temporaryFile("fails.scenario", Array("driver init\nrx post\ntx send\nexpect counters tx_packets=2\nexpect status 0xf\n".utf8))
        let r = try CLI.run("scenario", "run", path)
        #expect(r.status == 1)
        #expect(r.stdout.contains("\(path):4: expected tx_packets=2, got tx_packets=1"))
        #expect(r.stdout.contains("FAILED: 1 of 2 expectations did not hold"))
        #expect(r.stdout.contains("tx_packets     1"))
    }

    @Test(arguments: [
        ("unknown.scenario", Array("driver init\nfrobnicate now\n".utf8), ":2:1: unknown operation 'frobnicate'"),
        ("width.scenario", Array("mmio write 0x70 1 width=3\n".utf8), ":1:25: width must be 1, 2, 4 or 8, got 3"),
        ("number.scenario", Array("driver init\ntx send len=12q\n".utf8), ":2:13: '12q' is not a number"),
        ("setup.scenario", Array("tx send\n".utf8), ":1:1: 'tx send' needs the driver: run 'driver init' first"),
        ("garbage.scenario", [0x64, 0x72, 0xFF, 0x00, 0x13], ":1:3: unexpected byte 0xff"),
        ("long.scenario", Array(("#" + String(repeating: "y", count: 10 << 20)).utf8), ":1:65537: line is 10485761 bytes long"),
        ("descs.scenario", Array("driver init qsize=4\nrx post count=5\n".utf8), ":2:1: queue 0 has 4 free descriptors, 5 needed"),
    ])
    func malformedFilesExitTwoWithLineAndColumn(_ name: String, _ contents: [UInt8], _ message: String) throws {
        let path = try temporaryFile(name, contents)
        let r = try CLI.run("scenario", "run", path)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(path + message), "\(r.stderr)")
    }

    @Test func missingFileAndNoFilesAreUsageErrors() throws {
        let r = try CLI.run("scenario", "run", "/nonexistent/x.scenario")
        #expect(r.status == 2 && r.stderr.contains("/nonexistent/x.scenario: no such file"))
        #expect(try CLI.run("scenario", "run").status == 2)
    }

    @Test func listShowsEveryScenarioWithItsSummary() throws {
        let r = try CLI.runArguments(["scenario", "list", repositoryRoot.appendingPathComponent("traces/scenarios").path])
        #expect(r.status == 0)
        #expect(r.stdout.contains("loopback-basic"))
        #expect(r.stdout.contains("Loop frames TX→RX"))
        #expect(r.stdout.contains("\(Self.library.count) scenarios in"))
        let j = try CLI.runArguments(["scenario", "list", "--json", repositoryRoot.appendingPathComponent("traces/scenarios").path])
        let entries = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [[String: Any]]
        #expect(entries.count == Self.library.count)
        #expect(entries.allSatisfy { $0["error"] == nil && ($0["expectations"] as? Int ?? 0) > 0 })
        #expect(try CLI.run("scenario", "list", "/nonexistent").status == 2)
    }

    @Test func helpHasExamples() throws {
        for sub in ["run", "list"] {
            let r = try CLI.run("scenario", sub, "--help")
            #expect(r.status == 0 && r.stdout.contains("Examples:"))
        }
    }
}
