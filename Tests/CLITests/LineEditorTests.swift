import Foundation
import Testing
@testable import vtrace

/// The line editor's keys without a terminal: bytes in, the exact line,
/// cursor, history and actions out.
@Suite("Line editing")
struct LineEditingTests {
    typealias Action = LineEditing.Action

    /// An editor over the debugger's commands after `bytes`, and the actions they gave.
    func edited(_ bytes: String, history: [String] = [], commands: [String] = DebugCommand.names) -> (LineEditing, [Action]) {
        var editing = LineEditing(commands: commands, history: history)
        let actions = editing.feed(Array(bytes.utf8))
        return (editing, actions)
    }

    @Test func typingInsertsAtTheCursor() {
        let (e, actions) = edited("gto 5\u{1B}[D\u{1B}[D\u{1B}[D\u{1B}[Do")
        #expect(e.text == "goto 5" && e.cursor == 2)
        #expect(actions == Array(repeating: .redraw, count: 10))
    }

    @Test func everySpellingOfLeftRightHomeAndEndMoves() {
        for left in ["\u{1B}[D", "\u{1B}OD", "\u{02}"] {
            let (e, _) = edited("abc" + left)
            #expect(e.cursor == 2, "\(Array(left.utf8))")
        }
        for right in ["\u{1B}[C", "\u{1B}OC", "\u{06}"] {
            let (e, _) = edited("abc\u{01}" + right)
            #expect(e.cursor == 1, "\(Array(right.utf8))")
        }
        for home in ["\u{1B}[H", "\u{1B}OH", "\u{1B}[1~", "\u{1B}[7~", "\u{01}"] {
            let (e, actions) = edited("abc" + home)
            #expect(e.cursor == 0 && actions.count == 4, "\(Array(home.utf8))")
        }
        for end in ["\u{1B}[F", "\u{1B}OF", "\u{1B}[4~", "\u{1B}[8~", "\u{05}"] {
            let (e, actions) = edited("abc\u{01}" + end)
            #expect(e.cursor == 3 && actions.count == 5, "\(Array(end.utf8))")
        }
    }

    @Test func movingPastEitherEndRingsTheBell() {
        #expect(edited("a\u{1B}[D\u{1B}[D").1 == [.redraw, .redraw, .bell])
        #expect(edited("a\u{1B}[C").1 == [.redraw, .bell])
        // Home at the start, End at the end: nothing to show, no bell.
        #expect(edited("\u{01}\u{05}").1 == [])
    }

    @Test func ctrlAndAltArrowsMoveByWord() {
        let line = "break  700 now"
        var (e, _) = edited(line + "\u{1B}[1;5D")
        #expect(e.cursor == 11)
        (e, _) = edited(line + "\u{1B}b\u{1B}b")
        #expect(e.cursor == 7)
        (e, _) = edited(line + "\u{01}\u{1B}[1;5C")
        #expect(e.cursor == 5)
        (e, _) = edited(line + "\u{01}\u{1B}f\u{1B}[1;3C")
        #expect(e.cursor == 10)
        // Shift-Left is Left.
        (e, _) = edited(line + "\u{1B}[1;2D")
        #expect(e.cursor == 13)
    }

    @Test func backspaceAndDelete() {
        var (e, actions) = edited("steps\u{7F}")
        #expect(e.text == "step" && e.cursor == 4 && actions.last == .redraw)
        (e, _) = edited("stepx\u{08}")
        #expect(e.text == "step" && e.cursor == 4)
        (e, _) = edited("xstep\u{01}\u{1B}[3~")
        #expect(e.text == "step" && e.cursor == 0)
        (e, _) = edited("sxtep\u{01}\u{1B}[C\u{04}")   // Ctrl-D inside a line deletes
        #expect(e.text == "step" && e.cursor == 1)
        #expect(edited("\u{7F}").1 == [.bell])
        #expect(edited("a\u{1B}[3~").1 == [.redraw, .bell])
        #expect(edited("a\u{04}").1 == [.redraw, .bell])
    }

