//! Delta debugging over a scenario's accesses, then over the guest memory
//! each one needs, keeping every step that still shows the property.

import Foundation
import HostPrimitives
import Scenarios
import VirtioCore

extension ScenarioOperation {
    /// The guest address a memory line writes (0 for other lines).
    var memoryAddress: UInt64 {
        switch self {
        case .memWrite(let address, _), .memFill(let address, _, _): return address
        default: return 0
        }
    }
}

/// One access of a scenario: the memory lines before it and itself, with
/// the comment `from-trace` wrote above it.
struct ScenarioUnit {
    var comment: String?
    var memory: [ScenarioStep]
    var operation: ScenarioStep
    var steps: [ScenarioStep] { memory + [operation] }
}

/// Reduces a `from-trace` scenario to a 1-minimal one that still shows the
/// goal: ddmin over accesses, then over each remaining access's memory lines,
/// then each memory line's bytes zeroed where that keeps the property. Every
/// candidate runs in process.
public struct Reducer {
    public struct Result: Sendable {
        public var text: String
        /// Accesses, and lines, before and after.
        public var accessesBefore: Int, accessesAfter: Int
        public var linesBefore: Int, linesAfter: Int
        public var candidates: Int
        /// False when the time ran out first (the smallest scenario found so far).
        public var minimal: Bool
    }

    let base: Scenario
    let lines: [Substring]
    let setupLines: [String]
    var units: [ScenarioUnit]
    let check: PropertyCheck
    let deadline: UInt64
    var candidates = 0
    var timedOut = false
    let progress: (Int, Int) -> Void

    /// - Parameters:
    ///   - text: a scenario `vtrace scenario from-trace` wrote.
    ///   - progress: called with (candidates tried, accesses left) as it goes.
    public init(text: String, file: String, goal: ReductionGoal, faults: DeviceFaults, maxSeconds: Double,
                scratch: String, progress: @escaping (Int, Int) -> Void = { _, _ in }) throws(ScenarioError) {
        base = try ScenarioParser.parse(file: file, text: text)
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        check = PropertyCheck(goal: goal, faults: faults, scratch: scratch)
        deadline = monotonicNanoseconds() &+ UInt64(max(0, maxSeconds) * 1e9)
        self.progress = progress
        // Set-up lines: those before the first operation line (comments and blanks dropped, the description kept).
        let firstStepLine = base.steps.first?.line ?? (lines.count + 1)
        setupLines = lines.prefix(firstStepLine - 1).enumerated().compactMap { i, l in
            let t = l.trimmingCharacters(in: .whitespaces)
            return t.isEmpty || (t.hasPrefix("#") && i > 0) ? nil : String(l)
        }
        var units: [ScenarioUnit] = []
        var pending: [ScenarioStep] = []
        for step in base.steps {
            switch step.operation {
            case .memWrite, .memFill: pending.append(step)
            case _ where step.operation.isExpectation: continue
            default:
                let first = pending.first?.line ?? step.line
                let above = first >= 2 ? lines[first - 2] : ""
                units.append(ScenarioUnit(comment: above.hasPrefix("#") ? String(above) : nil, memory: pending, operation: step))
                pending = []
            }
        }
        self.units = units
    }

    func scenario(_ units: [ScenarioUnit]) -> Scenario {
        var s = base
        s.steps = units.flatMap(\.steps)
        return s
    }

    /// Whether the property holds for `units` (counts the candidate).
    mutating func holds(_ units: [ScenarioUnit]) -> Bool {
        candidates += 1
        if candidates % 16 == 0 {
            progress(candidates, self.units.count)
            if monotonicNanoseconds() > deadline { timedOut = true }
        }
        return check.holds(scenario(units))
    }

    /// Whether the full scenario shows the property at all.
    public mutating func propertyHolds() -> Bool { holds(units) }

