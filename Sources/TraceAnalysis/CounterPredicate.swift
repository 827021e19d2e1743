//! Counter predicates for `vtrace bisect --until`: a tiny expression language.

import VirtioCore

/// A predicate over the 16 counters: counter names, integer literals, `+ - *`,
/// comparisons (`== != < <= > >=`), `&& || !` and parentheses.
///
///     rx_packets < tx_packets - tx_dropped_no_rx_buffer
///     invalid_avail_idx_count > 0 || tx_chain_invalid >= 3
public indirect enum CounterPredicate: Hashable, Sendable, CustomStringConvertible {
    case counter(NetCounter)
    case literal(Int64)
    case binary(Op, CounterPredicate, CounterPredicate)
    case not(CounterPredicate)

    public enum Op: String, Hashable, Sendable {
        case add = "+", sub = "-", mul = "*"
        case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">="
        case and = "&&", or = "||"
    }

    /// Why an expression does not parse, at a 1-based column.
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var column: Int
        public var message: String
        public var description: String { "column \(column): \(message)" }
    }

    /// Parses `text`.
    public static func parse(_ text: String) throws(ParseError) -> CounterPredicate {
        var p = Parser(text)
        let e = try p.expression(0)
        if let t = p.peek() { throw ParseError(column: t.column, message: "unexpected '\(t.text)'") }
        return e
    }

    /// The value: comparisons and logic give 1 or 0; arithmetic wraps.
    public func value(_ c: NetCounters) -> Int64 {
        switch self {
        case .counter(let n): return Int64(truncatingIfNeeded: c[n])
        case .literal(let v): return v
        case .not(let e): return e.value(c) == 0 ? 1 : 0
        case .binary(let op, let a, let b):
            switch op {
            case .and: return a.value(c) != 0 && b.value(c) != 0 ? 1 : 0
            case .or: return a.value(c) != 0 || b.value(c) != 0 ? 1 : 0
            default: break
            }
            let x = a.value(c), y = b.value(c)
            switch op {
            case .add: return x &+ y
            case .sub: return x &- y
            case .mul: return x &* y
            case .eq: return x == y ? 1 : 0
            case .ne: return x != y ? 1 : 0
            case .lt: return x < y ? 1 : 0
            case .le: return x <= y ? 1 : 0
            case .gt: return x > y ? 1 : 0
            case .ge: return x >= y ? 1 : 0
            case .and, .or: return 0
            }
        }
    }

    public func holds(_ c: NetCounters) -> Bool { value(c) != 0 }

    /// Whether the expression never decreases as counters grow (counters only
    /// ever grow): counters and non-negative literals under `+` and `*`.
    var nondecreasing: Bool {
        switch self {
        case .counter: return true
        case .literal(let v): return v >= 0
        case .binary(.add, let a, let b), .binary(.mul, let a, let b): return a.nondecreasing && b.nondecreasing
        default: return false
        }
    }

    /// Whether the predicate, once true, stays true as the trace goes on:
    /// `nondecreasing > or >= constant`, `constant < or <= nondecreasing`, and
    /// `&&`/`||` of such. Bisect needs this; anything else is scanned.
    public var staysTrueOnceTrue: Bool {
        switch self {
        case .binary(.gt, let a, .literal), .binary(.ge, let a, .literal): return a.nondecreasing
        case .binary(.lt, .literal, let b), .binary(.le, .literal, let b): return b.nondecreasing
        case .binary(.and, let a, let b), .binary(.or, let a, let b): return a.staysTrueOnceTrue && b.staysTrueOnceTrue
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .counter(let c): return c.name
        case .literal(let v): return String(v)
        case .not(let e): return "!(\(e))"
        case .binary(let op, let a, let b): return "(\(a) \(op.rawValue) \(b))"
        }
    }

    struct Token {
        var text: String
        var column: Int
    }

    struct Parser {
        var tokens: [Token] = []
        var index = 0
        var lexError: ParseError?

        init(_ text: String) {
            let chars = Array(text.utf8)
            var i = 0
            while i < chars.count {
                let c = chars[i]
                if c == 0x20 || c == 0x09 { i += 1; continue }
                let start = i
                if (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x5F {
                    while i < chars.count, (chars[i] >= 0x61 && chars[i] <= 0x7A) || (chars[i] >= 0x41 && chars[i] <= 0x5A) || chars[i] == 0x5F || (chars[i] >= 0x30 && chars[i] <= 0x39) { i += 1 }
                } else if c >= 0x30 && c <= 0x39 {
                    while i < chars.count, (chars[i] >= 0x30 && chars[i] <= 0x39) || (chars[i] >= 0x61 && chars[i] <= 0x66) || chars[i] == 0x78 || chars[i] == 0x5F { i += 1 }
                } else {
                    let two = i + 1 < chars.count ? String(decoding: chars[i...(i + 1)], as: UTF8.self) : ""
                    if ["==", "!=", "<=", ">=", "&&", "||"].contains(two) { i += 2 } else { i += 1 }
                }
                tokens.append(Token(text: String(decoding: chars[start..<i], as: UTF8.self), column: start + 1))
            }
        }

        func peek() -> Token? { index < tokens.count ? tokens[index] : nil }

        static let binding: [String: (Int, Op)] = [
            "||": (1, .or), "&&": (2, .and), "==": (3, .eq), "!=": (3, .ne), "<": (4, .lt), "<=": (4, .le),
            ">": (4, .gt), ">=": (4, .ge), "+": (5, .add), "-": (5, .sub), "*": (6, .mul),
        ]

        mutating func expression(_ minimum: Int) throws(ParseError) -> CounterPredicate {
            var left = try unary()
            while let t = peek(), let (power, op) = Self.binding[t.text], power > minimum {
                index += 1
                let right = try expression(power)
                left = .binary(op, left, right)
            }
            return left
        }

        mutating func unary() throws(ParseError) -> CounterPredicate {
            guard let t = peek() else { throw ParseError(column: (tokens.last.map { $0.column + $0.text.count } ?? 1), message: "expression ends too early") }
            index += 1
            switch t.text {
            case "!": return .not(try unary())
            case "-": return .binary(.sub, .literal(0), try unary())
            case "(":
                let e = try expression(0)
                guard let close = peek(), close.text == ")" else {
                    throw ParseError(column: peek()?.column ?? (tokens.last.map { $0.column + $0.text.count } ?? t.column), message: "missing ')'")
                }
                index += 1
                return e
            default:
                if let first = t.text.utf8.first, first >= 0x30 && first <= 0x39 {
                    let digits = t.text.replacingUnderscores
                    let v = digits.hasPrefix("0x") ? Int64(digits.dropFirst(2), radix: 16) : Int64(digits)
                    guard let v else { throw ParseError(column: t.column, message: "'\(t.text)' is not a number") }
                    return .literal(v)
                }
                guard let c = NetCounter(name: t.text) else {
                    throw ParseError(column: t.column, message: "unknown counter '\(t.text)'")
                }
                return .counter(c)
            }
        }
    }
}

extension String {
    var replacingUnderscores: String { String(filter { $0 != "_" }) }
}