    @Test func killsToTheEndTheStartAndTheWordBefore() {
        var (e, _) = edited("goto 1200\u{1B}[D\u{1B}[D\u{0B}")
        #expect(e.text == "goto 12" && e.cursor == 7)
        (e, _) = edited("goto 1200\u{1B}[D\u{1B}[D\u{15}")
        #expect(e.text == "00" && e.cursor == 0)
        (e, _) = edited("break 5  \u{17}")
        #expect(e.text == "break " && e.cursor == 6)
        (e, _) = edited("break 5  \u{17}\u{17}")
        #expect(e.text == "" && e.cursor == 0)
        (e, _) = edited("goto 1200\u{01}\u{1B}f\u{17}")
        #expect(e.text == " 1200" && e.cursor == 0)
        // Nothing to kill: nothing to show.
        #expect(edited("ab\u{0B}\u{01}\u{15}\u{17}").1 == [.redraw, .redraw, .redraw])
    }

    @Test func enterAcceptsAndRemembersNewNonBlankLines() {
        let (e, actions) = edited("step\rstep\r  \r\rcounters\nstep\r")
        #expect(actions.filter { $0 != .redraw } == [
            .accept("step", remembered: true), .accept("step", remembered: false), .accept("  ", remembered: false),
            .accept("", remembered: false), .accept("counters", remembered: true), .accept("step", remembered: true),
        ])
        #expect(e.history == ["step", "counters", "step"])
        #expect(e.text == "" && e.cursor == 0 && e.historyIndex == 3)
    }

    @Test func theHistoryKeepsItsLimit() {
        var editing = LineEditing(commands: [], history: ["a", "b", "c", "d"], historyLimit: 3)
        #expect(editing.history == ["b", "c", "d"])
        _ = editing.feed(Array("e\r".utf8))
        #expect(editing.history == ["c", "d", "e"] && editing.historyIndex == 3)
    }

    @Test func upAndDownWalkTheHistoryAndKeepTheLineBeingEdited() {
        var (e, actions) = edited("goto 5\u{1B}[A", history: ["step", "counters"])
        #expect(e.text == "counters" && e.cursor == 8 && e.historyIndex == 1)
        _ = e.feed(Array("\u{10}".utf8))   // Ctrl-P
        #expect(e.text == "step" && e.historyIndex == 0)
        actions = e.feed(Array("\u{1B}[A".utf8))
        #expect(actions == [.bell] && e.text == "step")
        _ = e.feed(Array("\u{1B}[B\u{0E}".utf8))   // Down, Ctrl-N
        #expect(e.text == "goto 5" && e.cursor == 6 && e.historyIndex == 2)
        actions = e.feed(Array("\u{1B}OB".utf8))
        #expect(actions == [.bell])
    }

    @Test func aRecalledLineEditedStaysEditedUntilEnter() {
        var (e, _) = edited("\u{1B}[A\u{7F}\u{7F}\u{7F}60\u{1B}[A\u{1B}[B", history: ["goto 1", "goto 700"])
        #expect(e.text == "goto 60" && e.historyIndex == 1)
        _ = e.feed(Array("\r\u{1B}[A\u{1B}[A".utf8))
        // Entered, it is history's newest line; the one it was recalled from is as it was.
        #expect(e.history == ["goto 1", "goto 700", "goto 60"] && e.text == "goto 700")
    }

    @Test func ctrlCAbandonsTheLine() {
        let (e, actions) = edited("goto 5\u{03}", history: ["step"])
        #expect(actions.last == .cancel && e.text == "" && e.cursor == 0 && e.history == ["step"])
        var after = e
        _ = after.feed(Array("\u{1B}[A".utf8))
        #expect(after.text == "step")
    }

    @Test func ctrlDOnAnEmptyLineEndsTheInput() {
        #expect(edited("\u{04}").1 == [.endOfInput])
        let (e, actions) = edited("ab\u{15}\u{04}")
        #expect(actions.last == .endOfInput && e.text == "")
    }

    @Test func tabCompletesAUniqueCommandAndASpace() {
        var (e, actions) = edited("go\t")
        #expect(e.text == "goto " && e.cursor == 5 && actions == [.redraw, .redraw, .redraw])
        (e, _) = edited("  he\t")
        #expect(e.text == "  help " && e.cursor == 7)
        // Before an argument already typed: completed, and the cursor past the space.
        (e, _) = edited("s 3\u{01}\u{06}\t")
        #expect(e.text == "step 3" && e.cursor == 5)
        (e, _) = edited("cou\t12")
        #expect(e.text == "counters 12")
    }

    @Test func tabOnAnAmbiguousPrefixRingsThenLists() {
        var (e, actions) = edited("c\t\t")
        #expect(e.text == "c" && actions == [.redraw, .bell, .list(["chain", "continue", "counters"])])
        (e, actions) = edited("co\t\t\t")
        #expect(actions.dropFirst(2) == [.bell, .list(["continue", "counters"]), .list(["continue", "counters"])])
        // Another key between the Tabs: a bell again, not the list.
        (e, actions) = edited("co\t\u{1B}[D\u{1B}[C\t")
        #expect(actions.last == .bell)
        (e, actions) = edited("\t\t")
        #expect(actions == [.bell, .list(DebugCommand.names.sorted())])
    }

    @Test func tabExtendsToTheCandidatesCommonPrefix() {
        let (e, actions) = edited("c\t\t", commands: ["counters", "countdown", "chain"])
        #expect(actions == [.redraw, .bell, .list(["chain", "countdown", "counters"])])
        var more = e
        _ = more.feed(Array("o\t".utf8))
        #expect(more.text == "count" && more.cursor == 5)
    }

    @Test func tabCompletesOnlyTheFirstWord() {
        #expect(edited("goto 5\t").1.last == .bell)
        #expect(edited("x\t").1.last == .bell)
        #expect(edited("step\t").0.text == "step ")
    }

    @Test func unknownKeysAndSequencesLeaveNothing() {
        // Page Up, Insert, F5, F1 (SS3 and CSI), Alt-x, a bracketed-paste
        // marker, Ctrl-G, sequences far too long, and a stray UTF-8
        // continuation byte.
        let junk = ["\u{1B}[5~", "\u{1B}[2~", "\u{1B}[15~", "\u{1B}OP", "\u{1B}[1;2P", "\u{1B}x", "\u{1B}[200~", "\u{07}",
                    "\u{1B}[" + String(repeating: "9", count: 40) + "~", "\u{1B}[1;5" + String(repeating: ";", count: 20) + "D"]
        for sequence in junk {
            let (e, actions) = edited("ab" + sequence + "c")
            #expect(e.text == "abc" && e.cursor == 3 && actions == [.redraw, .redraw, .redraw], "\(Array(sequence.utf8))")
        }
        var editing = LineEditing(commands: [])
        #expect(editing.feed([0x61, 0x80, 0xFF, 0xC3, 0x62]) == [.redraw, .redraw] && editing.text == "ab")
    }

    @Test func aControlKeyInsideASequenceStillActs() {
        // ESC [ then Enter: the sequence is dropped, the Enter accepted.
        #expect(edited("step\u{1B}[\r").1.last == .accept("step", remembered: true))
        #expect(edited("step\u{1B}\u{03}").1.last == .cancel)
        #expect(edited("step\u{1B}O\u{7F}").0.text == "ste")
    }

    @Test func utf8IsOneCharacterAColumn() {
        var (e, _) = edited("né\u{1B}[Dx")
        #expect(e.text == "nxé" && e.cursor == 2 && e.line.count == 3)
        (e, _) = edited("né\u{7F}")
        #expect(e.text == "n")
        // A C1 control in UTF-8 (NEL) is no character.
        (e, _) = edited("a\u{85}b")
        #expect(e.text == "ab")
    }

    @Test func ctrlLAndCtrlZAreTheTerminalsToDo() {
        #expect(edited("ab\u{0C}").1.last == .clearScreen)
        #expect(edited("ab\u{1A}").1.last == .suspend)
        #expect(edited("ab\u{0C}").0.text == "ab")
    }
}

