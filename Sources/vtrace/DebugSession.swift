import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// An interactive replay: stops before any event (inside a drain too),
/// breakpoints and watchpoints, and reverse execution through checkpoints.
///
/// The replay runs forward in `run()`; at each stop the replayer calls
/// `stopped`, from inside the device code about to produce the event, and
/// the commands are read there. A command that moves forward arms the next
/// stop and lets the device go on; one that goes elsewhere (backwards, or a
/// jump) abandons the replay, which `run()` restarts from the nearest
/// checkpoint before the target.
final class DebugSession {
    let reader: TraceReader
    let replayer: TraceReplayer
    let faultNote: String?
    let readLine: () -> String?

    /// A breakpoint or a watchpoint.
    struct StopPoint {
        enum Kind { case event(UInt64), watch(Watchpoint) }
        let id: Int
        let kind: Kind
        var hits = 0
    }
    var stopPoints: [StopPoint] = []
    var nextID = 1

    /// Where to restart after leaving the replay at a stop.
    var jumpTarget: UInt64?
    var quitting = false
    /// Why the armed stop stops (printed there), and which stop points it hits.
    var armedReason: [String] = []
    var armedIDs: [Int] = []
    /// At the next stop, list the events replayed since this one (`step`, `next`).
    var echoFrom: UInt64?
    /// Where the replay last stood still (a stop, the end): where an error goes back to.
    var lastGood: UInt64 = 0

    init(reader: TraceReader, replayer: TraceReplayer, faultNote: String?, readLine: @escaping () -> String?) {
        self.reader = reader
        self.replayer = replayer
        self.faultNote = faultNote
        self.readLine = readLine
    }

    /// What a command asks of the replay.
    enum Motion {
        /// Read the next command.
        case stay
        /// Go on forward to this event (`UInt64.max`: to the end).
        case forward(UInt64)
        /// Restart from the nearest checkpoint before this event.
        case jump(UInt64)
        case quit
    }

    func run() throws {
        replayer.onStop = { [unowned self] _ in self.stopped() }
        try replayer.restart(at: reader.firstEvent)
        while true {
            do {
                try replayer.runForward()
            } catch {
                // A chunk that does not decode: say so and go back to where the replay last stood.
                print("error: \(error)")
                armedReason = []
                armedIDs = []
                echoFrom = nil
                try replayer.restart(at: lastGood)
                continue
            }
            if quitting { return }
            if let target = jumpTarget {
                jumpTarget = nil
                try restart(at: target, orBackTo: lastGood)
                continue
            }
            // The end, or a divergence: nothing runs forward, but the commands still go back.
            echo()
            if let d = replayer.divergence {
                print("DIVERGED at \(d)")
                if let faultNote { print(faultNote) }
            } else {
                // A stop point at the last event stops here, at the end.
                for reason in armedReason { print(reason) }
                countHits()
                print("end of trace" + (replayer.cut.map { ": \($0.description)" } ?? ""))
            }
            armedReason = []
            armedIDs = []
            lastGood = position
            if interact(atStop: false) { continue }
            if quitting { return }
            if let target = jumpTarget {
                jumpTarget = nil
                try restart(at: target, orBackTo: lastGood)
            }
        }
    }

    /// Restarts at `target`; if its chunk does not decode, says so and goes back to `fallback`.
    func restart(at target: UInt64, orBackTo fallback: UInt64) throws {
        do {
            try replayer.restart(at: target)
        } catch {
            print("error: \(error)")
            armedReason = []
            armedIDs = []
            try replayer.restart(at: fallback)
        }
    }

    /// The replay reached its stop: show where, then take commands.
    /// Returns whether the replay goes on.
    func stopped() -> Bool {
        echo()
        for reason in armedReason { print(reason) }
        countHits()
        armedReason = []
        armedIDs = []
        let stop = replayer.stopState()
        lastGood = stop.position
        print(DebugDisplay.position(stop, eventCount: reader.eventCount))
        print(DebugDisplay.next(stop))
        return interact(atStop: true)
    }

    /// One more hit for each stop point the armed stop was for.
    func countHits() {
        for id in armedIDs { if let i = stopPoints.firstIndex(where: { $0.id == id }) { stopPoints[i].hits += 1 } }
    }

