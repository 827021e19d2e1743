import Foundation
import Testing

/// `vtrace debug` on a real terminal (tmux): the line editor's keys as a
/// user types them, the screen asserted line by line (trailing spaces are
/// not told apart from cleared cells: the cursor's column says where the
/// line ends).
@Suite("vtrace debug on a terminal")
struct DebugTerminalTests {
    let trace = repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path
    let vtrace = CLI.productsDirectory.appendingPathComponent("vtrace").path
    let banner = "vtrace debug: 112 events in 3 chunks; `help` lists commands"
    /// What the debugger prints before its first prompt: the banner and where the replay is.
    var start: [String] { [banner, "at event 0, between accesses", "next: #0 nic0 mmio write Status/4 = 0x0"] }
    /// What `goto 20` prints.
    let at20 = ["at event 20, between accesses", "next: #20 nic0 mmio read  QueueNumMax/4 -> 0x100"]
    /// What the shell prints after vtrace with the terminal as vtrace left it cooked.
    let cooked = "opost isig icanon echo"

    /// `vtrace debug` on the golden trace under /bin/sh, which afterwards
    /// prints an empty line, `exit STATUS`, and the terminal's output
    /// processing, signal keys, line editing and echo as stty shows them
    /// (`-icanon -echo` for a terminal left raw), then waits.
    var debugThenStty: String {
        let stty = "stty -a | tr ' ' '\\n' | grep -E '^-?(opost|isig|icanon|echo)$' | tr '\\n' ' '"
        return "/bin/sh -c \(quoted("\(quoted(vtrace)) debug \(quoted(trace)); s=$?; echo; echo \"exit $s\"; \(stty); exec cat >/dev/null"))"
    }

    @Test func completeEditRecallAndRun() throws {
        guard let tmux = try TmuxSession(debugThenStty, skipping: "the line editor") else { return }
        defer { tmux.close() }
        var screen = start + ["(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        // " 2x0", Left, Backspace: " 20"; Ctrl-A, "go", Tab: "goto" completed,
        // the cursor past the space before the argument.
        try tmux.type(" 2x0")
        try tmux.press("Left", "BSpace")
        try tmux.expectScreen(start + ["(vtrace)  20"], cursor: 11)
        try tmux.press("C-a")
        try tmux.type("go")
        try tmux.expectScreen(start + ["(vtrace) go 20"], cursor: 11)
        try tmux.press("Tab")
        try tmux.expectScreen(start + ["(vtrace) goto 20"], cursor: 14)
        try tmux.press("Enter")
        screen = start + ["(vtrace) goto 20"] + at20 + ["(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        // "c", Tab, Tab: the candidates listed, the line again; "ou", Tab: "counters ".
        try tmux.type("c")
        try tmux.press("Tab", "Tab")
        screen[6] = "(vtrace) c"
        screen += ["chain     continue  counters", "(vtrace) c"]
        try tmux.expectScreen(screen, cursor: 10)
        try tmux.type("ou")
        try tmux.press("Tab")
        screen[8] = "(vtrace) counters"
        try tmux.expectScreen(screen, cursor: 18)
        try tmux.press("Enter")
        screen += ["counter  nic0", "(all counters are zero)", "(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        // Up: the last command; Up again: the one before, which Enter runs again.
        try tmux.press("Up")
        screen[11] = "(vtrace) counters"
        try tmux.expectScreen(screen, cursor: 18)
        try tmux.press("Up")
        screen[11] = "(vtrace) goto 20"
        try tmux.expectScreen(screen, cursor: 16)
        try tmux.press("Enter")
        screen += at20 + ["(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        try tmux.type("quit")
        try tmux.press("Enter")
        screen[14] = "(vtrace) quit"
        try tmux.expectScreen(screen + ["", "exit 0", cooked], cursor: cooked.count + 1)
    }

    /// The history file across two sessions; a long line scrolled on a
    /// narrow terminal; SIGTERM while the terminal is raw puts it back (the
    /// shell's `stty` after vtrace shows it cooked); Ctrl-D ends the input.
    @Test func historyFileScrollingAndTheTerminalPutBack() throws {
        let history = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-history-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: history) }
        guard let first = try TmuxSession(debugThenStty, width: 40, environment: ["VTRACE_HISTORY": history], skipping: "the line editor")
        else { return }
        defer { first.close() }
        var screen = start + ["(vtrace)"]
        try first.expectScreen(screen, cursor: 9)
        try first.type("event")
        try first.press("Enter")
        screen[3] = "(vtrace) event"
        screen += ["next: #0 nic0 mmio write Status/4 = 0x0", "(vtrace)"]
        try first.expectScreen(screen, cursor: 9)

        // 47 characters in the 30 columns the prompt leaves (the last one stays empty).
        let long = "goto " + String(repeating: "0", count: 40) + "20"
        try first.type(long)
        screen[5] = "(vtrace) " + long.suffix(29)
        try first.expectScreen(screen, cursor: 38)
        try first.press("Home")
        screen[5] = "(vtrace) " + long.prefix(30)
        try first.expectScreen(screen, cursor: 9)
        try first.press("Enter")
        screen += at20 + ["(vtrace)"]
        try first.expectScreen(screen, cursor: 9)
        #expect(try String(contentsOfFile: history, encoding: .utf8) == "event\n\(long)\n")

        // SIGTERM with the terminal raw and a line half typed.
        try first.type("he")
        screen[8] = "(vtrace) he"
        try first.expectScreen(screen, cursor: 11)
        let shell = try first.pane("#{pane_pid}")
        let child = try String(contentsOfFile: "/proc/\(shell)/task/\(shell)/children", encoding: .utf8).split(separator: " ")
        try #require(child.count == 1, "the shell's children: \(child)")
        kill(pid_t(child[0])!, SIGTERM)
        // The shell says how vtrace ended ("Terminated" after the "he" typed,
        // in dash's words); then the status and the terminal, cooked.
        let deadline = Date().addingTimeInterval(15)
        var after = try first.screen()
        while after.last != cooked && Date() < deadline { usleep(20_000); after = try first.screen() }
        #expect(Array(after.prefix(8)) == Array(screen.prefix(8)) && after[8].hasPrefix("(vtrace) he"), "\(after)")
        #expect(Array(after.dropFirst(9)) == ["", "exit 143", cooked], "\(after)")
        #expect(try String(contentsOfFile: history, encoding: .utf8) == "event\n\(long)\n")

        // A second session: Up brings the long line back (scrolled to its
        // end, where the cursor is), Up again "event".
        guard let second = try TmuxSession(debugThenStty, width: 40, environment: ["VTRACE_HISTORY": history], skipping: "the line editor")
        else { return }
        defer { second.close() }
        try second.expectScreen(start + ["(vtrace)"], cursor: 9)
        try second.press("Up")
        try second.expectScreen(start + ["(vtrace) " + long.suffix(29)], cursor: 38)
        try second.press("Up")
        try second.expectScreen(start + ["(vtrace) event"], cursor: 14)
        try second.press("Enter")
        try second.expectScreen(start + ["(vtrace) event", "next: #0 nic0 mmio write Status/4 = 0x0", "(vtrace)"], cursor: 9)
        try second.press("C-d")
        try second.expectScreen(start + ["(vtrace) event", "next: #0 nic0 mmio write Status/4 = 0x0", "(vtrace)", "", "exit 0", cooked],
                                cursor: cooked.count + 1)
        #expect(try String(contentsOfFile: history, encoding: .utf8) == "event\n\(long)\nevent\n")
    }

    /// Through a pipe, as before the line editor: no prompt, no escape
    /// codes, every line as typed (a Tab is blank space around a word), no history file written.
    @Test func aPipeReadsLinesAsBefore() throws {
        let history = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-history-\(UUID().uuidString)").path
        let input = "goto 20\\ncou\\t\\ncounters\\n"
        let r = try runCombined("/bin/sh", ["-c", "printf '\(input)' | \(quoted(vtrace)) debug \(quoted(trace))"], environment: ["VTRACE_HISTORY": history])
        #expect(r.status == 0)
        #expect(r.output == (start + at20).joined(separator: "\n") + "\nunknown command 'cou'; `help` lists them\ncounter  nic0\n(all counters are zero)\n")
        #expect(!FileManager.default.fileExists(atPath: history))
    }
}