@Suite("Line view")
struct LineViewTests {
    let esc = "\u{1B}"

    @Test func aShortLineIsThePromptTheLineAndTheCursorsColumn() {
        var view = LineView()
        let line = Array("goto 5".unicodeScalars)
        #expect(view.render(prompt: "(vtrace) ", line: line, cursor: 6, width: 120) == "\r(vtrace) goto 5\(esc)[K\r\(esc)[15C")
        #expect(view.render(prompt: "(vtrace) ", line: line, cursor: 0, width: 120) == "\r(vtrace) goto 5\(esc)[K\r\(esc)[9C")
        #expect(view.render(prompt: "", line: [], cursor: 0, width: 120) == "\r\(esc)[K\r")
    }

    @Test func aLongLineScrollsOnlyAsFarAsTheCursorNeeds() {
        var view = LineView()
        let line = Array("abcdefghijklmnopqrstuvwxyz0123".unicodeScalars)   // 30 characters
        // Width 20, prompt 2: 17 columns for the line (the last column stays empty).
        #expect(view.render(prompt: "> ", line: line, cursor: 30, width: 20) == "\r> opqrstuvwxyz0123\(esc)[K\r\(esc)[18C")
        #expect(view.offset == 14)
        #expect(view.render(prompt: "> ", line: line, cursor: 20, width: 20) == "\r> opqrstuvwxyz0123\(esc)[K\r\(esc)[8C")
        #expect(view.render(prompt: "> ", line: line, cursor: 5, width: 20) == "\r> fghijklmnopqrstuv\(esc)[K\r\(esc)[2C")
        // The line shortened: the view comes back to show all it can.
        #expect(view.render(prompt: "> ", line: Array(line.prefix(10)), cursor: 10, width: 20) == "\r> abcdefghij\(esc)[K\r\(esc)[12C")
        #expect(view.offset == 0)
    }

