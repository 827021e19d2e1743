//! Parses scenario text into checked operations, or fails at a line and column.

import GuestDriver
import VirtioCore

/// The scenario language's parser. Limits keep hostile files cheap: a line
/// may hold at most ``maxLineLength`` bytes, a file ``maxFileSize``.
public enum ScenarioParser {
    public static let maxLineLength = 64 * 1024
    public static let maxFileSize = 16 << 20
    public static let maxRepeat = 100_000_000

    /// Parses `bytes` (the contents of `file`).
    public static func parse(file: String, bytes: [UInt8]) throws(ScenarioError) -> Scenario {
        if bytes.count > maxFileSize {
            throw ScenarioError(file: file, line: 0, column: 0, message: "file is \(bytes.count) bytes; scenarios are limited to \(maxFileSize)")
        }
        var state = ParseState(file: file)
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            try state.parseLine(bytes[start..<end], number: lineNumber)
            start = end + 1
        }
        return Scenario(file: file, summary: state.summary, setup: state.setup, steps: state.steps)
    }

    /// Parses a string (tests, examples).
    public static func parse(file: String, text: String) throws(ScenarioError) -> Scenario {
        try parse(file: file, bytes: Array(text.utf8))
    }
}

/// A token of a line: its text and 1-based column.
struct Token {
    var text: String
    var column: Int
}

struct ParseState {
    let file: String
    var setup = ScenarioSetup()
    var steps: [ScenarioStep] = []
    var summary: String?
    var sawOperation = false
    var sawMemorySize = false
    /// Per NIC: has `driver init` run (and no `reset` since)?
    var driverReady: [Bool] = [false]
    var sawAnyLine = false

    init(file: String) { self.file = file }

    func error(_ line: Int, _ column: Int, _ message: String) -> ScenarioError {
        ScenarioError(file: file, line: line, column: column, message: message)
    }

    func number(_ t: Token, _ line: Int) throws(ScenarioError) -> UInt64 {
        switch parseNumber(t.text) {
        case .none: throw error(line, t.column, "'\(t.text)' is not a number (decimal, 0x hex, optional K/M/G suffix)")
        case .some(nil): throw error(line, t.column, "'\(t.text)' is too large for 64 bits")
        case .some(.some(let v)): return v
        }
    }

    mutating func parseLine(_ raw: ArraySlice<UInt8>, number: Int) throws(ScenarioError) {
        if raw.count > ScenarioParser.maxLineLength {
            throw error(number, ScenarioParser.maxLineLength + 1, "line is \(raw.count) bytes long; the limit is \(ScenarioParser.maxLineLength)")
        }
        // Bytes: printable ASCII, tab, and a trailing CR; anything else is not a scenario.
        var tokens: [Token] = []
        var current: [UInt8] = []
        var tokenStart = 0
        var column = 0
        var comment: String?
        for (i, b) in raw.enumerated() {
            column = i + 1
            if b == UInt8(ascii: "#") {
                comment = String(decoding: raw[(raw.startIndex + i + 1)...], as: UTF8.self)
                break
            }
            if b == 0x0D && i == raw.count - 1 { break }
            if b == 0x20 || b == 0x09 {
                if !current.isEmpty { tokens.append(Token(text: String(decoding: current, as: UTF8.self), column: tokenStart)) }
                current = []
                continue
            }
            guard b > 0x20 && b < 0x7F else {
                throw error(number, column, "unexpected byte 0x\(String(b, radix: 16)) (scenario files are text)")
            }
            if current.isEmpty { tokenStart = column }
            current.append(b)
        }
        if !current.isEmpty { tokens.append(Token(text: String(decoding: current, as: UTF8.self), column: tokenStart)) }
        if let comment, tokens.isEmpty, !sawAnyLine, summary == nil {
            let text = comment.trimmingSpaces
            if !text.isEmpty { summary = text }
        }
        guard !tokens.isEmpty else { return }
        sawAnyLine = true
        try parseOperation(tokens, line: number)
    }

