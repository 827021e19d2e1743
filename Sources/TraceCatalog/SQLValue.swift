//! One SQLite value, as stored and as read back.

/// A value in a SQLite row: SQLite's five storage classes.
public enum SQLValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// An unsigned count or event number; SQLite's integers are signed 64-bit,
    /// so values past `Int64.max` (never reached by a counter in practice) are clamped.
    public static func count<T: BinaryInteger>(_ value: T) -> SQLValue { .integer(Int64(clamping: value)) }

    /// `.null` for nil.
    public static func count<T: BinaryInteger>(_ value: T?) -> SQLValue { value.map { count($0) } ?? .null }

    /// `.null` for nil.
    public static func string(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }

    /// The integer, or nil for another class.
    public var integerValue: Int64? {
        if case .integer(let v) = self { return v }
        return nil
    }

    /// The text, or nil for another class.
    public var textValue: String? {
        if case .text(let v) = self { return v }
        return nil
    }
}
