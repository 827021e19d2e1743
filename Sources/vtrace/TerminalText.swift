//! Text from a trace or a scenario, made safe to print on a terminal.

/// `text` with every character a terminal would act on written out instead:
/// C0 controls (ESC as `\e`, others as `\xNN`; newline kept when
/// `keepNewlines`), DEL, C1 controls, and the bidirectional overrides and
/// isolates that reorder what is shown (`\u{202E}`). A downloaded trace's
/// header or a scenario file then cannot clear the screen, retitle the
/// window or hide text. `--json` output is JSON-escaped instead.
func terminalSafe(_ text: String, keepNewlines: Bool = false) -> String {
    func acts(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        if u == "\n" { return !keepNewlines }
        return v < 0x20 || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
    }
    guard text.unicodeScalars.contains(where: acts) else { return text }
    var out = ""
    for u in text.unicodeScalars {
        guard acts(u) else { out.unicodeScalars.append(u); continue }
        switch u {
        case "\u{1B}": out += "\\e"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            let hex = String(u.value, radix: 16)
            out += u.value <= 0xFF ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex : "\\u{\(hex)}"
        }
    }
    return out
}