    /// Lists the events replayed since `echoFrom` (at most 20).
    func echo() {
        guard let from = echoFrom else { return }
        echoFrom = nil
        let to = position
        guard let lines = try? reader.recordedText(from..<to, limit: 20) else { return }
        for line in lines { print("#\(line.number) \(terminalSafe(line.text))") }
        if to - from > UInt64(lines.count) { print("… \(to - from - UInt64(lines.count)) more (`vtrace dump --from \(from + UInt64(lines.count)) --to \(to - 1)` lists them)") }
    }

    /// Reads commands until one moves the replay. Returns whether the
    /// replay goes on from here (false: it is left, for `jumpTarget` or to quit).
    func interact(atStop: Bool) -> Bool {
        while true {
            guard let line = readLine() else {
                quitting = true
                return false
            }
            let motion: Motion
            do {
                motion = try execute(line)
            } catch {
                print("error: \(error)")
                continue
            }
            switch motion {
            case .stay:
                continue
            case .forward(let target):
                guard atStop else {
                    print(replayer.divergence.map { "the replay diverged at event \($0.event): it cannot go on (go back with reverse-step, reverse-continue or goto)" }
                          ?? "end of trace: nothing to run (go back with reverse-step, reverse-continue or goto)")
                    armedReason = []
                    armedIDs = []
                    echoFrom = nil
                    continue
                }
                replayer.stopAt = target
                return true
            case .jump(let target):
                jumpTarget = target
                echoFrom = nil
                return false
            case .quit:
                quitting = true
                return false
            }
        }
    }

    var position: UInt64 { replayer.position }

