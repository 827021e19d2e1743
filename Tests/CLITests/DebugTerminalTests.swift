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
        var screen = [banner, "(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        // " 2x0", Left, Backspace: " 20"; Ctrl-A, "go", Tab: "goto" completed,
        // the cursor past the space before the argument.
        try tmux.type(" 2x0")
        try tmux.press("Left", "BSpace")
        try tmux.expectScreen([banner, "(vtrace)  20"], cursor: 11)
        try tmux.press("C-a")
        try tmux.type("go")
        try tmux.expectScreen([banner, "(vtrace) go 20"], cursor: 11)
        try tmux.press("Tab")
        try tmux.expectScreen([banner, "(vtrace) goto 20"], cursor: 14)
        try tmux.press("Enter")
        screen = [banner, "(vtrace) goto 20", "at event 20", "(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        // "c", Tab, Tab: the candidates listed, the line again; "ou", Tab: "counters ".
        try tmux.type("c")
        try tmux.press("Tab", "Tab")
        screen[3] = "(vtrace) c"
        screen += ["chain     continue  counters", "(vtrace) c"]
        try tmux.expectScreen(screen, cursor: 10)
        try tmux.type("ou")
        try tmux.press("Tab")
        screen[5] = "(vtrace) counters"
        try tmux.expectScreen(screen, cursor: 18)
        try tmux.press("Enter")
        screen += ["counter  nic0", "(all counters are zero)", "(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        // Up: the last command; Up again: the one before, which Enter runs again.
        try tmux.press("Up")
        screen[8] = "(vtrace) counters"
        try tmux.expectScreen(screen, cursor: 18)
        try tmux.press("Up")
        screen[8] = "(vtrace) goto 20"
        try tmux.expectScreen(screen, cursor: 16)
        try tmux.press("Enter")
        screen += ["at event 20", "(vtrace)"]
        try tmux.expectScreen(screen, cursor: 9)

        try tmux.type("quit")
        try tmux.press("Enter")
        screen[10] = "(vtrace) quit"
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
        var screen = [banner, "(vtrace)"]
        try first.expectScreen(screen, cursor: 9)
        try first.type("event")
        try first.press("Enter")
        screen[1] = "(vtrace) event"
        screen += ["next: #0 nic0 mmio write Status/4 = 0x0", "(vtrace)"]
        try first.expectScreen(screen, cursor: 9)

        // 47 characters in the 30 columns the prompt leaves (the last one stays empty).
        let long = "goto " + String(repeating: "0", count: 40) + "20"
        try first.type(long)
        screen[3] = "(vtrace) " + long.suffix(29)
        try first.expectScreen(screen, cursor: 38)
        try first.press("Home")
        screen[3] = "(vtrace) " + long.prefix(30)
        try first.expectScreen(screen, cursor: 9)
        try first.press("Enter")
        screen += ["at event 20", "(vtrace)"]
        try first.expectScreen(screen, cursor: 9)
        #expect(try String(contentsOfFile: history, encoding: .utf8) == "event\n\(long)\n")

        // SIGTERM with the terminal raw and a line half typed.
        try first.type("he")
        screen[5] = "(vtrace) he"
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
        #expect(Array(after.prefix(5)) == Array(screen.prefix(5)) && after[5].hasPrefix("(vtrace) he"), "\(after)")
        #expect(Array(after.dropFirst(6)) == ["", "exit 143", cooked], "\(after)")
        #expect(try String(contentsOfFile: history, encoding: .utf8) == "event\n\(long)\n")

        // A second session: Up brings the long line back (scrolled to its
        // end, where the cursor is), Up again "event".
        guard let second = try TmuxSession(debugThenStty, width: 40, environment: ["VTRACE_HISTORY": history], skipping: "the line editor")
        else { return }
        defer { second.close() }
        try second.expectScreen([banner, "(vtrace)"], cursor: 9)
        try second.press("Up")
        try second.expectScreen([banner, "(vtrace) " + long.suffix(29)], cursor: 38)
        try second.press("Up")
        try second.expectScreen([banner, "(vtrace) event"], cursor: 14)
        try second.press("Enter")
        try second.expectScreen([banner, "(vtrace) event", "next: #0 nic0 mmio write Status/4 = 0x0", "(vtrace)"], cursor: 9)
        try second.press("C-d")
        try second.expectScreen([banner, "(vtrace) event", "next: #0 nic0 mmio write Status/4 = 0x0", "(vtrace)", "", "exit 0", cooked],
                                cursor: cooked.count + 1)
        #expect(try String(contentsOfFile: history, encoding: .utf8) == "event\n\(long)\nevent\n")
    }

    /// Through a pipe, as before the line editor: no prompt, no escape
    /// codes, every line as typed (Tab and all), no history file written.
    @Test func aPipeReadsLinesAsBefore() throws {
        let history = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-history-\(UUID().uuidString)").path
        let input = "goto 20\\ncou\\t\\ncounters\\n"
        let r = try runCombined("/bin/sh", ["-c", "printf '\(input)' | \(quoted(vtrace)) debug \(quoted(trace))"], environment: ["VTRACE_HISTORY": history])
        #expect(r.status == 0)
        #expect(r.output == "\(banner)\nat event 20\nunknown command 'cou\t'; `help` lists them\ncounter  nic0\n(all counters are zero)\n")
        #expect(!FileManager.default.fileExists(atPath: history))
    }
}
