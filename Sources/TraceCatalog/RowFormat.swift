//! Rows as text: an aligned table for people, CSV (RFC 4180) and JSON Lines
//! for machines; `catalog query` and `catalog export` write the same bytes.

import Foundation
import TraceAnalysis

/// The text forms of query rows.
public enum RowFormat: String, CaseIterable, Sendable {
    case table, csv, jsonl

    /// The CSV header line, or nil for the other forms.
    public func header(_ columns: [String]) -> String? {
        self == .csv ? columns.map(Self.csvField).joined(separator: ",") + "\n" : nil
    }

    /// One row as a CSV or JSON line (a table is rendered whole: ``table(_:cell:)``).
    public func line(_ row: [SQLValue], columns: [String]) -> String {
        switch self {
        case .csv: return row.map(Self.csvValue).joined(separator: ",") + "\n"
        case .jsonl, .table:
            return "{" + zip(columns, row).map { Self.jsonString($0.0) + ":" + Self.jsonValue($0.1) }.joined(separator: ",") + "}\n"
        }
    }

    /// An aligned table: numbers right, text left, NULL as `NULL`, then a
    /// row count. `cell` makes each text safe for where it is shown.
    public static func table(_ result: QueryResult, cell: (String) -> String = { $0 }) -> String {
        let texts = result.rows.map { $0.map { cell(Self.plain($0) ?? "NULL") } }
        var widths = result.columns.map { cell($0).count }
        for row in texts { for (i, t) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], t.count) } }
        func pad(_ text: String, _ width: Int, right: Bool) -> String {
            let space = String(repeating: " ", count: max(0, width - text.count))
            return right ? space + text : text + space
        }
        var out = zip(result.columns, widths).map { pad(cell($0.0), $0.1, right: false) }.joined(separator: "  ") + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for (values, row) in zip(result.rows, texts) {
            out += zip(zip(values, row), widths).map { pair, width in
                let numeric: Bool
                switch pair.0 { case .integer, .real: numeric = true; default: numeric = false }
                return pad(pair.1, width, right: numeric)
            }.joined(separator: "  ") + "\n"
        }
        out += "(\(result.rows.count) row\(result.rows.count == 1 ? "" : "s"))\n"
        return out
    }

    /// A value as plain text: nil for NULL, hex for a blob.
    static func plain(_ value: SQLValue) -> String? {
        switch value {
        case .null: return nil
        case .integer(let v): return String(v)
        case .real(let v): return v.isFinite ? "\(v)" : nil
        case .text(let v): return v
        case .blob(let v): return v.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
    }

    /// A CSV field: NULL empty, quoted when it holds a comma, quote or line break.
    static func csvValue(_ value: SQLValue) -> String { plain(value).map(csvField) ?? "" }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A JSON value: numbers as numbers, NULL (and a non-finite real) as null.
    static func jsonValue(_ value: SQLValue) -> String {
        switch value {
        case .null: return "null"
        case .integer(let v): return String(v)
        case .real(let v): return v.isFinite ? "\(v)" : "null"
        case .text, .blob: return jsonString(plain(value) ?? "")
        }
    }

    /// A JSON string literal (the one escaping vtrace's JSON output uses).
    static func jsonString(_ text: String) -> String { EventFormatting.jsonString(text) }
}
