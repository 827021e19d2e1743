//! The arguments of one scenario line: positionals, key=value pairs, flags.

import GuestDriver
import VirtioCore

/// A line's arguments, consumed by the operation's parser; whatever is left
/// over at the end is an error ("unknown key").
struct Arguments {
    let operation: String
    let tokens: [Token]
    let line: Int
    let file: String
    let nics: Int
    /// Column of the operation's first word, for errors about what is missing.
    let operationColumn: Int
    var positionals: [Token] = []
    var keys: [(key: String, value: Token, keyColumn: Int)] = []
    var flags: [Token] = []
    var consumedPositionals = 0
    /// The token of the last key taken, for error columns.
    var lastTaken: Token?

    /// Keys that may be given more than once.
    static let repeatable: Set<String> = ["desc", "desc_at", "avail_at", "used_at", "notready"]

    /// Words that are flags (no `=value`).
    static let flagWords: Set<String> = ["nokick", "nodriverok"]

    init(operation: String, column: Int, tokens: [Token], line: Int, state: ParseState) {
        self.operation = operation
        operationColumn = column
        self.tokens = tokens
        self.line = line
        file = state.file
        nics = state.setup.nics
    }

    func error(_ token: Token?, _ message: String) -> ScenarioError {
        ScenarioError(file: file, line: line, column: token?.column ?? operationColumn, message: message)
    }

    mutating func split() throws(ScenarioError) {
        for t in tokens {
            if let eq = t.text.firstIndex(of: "=") {
                let key = String(t.text[..<eq])
                let value = String(t.text[t.text.index(after: eq)...])
                guard !key.isEmpty else { throw error(t, "'=' without a key") }
                let valueColumn = t.column + key.count + 1
                guard !value.isEmpty else { throw error(Token(text: "", column: valueColumn), "'\(key)=' needs a value") }
                if !Arguments.repeatable.contains(key) && keys.contains(where: { $0.key == key }) {
                    throw error(t, "key '\(key)' given twice")
                }
                keys.append((key, Token(text: value, column: valueColumn), t.column))
            } else if Arguments.flagWords.contains(t.text) {
                flags.append(t)
            } else {
                if !keys.isEmpty || !flags.isEmpty {
                    throw error(t, "'\(t.text)': positional arguments must come before key=value arguments")
                }
                positionals.append(t)
            }
        }
    }

    /// Errors for anything the operation did not consume.
    func finish() throws(ScenarioError) {
        if let k = keys.first {
            throw error(Token(text: k.key, column: k.keyColumn), "unknown key '\(k.key)' for '\(operation)'")
        }
        if let f = flags.first { throw error(f, "'\(f.text)' does not apply to '\(operation)'") }
        if positionals.count > consumedPositionals {
            throw error(positionals[consumedPositionals], "unexpected argument '\(positionals[consumedPositionals].text)' for '\(operation)'")
        }
    }

    func has(_ key: String) -> Bool { keys.contains { $0.key == key } }

    func keyToken(_ key: String) -> Token? { keys.first { $0.key == key }.map { Token(text: $0.key, column: $0.keyColumn) } }

    mutating func take(_ key: String) -> Token? {
        guard let i = keys.firstIndex(where: { $0.key == key }) else { return nil }
        let v = keys.remove(at: i).value
        lastTaken = v
        return v
    }

    mutating func flag(_ word: String) -> Bool {
        guard let i = flags.firstIndex(where: { $0.text == word }) else { return false }
        flags.remove(at: i)
        return true
    }

    func positional(_ index: Int) -> Token? { index < positionals.count ? positionals[index] : nil }

    func number(_ t: Token) throws(ScenarioError) -> UInt64 {
        switch parseNumber(t.text) {
        case .none: throw error(t, "'\(t.text)' is not a number (decimal, 0x hex, optional K/M/G suffix)")
        case .some(nil): throw error(t, "'\(t.text)' is too large for 64 bits")
        case .some(.some(let v)): return v
        }
    }

    mutating func positionalNumber(_ index: Int, _ name: String) throws(ScenarioError) -> UInt64 {
        guard let t = positional(index) else {
            throw error(nil, "'\(operation)' needs \(name)")
        }
        consumedPositionals = max(consumedPositionals, index + 1)
        return try number(t)
    }

