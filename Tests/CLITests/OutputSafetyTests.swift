import Foundation
import Testing

/// The user's files: an output that is an input is refused before any work,
/// a failed run never leaves half a file where a good one was, and a failed
/// write is an error, not exit 0.
@Suite("Outputs never lose data")
struct OutputSafetyTests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name)").path }

    /// A copy of a golden trace in a scratch directory, and its bytes.
    func copy(_ name: String, as copyName: String) throws -> (String, Data) {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.golden(name)))
        return (try temporaryFile(copyName, [UInt8](bytes)), bytes)
    }

    @Test func exportOverItsInputIsRefusedAndTheTraceKept() throws {
        let (trace, bytes) = try copy("rx-poison.vtrace", as: "v.vtrace")
        let dir = URL(fileURLWithPath: trace).deletingLastPathComponent().path
        let link = dir + "/link.vtrace"
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: trace)
        let spellings = [trace, dir + "/./v.vtrace", link]
        for (format, out) in [("jsonl", spellings[0]), ("pcapng", spellings[1]), ("perfetto", spellings[2])] {
            let r = try CLI.run("export", trace, "--format", format, "-o", out)
            #expect(r.status == 2 && r.stderr.contains("is the input \(trace); refusing to overwrite it"), "\(r.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: trace)) == bytes)
        }
        // Through the link as the input, too.
        let r = try CLI.run("export", link, "--format", "jsonl", "-o", trace)
        #expect(r.status == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: trace)) == bytes)
    }

    @Test func recordOverItsScenarioAndPlotOverItsTraceAreRefused() throws {
        let text = try Data(contentsOf: repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario"))
        let scenario = try temporaryFile("my.scenario", [UInt8](text))
        let r = try CLI.run("record", "--scenario", scenario, "-o", scenario)
        #expect(r.status == 2 && r.stderr.contains("refusing to overwrite it"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: scenario)) == text)
        #expect(!FileManager.default.fileExists(atPath: scenario + ".partial"))

        let (trace, bytes) = try copy("loopback-basic.vtrace", as: "t.svg")
        let p = try CLI.run("plot", trace, "-o", trace)
        #expect(p.status == 2 && p.stderr.contains("refusing to overwrite it"), "\(p.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: trace)) == bytes)
    }

    @Test func recordIntoADirectoryFailsBeforeRunningAndLeavesNothing() throws {
        let dir = URL(fileURLWithPath: try temporaryFile("x", [])).deletingLastPathComponent().appendingPathComponent("out.d").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = try CLI.run("record", "--scenario", repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario").path, "-o", dir)
        #expect(r.status == 2 && r.stderr.contains("-o \(dir): is a directory"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + ".partial"))
    }

    /// A run that fails half way (a corrupt chunk) leaves the file that was
    /// there, byte for byte, and no temporary file beside it.
    @Test func aFailedExportLeavesThePreviousOutputWhole() throws {
        let (trace, bytes) = try copy("long-drain.vtrace", as: "corrupt-late.vtrace")
        var damaged = [UInt8](bytes)
        damaged[damaged.count - 400] ^= 0xFF   // inside the last chunks or the index
        try Data(damaged).write(to: URL(fileURLWithPath: trace))
        // Its own directory: other tests write outputs (and their temporary files) beside theirs at the same time.
        let dir = URL(fileURLWithPath: try temporaryFile("x", [])).deletingLastPathComponent().appendingPathComponent("failed-export.d").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let out = dir + "/previous.jsonl"
        try Data("the previous export\n".utf8).write(to: URL(fileURLWithPath: out))
        let r = try CLI.run("export", trace, "--format", "jsonl", "-o", out)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "the previous export\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("vtrace-tmp") }.isEmpty)
    }

    /// Runs vtrace with standard output on `/dev/full`.
    func runOnAFullDisk(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = CLI.productsDirectory.appendingPathComponent("vtrace")
        p.arguments = arguments
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
        let err = Pipe()
        p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: e, as: UTF8.self))
    }

    @Test func writeErrorsAreErrors() throws {
        let trace = Self.golden("rx-poison.vtrace")
        for arguments in [["dump", trace], ["info", trace], ["timeline", trace], ["export", trace, "--format", "jsonl", "-o", "-"],
                          ["dump", trace, "--json"], ["verify", trace], ["why", trace, "tx_packets"]] {
            let r = try runOnAFullDisk(arguments)
            #expect(r.status == 2 && r.stderr.contains("vtrace: cannot write standard output"), "\(arguments): \(r.status) \(r.stderr)")
        }
        let r = try CLI.run("export", trace, "--format", "pcapng", "-o", "/dev/full")
        #expect(r.status == 2 && r.stderr.contains("cannot write /dev/full: No space left on device"), "\(r.stderr)")
        #expect(!r.stderr.contains("wrote"))
        // A recording is renamed into place: never over a device.
        let rec = try CLI.run("record", "--scenario", repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario").path,
                              "-o", "/dev/full")
        #expect(rec.status == 2 && rec.stderr.contains("-o /dev/full: not a regular file"), "\(rec.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/dev/full.partial"))
        // /dev/full is still the device, not a file put in its place.
        var st = stat()
        #expect(stat("/dev/full", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR)
    }

    @Test func aClosedPipeStaysQuiet() throws {
        let vtrace = CLI.productsDirectory.appendingPathComponent("vtrace").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "'\(vtrace)' export '\(Self.golden("long-drain.vtrace"))' --format jsonl -o - | head -c 10 >/dev/null"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && e.isEmpty, "\(String(decoding: e, as: UTF8.self))")
    }
}
