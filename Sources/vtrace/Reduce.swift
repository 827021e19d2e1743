import ArgumentParser
import Foundation
import ScenarioReduction
import Scenarios
import TraceAnalysis
import TraceFormat
import VirtioCore

/// `vtrace reduce FILE (--until EXPR | --divergence | --check) -o OUT.scenario`
struct Reduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reduce",
        abstract: "Reduce a trace to the smallest scenario that still shows a property: a regression test.",
        discussion: """
            Finds the first event where the property appears (bisect, replay or check), writes \
            the scenario of the trace up to it (`vtrace scenario from-trace`), then removes what \
            the property does not need: accesses (delta debugging), the guest memory each \
            remaining access reads, and the bytes of that memory (zeroed). Every candidate runs in \
            process against a fresh device core. The result is 1-minimal (removing any one \
            remaining access or memory line loses the property) unless --max-seconds runs out \
            first, and ends each access with `expect counters`.

            Properties:
              --until EXPR    the counter predicate (bisect's language) holds at the end
              --divergence    the device as recorded (today's core with the faults the trace's
                              header lists) and today's core (with --fault) end differently;
                              the expectations hold the recorded values, so the scenario fails
                              on today's core and passes with `scenario run --fault ...`
              --check         one of `vtrace check`'s counter identities breaks

            Exit status: 0 with the scenario written (also when the time ran out: it says so), \
            1 when the property does not hold on the trace, 2 on bad usage or input.

            Examples:
              vtrace reduce hostile.vtrace --until 'invalid_avail_idx_count > 0' -o repro.scenario
              vtrace reduce boot.vtrace --divergence -o traces/scenarios/drop-rx-regression.scenario
              vtrace reduce run.vtrace --check --max-seconds 30 -o identity.scenario
            """
    )

    @OptionGroup var input: TraceInput

    @Option(help: "The counter predicate that must hold at the end (see `vtrace bisect --help`).")
    var until: String?

    @Flag(help: "The device as recorded and today's core must end with different counters.")
    var divergence = false

    @Flag(help: "One of `vtrace check`'s counter identities must break.")
    var check = false

    @Option(help: "With --until: one NIC's counters (default: the aggregate).")
    var nic: Int?

    @OptionGroup var faultOptions: FaultOptions

    @Option(name: .shortAndLong, help: "The scenario to write.")
    var output: String

    @Option(help: "Stop reducing after this many seconds and write the smallest scenario found so far.")
    var maxSeconds: Double = 300

    func validate() throws {
        if [until != nil, divergence, check].filter({ $0 }).count != 1 {
            throw ValidationError("give one property: --until EXPR, --divergence or --check")
        }
        if maxSeconds <= 0 { throw ValidationError("--max-seconds must be more than 0") }
    }

    func run() throws {
        let sink = try OutputFile(output, inputs: [input.trace])
        let reader = try input.open()
        if reader.completeness != .complete {
            printError("vtrace: note: \(input.trace): \(reader.completeness.text); reducing the \(reader.eventCount) events before it")
        }
        let faults = try faultOptions.parsed()
        let started = Date()
        let (goal, first) = try firstEvent(reader, faults: faults)
        let name = URL(fileURLWithPath: input.trace).lastPathComponent
        let prefix: ScenarioFromTrace.Result
        do throws(TraceError) {
            prefix = try ScenarioFromTrace.make(reader, name: name, options: .init(to: first))
        } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-reduce-\(getpid()).vtrace").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let tty = isatty(2) != 0
        var reducer: Reducer
        do throws(ScenarioError) {
            reducer = try Reducer(text: prefix.text, file: name, goal: goal, faults: faults, maxSeconds: maxSeconds, scratch: scratch) { tried, left in
                if tty { FileHandle.standardError.write(Data("\rreduce: \(tried) candidates tried, \(left) accesses\u{1B}[K".utf8)) }
            }
        } catch {
            printError("vtrace: the scenario of \(input.trace) does not parse: \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        guard reducer.propertyHolds() else {
            printError("vtrace: \(input.trace): the scenario of events up to \(first) (\(prefix.accesses) accesses) does not show the property when run")
            throw ExitCode(1)
        }
        let result = reducer.reduce()
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        // The description line says what the scenario is for.
        let property = until.map { "--until '\($0)'" } ?? (divergence ? "--divergence" : "--check")
        let body = result.text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().joined()
        try sink.write("# \(name) reduced by vtrace reduce \(property): \(result.accessesAfter) of the \(result.accessesBefore) accesses up to event \(first)"
                       + (result.minimal ? "" : " (not minimal: the time ran out)") + "\n" + body)
        try sink.commit()
        let seconds = Date().timeIntervalSince(started)
        print("reduced \(input.trace): events 0…\(first) (\(result.accessesBefore) accesses, \(result.linesBefore) lines) → "
              + "\(result.accessesAfter) access\(result.accessesAfter == 1 ? "" : "es") (\(result.linesAfter) lines) in "
              + String(format: "%.1f s", seconds) + ", \(result.candidates) candidates; "
              + (result.minimal ? "1-minimal" : "NOT minimal: --max-seconds \(maxSeconds) ran out (the smallest found so far)")
              + "; wrote \(output)")
    }

    /// The goal, and the first event where the trace shows it (exit 1 when it never does).
    func firstEvent(_ reader: TraceReader, faults: DeviceFaults) throws -> (ReductionGoal, UInt64) {
        if let until {
            let predicate: CounterPredicate
            do throws(CounterPredicate.ParseError) { predicate = try CounterPredicate.parse(until) } catch {
                printError("vtrace: --until: \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
            let result: BisectResult
            do throws(TraceError) { result = try CounterBisector(reader: reader, nic: nic).run(predicate) } catch {
                printError("vtrace: \(input.trace): \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
            guard let event = result.event else {
                func named(_ p: CounterPredicate) -> [NetCounter] {
                    switch p {
                    case .counter(let c): return [c]
                    case .literal: return []
                    case .not(let e): return named(e)
                    case .binary(_, let a, let b): return named(a) + named(b)
                    }
                }
                let counters = NetCounter.allCases.filter(Set(named(predicate)).contains)
                let end = (try? CounterTimeline(reader: reader, nic: nic).finalCounters()).map { perNIC in
                    NetCounters.scoped(perNIC, nic: nic)
                }
                let finals = (result.counters ?? end).map { c in counters.map { "\($0.name)=\(c[$0])" }.joined(separator: " ") } ?? ""
                printError("vtrace: \(input.trace): '\(until)' never holds" + (finals.isEmpty ? "" : " (at the end: \(finals))"))
                throw ExitCode(1)
            }
            return (.until(predicate, nic: nic), event)
        }
        if divergence {
            let recorded: DeviceFaults
            switch DeviceFaults.parse(reader.header.faults) {
            case .success(let f): recorded = f
            case .failure(let e):
                printError("vtrace: \(input.trace): its recorded faults: \(e)")
                throw ExitCode(VTrace.usageExitCode)
            }
            let outcome: ReplayOutcome
            do throws(TraceError) { outcome = try TraceReplayer(reader: reader, faults: faults).replayAll(keepGoing: false) } catch {
                printError("vtrace: \(input.trace): \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
            guard let d = outcome.divergences.first else {
                printError("vtrace: \(input.trace): the recording and today's device core agree (no divergence to reduce)")
                throw ExitCode(1)
            }
            return (.divergence(recorded: recorded), d.event)
        }
        let violation: InvariantViolation?
        do throws(TraceError) { violation = try InvariantChecker.check(reader).violation } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        if let violation { return (.check, violation.event) }
        printError("vtrace: \(input.trace): every counter identity holds (nothing to reduce)")
        throw ExitCode(1)
    }
}
