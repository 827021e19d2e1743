//! Counter predicates for `vtrace bisect --until`: a tiny expression language.

import VirtioCore

/// A predicate over the 16 counters: counter names, integer literals, `+ - *`,
/// comparisons (`== != < <= > >=`), `&& || !` and parentheses.
///
///     rx_packets < tx_packets - tx_dropped_no_rx_buffer
///     invalid_avail_idx_count > 0 || tx_chain_invalid >= 3
///
/// An expression nests at most ``maxDepth`` levels deep: the parser, the
/// evaluation, the description and the enum's own destruction all recurse
/// once per level, so an unbounded depth would overflow the stack.
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

    /// Most levels an expression may nest: each pair of parentheses, each `!`
    /// or unary `-`, and each binary operator over its operands is one level
    /// (`a + b + c` is two: `(a + b) + c`). Real predicates use a handful; 256
    /// keeps the parser's and the evaluation's recursion far inside a thread's stack.
    public static let maxDepth = 256

    /// Parses `text`.
    /// - Throws: ``ParseError`` at the column of the first token that does not
    ///   fit, including the one that nests past ``maxDepth``.
    public static func parse(_ text: String) throws(ParseError) -> CounterPredicate {
        var p = Parser(text)
        let e = try p.expression(0, depth: 0).tree
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

        static func tooDeep(_ column: Int) -> ParseError {
            ParseError(column: column, message: "expression nested too deeply (more than \(CounterPredicate.maxDepth) levels of parentheses and operators)")
        }

        /// Parses operators binding tighter than `minimum`, `depth` levels
        /// inside the whole expression. Returns the tree and its height; every
        /// tree returned satisfies `depth + height <= maxDepth`, so the
        /// recursion (one call per level) is bounded too.
        mutating func expression(_ minimum: Int, depth: Int) throws(ParseError) -> (tree: CounterPredicate, height: Int) {
            var (left, height) = try unary(depth: depth)
            while let t = peek(), let (power, op) = Self.binding[t.text], power > minimum {
                index += 1
                let right = try expression(power, depth: depth + 1)
                // A left-associative chain (`a + b + c ...`) deepens the tree
                // without deepening the recursion: its height is checked here.
                height = max(height, right.height) + 1
                if depth + height > CounterPredicate.maxDepth { throw Self.tooDeep(t.column) }
                left = .binary(op, left, right.tree)
            }
            return (left, height)
        }

        mutating func unary(depth: Int) throws(ParseError) -> (tree: CounterPredicate, height: Int) {
            guard let t = peek() else { throw ParseError(column: (tokens.last.map { $0.column + $0.text.count } ?? 1), message: "expression ends too early") }
            if depth >= CounterPredicate.maxDepth { throw Self.tooDeep(t.column) }
            index += 1
            switch t.text {
            case "!":
                let e = try unary(depth: depth + 1)
                return (.not(e.tree), e.height + 1)
            case "-":
                let e = try unary(depth: depth + 1)
                return (.binary(.sub, .literal(0), e.tree), e.height + 1)
            case "(":
                let e = try expression(0, depth: depth + 1)
                guard let close = peek(), close.text == ")" else {
                    throw ParseError(column: peek()?.column ?? (tokens.last.map { $0.column + $0.text.count } ?? t.column), message: "missing ')'")
                }
                index += 1
                return (e.tree, e.height + 1)
            default:
                if let first = t.text.utf8.first, first >= 0x30 && first <= 0x39 {
                    let digits = t.text.replacingUnderscores
                    let v = digits.hasPrefix("0x") ? Int64(digits.dropFirst(2), radix: 16) : Int64(digits)
                    guard let v else { throw ParseError(column: t.column, message: "'\(t.text)' is not a number") }
                    return (.literal(v), 1)
                }
                guard let c = NetCounter(name: t.text) else {
                    throw ParseError(column: t.column, message: "unknown counter '\(t.text)'")
                }
                return (.counter(c), 1)
            }
        }
    }
}

extension String {
    var replacingUnderscores: String { String(filter { $0 != "_" }) }
}