    mutating func parseOperation(_ allTokens: [Token], line: Int) throws(ScenarioError) {
        var tokens = allTokens
        var repeatCount = 1
        if tokens[0].text == "repeat" {
            guard tokens.count >= 3 else { throw error(line, tokens[0].column, "'repeat' takes a count and an operation: repeat N OPERATION ...") }
            let n = try number(tokens[1], line)
            guard n >= 1 && n <= UInt64(ScenarioParser.maxRepeat) else {
                throw error(line, tokens[1].column, "repeat count must be in 1...\(ScenarioParser.maxRepeat)")
            }
            repeatCount = Int(n)
            tokens.removeFirst(2)
        }
        let head = tokens[0]
        let two = tokens.count > 1 ? head.text + " " + tokens[1].text : head.text
        let name: String
        let rest: [Token]
        if ScenarioGrammar.twoWord.contains(two) {
            name = two
            rest = Array(tokens.dropFirst(2))
        } else if ScenarioGrammar.oneWord.contains(head.text) {
            name = head.text
            rest = Array(tokens.dropFirst())
        } else if ScenarioGrammar.firstWords.contains(head.text) {
            let column = tokens.count > 1 ? tokens[1].column : head.column + head.text.count
            let options = ScenarioGrammar.twoWord.filter { $0.hasPrefix(head.text + " ") }.sorted().joined(separator: ", ")
            throw error(line, column, "unknown operation '\(two)'; '\(head.text)' takes: \(options)")
        } else {
            throw error(line, head.column, "unknown operation '\(head.text)' (see docs/scenarios.md)")
        }
        var args = Arguments(operation: name, column: head.column, tokens: rest, line: line, state: self)
        try args.split()
        let isSetup = ["device", "memory", "memory map", "state"].contains(name)
        if isSetup {
            if repeatCount != 1 { throw error(line, allTokens[0].column, "'repeat' cannot apply to set-up") }
            if sawOperation {
                throw error(line, head.column, "set-up ('\(name)') must come before every other operation")
            }
            try parseSetup(name, &args)
            try args.finish()
            return
        }
        sawOperation = true
        let nic = try args.int("nic", default: 0, range: 0...(setup.nics - 1))
        let operation = try parseAction(name, &args, nic: nic)
        try args.finish()
        if operation.needsDriver && !driverReady[nic] {
            throw error(line, head.column, "'\(name)' needs the driver: run 'driver init' first\(setup.nics > 1 ? " for nic=\(nic)" : "")")
        }
        switch operation {
        case .driverInit: driverReady[nic] = true
        case .reset: driverReady[nic] = false
        case .mmioWrite(let offset, let value, _) where offset == MMIORegister.status.rawValue && value == 0:
            driverReady[nic] = false
        default: break
        }
        steps.append(ScenarioStep(line: line, column: head.column, nic: nic, repeatCount: repeatCount, operation: operation))
    }

    mutating func parseSetup(_ name: String, _ a: inout Arguments) throws(ScenarioError) {
        switch name {
        case "device":
            setup.nics = try a.int("nics", default: 1, range: 1...64)
            setup.queuePairs = try a.int("queue_pairs", default: 1, range: 1...NetConfig.maxQueuePairs)
            setup.queueMaxSize = UInt16(try a.int("queue_max", default: Int(NetLayout.queueMaxSize), range: 1...32768))
            if let mac = a.take("mac") {
                guard let parsed = MACAddress(mac.text) else { throw a.error(mac, "bad MAC address '\(mac.text)' (want aa:bb:cc:dd:ee:ff)") }
                setup.mac = parsed
            }
            driverReady = Array(repeating: false, count: setup.nics)
        case "memory":
            if sawMemorySize { throw a.error(nil, "'memory SIZE' given twice") }
            sawMemorySize = true
            setup.memorySize = try a.positionalNumber(0, "SIZE")
            try checkMemory(a)
        case "state":
            try parseState(&a)
        default:  // memory map
            let base = try a.positionalNumber(0, "ADDR")
            let size = try a.positionalNumber(1, "SIZE")
            setup.extraRegions.append(MemoryRegion(base: base, size: size))
            try checkMemory(a)
        }
    }

    /// Rejects a memory layout GuestRAM would refuse, at the line that made it so.
    func checkMemory(_ a: Arguments) throws(ScenarioError) {
        do throws(MemoryLayoutError) {
            _ = try GuestRAM.checkLayout(setup.regions)
        } catch {
            throw a.error(nil, error.description)
        }
    }

