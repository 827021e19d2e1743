//! Standard input's terminal in raw mode for the line editor, and the
//! guarantee that it is never left that way.
import Foundation

// What the signal handlers and the exit hook restore: C handlers cannot
// capture, so these are globals, written only while no handler can run on
// them (before the flag is set, and by the flag's owner).
nonisolated(unsafe) private var settingsBeforeRaw = termios()
nonisolated(unsafe) private var terminalIsRaw: Int32 = 0

/// Puts the terminal's settings back if it is raw. Async-signal-safe.
private func restoreTerminal() {
    guard terminalIsRaw != 0 else { return }
    terminalIsRaw = 0
    tcsetattr(0, TCSANOW, &settingsBeforeRaw)
}

/// A signal that ends the process while the terminal is raw: the terminal
/// put back, then the signal's default action.
private func restoreTerminalAndResignal(_ signal: Int32) {
    restoreTerminal()
    Glibc.signal(signal, SIG_DFL)
    raise(signal)
}

/// Standard input's terminal, raw (no echo, no line discipline, no signal
/// keys, no output processing: every key's bytes as typed) from `init` to
/// ``restore()``, and between ``enter()`` and ``restore()``.
final class RawTerminal {
    /// The signals whose default action ends the process, handled while raw.
    private static let endingSignals = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]
    /// `exit` (from anywhere) puts the terminal back too.
    private static let exitHook: Void = { atexit { restoreTerminal() } }()

    private var previousHandlers: [Int32: __sighandler_t?] = [:]

    /// Raw mode on standard input's terminal; nil when it has none.
    init?() {
        fflush(nil)   // what was printed before the prompt goes first
        guard tcgetattr(0, &settingsBeforeRaw) == 0 else { return nil }
        Self.exitHook
        enter()
    }

    func enter() {
        var raw = settingsBeforeRaw
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_oflag &= ~tcflag_t(OPOST)
        raw.c_cflag |= tcflag_t(CS8)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1   // read returns each key as it comes
            cc[Int(VTIME)] = 0
        }
        for signal in Self.endingSignals {
            let previous = Glibc.signal(signal, restoreTerminalAndResignal)
            // An ignored signal (nohup) stays ignored.
            if unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) {
                Glibc.signal(signal, previous)
            } else {
                previousHandlers[signal] = previous
            }
        }
        terminalIsRaw = 1
        tcsetattr(0, TCSANOW, &raw)   // TCSANOW: keys typed ahead are kept
    }

    /// The terminal as it was, and the signals' handlers.
    func restore() {
        restoreTerminal()
        for (signal, handler) in previousHandlers { Glibc.signal(signal, handler) }
        previousHandlers = [:]
    }

    /// The bytes available, waiting for at least one; none at the end of
    /// input or on an error.
    func read() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            return Array(buffer.prefix(max(0, n)))
        }
    }

    /// Writes `text` to standard output.
    func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Standard output's width in columns (80 when it cannot be had).
    var width: Int {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}
