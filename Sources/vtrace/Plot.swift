import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace plot A [B] -o out.svg|out.html`
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw counter timelines as SVG or a self-contained HTML page.",
        discussion: """
            One panel per counter that moved (or those --counters names), its value over event \
            numbers. With two traces, both are drawn over each other (A blue, B orange) and the \
            first divergence `vtrace diff` finds is marked in every panel by a dashed line at \
            its event in each trace; the panel of the counter that parted is outlined in red.

            --x picks the axis. aligned (the default): A's event numbers, with B's events placed \
            through the alignment `vtrace diff` makes of the two counter timelines, so two runs \
            of one workload (whose event numbers drift apart with timing and MMIO noise) \
            coincide wherever they agree and part exactly at the split. events: each trace's own \
            event numbers. time: nanoseconds since each trace's first access (no --from/--to).

            The output's extension picks the form: .svg is the drawing alone; .html is one page \
            with the drawing inline, the verdict, the counters of both traces at the split and \
            at the end with B−A, and the aligned events around the split. The page fetches \
            nothing and runs no script: attach it to a CI run as it is.

            A trace of any length draws in bounded size: each pixel column shows the range a \
            counter took over the events it covers. --from and --to draw a range of event \
            numbers (decoding only the chunks it needs), with the y axes fitted to it; the HTML \
            page of two traces that differ adds such a close-up of the events around the split.

            Examples:
              vtrace plot run.vtrace -o run.svg
              vtrace plot passing.vtrace failing.vtrace -o split.html
              vtrace plot passing.vtrace failing.vtrace --nic 1 --counters rx_packets,rx_bytes -o nic1.svg
              vtrace plot failing.vtrace --from 2219000 --to 2221000 -o close.svg
            """
    )

    @Argument(help: "The trace to draw (with B: the reference, for example the passing run).", completion: .file(extensions: ["vtrace", "partial"]))
    var a: String

    @Argument(help: "A second trace to draw over the first and compare with it.", completion: .file(extensions: ["vtrace", "partial"]))
    var b: String?

    @Option(name: .shortAndLong, help: "The file to write: NAME.svg or NAME.html.")
    var output: String

    @OptionGroup var scope: CounterScopeOptions
    var nic: Int? { scope.nic }

    @Option(help: "Comma-separated counter names (default: every counter that moved).")
    var counters: String?

    @Option(parsing: .unconditional, help: "The first event to draw (default 0).")
    var from: UInt64?

    @Option(parsing: .unconditional, help: "The last event to draw (default: the longer trace's last).")
    var to: UInt64?

    @Option(help: "Width of the drawing in pixels (300...20000).")
    var width = 960

    enum XAxis: String, ExpressibleByArgument, CaseIterable { case aligned, events, time }

    @Option(help: "The x axis: aligned (B on A's event numbers through the diff's alignment), events (each trace's own), time (ns).")
    var x: XAxis = .aligned

    /// Events drawn on each side of the split in the HTML page's close-up.
    static let closeUp: UInt64 = 200

    enum Form { case svg, html }

    var form: Form? {
        switch URL(fileURLWithPath: output).pathExtension.lowercased() {
        case "svg": return .svg
        case "html", "htm": return .html
        default: return nil
        }
    }

    func validate() throws {
        if form == nil { throw ValidationError("-o \(output): the name must end in .svg or .html") }
        if width < 300 || width > 20_000 { throw ValidationError("--width must be between 300 and 20000 pixels") }
        if let from, let to, to < from { throw ValidationError("--to \(to) is before --from \(from)") }
        if x == .time && (from != nil || to != nil) { throw ValidationError("--from and --to are event numbers: not with --x time") }
    }

    func run() throws {
        let sink = try OutputFile(output, inputs: [a] + (b.map { [$0] } ?? []))
        let readers = try ([a] + (b.map { [$0] } ?? [])).map { try TraceInput.open($0) }
        for (path, r) in zip([a] + (b.map { [$0] } ?? []), readers) where r.completeness != .complete {
            printError("vtrace: note: \(path): \(r.completeness.text); drawing the \(r.eventCount) events before it")
        }
        try scope.check(readers)
        let layout = PlotLayout(width: width)
        let scopeOfDiff: DiffScope = nic.map { .nic($0) } ?? .aggregate
        var diff: CounterDiff?
        do {
            if readers.count == 2 { diff = try CounterDiff.compare(readers[0], readers[1], scope: scopeOfDiff) }
        } catch {
            printTraceError(error, among: Array(zip([a] + (b.map { [$0] } ?? []), readers)))
            throw ExitCode(VTrace.usageExitCode)
        }
        /// Where each trace's events go on the x axis.
        let axes: [PlotAxis] = readers.indices.map { i in
            switch x {
            case .events: return .events
            case .time: return .time
            case .aligned: return i == 1 && diff != nil ? .aligned(diff!.alignment) : .events
            }
        }
        func axisEnd(_ i: Int) -> UInt64 {
            switch axes[i] {
            case .events: return readers[i].eventCount
            case .aligned(let map): return map.map(readers[i].eventCount)
            case .time: return CounterPlotData.lastTime(readers[i]).map { $0 + 1 } ?? 1
            }
        }
        let longest = max(1, readers.indices.map(axisEnd).max() ?? 1)
        let first = from ?? 0
        guard first < longest else {
            printError("vtrace: --from \(first): the longer trace has \(longest) events")
            throw ExitCode(VTrace.usageExitCode)
        }
        let last = min(to ?? longest - 1, longest - 1)
        let selection = try counters.map { try NetCounter.parseList($0) }
        let scopeName = nic.map { "nic\($0)" } ?? "all NICs"
        /// The plot of events first...last; the counters that moved in it unless --counters.
        func draw(_ first: UInt64, _ last: UInt64, split: CounterDiff.Split?) throws(TraceError) -> CounterPlot {
            var data: [CounterPlotData] = []
            for (r, axis) in zip(readers, axes) {
                data.append(try CounterPlotData(reader: r, nic: nic, columns: layout.plotWidth, from: first, span: last - first + 1, axis: axis))
            }
            let moved = Set(data.flatMap(\.moved))
            let traces = zip(data.indices, data).map { i, d in
                PlotTrace(label: i == 0 ? "A" : "B", path: i == 0 ? a : b!, data: d, colour: PlotTrace.colours[i])
            }
            var plot = CounterPlot(layout: layout, traces: traces, counters: selection ?? NetCounter.allCases.filter { moved.contains($0) },
                                   from: first, span: last - first + 1, scopeName: scopeName, split: split)
            switch x {
            case .aligned: plot.xLabel = readers.count == 2 ? "event number of A (B's events placed by the alignment of the two runs)" : "event number"
            case .events: plot.xLabel = "event number (each trace its own)"
            case .time: plot.xLabel = "nanoseconds since the first access"
            }
            return plot
        }
        let plot: CounterPlot
        var closeUp: CounterPlot?
        do {
            plot = try draw(first, last, split: diff?.split)
            // The HTML page of a whole-trace comparison adds a close-up of the split.
            if form == .html, from == nil, to == nil, x != .time, let split = diff?.split {
                let marks = [split.a.event ?? split.a.after, split.b.event ?? split.b.after].enumerated().compactMap { k, e in
                    e.map { plot.traces[k].data.toAxis.map($0) }
                }
                if let low = marks.min(), let high = marks.max(), last - first > 4 * Self.closeUp {
                    let start = low > Self.closeUp ? low - Self.closeUp : 0
                    closeUp = try draw(start, min(longest - 1, high + Self.closeUp), split: split)
                }
            }
        } catch {
            printTraceError(error, among: Array(zip([a] + (b.map { [$0] } ?? []), readers)))
            throw ExitCode(VTrace.usageExitCode)
        }
        let text = form == .svg ? plot.svg() : plot.html(diff: diff, closeUp: closeUp)
        try sink.write(text)
        try sink.commit()
        printError("vtrace: wrote \(output): \(plot.counters.count) panel\(plot.counters.count == 1 ? "" : "s"); \(plot.verdict)")
    }
}
