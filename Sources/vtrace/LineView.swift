//! What the line editor writes to show a line: the prompt and the line on one
//! terminal row, scrolled sideways when it is wider than the row, and a list
//! of completions in columns.

/// The row the line being edited is shown on. A line wider than the row
/// scrolls: the part around the cursor is shown, and the view moves only as
/// far as the cursor needs. Columns are counted one per Unicode scalar.
struct LineView {
    /// The first character of the line shown.
    private(set) var offset = 0

    /// The bytes that show `prompt` and `line` with the cursor at `cursor`
    /// on a terminal `width` columns wide: carriage return, prompt, the part
    /// of the line that fits, erase to the end of the row, and the cursor put
    /// back in its column. The last column stays empty, so that no terminal
    /// wraps the row.
    mutating func render(prompt: String, line: [Unicode.Scalar], cursor: Int, width: Int) -> String {
        let promptWidth = prompt.unicodeScalars.count
        let room = max(1, width - promptWidth - 1)
        offset = min(offset, max(0, line.count + 1 - room))
        if cursor < offset { offset = cursor }
        if cursor >= offset + room { offset = cursor - room + 1 }
        let shown = line[offset..<min(line.count, offset + room)]
        let column = promptWidth + cursor - offset
        return "\r" + prompt + String(String.UnicodeScalarView(shown)) + "\u{1B}[K\r" + (column > 0 ? "\u{1B}[\(column)C" : "")
    }

    /// `items` in columns across `width`, each as wide as the widest item
    /// and two spaces, sorted down the columns as bash lists completions.
    static func columns(_ items: [String], width: Int) -> [String] {
        let columnWidth = (items.map(\.unicodeScalars.count).max() ?? 0) + 2
        let perRow = max(1, width / columnWidth)
        let rows = (items.count + perRow - 1) / perRow
        return (0..<rows).map { row in
            var text = ""
            for index in stride(from: row, to: items.count, by: rows) {
                let item = items[index]
                text += item + String(repeating: " ", count: columnWidth - item.unicodeScalars.count)
            }
            while text.hasSuffix(" ") { text.removeLast() }
            return text
        }
    }
}
