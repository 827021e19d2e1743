//! `vtrace debug`'s command line on a terminal: the terminal half of the line
//! editor (raw mode, reading keys, showing the line). What the keys do is
//! `LineEditing`; how the line is shown, `LineView`.
import Foundation

/// Reads lines with editing, history and Tab completion of `commands` when
/// standard input and output are both a terminal; otherwise exactly as
/// `Swift.readLine()` does (a pipe, a script, a test), with the prompt
/// printed only when standard input is a terminal.
///
/// The terminal is in raw mode only inside ``readLine(prompt:)``: it is put
/// back on return, at end of input, and by SIGINT, SIGTERM, SIGHUP, SIGQUIT
/// or `exit` arriving meanwhile. `VTRACE_HISTORY`, when set, names a file the
/// history is loaded from and appended to (the last 1000 lines).
final class LineEditor {
    private var editing: LineEditing
    private let onATerminal: Bool
    private let historyFile: LineHistoryFile?
    /// Bytes read after an Enter (pasted lines): the next lines' keys.
    private var readAhead: [UInt8] = []

    init(commands: [String]) {
        onATerminal = isatty(0) != 0 && isatty(1) != 0
        let named = ProcessInfo.processInfo.environment["VTRACE_HISTORY"] ?? ""
        historyFile = onATerminal && !named.isEmpty ? LineHistoryFile(path: named) : nil
        editing = LineEditing(commands: commands, history: historyFile?.load() ?? [])
    }

    /// The next line, without its newline; nil at the end of input.
    func readLine(prompt: String) -> String? {
        guard onATerminal, let raw = RawTerminal() else {
            if isatty(0) != 0 { print(prompt, terminator: ""); fflush(nil) }
            return Swift.readLine()
        }
        let entered = edit(prompt: prompt, raw)
        raw.restore()
        if let entered, entered.remembered, let historyFile {
            do { try historyFile.append(entered.line) } catch {
                printError("vtrace: VTRACE_HISTORY \(historyFile.path): \(error)")
            }
        }
        return entered?.line
    }

    private func edit(prompt: String, _ raw: RawTerminal) -> (line: String, remembered: Bool)? {
        var view = LineView()
        func redraw() {
            raw.write(view.render(prompt: prompt, line: editing.line, cursor: editing.cursor, width: raw.width))
        }
        redraw()
        while true {
            if readAhead.isEmpty {
                readAhead = raw.read()
                if readAhead.isEmpty { raw.write("\r\n"); return nil }   // end of input, or the terminal gone
            }
            let byte = readAhead.removeFirst()
            switch editing.feed(byte) {
            case nil: break
            case .redraw: redraw()
            case .bell: raw.write("\u{7}")
            case .list(let candidates):
                raw.write("\r\n" + LineView.columns(candidates, width: raw.width).map { $0 + "\r\n" }.joined())
                view = LineView()
                redraw()
            case .clearScreen:
                raw.write("\u{1B}[H\u{1B}[2J")
                redraw()
            case .accept(let line, let remembered):
                raw.write("\r\n")
                return (line, remembered)
            case .cancel:
                raw.write("^C\r\n")
                view = LineView()
                redraw()
            case .endOfInput:
                raw.write("\r\n")
                return nil
            case .suspend:
                raw.restore()
                raise(SIGTSTP)   // returns when the shell continues the process
                raw.enter()
                redraw()
            }
        }
    }
}