    public mutating func reduce() -> Result {
        let before = units.count, linesBefore = units.reduce(0) { $0 + $1.steps.count }
        // 1. Accesses.
        units = ddmin(units) { s, candidate in s.holds(candidate) }
        // 2. The chains of each kick: its avail entries rewritten to fewer of them.
        for i in units.indices where !timedOut { reduceChains(of: i) }
        // 3. The memory lines of each access that is left: whole 4 KiB pages
        //    first (a ring, a buffer: few candidates), then single lines.
        for i in units.indices where !timedOut {
            var pages: [[ScenarioStep]] = []
            var pageOf: [UInt64: Int] = [:]
            for step in units[i].memory {
                let page = step.operation.memoryAddress >> 12
                if let k = pageOf[page] { pages[k].append(step) } else { pageOf[page] = pages.count; pages.append([step]) }
            }
            let keptPages = ddmin(pages) { s, pages in
                var candidate = s.units
                candidate[i].memory = pages.flatMap { $0 }
                return s.holds(candidate)
            }
            units[i].memory = keptPages.flatMap { $0 }
            let kept = ddmin(units[i].memory) { s, memory in
                var candidate = s.units
                candidate[i].memory = memory
                return s.holds(candidate)
            }
            units[i].memory = kept
        }
        // 4. Bytes: a memory line written as zeros where the property still
        //    shows, else each of its bytes zeroed that can be (a descriptor's
        //    length, flags or next: shorter frames, fewer descriptors).
        for i in units.indices where !timedOut {
            for j in units[i].memory.indices where !timedOut {
                guard case .memWrite(let address, let bytes) = units[i].memory[j].operation, bytes.contains(where: { $0 != 0 }) else { continue }
                var candidate = units
                candidate[i].memory[j].operation = .memWrite(address: address, bytes: [UInt8](repeating: 0, count: bytes.count))
                if holds(candidate) {
                    units = candidate
                    continue
                }
                var kept = bytes
                for k in kept.indices where kept[k] != 0 && !timedOut {
                    var fewer = kept
                    fewer[k] = 0
                    var candidate = units
                    candidate[i].memory[j].operation = .memWrite(address: address, bytes: fewer)
                    if holds(candidate) {
                        kept = fewer
                        units = candidate
                    }
                }
            }
        }
        let linesAfter = units.reduce(0) { $0 + $1.steps.count }
        return Result(text: render(), accessesBefore: before, accessesAfter: units.count, linesBefore: linesBefore, linesAfter: linesAfter,
                      candidates: candidates, minimal: !timedOut)
    }

    /// The queue a kick notifies, and its NIC.
    static func kickedQueue(_ step: ScenarioStep) -> Int? {
        switch step.operation {
        case .mmioWrite(let offset, let value, _) where offset == MMIORegister.queueNotify.rawValue: return Int(value)
        case .kick(let q): return Int(q)
        case .vhost(.kick(let q)): return Int(q)
        default: return nil
        }
    }

    /// If unit `i` is a kick that finds several chains in the avail ring,
    /// keeps the fewest of them that still show the property: their heads
    /// written to the ring's next entries and avail.idx set after them (two
    /// memory lines before the kick).
    mutating func reduceChains(of i: Int) {
        guard let q = Self.kickedQueue(units[i].operation) else { return }
        var prefix = scenario(Array(units[..<i]))
        prefix.steps += units[i].memory
        guard var runner = try? ScenarioRunner(prefix, faults: check.faults, makeObserver: { _ in NoObserver() }) else { return }
        guard runner.run().error == nil else { return }
        let nic = units[i].operation.nic
        guard nic < runner.devices.count, q < runner.devices[nic].state.queues.count else { return }
        let queue = runner.devices[nic].state.queues[q]
        guard queue.ready, queue.size > 0, let idx = try? runner.ram.load(UInt16.self, at: queue.availRing + 2) else { return }
        let count = Int(idx &- queue.nextAvail)
        guard count >= 2, count <= Int(queue.size) else { return }
        var heads: [UInt16] = []
        for k in 0..<count {
            let slot = UInt64((Int(queue.nextAvail) + k) % Int(queue.size))
            guard let head = try? runner.ram.load(UInt16.self, at: queue.availRing + 4 + 2 * slot) else { return }
            heads.append(head)
        }
        let kick = units[i].operation
        func ring(_ kept: [UInt16]) -> [ScenarioStep] {
            var steps: [ScenarioStep] = []
            for (k, head) in kept.enumerated() {
                let slot = UInt64((Int(queue.nextAvail) + k) % Int(queue.size))
                steps.append(Self.synthetic(.memWrite(address: queue.availRing + 4 + 2 * slot, bytes: [UInt8(head & 0xFF), UInt8(head >> 8)]), like: kick))
            }
            let newIdx = queue.nextAvail &+ UInt16(kept.count)
            steps.append(Self.synthetic(.memWrite(address: queue.availRing + 2, bytes: [UInt8(newIdx & 0xFF), UInt8(newIdx >> 8)]), like: kick))
            return steps
        }
        let original = units[i].memory
        let kept = ddmin(heads) { s, kept in
            var candidate = s.units
            candidate[i].memory = original + ring(kept)
            return s.holds(candidate)
        }
        if kept.count < heads.count { units[i].memory = original + ring(kept) }
    }