    /// Runs one command line.
    func execute(_ line: String) throws -> Motion {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return .stay }
        let space = trimmed.firstIndex(of: " ") ?? trimmed.endIndex
        let word = String(trimmed[..<space])
        let rest = trimmed[space...].trimmingCharacters(in: .whitespaces)
        guard let command = DebugCommand.named(word) else {
            print("unknown command '\(terminalSafe(word))'; `help` lists them")
            return .stay
        }
        func count() -> UInt64? {
            if rest.isEmpty { return 1 }
            guard let n = UInt64(rest) else { print("'\(terminalSafe(rest))' is not a number"); return nil }
            guard n > 0 else { print("\(command.names[0]) 0 goes nowhere: N is at least 1"); return nil }
            return n
        }
        func eventNumber() -> UInt64? {
            guard !rest.isEmpty else { print("\(command.names[0]) needs an event number"); return nil }
            guard let n = UInt64(rest) else { print("'\(terminalSafe(rest))' is not a number"); return nil }
            guard reader.events.contains(n) else { print(TraceError.noSuchEvent(n, events: reader.events).description); return nil }
            return n
        }
        switch command.names[0] {
        case "step":
            guard let n = count() else { return .stay }
            echoFrom = position
            let (target, overflow) = position.addingReportingOverflow(n)
            return .forward(overflow || target >= reader.eventCount ? .max : target)
        case "next":
            guard let n = count() else { return .stay }
            var target = position
            for _ in 0..<n {
                guard let start = try reader.accessStart(after: target) else { target = .max; break }
                target = start
            }
            echoFrom = position
            return .forward(target)
        case "continue":
            return try continueForward()
        case "reverse-step":
            guard let n = count() else { return .stay }
            if position <= reader.firstEvent { print("at event \(position): the start of the trace"); return .stay }
            return .jump(max(position - min(n, position), reader.firstEvent))
        case "reverse-next":
            guard let n = count() else { return .stay }
            var target = position
            let stop = replayer.stopState()
            var left = n
            if let access = stop.access {
                target = access.number
                left -= 1
            }
            while left > 0, let start = try reader.accessStart(before: target) {
                target = start
                left -= 1
            }
            if target == position { print("at event \(position): no access begins before it"); return .stay }
            return .jump(target)
        case "reverse-continue":
            return try continueBackward()
        case "goto":
            guard let target = eventNumber() else { return .stay }
            // Forward within what the replay would restore anyway: replay on, checking every event.
            if target > position, position < reader.eventCount, replayer.divergence == nil,
               let here = reader.chunkIndex(containing: position), let there = reader.chunkIndex(containing: target),
               (reader.checkpointChunk(atOrBefore: there) ?? 0) <= here {
                return .forward(target)
            }
            return .jump(target)
        case "break":
            guard let n = eventNumber() else { return .stay }
            stopPoints.append(StopPoint(id: nextID, kind: .event(n)))
            print("breakpoint \(nextID) at event \(n)")
            nextID += 1
        case "watch":
            guard let watch = parseWatch(rest) else { return .stay }
            stopPoints.append(StopPoint(id: nextID, kind: .watch(watch)))
            print("watch \(nextID): \(watch)")
            nextID += 1
        case "delete":
            if rest.isEmpty {
                stopPoints.removeAll()
                print("deleted every breakpoint and watchpoint")
            } else {
                for word in rest.split(separator: " ") {
                    guard let id = Int(word), let i = stopPoints.firstIndex(where: { $0.id == id }) else {
                        print("no breakpoint or watchpoint \(terminalSafe(String(word)))")
                        continue
                    }
                    stopPoints.remove(at: i)
                    print("deleted \(id)")
                }
            }
        case "info":
            guard ["breakpoints", "b", "break", "watchpoints", "watch"].contains(rest) else { print("info breakpoints (or info b) lists breakpoints and watchpoints"); return .stay }
            printStopPoints()
        case "where":
            for line in DebugDisplay.whereLines(replayer.stopState(), eventCount: reader.eventCount) { print(line) }
        case "why":
            try why(rest)
        case "counters":
            print(DebugDisplay.counterTable(replayer.stopState().states))
        case "queues":
            for line in DebugDisplay.queueLines(replayer.stopState().states) { print(line) }
        case "event":
            print(replayer.nextText.map { "next: #\($0.number) \(terminalSafe($0.text))" } ?? "end of trace")
        case "chain":
            let chains = replayer.stopState().chains
            for c in chains {
                print("#\(c.event) q\(c.queue) head \(c.head): " + c.descriptors.enumerated().map { "\($0.offset): 0x\(String($0.element.addr, radix: 16)) len \($0.element.len) \(DebugDisplay.flagText($0.element.flags))" }.joined(separator: "; "))
            }
            if chains.isEmpty {
                print(replayer.lastChain.map { "#\($0.number) \(terminalSafe($0.text))" } ?? "no chain yet")
            }
        case "help":
            if rest.isEmpty {
                print(DebugCommand.list)
            } else if let c = DebugCommand.named(rest) {
                print(c.help)
            } else {
                print("no command '\(terminalSafe(rest))'; `help` lists them")
            }
        case "quit":
            return .quit
        default:
            break
        }
        return .stay
    }

    /// `TEXT [nic=N]`: the text and the NIC; nil (said why) for a NIC the trace does not have.
    func splitNIC(_ text: String) -> (text: String, nic: Int?)? {
        var words = text.split(separator: " ").map(String.init)
        guard let last = words.last, last.hasPrefix("nic=") else { return (text, nil) }
        guard let n = Int(last.dropFirst(4)), n >= 0, n < reader.header.nics else {
            print("'\(terminalSafe(last))': the trace has \(reader.header.nics) NIC\(reader.header.nics == 1 ? "" : "s") (nic=0…\(reader.header.nics - 1))")
            return nil
        }
        words.removeLast()
        return (words.joined(separator: " "), n)
    }

    /// `watch COUNTER [nic=N]` or `watch EXPR [nic=N]`.
    func parseWatch(_ text: String) -> Watchpoint? {
        guard let (text, nic) = splitNIC(text) else { return nil }
        var expression = text
        if expression.count >= 2, let q = expression.first, q == "'" || q == "\"", expression.last == q {
            expression = String(expression.dropFirst().dropLast())
        }
        guard !expression.isEmpty else { print("watch needs a counter name or an expression (`help watch`)"); return nil }
        if let counter = NetCounter.allCases.first(where: { $0.name == expression }) { return .counter(counter, nic: nic) }
        do {
            return .predicate(try CounterPredicate.parse(expression), nic: nic)
        } catch {
            print("watch: '\(terminalSafe(expression))' is neither a counter name nor a predicate: \(error)")
            return nil
        }
    }

    var watches: [(id: Int, watch: Watchpoint)] {
        stopPoints.compactMap { if case .watch(let w) = $0.kind { return ($0.id, w) } else { return nil } }
    }

    /// Where a stop point stops, why, and which one it is.
    typealias Candidate = (at: UInt64, reason: String, id: Int)

    /// Arms the reasons and stop points of every candidate at `target`.
    func arm(_ candidates: [Candidate], at target: UInt64) {
        let chosen = candidates.filter { $0.at == target }
        armedReason = chosen.map(\.reason)
        armedIDs = chosen.map(\.id)
    }

    /// The watch hits as candidates: the stop is right after each hit's event.
    func candidates(_ hits: [WatchHit], _ watches: [(id: Int, watch: Watchpoint)]) -> [Candidate] {
        hits.map { (at: $0.event + 1, reason: hitText($0, id: watches[$0.watch].id), id: watches[$0.watch].id) }
    }

    /// The next breakpoint or watch hit after the current event (all of those at that event).
    func continueForward() throws -> Motion {
        var all: [Candidate] = stopPoints.compactMap { p in
            if case .event(let n) = p.kind, n > position { return (n, "breakpoint \(p.id), event \(n)", p.id) } else { return nil }
        }
        let watches = self.watches
        all += candidates(try WatchpointScanner(reader: reader, watches: watches.map(\.watch)).next(from: position), watches)
        guard let target = all.map(\.at).min() else {
            arm([], at: 0)
            return .forward(.max)
        }
        arm(all, at: target)
        return .forward(target >= reader.eventCount ? .max : target)
    }

    /// The last breakpoint or watch hit before the current event (all of those at that event), or the start.
    func continueBackward() throws -> Motion {
        guard position > reader.firstEvent else { print("at event \(position): the start of the trace"); return .stay }
        var all: [Candidate] = stopPoints.compactMap { p in
            if case .event(let n) = p.kind, n < position, n >= reader.firstEvent { return (n, "breakpoint \(p.id), event \(n)", p.id) } else { return nil }
        }
        let watches = self.watches
        all += candidates(try WatchpointScanner(reader: reader, watches: watches.map(\.watch)).previous(before: position - 1), watches)
        guard let target = all.map(\.at).max() else {
            armedReason = ["no earlier breakpoint or watch hit: back at the start"]
            armedIDs = []
            return .jump(reader.firstEvent)
        }
        arm(all, at: target)
        return .jump(target)
    }

    func hitText(_ hit: WatchHit, id: Int) -> String {
        "watch \(id): nic\(hit.nic) \(hit.counter.name) \(hit.old) -> \(hit.new) at event \(hit.event)"
    }

    func printStopPoints() {
        guard !stopPoints.isEmpty else { print("no breakpoints or watchpoints"); return }
        print("ID  type        what                                      hits")
        for p in stopPoints {
            let (type, what): (String, String)
            switch p.kind {
            case .event(let n): (type, what) = ("breakpoint", "event \(n)")
            case .watch(let w): (type, what) = ("watch", w.description)
            }
            print(String(p.id).padding(toLength: 4, withPad: " ", startingAt: 0) + type.padding(toLength: 12, withPad: " ", startingAt: 0)
                  + what.padding(toLength: max(42, what.count + 1), withPad: " ", startingAt: 0) + String(p.hits))
        }
    }

    /// `why COUNTER [nic=N]`: the last change of COUNTER before this point, explained.
    func why(_ text: String) throws {
        guard let (name, nic) = splitNIC(text) else { return }
        guard let counter = NetCounter.allCases.first(where: { $0.name == name }) else {
            print("why needs a counter: \(NetCounter.allCases.map(\.name).joined(separator: ", "))")
            return
        }
        guard position > 0, let cause = try CounterCause.explain(reader, counter: counter, nic: nic, selection: .atOrBefore(position - 1)) else {
            print("\(counter.name) has not changed\(nic.map { " on nic\($0)" } ?? "") before event \(position)")
            return
        }
        for line in cause.render() { print(terminalSafe(line)) }
    }
}
