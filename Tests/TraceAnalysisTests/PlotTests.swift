import Testing
@testable import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

@Suite("Plot binning and drawing")
struct PlotTests {
    /// A million transitions land in 100 columns: each keeps the first,
    /// lowest, highest and last value of the events it covers.
    @Test func binsKeepTheRangeOfTheirEvents() {
        var s = BinnedSeries(columns: 100, span: 1_000_000, start: 7)
        for e in 0..<UInt64(1_000_000) { s.add(event: e, value: (e / 10_000) * 3 + (e % 2)) }
        #expect(s.bins.count == 100 && s.transitions == 1_000_000)
        for (c, bin) in s.bins.enumerated() {
            let base = UInt64(c) * 3
            #expect(bin == BinnedSeries.Bin(first: base, low: base, high: base + 1, last: base + 1), "column \(c)")
        }
        #expect(s.maximum == 99 * 3 + 1 && s.end == 298)
        #expect(s.column(0) == 0 && s.column(9_999) == 0 && s.column(10_000) == 1 && s.column(999_999) == 99 && s.column(.max) == 99)
    }

    @Test func ticksAreRound() {
        #expect(CounterPlot.ticks(through: 5) == [0, 1, 2, 3, 4, 5])
        #expect(CounterPlot.ticks(through: 112) == [0, 20, 40, 60, 80, 100])
        #expect(CounterPlot.ticks(through: 10_000_000) == [0, 2_000_000, 4_000_000, 6_000_000, 8_000_000, 10_000_000])
        #expect(CounterPlot.ticks(through: 1) == [0, 1])
        #expect(CounterPlot.ticks(from: 95, through: 137) == [100, 110, 120, 130])
        #expect(CounterPlot.ticks(from: 2_219_872, through: 2_220_272) == [2_219_900, 2_220_000, 2_220_100, 2_220_200])
    }

    /// The step path: flat to each column with data, vertical through its values.
    @Test func pathIsAStepLine() {
        var layout = PlotLayout(width: 100)
        layout.width = layout.left + layout.right + 100  // 100 columns
        var s = BinnedSeries(columns: 100, span: 200, start: 0)
        s.add(event: 20, value: 1)  // column 10
        s.add(event: 21, value: 2)  // column 10
        s.add(event: 150, value: 1)  // column 75
        let data = CounterPlotData(events: 200, series: [.txPackets: s])
        let plot = CounterPlot(layout: layout, traces: [PlotTrace(label: "A", path: "a", data: data, colour: "#000")],
                               counters: [.txPackets], span: 200, scopeName: "nic0", split: nil)
        // ph 96: y(v) = 96 - 90 v / 2.
        #expect(plot.path(s, y: { 96 - 90 * Double($0) / 2 }, events: 200) == "M0,96H10V51V6H75V51H100")
        #expect(plot.format(51.25) == "51.3" && plot.format(6) == "6" && plot.format(0.04) == "0")
        #expect(escapeXML("a<b & \"c\"\u{1}") == "a&lt;b &amp; &quot;c&quot;?")
    }
}