    /// A memory line the reducer wrote (no line in the original text).
    static func synthetic(_ operation: ScenarioOperation, like step: ScenarioStep) -> ScenarioStep {
        ScenarioStep(line: 0, column: 1, nic: step.nic, repeatCount: 1, operation: operation)
    }

    /// ddmin (Zeller and Hildebrandt): the smallest subsequence found that
    /// keeps `test`, 1-minimal unless the time ran out.
    mutating func ddmin<T>(_ items: [T], _ test: (inout Reducer, [T]) -> Bool) -> [T] {
        var current = items
        var n = 2
        while current.count >= 2 && !timedOut {
            let size = (current.count + n - 1) / n
            let chunks = stride(from: 0, to: current.count, by: size).map { Array(current[$0..<min(current.count, $0 + size)]) }
            var reduced = false
            for chunk in chunks where chunk.count < current.count {
                if test(&self, chunk) { current = chunk; n = 2; reduced = true; break }
            }
            if !reduced && chunks.count > 2 {
                for k in chunks.indices {
                    let complement = chunks.enumerated().filter { $0.offset != k }.flatMap(\.element)
                    if test(&self, complement) { current = complement; n = max(n - 1, 2); reduced = true; break }
                }
            } else if !reduced {
                // Two chunks: their complements are each other, tried above.
            }
            if !reduced {
                if n >= current.count { break }
                n = min(n * 2, current.count)
            }
        }
        // One more pass for the last element: ddmin leaves a one-element input as it is.
        if current.count == 1, !timedOut, test(&self, []) { current = [] }
        return current
    }

    /// The reduced scenario's text: the set-up, then each access with its
    /// comment and the counters it leaves (as the goal's reference run has them).
    func render() -> String {
        var out = setupLines
        let reference: DeviceFaults
        switch check.goal {
        case .divergence(let recorded): reference = recorded
        default: reference = check.faults
        }
        // One run: the counters after each access's last step.
        var after: [Int: [NetCounters]] = [:]
        var lastStep = -1
        let ends = Set(units.map { unit -> Int in lastStep += unit.steps.count; return lastStep })
        if var runner = try? ScenarioRunner(scenario(units), faults: reference, makeObserver: { _ in NoObserver() }) {
            _ = runner.run(afterStep: { index, counters in if ends.contains(index) { after[index] = counters } })
        }
        var previous = PropertyCheck.counters(scenario([]), faults: reference) ?? []
        var step = -1
        for unit in units {
            step += unit.steps.count
            out.append("")
            // The trace's event and access, without what it did there (the reduced one does less).
            if let comment = unit.comment, comment.hasPrefix("# #") {
                let access = comment.dropFirst(3).split(separator: ":", maxSplits: 1)[0]
                out.append("# from the trace's #" + access)
            } else if let comment = unit.comment {
                out.append(comment)
            }
            for s in unit.steps { out.append(line(s)) }
            guard let now = after[step] else { continue }
            for n in now.indices where n >= previous.count || now[n] != previous[n] {
                let moved = NetCounter.allCases.filter { n >= previous.count || now[n][$0] != previous[n][$0] }
                let nicWord = base.setup.nics > 1 ? " nic=\(n)" : ""
                out.append("expect counters\(nicWord) " + moved.map { "\($0.name)=\(now[n][$0])" }.joined(separator: " "))
            }
            previous = now
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// A step's line as the original text has it (a memory line zeroed is
    /// rewritten, one the reducer wrote is written out).
    func line(_ step: ScenarioStep) -> String {
        if step.line == 0, case .memWrite(let address, let bytes) = step.operation {
            return "mem write 0x\(String(address, radix: 16)) " + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
                + "   # avail ring rewritten by vtrace reduce"
        }
        let original = lines[step.line - 1]
        if case .memWrite(let address, let bytes) = step.operation {
            let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            if bytes.count >= 16, bytes.allSatisfy({ $0 == 0 }), !original.contains(hex) {
                return "mem fill 0x\(String(address, radix: 16)) \(bytes.count) 0"
            }
            if !original.contains(hex) { return "mem write 0x\(String(address, radix: 16)) " + hex + "   # bytes zeroed by vtrace reduce" }
        }
        return String(original)
    }
}
