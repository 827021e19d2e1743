//! Draws binned counter timelines as SVG (one panel per counter, traces
//! overlaid, the first divergence marked) and wraps it in a self-contained
//! HTML page with the divergence table. No scripts, no fetches.

import VirtioCore

/// Pixel geometry of a plot.
public struct PlotLayout: Sendable {
    public var width = 960
    public var left = 84
    public var right = 28
    public var top = 64
    public var panelHeight = 96
    /// Space between panels (holds the x-axis labels and the next title).
    public var gap = 46
    public init(width: Int = 960) { self.width = max(width, left + right + 100) }
    /// Columns of the plotting area (one bin each).
    public var plotWidth: Int { width - left - right }
}

/// One trace on the plot.
public struct PlotTrace: Sendable {
    public var label: String
    public var path: String
    public var data: CounterPlotData
    public var colour: String
    public init(label: String, path: String, data: CounterPlotData, colour: String) {
        self.label = label
        self.path = path
        self.data = data
        self.colour = colour
    }
    /// The colours of A and B.
    public static let colours = ["#1f77b4", "#e8710a"]
}

/// Renders counter plots.
public struct CounterPlot: Sendable {
    public var layout: PlotLayout
    public var traces: [PlotTrace]
    public var counters: [NetCounter]
    /// The x axis spans event numbers from..<from + span.
    public var from: UInt64
    public var span: UInt64
    public var scopeName: String
    /// The first divergence between trace 0 and trace 1, if any.
    public var split: CounterDiff.Split?
    /// What the x axis counts (the label under the last panel).
    public var xLabel = "event number"

    public init(layout: PlotLayout, traces: [PlotTrace], counters: [NetCounter], from: UInt64 = 0, span: UInt64, scopeName: String,
                split: CounterDiff.Split?) {
        self.from = from
        self.layout = layout
        self.traces = traces
        self.counters = counters
        self.span = max(1, span)
        self.scopeName = scopeName
        self.split = split
    }

    /// The x coordinate (within the plotting area) of the left edge of `event`.
    func x(_ event: UInt64) -> Double {
        Double(layout.plotWidth) * Double(min(max(event, from) - from, span)) / Double(span)
    }

    /// Height of the drawing, with or without the title lines.
    public func height(titled: Bool) -> Int { header(titled) + max(1, counters.count) * (layout.panelHeight + layout.gap) + 10 }

    /// Where the panels start: below the title, legend and verdict, or the legend alone.
    func header(_ titled: Bool) -> Int { titled ? layout.top : layout.top - 40 }

    /// The whole SVG document; `titled` draws the title and verdict above the
    /// legend (the HTML page has them as text instead).
    public func svg(titled: Bool = true) -> String {
        let w = layout.width, h = height(titled: titled), top = header(titled)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" "
            + "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\">\n"
        out += "<title>\(escapeXML(title))</title>\n"
        out += "<rect width=\"\(w)\" height=\"\(h)\" fill=\"#ffffff\"/>\n"
        if titled {
            out += "<text x=\"\(layout.left)\" y=\"20\" font-size=\"15\" font-weight=\"bold\">\(escapeXML(title))</text>\n"
        }
        // Legend, then the divergence line.
        var lx = layout.left
        let ly = titled ? 37 : 12
        for t in traces {
            out += "<line x1=\"\(lx)\" y1=\"\(ly)\" x2=\"\(lx + 22)\" y2=\"\(ly)\" stroke=\"\(t.colour)\" stroke-width=\"2\"/>"
            let text = "\(t.label): \(t.path) (\(t.data.events) events)"
            out += "<text x=\"\(lx + 28)\" y=\"\(ly + 4)\">\(escapeXML(text))</text>\n"
            lx += 40 + min(60, text.count) * 6
        }
        if titled {
            out += "<text x=\"\(layout.left)\" y=\"56\" fill=\"\(split == nil ? "#2a7d2a" : "#c0392b")\">\(escapeXML(verdict))</text>\n"
        }
        if counters.isEmpty {
            out += "<text x=\"\(layout.left)\" y=\"\(top + 40)\">no counter moved in \(escapeXML(scopeName))</text>\n"
        }
        let ticks = Self.ticks(from: from, through: from + (span - 1))
        for (i, c) in counters.enumerated() {
            out += panel(c, index: i, top: top, ticks: ticks)
        }
        out += "</svg>\n"
        return out
    }

