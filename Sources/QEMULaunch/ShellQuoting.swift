import Foundation

/// Words as a POSIX shell reads them back.
public enum ShellQuoting {
    /// `word` unchanged when a shell would read it as is, else in single quotes.
    public static func quote(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "_@%+=:,./-".unicodeScalars.contains(c)
        }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `words` quoted and joined by spaces: one line a shell runs as the same argv.
    public static func line(_ words: [String]) -> String { words.map(quote).joined(separator: " ") }
}