    func parseAction(_ name: String, _ a: inout Arguments, nic: Int) throws(ScenarioError) -> ScenarioOperation {
        switch name {
        case "mmio write":
            let offset = try a.positionalNumber(0, "OFFSET")
            let value = try a.positionalNumber(1, "VALUE")
            let width = try a.width()
            if width < 8 && value >> (8 * UInt64(width)) != 0 {
                throw a.error(a.positional(1), "value 0x\(String(value, radix: 16)) does not fit in \(width) byte\(width == 1 ? "" : "s")")
            }
            return .mmioWrite(offset: offset, value: value, width: width)
        case "mmio read":
            let offset = try a.positionalNumber(0, "OFFSET")
            let width = try a.width()
            let expect = try a.optionalNumber("expect")
            return .mmioRead(offset: offset, width: width, expect: expect)
        case "mem write":
            let address = try a.positionalNumber(0, "ADDR")
            let bytes = try a.hexBytes(from: 1, "HEXBYTES")
            return .memWrite(address: address, bytes: bytes)
        case "mem expect":
            let address = try a.positionalNumber(0, "ADDR")
            let bytes = try a.hexBytes(from: 1, "HEXBYTES")
            return .memExpect(address: address, bytes: bytes)
        case "mem fill":
            let address = try a.positionalNumber(0, "ADDR")
            let length = try a.positionalNumber(1, "LEN")
            let byte = try a.positionalNumber(2, "BYTE")
            guard byte <= 0xFF else { throw a.error(a.positional(2), "BYTE must be in 0...255") }
            guard length <= 1 << 32 else { throw a.error(a.positional(1), "LEN must be at most 4G") }
            return .memFill(address: address, length: length, byte: UInt8(byte))
        case "driver init":
            var features: UInt64?
            if let t = a.take("features") {
                var text = t.text.lowercased()
                if text.hasPrefix("0x") { text.removeFirst(2) }
                guard !text.isEmpty, text.count <= 16, let v = UInt64(text, radix: 16) else {
                    throw a.error(t, "features must be a 64-bit hex number, got '\(t.text)'")
                }
                features = v
            }
            let qsize = try a.int("qsize", default: 256, range: 1...32768)
            guard qsize & (qsize - 1) == 0 else { throw a.error(a.lastTaken, "qsize must be a power of two, got \(qsize)") }
            var quirks = DriverQuirks()
            for (key, path) in [("desc_at", \DriverQuirks.descTable), ("avail_at", \.availRing), ("used_at", \.usedRing)] {
                for (queue, address) in try a.queueAddresses(key) { quirks[keyPath: path][queue] = address }
            }
            while let t = a.take("notready") {
                let q = try a.number(t)
                guard q <= 65535 else { throw a.error(t, "notready=\(t.text) is out of range 0...65535") }
                quirks.leaveNotReady.insert(Int(q))
            }
            return .driverInit(features: features, queueSize: UInt16(qsize), quirks: quirks, driverOK: !a.flag("nodriverok"))
        case "bind memory":
            return .bindMemory(true)
        case "unbind memory":
            return .bindMemory(false)
        case "rx post":
            return .rxPost(pair: try a.int("pair", default: 0, range: 0...255), count: try a.int("count", default: 1, range: 0...32768),
                           length: try a.int("len", default: 2048, range: 0...(1 << 22)),
                           descriptors: try a.int("descs", default: 1, range: 1...32768))
        case "tx send":
            let pair = try a.int("pair", default: 0, range: 0...255)
            let count = try a.int("count", default: 1, range: 0...32768)
            let length = try a.int("len", default: 64, range: 0...(1 << 22))
            let descs = try a.int("descs", default: 1, range: 1...32768)
            var fill: UInt8?
            if a.has("fill") { fill = UInt8(try a.int("fill", default: 0, range: 0...255)) }
            return .txSend(pair: pair, count: count, length: length, descriptors: descs, fill: fill, kick: !a.flag("nokick"))
        case "chain":
            let queue = try a.int("queue", default: -1, range: 0...65535, required: true)
            let descs = try a.descriptors()
            return .chain(queue: queue, descriptors: descs, kick: !a.flag("nokick"))
        case "avail idx":
            return .availIdx(queue: try a.int("queue", default: -1, range: 0...65535, required: true),
                             value: UInt16(try a.int("value", default: -1, range: 0...65535, required: true)))
        case "kick":
            return .kick(queue: UInt32(try a.int("queue", default: -1, range: 0...Int(UInt32.max), required: true)))
        case "ctrl mq":
            return .ctrlMQ(pairs: UInt16(try a.int("pairs", default: -1, range: 0...65535, required: true)), kick: !a.flag("nokick"))
        case "reset":
            return .reset
        case "vhost features":
            return .vhost(.setFeatures(try a.positionalNumber(0, "FEATURES")))
        case "vhost ring-size":
            return .vhost(.setRingSize(queue: try a.uint16("queue"), size: try a.uint16("size")))
        case "vhost ring-addresses":
            return .vhost(.setRingAddresses(queue: try a.uint16("queue"), desc: try a.required("desc"), avail: try a.required("avail"),
                                            used: try a.required("used")))
        case "vhost ring-base":
            return .vhost(.setRingBase(queue: try a.uint16("queue"), base: try a.uint16("base")))
        case "vhost ring-enable":
            return .vhost(.enableRing(queue: try a.uint16("queue"), enabled: try a.int("enabled", default: 1, range: 0...1) == 1))
        case "vhost kick":
            return .vhost(.kick(queue: try a.uint16("queue")))
        case "vhost ring-stop":
            return .vhost(.stopRing(queue: try a.uint16("queue")))
        case "vhost reset":
            return .vhost(.reset)
        case "irq ack":
            let v = try a.optionalNumber("value")
            if let v, v > UInt64(UInt32.max) { throw a.error(a.lastTaken, "value must fit in 32 bits") }
            return .irqAck(value: v.map { UInt32($0) })
        case "expect counters", "expect aggregate":
            let values = try a.counterValues()
            return name == "expect counters" ? .expectCounters(values) : .expectAggregate(values)
        case "expect used":
            let queue = try a.int("queue", default: -1, range: 0...65535, required: true)
            if a.has("idx") {
                if a.has("entry") { throw a.error(a.keyToken("entry"), "'expect used' takes idx= or entry=, not both") }
                return .expectUsedIdx(queue: queue, value: UInt16(try a.int("idx", default: 0, range: 0...65535)))
            }
            guard a.has("entry") else { throw a.error(nil, "'expect used' needs idx=V or entry=I") }
            let entry = try a.int("entry", default: 0, range: 0...Int(Int32.max))
            let id = try a.optionalNumber("id")
            let len = try a.optionalNumber("len")
            if let id, id > UInt64(UInt32.max) { throw a.error(a.keyToken("id"), "id must fit in 32 bits") }
            if let len, len > UInt64(UInt32.max) { throw a.error(a.keyToken("len"), "len must fit in 32 bits") }
            return .expectUsedEntry(queue: queue, entry: entry, id: id.map { UInt32($0) }, len: len.map { UInt32($0) })
        case "expect status":
            return .expectStatus(try a.positionalNumber(0, "VALUE"))
        case "expect interrupt":
            return .expectInterrupt(try a.positionalNumber(0, "VALUE"))
        case "expect pairs":
            return .expectPairs(UInt16(try a.positionalInt(0, "N", range: 0...65535)))
        case "expect poisoned":
            let queue = try a.int("queue", default: -1, range: 0...65535, required: true)
            return .expectPoisoned(queue: queue, poisoned: try a.int("value", default: 1, range: 0...1) == 1)
        case "expect rx":
            let pair = try a.int("pair", default: 0, range: 0...255)
            let entry = try a.int("entry", default: -1, range: 0...Int(Int32.max), required: true)
            guard let frame = a.take("frame") else { throw a.error(nil, "'expect rx' needs frame=HEXBYTES") }
            return .expectRxFrame(pair: pair, entry: entry, bytes: try a.hex(frame))
        default:
            throw a.error(nil, "operation '\(name)' is not implemented")
        }
    }
}