    public var title: String {
        "vtrace counters, \(scopeName)" + (traces.count > 1 ? ": \(traces[0].label) vs \(traces[1].label)" : "")
    }

    public var verdict: String {
        guard traces.count > 1 else { return "\(counters.count) counter\(counters.count == 1 ? "" : "s") moved" }
        guard let split else { return "identical counter timelines" }
        return "first divergence: " + Self.splitText(split, traces.map(\.label))
    }

    static func splitText(_ s: CounterDiff.Split, _ labels: [String]) -> String {
        let a = s.a.event.map { "\(labels[0]) #\($0)" } ?? "\(labels[0]) lacks it", b = s.b.event.map { "\(labels[1]) #\($0)" } ?? "\(labels[1]) lacks it"
        return "\(s.counter?.name ?? "counters") at \(a), \(b): \(s.summary)"
    }

    func panel(_ c: NetCounter, index i: Int, top header: Int, ticks: [UInt64]) -> String {
        let pw = layout.plotWidth, ph = layout.panelHeight
        let top = header + i * (ph + layout.gap) + 18
        let isSplit = split?.counter == c
        // y axis: the values the traces took in the range.
        let low = traces.map { $0.data.series[c]?.minimum ?? 0 }.min() ?? 0
        let high = max(low + 1, traces.map { $0.data.series[c]?.maximum ?? 0 }.max() ?? 0)
        func y(_ v: UInt64) -> Double { Double(ph) - Double(ph - 6) * Double(v - low) / Double(high - low) }
        var out = "<g class=\"panel\" data-counter=\"\(c.name)\" transform=\"translate(\(layout.left),\(top))\">\n"
        out += "<rect width=\"\(pw)\" height=\"\(ph)\" fill=\"\(isSplit ? "#fff6f4" : "#fafafa")\" stroke=\"\(isSplit ? "#c0392b" : "#cccccc")\"/>\n"
        out += "<text x=\"0\" y=\"-6\" font-weight=\"bold\"\(isSplit ? " fill=\"#c0392b\"" : "")>\(c.name)\(isSplit ? " — first divergence" : "")</text>\n"
        let ends = traces.map { "\($0.label) \($0.data.series[c]?.end ?? 0)" }.joined(separator: "   ")
        let whole = traces.allSatisfy { from + span >= $0.data.events }
        out += "<text x=\"\(pw)\" y=\"-6\" text-anchor=\"end\">\(whole ? "end" : "at #\(from + span - 1)"): \(escapeXML(ends))</text>\n"
        for v in Set([low, low + (high - low) / 2, high]).sorted() {
            let yy = format(y(v))
            out += "<line x1=\"0\" y1=\"\(yy)\" x2=\"\(pw)\" y2=\"\(yy)\" stroke=\"#e4e4e4\"/>"
            out += "<text x=\"-6\" y=\"\(yy)\" dy=\"4\" text-anchor=\"end\">\(v)</text>\n"
        }
        // x axis: event numbers.
        for t in ticks {
            let xx = format(x(t))
            out += "<line x1=\"\(xx)\" y1=\"\(ph)\" x2=\"\(xx)\" y2=\"\(ph + 4)\" stroke=\"#888888\"/>"
            out += "<text x=\"\(xx)\" y=\"\(ph + 15)\" text-anchor=\"middle\">\(t)</text>\n"
        }
        if i == counters.count - 1 {
            out += "<text x=\"\(pw / 2)\" y=\"\(ph + 30)\" text-anchor=\"middle\" fill=\"#555555\">\(escapeXML(xLabel))</text>\n"
        }
        for (k, t) in traces.enumerated() {
            guard let s = t.data.series[c] else { continue }
            out += "<path class=\"series\" data-trace=\"\(escapeXML(t.label))\" data-transitions=\"\(s.transitions)\" data-end=\"\(s.end)\" "
                + "fill=\"none\" stroke=\"\(t.colour)\" stroke-width=\"\(k == 0 ? "2.2" : "1.4")\" d=\"\(path(s, y: y, events: t.data.events))\"/>\n"
        }
        // Marker events (a trigger that fired): a solid grey line, labelled in the first panel.
        for (k, t) in traces.enumerated() {
            for m in t.data.markers {
                let xx = format(x(m.x))
                let label = escapeXML("\(t.label) #\(m.event) \(m.text)")
                out += "<line class=\"marker\" data-trace=\"\(escapeXML(t.label))\" data-event=\"\(m.event)\" x1=\"\(xx)\" y1=\"0\" x2=\"\(xx)\" y2=\"\(ph)\" "
                    + "stroke=\"#555555\" stroke-width=\"1\"><title>\(label)</title></line>\n"
                if i == 0 { out += "<text x=\"\(xx)\" y=\"\(ph - 4 - 12 * k)\" dx=\"3\" fill=\"#555555\">\(label)</text>\n" }
            }
        }
        if let split {
            // A side without an event at the split is marked, dotted, after its last aligned event.
            for (k, side) in [split.a, split.b].enumerated() where k < traces.count {
                guard let e = side.event ?? side.after else { continue }
                let at = traces[k].data.toAxis.map(e)   // the event's place on the axis
                guard at >= from, at - from < span else { continue }
                let label = escapeXML(traces[k].label) + (side.event == nil ? " lacks it, after #\(e)" : " #\(e)")
                let xx = format(x(at))
                out += "<line class=\"divergence\" data-trace=\"\(escapeXML(traces[k].label))\" data-event=\"\(side.event.map(String.init) ?? "")\" "
                    + "x1=\"\(xx)\" y1=\"0\" x2=\"\(xx)\" y2=\"\(ph)\" stroke=\"\(traces[k].colour)\" stroke-width=\"1.2\" "
                    + "stroke-dasharray=\"\(side.event == nil ? "1 3" : "4 3")\"><title>\(label)</title></line>\n"
                if isSplit {
                    out += "<text x=\"\(xx)\" y=\"\(12 + 12 * k)\" dx=\"4\" fill=\"\(traces[k].colour)\">\(label)</text>\n"
                }
            }
        }
        out += "</g>\n"
        return out
    }

    /// A step line: flat between columns, vertical through each column's range.
    func path(_ s: BinnedSeries, y: (UInt64) -> Double, events: UInt64) -> String {
        var d = "M0,\(format(y(s.start)))"
        var current = s.start
        for (col, bin) in s.bins.enumerated() {
            guard let b = bin else { continue }
            d += "H\(col)"
            for v in [b.first, b.low, b.high, b.last] where v != current {
                d += "V\(format(y(v)))"
                current = v
            }
        }
        d += "H\(format(x(min(events, from &+ span))))"
        return d
    }

    /// About six round tick values (1, 2 or 5 × 10^k apart) from `low` to `high`.
    static func ticks(from low: UInt64 = 0, through high: UInt64) -> [UInt64] {
        let span = high - low
        var step: UInt64 = 1
        while span / step > 6 {
            let s = step
            if span / (2 * s) <= 6 { step = 2 * s; break }
            if span / (5 * s) <= 6 { step = 5 * s; break }
            step = 10 * s
        }
        let first = (low + step - 1) / step * step
        return first > high ? [] : Array(stride(from: first, through: high, by: Int(step)))
    }

    /// A coordinate with one decimal.
    func format(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        let sign = t < 0 ? "-" : ""
        let a = abs(t)
        return a % 10 == 0 ? "\(sign)\(a / 10)" : "\(sign)\(a / 10).\(a % 10)"
    }
}

