import Foundation
import Testing

/// Text from a trace or a scenario file never reaches the terminal raw: a
/// downloaded trace cannot clear the screen or retitle the window.
@Suite("Untrusted text on the terminal")
struct UntrustedTextTests {
    static let evil = "evil\u{1B}[2J\u{1B}]0;pwned\u{07}\u{202E}txt\u{9B}"

    /// No byte a terminal acts on (C0 but newline, DEL, C1) and no bidi override.
    func isInert(_ text: String) -> Bool {
        !text.unicodeScalars.contains {
            ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) || (0x202A...0x202E).contains($0.value)
        }
    }

    @Test func infoEscapesTheHeadersStrings() throws {
        let out = try temporaryFile("evil.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario").path
        let r = try CLI.run("record", "--scenario", scenario, "-o", out, "--guest", Self.evil)
        #expect(r.status == 0, "\(r.stderr)")
        let info = try CLI.run("info", out)
        #expect(info.status == 0)
        #expect(isInert(info.stdout))
        #expect(info.stdout.contains("guest      evil\\e[2J\\e]0;pwned\\x07\\u{202e}txt\\x9b\n"))
        // JSON keeps the text itself (JSON-escaped).
        let json = try CLI.run("info", out, "--json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        #expect(object["guest"] as? String == Self.evil)
    }

    @Test func scenarioTextIsEscapedInListingsAndErrors() throws {
        let dir = URL(fileURLWithPath: try temporaryFile("x", [])).deletingLastPathComponent().appendingPathComponent("evil-scenarios").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "# \(Self.evil)\ndevice\ndriver init\n".write(toFile: dir + "/described.scenario", atomically: true, encoding: .utf8)
        try "device\n\(Self.evil) queue=1\n".write(toFile: dir + "/broken.scenario", atomically: true, encoding: .utf8)
        let list = try CLI.run("scenario", "list", dir)
        #expect(isInert(list.stdout) && isInert(list.stderr), "\(list.stdout)")
        #expect(list.stdout.contains("evil\\e[2J"))
        let run = try CLI.run("scenario", "run", dir + "/broken.scenario")
        #expect(run.status == 2)
        #expect(isInert(run.stdout) && isInert(run.stderr), "\(run.stderr)")
        #expect(run.stderr.contains("unexpected byte 0x1b (scenario files are text)"), "\(run.stderr)")
    }
}