/// The operation names.
enum ScenarioGrammar {
    static let oneWord: Set<String> = ["device", "memory", "state", "chain", "kick", "reset"]
    static let twoWord: Set<String> = [
        "memory map", "mmio write", "mmio read", "mem write", "mem fill", "mem expect", "driver init", "rx post",
        "tx send", "avail idx", "ctrl mq", "irq ack", "expect counters", "expect aggregate", "expect used",
        "expect status", "expect interrupt", "expect pairs", "expect poisoned", "expect rx",
        "bind memory", "unbind memory",
        "vhost features", "vhost ring-size", "vhost ring-addresses", "vhost ring-base", "vhost ring-enable", "vhost kick",
        "vhost ring-stop", "vhost reset",
    ]
    static let firstWords: Set<String> = Set(twoWord.map { String($0.split(separator: " ")[0]) })
}

/// Parses a number: decimal or 0x hex, `_` separators, an optional K/M/G suffix (powers of 1024).
func parseNumber(_ text: String) -> UInt64?? {
    var t = Substring(text)
    var multiplier: UInt64 = 1
    if let last = t.last, "KkMmGg".contains(last) {
        multiplier = "Kk".contains(last) ? 1 << 10 : "Mm".contains(last) ? 1 << 20 : 1 << 30
        t = t.dropLast()
    }
    let digits = t.filter { $0 != "_" }
    var value: UInt64?
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
        let hex = digits.dropFirst(2)
        guard !hex.isEmpty, hex.allSatisfy(\.isHexDigit) else { return .none }
        value = hex.count > 16 ? nil : UInt64(hex, radix: 16)
    } else {
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return .none }
        value = UInt64(digits, radix: 10)
    }
    guard let v = value else { return .some(nil) }  // well-formed but too large
    let (product, overflow) = v.multipliedReportingOverflow(by: multiplier)
    return overflow ? .some(nil) : .some(product)
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