    /// Text never reaches the row's last column (the cursor may stand there).
    @Test func theRowNeverReachesTheLastColumn() {
        var view = LineView()
        let line = Array(String(repeating: "0123456789", count: 5).unicodeScalars)
        for cursor in [50, 0, 49, 25, 1, 48, 30] {
            let row = view.render(prompt: "(vtrace) ", line: line, cursor: cursor, width: 30)
            let shown = row.dropFirst().prefix { $0 != "\u{1B}" }
            #expect(shown.count <= 29, "\(row)")
            let column = Int(row.split(separator: "[").last!.dropLast())!
            #expect((9..<30).contains(column) && column - 9 + view.offset == cursor, "\(row)")
        }
    }

    @Test func completionsGoDownTheColumnsAsBashListsThem() {
        #expect(LineView.columns(["chain", "continue", "counters"], width: 80) == ["chain     continue  counters"])
        #expect(LineView.columns(["chain", "continue", "counters"], width: 20) == ["chain     counters", "continue"])
        #expect(LineView.columns(["a-very-long-candidate", "b"], width: 10) == ["a-very-long-candidate", "b"])
        #expect(LineView.columns(DebugCommand.names.sorted(), width: 120)
                == ["break             delete            info              reverse-continue  watch",
                    "chain             event             next              reverse-next      where",
                    "continue          goto              queues            reverse-step      why",
                    "counters          help              quit              step"])
    }
}

@Suite("Line history file")
struct LineHistoryFileTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-history-\(UUID().uuidString)").path
    }

    @Test func appendsLoadsAndStaysPrivate() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = LineHistoryFile(path: path)
        #expect(file.load() == [])
        try file.append("goto 700")
        try file.append("counters")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "goto 700\ncounters\n")
        #expect(file.load() == ["goto 700", "counters"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func loadTakesOutEmptyLinesAndControlCharacters() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "step\n\n\u{1B}[2Jqueues\u{7}\n\u{1B}\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(LineHistoryFile(path: path).load() == ["step", "[2Jqueues"])
    }

    @Test func appendingPastTheLimitKeepsTheNewestLines() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = LineHistoryFile(path: path, limit: 3)
        try file.append("one")
        try file.append("two")
        try LineHistoryFile(path: path, limit: 3).append("other")   // another session's line, meanwhile
        try file.append("three")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two\nother\nthree\n")
        try file.append("four")
        try file.append("five")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "three\nfour\nfive\n")
        #expect(file.load() == ["three", "four", "five"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Loading keeps the limit too.
        try (1...5).map { "line \($0)\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        #expect(file.load() == ["line 3", "line 4", "line 5"])
    }
}