    mutating func positionalInt(_ index: Int, _ name: String, range: ClosedRange<Int>) throws(ScenarioError) -> Int {
        let v = try positionalNumber(index, name)
        guard v <= UInt64(range.upperBound), Int(v) >= range.lowerBound else {
            throw error(positional(index), "\(name) must be in \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(v)
    }

    mutating func optionalNumber(_ key: String) throws(ScenarioError) -> UInt64? {
        guard let t = take(key) else { return nil }
        return try number(t)
    }

    mutating func int(_ key: String, default value: Int, range: ClosedRange<Int>, required: Bool = false) throws(ScenarioError) -> Int {
        guard let t = take(key) else {
            if required { throw error(nil, "'\(operation)' needs \(key)=N") }
            return value
        }
        let v = try number(t)
        guard v <= UInt64(range.upperBound), Int(v) >= range.lowerBound else {
            throw error(t, "\(key)=\(t.text) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(v)
    }

    /// `key=N` that must be there.
    mutating func required(_ key: String) throws(ScenarioError) -> UInt64 {
        guard let t = take(key) else { throw error(nil, "'\(operation)' needs \(key)=N") }
        return try number(t)
    }

    /// `key=N` that must be there and fit 16 bits.
    mutating func uint16(_ key: String) throws(ScenarioError) -> UInt16 {
        UInt16(try int(key, default: 0, range: 0...Int(UInt16.max), required: true))
    }

    mutating func width() throws(ScenarioError) -> Int {
        let w = try int("width", default: 4, range: 1...8)
        guard [1, 2, 4, 8].contains(w) else { throw error(lastTaken, "width must be 1, 2, 4 or 8, got \(w)") }
        return w
    }

    /// HEXBYTES: the remaining positionals, each an even number of hex digits.
    mutating func hexBytes(from index: Int, _ name: String) throws(ScenarioError) -> [UInt8] {
        guard index < positionals.count else { throw error(nil, "'\(operation)' needs \(name)") }
        var out: [UInt8] = []
        for t in positionals[index...] { out += try hex(t) }
        consumedPositionals = positionals.count
        return out
    }

    func hex(_ t: Token) throws(ScenarioError) -> [UInt8] {
        var text = Substring(t.text)
        if text.hasPrefix("0x") { text = text.dropFirst(2) }
        guard text.count % 2 == 0, text.allSatisfy(\.isHexDigit) else {
            throw error(t, "'\(t.text)' is not hex bytes (pairs of hex digits, e.g. de ad be ef or deadbeef)")
        }
        var out: [UInt8] = []
        var i = text.startIndex
        while i < text.endIndex {
            let j = text.index(i, offsetBy: 2)
            out.append(UInt8(text[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// `desc=ADDR:LEN[:w]`, repeated.
    mutating func descriptors() throws(ScenarioError) -> [RawDescriptor] {
        var out: [RawDescriptor] = []
        while let t = take("desc") {
            let parts = t.text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 || (parts.count == 3 && parts[2] == "w") else {
                throw error(t, "desc must be ADDR:LEN or ADDR:LEN:w, got '\(t.text)'")
            }
            let address = try number(Token(text: String(parts[0]), column: t.column))
            let lengthColumn = t.column + parts[0].count + 1
            let length = try number(Token(text: String(parts[1]), column: lengthColumn))
            guard length <= UInt64(UInt32.max) else { throw error(Token(text: "", column: lengthColumn), "descriptor length must fit in 32 bits") }
            out.append(RawDescriptor(addr: address, len: UInt32(length), writable: parts.count == 3))
        }
        guard !out.isEmpty else { throw error(nil, "'chain' needs at least one desc=ADDR:LEN[:w]") }
        return out
    }

    /// `KEY=QUEUE:ADDR`, repeated (driver quirks).
    mutating func queueAddresses(_ key: String) throws(ScenarioError) -> [(Int, UInt64)] {
        var out: [(Int, UInt64)] = []
        while let t = take(key) {
            let parts = t.text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw error(t, "\(key) must be QUEUE:ADDR, got '\(t.text)'") }
            let queue = try number(Token(text: String(parts[0]), column: t.column))
            guard queue <= 65535 else { throw error(t, "queue \(queue) is out of range 0...65535") }
            out.append((Int(queue), try number(Token(text: String(parts[1]), column: t.column + parts[0].count + 1))))
        }
        return out
    }

    /// NAME=VALUE counter pairs; at least one.
    mutating func counterValues() throws(ScenarioError) -> [CounterValue] {
        var out: [CounterValue] = []
        while let k = keys.first {
            guard let counter = NetCounter(name: k.key) else {
                throw error(Token(text: k.key, column: k.keyColumn), "unknown counter '\(k.key)'; counters are \(NetCounter.allCases.map(\.name).joined(separator: ", "))")
            }
            let t = take(k.key)!
            out.append(CounterValue(counter: counter, value: try number(t)))
        }
        guard !out.isEmpty else { throw error(nil, "'\(operation)' needs at least one NAME=VALUE") }
        return out
    }
}
