import Foundation

/// The properties in an option's value: QEMU's `key=value,...` syntax (a
/// comma inside a value is written `,,`; the first item may leave out its
/// key, as in `-M microvm` or `-device virtio-net-pci,...`; a bare `name` is
/// `name=on`), or the JSON object `-object` and `-device` also accept.
public struct QEMUProperties: Equatable, Sendable {
    public struct Property: Equatable, Sendable {
        public var key: String
        public var value: String
    }

    /// In the order written; a later key overrides an earlier one (``subscript(_:)``).
    public var items: [Property]

    public init(_ items: [Property] = []) { self.items = items }

    /// Parses `value`; `impliedKey` is the key of a first item written without one.
    /// Throws a message for a JSON object that does not parse.
    public init(parsing value: String, impliedKey: String?) throws(QEMULaunchError) {
        if value.hasPrefix("{") {
            items = try Self.json(value)
            return
        }
        var items: [Property] = []
        var rest = Substring(value)
        var first = true
        while !rest.isEmpty || first {
            let (item, remainder) = Self.item(rest)
            rest = remainder
            if let eq = item.firstIndex(of: "=") {
                items.append(Property(key: String(item[..<eq]), value: String(item[item.index(after: eq)...])))
            } else if first, let impliedKey {
                items.append(Property(key: impliedKey, value: item))
            } else if !item.isEmpty {
                items.append(Property(key: item, value: "on"))
            }
            first = false
        }
        self.items = items
    }

    /// The value of `key` (the last one written), nil when absent.
    public subscript(_ key: String) -> String? { items.last { $0.key == key }?.value }

    /// `key` as a QEMU boolean (on/yes/true/y, off/no/false/n); nil when absent or neither.
    public func flag(_ key: String) -> Bool? { self[key].flatMap(Self.boolean) }

    public static func boolean(_ word: String) -> Bool? {
        switch word {
        case "on", "yes", "true", "y": return true
        case "off", "no", "false", "n": return false
        default: return nil
        }
    }

    /// One item at the start of `text` (`,,` unescaped), and what follows its comma.
    static func item(_ text: Substring) -> (String, Substring) {
        var item = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == "," {
                if next < text.endIndex && text[next] == "," {
                    item.append(",")
                    i = text.index(after: next)
                    continue
                }
                return (item, text[next...])
            }
            item.append(c)
            i = next
        }
        return (item, text[text.endIndex...])
    }

    /// A JSON object's scalar members as properties (true as "on", numbers in decimal).
    static func json(_ text: String) throws(QEMULaunchError) -> [Property] {
        enum Scalar: Decodable {
            case text(String), other
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let b = try? c.decode(Bool.self) { self = .text(b ? "on" : "off") }
                else if let n = try? c.decode(UInt64.self) { self = .text(String(n)) }
                else if let n = try? c.decode(Int64.self) { self = .text(String(n)) }
                else if let s = try? c.decode(String.self) { self = .text(s) }
                else { self = .other }
            }
        }
        guard let object = try? JSONDecoder().decode([String: Scalar].self, from: Data(text.utf8)) else {
            throw QEMULaunchError(text, "not a JSON object")
        }
        return object.keys.sorted().compactMap { key in
            if case .text(let v) = object[key] { return Property(key: key, value: v) }
            return nil
        }
    }
}