/// Escapes text for XML and HTML content and attribute values.
public func escapeXML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default:
            // Control characters are not allowed in XML 1.0.
            if ch.value < 0x20 && ch != "\n" && ch != "\t" { out += "?" } else { out.unicodeScalars.append(ch) }
        }
    }
    return out
}

extension CounterPlot {
    /// A self-contained page: the SVG inline, the verdict, and (for two
    /// traces) the counters at the split and at the end with B−A, and the
    /// aligned events around the split.
    public func html(diff: CounterDiff?, closeUp: CounterPlot? = nil) -> String {
        var out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>\(escapeXML(title))</title>\n<style>\n"
        out += """
            body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
            h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
            .verdict { font-weight: bold; } .differ { color: #c0392b; } .same { color: #2a7d2a; }
            table { border-collapse: collapse; font-size: 13px; }
            th, td { padding: 2px 10px; text-align: right; border-bottom: 1px solid #ddd; }
            th:first-child, td:first-child, .text { text-align: left; }
            tr.differs { background: #fff0ee; } td.mark { font-family: monospace; }
            code { font-size: 12px; }

            """
        out += "</style>\n</head>\n<body>\n<h1>\(escapeXML(title))</h1>\n"
        for t in traces {
            out += "<p><b>\(escapeXML(t.label))</b>: <code>\(escapeXML(t.path))</code>, \(t.data.events) events</p>\n"
        }
        out += "<p class=\"verdict \(split == nil ? "same" : "differ")\">\(escapeXML(verdict))</p>\n"
        out += svg(titled: false)
        if let closeUp {
            out += "<h2>Close-up: events \(closeUp.from) to \(closeUp.from + closeUp.span - 1) around the split</h2>\n" + closeUp.svg(titled: false)
        }
        if let diff, traces.count > 1 {
            let a = traces[0].label, b = traces[1].label
            let points: [(String, NetCounters, NetCounters)] = (split.map { [("split", $0.countersA, $0.countersB)] } ?? []) + [("end", diff.endA, diff.endB)]
            let rows = NetCounter.allCases.filter { c in points.contains { $0.1[c] != 0 || $0.2[c] != 0 } }
            out += "<h2>Counters" + (split == nil ? " at the end" : " at the first divergence and at the end") + "</h2>\n<table class=\"counters\">\n<tr><th>counter</th>"
            for p in points { out += "<th>\(escapeXML(a)) \(p.0)</th><th>\(escapeXML(b)) \(p.0)</th>" }
            out += "<th>\(escapeXML(b))−\(escapeXML(a)) end</th></tr>\n"
            for c in rows {
                let differs = points.contains { $0.1[c] != $0.2[c] }
                out += "<tr\(differs ? " class=\"differs\"" : "") data-counter=\"\(c.name)\"><td>\(c.name)</td>"
                for p in points { out += "<td>\(p.1[c])</td><td>\(p.2[c])</td>" }
                let delta = Int64(bitPattern: diff.endB[c] &- diff.endA[c])
                out += "<td>\(delta > 0 ? "+" : "")\(delta)</td></tr>\n"
            }
            out += "</table>\n"
            if !diff.context.isEmpty {
                out += "<h2>Around the split</h2>\n<p>= in both, − only in \(escapeXML(a)), + only in \(escapeXML(b))</p>\n<table class=\"context\">\n"
                out += "<tr><th></th><th>\(escapeXML(a)) event</th><th>\(escapeXML(b)) event</th><th class=\"text\">event</th></tr>\n"
                for line in diff.context {
                    out += "<tr\(line.mark == "=" ? "" : " class=\"differs\"")><td class=\"mark\">\(escapeXML(line.mark))</td><td>\(line.eventA.map(String.init) ?? "")</td>"
                        + "<td>\(line.eventB.map(String.init) ?? "")</td><td class=\"text\"><code>\(escapeXML(line.text))</code></td></tr>\n"
                }
                out += "</table>\n"
            }
            out += "<p>Counter transitions: \(diff.matched) in both, \(diff.onlyA) only in \(escapeXML(a)), \(diff.onlyB) only in \(escapeXML(b)).</p>\n"
        }
        out += "<p><small>Drawn by vtrace plot: each line is a counter's value over event numbers; "
            + "a column of pixels shows the range the counter took over the events it covers.</small></p>\n</body>\n</html>\n"
        return out
    }
}
