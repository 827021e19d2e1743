//! The bytes a terminal in raw mode sends for a key, decoded into the keys
//! `LineEditing` acts on.

/// A key the line editor acts on.
enum TerminalKey: Equatable {
    case insert(Unicode.Scalar)
    case left, right, wordLeft, wordRight, home, end
    case backspace, delete, killToEnd, killToStart, killWord
    case up, down, tab, enter
    /// Ctrl-C.
    case interrupt
    /// Ctrl-D: end of input on an empty line, Delete otherwise.
    case endOrDelete
    /// Ctrl-L.
    case clearScreen
    /// Ctrl-Z.
    case suspend
}

/// Turns terminal input, a byte at a time, into keys: ASCII and UTF-8 text,
/// control characters, and the escape sequences of xterm, VT100 (application
/// mode, `ESC O`), rxvt and the Linux console for arrows, Home, End and
/// Delete. Every other escape sequence is swallowed whole, so an unknown key
/// (F5, Page Up, Insert) never leaves bytes in the line.
struct TerminalKeyDecoder {
    /// The escape sequence so far, from its ESC.
    private var sequence: [UInt8] = []
    /// The UTF-8 sequence so far, and how many bytes it has in all.
    private var utf8: [UInt8] = []
    private var utf8Length = 0

    /// A control sequence this long is not one a key sends: the rest of it,
    /// to its final byte, is swallowed without being kept, and it names no key.
    private static let longestSequence = 16

    /// The key `byte` completes, or nil (the middle of a sequence, or a byte
    /// that is no key).
    mutating func feed(_ byte: UInt8) -> TerminalKey? {
        if !sequence.isEmpty {
            switch continueSequence(byte) {
            case .inside: return nil
            case .ended(let key): sequence = []; return key
            case .notPart: sequence = []   // dropped, and the byte read afresh
            }
        }
        if utf8Length > 0 {
            if (0x80...0xBF).contains(byte) { return continueUTF8(byte) }
            utf8 = []; utf8Length = 0   // broken: dropped, and the byte read afresh
        }
        switch byte {
        case 0x1B: sequence = [byte]; return nil
        case 0x20...0x7E: return .insert(Unicode.Scalar(byte))
        case 0xC2...0xDF: utf8 = [byte]; utf8Length = 2; return nil
        case 0xE0...0xEF: utf8 = [byte]; utf8Length = 3; return nil
        case 0xF0...0xF4: utf8 = [byte]; utf8Length = 4; return nil
        default: return Self.controlKeys[byte]
        }
    }

    /// The keys of control characters (C0 and DEL); the others are none.
    private static let controlKeys: [UInt8: TerminalKey] = [
        0x01: .home, 0x02: .left, 0x03: .interrupt, 0x04: .endOrDelete,        // Ctrl-A, B, C, D
        0x05: .end, 0x06: .right, 0x08: .backspace, 0x7F: .backspace,          // Ctrl-E, F, H; DEL
        0x09: .tab, 0x0A: .enter, 0x0D: .enter, 0x0B: .killToEnd,              // Tab, LF, CR, Ctrl-K
        0x0C: .clearScreen, 0x0E: .down, 0x10: .up, 0x15: .killToStart,       // Ctrl-L, N, P, U
        0x17: .killWord, 0x1A: .suspend,                                       // Ctrl-W, Z
    ]

    private mutating func continueUTF8(_ byte: UInt8) -> TerminalKey? {
        utf8.append(byte)
        guard utf8.count == utf8Length else { return nil }
        defer { utf8 = []; utf8Length = 0 }
        var bytes = utf8.makeIterator()
        var decoder = UTF8()
        guard case .scalarValue(let scalar) = decoder.decode(&bytes), scalar.value >= 0xA0 else { return nil }
        return .insert(scalar)
    }

    /// What a byte does to the escape sequence begun.
    private enum SequenceStep {
        case inside
        /// The sequence ends with this byte: the key it names, if any.
        case ended(TerminalKey?)
        /// A control character or a non-ASCII byte: no part of the sequence.
        case notPart
    }

    /// The byte after ESC, ESC [ or ESC O.
    private mutating func continueSequence(_ byte: UInt8) -> SequenceStep {
        switch sequence.count == 1 ? nil : sequence[1] {
        case nil:
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "O"): sequence.append(byte); return .inside
            case 0x1B: return .inside   // ESC ESC: the second one begins the sequence
            case UInt8(ascii: "b"): return .ended(.wordLeft)    // Alt-B
            case UInt8(ascii: "f"): return .ended(.wordRight)   // Alt-F
            case 0x20...0x7E: return .ended(nil)   // Alt and another key: not one of ours
            default: return .notPart
            }
        case UInt8(ascii: "O"):
            guard (0x40...0x7E).contains(byte) else { return .notPart }
            return .ended(Self.cursorKey(final: byte, modifier: nil))
        default:
            switch byte {
            case 0x20...0x3F:   // parameters and intermediates
                if sequence.count < Self.longestSequence { sequence.append(byte) }
                return .inside
            case 0x40...0x7E:
                guard sequence.count < Self.longestSequence else { return .ended(nil) }
                let parameters = String(decoding: sequence.dropFirst(2), as: UTF8.self).split(separator: ";", omittingEmptySubsequences: false)
                guard byte == UInt8(ascii: "~") else {
                    return .ended(Self.cursorKey(final: byte, modifier: parameters.count > 1 ? Int(parameters[1]) : nil))
                }
                switch parameters.first {
                case "1", "7": return .ended(.home)
                case "4", "8": return .ended(.end)
                case "3": return .ended(.delete)
                default: return .ended(nil)
                }
            default:
                return .notPart
            }
        }
    }

    /// ESC [ or ESC O and a final letter: the arrows, Home and End. With the
    /// Alt or Ctrl modifier (xterm's `;3`, `;5`), Left and Right move by word.
    private static func cursorKey(final: UInt8, modifier: Int?) -> TerminalKey? {
        let byWord = modifier.map { [3, 5, 7].contains($0) } ?? false
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return byWord ? .wordRight : .right
        case UInt8(ascii: "D"): return byWord ? .wordLeft : .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        default: return nil
        }
    }
}
