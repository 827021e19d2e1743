import Foundation

/// JSON output for the CLI (Foundation is fine here: not a hot path).
///
/// Keys are snake_case (`file_bytes`, `after_a`), as jq users and most CLIs
/// expect. Until vtrace 0.3 every object also keeps the camelCase key it had
/// before 0.2 (`fileBytes`, `afterA`) with the same value: README, "JSON output".
enum JSONText {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let object = try JSONSerialization.jsonObject(with: try encoder.encode(value), options: [.fragmentsAllowed])
        let data = try JSONSerialization.data(withJSONObject: withSnakeCaseKeys(object), options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
        return String(decoding: data, as: UTF8.self)
    }

    /// `object` with a snake_case twin beside every camelCase key, at every depth.
    static func withSnakeCaseKeys(_ object: Any) -> Any {
        if let dictionary = object as? [String: Any] {
            var out: [String: Any] = [:]
            for (key, value) in dictionary {
                let converted = withSnakeCaseKeys(value)
                out[key] = converted
                out[snakeCase(key)] = converted
            }
            return out
        }
        if let array = object as? [Any] { return array.map(withSnakeCaseKeys) }
        return object
    }

    /// `fileBytes` → `file_bytes`, `eventA` → `event_a`, `cutAccess` →
    /// `cut_access`; names without capitals (`tx_packets`, `nic0`) unchanged.
    static func snakeCase(_ key: String) -> String {
        guard key.contains(where: \.isUppercase) else { return key }
        var out = ""
        let characters = Array(key)
        for (i, c) in characters.enumerated() {
            if c.isUppercase, i > 0 {
                let previous = characters[i - 1]
                let nextIsLower = i + 1 < characters.count && characters[i + 1].isLowercase
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && nextIsLower) { out += "_" }
            }
            out += c.lowercased()
        }
        return out
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
