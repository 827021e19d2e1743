import Foundation

/// JSON output for the CLI (Foundation is fine here: not a hot path).
enum JSONText {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// An optional report field that is always printed: `null` when nil.
///
/// A synthesized `Encodable` leaves a nil optional's key out; a field that
/// says "none" (no event where a predicate holds, no NIC for the aggregate)
/// is written `"key" : null` instead, so a reader always finds the key.
@propertyWrapper
struct NullWhenNil<Value: Encodable>: Encodable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}
