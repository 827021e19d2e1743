//! The editing half of `vtrace debug`'s line editor: terminal bytes in; the
//! line, the cursor, the history and what to show out. No I/O, so that tests
//! feed byte sequences and assert the result exactly (`LineEditor` is the
//! terminal half).

/// One line being edited, and the lines entered before it.
struct LineEditing {
    /// What the terminal side shows after a key.
    enum Action: Equatable {
        /// The line or the cursor changed.
        case redraw
        /// The key can do nothing here.
        case bell
        /// A second Tab on an ambiguous command: the candidates, then the line again.
        case list([String])
        /// Ctrl-L: clear the screen, then the line again.
        case clearScreen
        /// Enter: the line, and whether it went into the history.
        case accept(String, remembered: Bool)
        /// Ctrl-C: the line is abandoned; a new prompt.
        case cancel
        /// Ctrl-D on an empty line.
        case endOfInput
        /// Ctrl-Z.
        case suspend
    }

    /// What Tab completes the first word against.
    let commands: [String]
    /// The most lines the history keeps.
    let historyLimit: Int
    private(set) var line: [Unicode.Scalar] = []
    /// Where the next character goes: 0...line.count.
    private(set) var cursor = 0
    /// The lines entered, oldest first.
    private(set) var history: [String]
    /// The history line shown: `history.count` is the line being edited.
    private(set) var historyIndex: Int
    /// Lines changed while shown, by history index (the line being edited
    /// among them), so that Up and Down bring them back as they were left.
    private var edits: [Int: [Unicode.Scalar]] = [:]
    private var decoder = TerminalKeyDecoder()
    private var lastKeyWasTab = false

    init(commands: [String], history: [String] = [], historyLimit: Int = 1000) {
        self.commands = commands
        self.historyLimit = historyLimit
        self.history = Array(history.suffix(historyLimit))
        historyIndex = self.history.count
    }

    var text: String { String(String.UnicodeScalarView(line)) }

    /// Feeds bytes from the terminal; the actions, in order (a byte inside a
    /// sequence, or one that changes nothing, adds none).
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [Action] {
        bytes.compactMap { feed($0) }
    }

    mutating func feed(_ byte: UInt8) -> Action? {
        guard let key = decoder.feed(byte) else { return nil }
        defer { lastKeyWasTab = key == .tab }
        return apply(key)
    }

    private mutating func apply(_ key: TerminalKey) -> Action? {
        switch key {
        case .insert(let scalar):
            insert([scalar])
            return .redraw
        case .left: return move(to: cursor - 1)
        case .right: return move(to: cursor + 1)
        case .wordLeft: return move(to: wordStart(before: cursor))
        case .wordRight: return move(to: wordEnd(after: cursor))
        case .home: return move(to: 0)
        case .end: return move(to: line.count)
        case .backspace: return cursor > 0 ? delete(cursor - 1..<cursor) : .bell
        case .delete: return cursor < line.count ? delete(cursor..<cursor + 1) : .bell
        case .killToEnd: return delete(cursor..<line.count)
        case .killToStart: return delete(0..<cursor)
        case .killWord: return delete(wordStart(before: cursor)..<cursor)
        case .up: return historyIndex > 0 ? show(historyIndex - 1) : .bell
        case .down: return historyIndex < history.count ? show(historyIndex + 1) : .bell
        case .tab: return complete()
        case .enter:
            let entered = text
            let remembered = remember(entered)
            reset()
            return .accept(entered, remembered: remembered)
        case .interrupt:
            reset()
            return .cancel
        case .endOrDelete:
            if line.isEmpty { reset(); return .endOfInput }
            return apply(.delete)
        case .clearScreen: return .clearScreen
        case .suspend: return .suspend
        }
    }

    /// Moves the cursor; a bell at either end of the line.
    private mutating func move(to position: Int) -> Action? {
        guard (0...line.count).contains(position) else { return .bell }
        guard position != cursor else { return nil }
        cursor = position
        return .redraw
    }

    private mutating func delete(_ range: Range<Int>) -> Action? {
        guard !range.isEmpty else { return nil }
        line.removeSubrange(range)
        cursor = range.lowerBound
        return .redraw
    }

    /// The start of the word before `position` (spaces before it skipped).
    private func wordStart(before position: Int) -> Int {
        var i = position
        while i > 0 && line[i - 1] == " " { i -= 1 }
        while i > 0 && line[i - 1] != " " { i -= 1 }
        return i
    }

    /// The end of the word after `position` (spaces before it skipped).
    private func wordEnd(after position: Int) -> Int {
        var i = position
        while i < line.count && line[i] == " " { i += 1 }
        while i < line.count && line[i] != " " { i += 1 }
        return i
    }

    /// Shows history line `index` (or the line being edited), keeping the
    /// one left as it was; the cursor at its end.
    private mutating func show(_ index: Int) -> Action {
        edits[historyIndex] = line
        historyIndex = index
        line = edits[index] ?? Array(history[index].unicodeScalars)
        cursor = line.count
        return .redraw
    }

    /// Keeps `entered` in the history unless it is blank or the last line
    /// again; whether it did.
    private mutating func remember(_ entered: String) -> Bool {
        guard entered.contains(where: { $0 != " " }), entered != history.last else { return false }
        history.append(entered)
        if history.count > historyLimit { history.removeFirst(history.count - historyLimit) }
        return true
    }

    /// An empty line at the end of the history.
    private mutating func reset() {
        line = []
        cursor = 0
        historyIndex = history.count
        edits = [:]
    }

    /// Tab: completes the first word, from its start to the cursor, against
    /// `commands`. One candidate: its rest and a space. More: their common
    /// prefix, if longer; if not, a bell, and on a second Tab in a row the
    /// list (as bash does).
    private mutating func complete() -> Action {
        let start = line.firstIndex { $0 != " " } ?? line.count
        guard start <= cursor, !line[start..<cursor].contains(" ") else { return .bell }
        let word = line[start..<cursor]
        let candidates = commands.map { Array($0.unicodeScalars) }.filter { $0.starts(with: word) }
        guard let first = candidates.first else { return .bell }
        var common = first.count
        for candidate in candidates.dropFirst() {
            common = zip(first.prefix(common), candidate).prefix { $0 == $1 }.count
        }
        if candidates.count == 1 {
            insert(first[word.count...])
            if cursor == line.count { insert([" "]) } else if line[cursor] == " " { cursor += 1 }
            return .redraw
        }
        if common > word.count {
            insert(first[word.count..<common])
            return .redraw
        }
        return lastKeyWasTab ? .list(candidates.map { String(String.UnicodeScalarView($0)) }.sorted()) : .bell
    }

    private mutating func insert(_ scalars: some Collection<Unicode.Scalar>) {
        line.insert(contentsOf: scalars, at: cursor)
        cursor += scalars.count
    }
}
