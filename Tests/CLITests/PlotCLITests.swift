import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// The elements of an SVG document that the tests look at, read with XMLParser
/// (which fails on a document that is not well-formed).
final class SVGSummary: NSObject, XMLParserDelegate {
    struct Panel {
        var counter: String
        var title: [String] = []
        var paths: [[String: String]] = []
        var divergences: [[String: String]] = []
    }
    var panels: [Panel] = []
    var root: [String: String] = [:]
    var text = ""
    var error: String?

    init(_ text: String) {
        super.init()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = self
        if !parser.parse() { error = parser.parserError.map { "\($0)" } ?? "not well-formed" }
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        text = ""
        switch name {
        case "svg": root = attributes
        case "g" where attributes["class"] == "panel": panels.append(Panel(counter: attributes["data-counter"] ?? "?"))
        case "path" where !panels.isEmpty: panels[panels.count - 1].paths.append(attributes)
        case "line" where attributes["class"] == "divergence": panels[panels.count - 1].divergences.append(attributes)
        default: break
        }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text", !panels.isEmpty { panels[panels.count - 1].title.append(text) }
    }
}

@Suite("vtrace plot")
struct PlotCLITests {
    /// Per counter, the number of transitions and the last value (all NICs summed).
    func transitions(_ path: String) throws -> [String: (count: Int, end: Int)] {
        var perNIC: [Int: [String: Int]] = [:]
        var out: [String: (count: Int, end: Int)] = [:]
        for o in try dumpLines(path, kind: "counter") {
            let c = o["counter"] as! String, nic = o["nic"] as! Int
            perNIC[nic, default: [:]][c] = o["value"] as? Int
            out[c] = ((out[c]?.count ?? 0) + 1, perNIC.values.reduce(0) { $0 + ($1[c] ?? 0) })
        }
        return out
    }

    /// One trace: a well-formed SVG with a panel per counter that moved, in
    /// the counters' order, each path ending at the counter's final value
    /// after as many transitions as the trace has; no divergence marks.
    @Test func oneTraceDrawsEveryCounterThatMoved() throws {
        let trace = try recorded("nics-aggregate", "plot-one.vtrace")
        let out = try temporaryFile("plot-one.svg", [])
        let r = try CLI.run("plot", trace, "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        let svg = SVGSummary(try String(contentsOfFile: out, encoding: .utf8))
        #expect(svg.error == nil, "\(svg.error ?? "")")
        let moved = try transitions(trace)
        let order = ["tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "tx_dropped_no_rx_buffer", "tx_dropped_rx_poisoned", "tx_chain_invalid",
                     "tx_oversize_dropped", "rx_chain_invalid", "rx_write_failed", "tx_add_used_failures", "rx_add_used_failures",
                     "invalid_avail_idx_count", "ctrl_mq_set", "ctrl_chain_invalid", "ctrl_add_used_failures"]
        #expect(svg.panels.map(\.counter) == order.filter { moved[$0] != nil })
        for p in svg.panels {
            #expect(p.paths.count == 1 && p.divergences.isEmpty)
            #expect(p.paths.first?["data-transitions"] == String(moved[p.counter]!.count), "\(p.counter)")
            #expect(p.paths.first?["data-end"] == String(moved[p.counter]!.end), "\(p.counter)")
        }
        #expect(svg.root["width"] == "960")
        #expect(r.stderr.contains("\(svg.panels.count) panels"))
        // --nic and --counters narrow it.
        let nic1 = try CLI.run("plot", trace, "--nic", "1", "--counters", "tx_packets,rx_packets", "-o", out, "--width", "700")
        #expect(nic1.status == 0, "\(nic1.stderr)")
        let narrow = SVGSummary(try String(contentsOfFile: out, encoding: .utf8))
        #expect(narrow.panels.map(\.counter) == ["tx_packets", "rx_packets"] && narrow.root["width"] == "700")
        #expect(narrow.panels[0].paths.first?["data-end"] == "1" && narrow.panels[1].paths.first?["data-end"] == "0")
    }

    /// Clean vs drop-rx:2: both traces in every panel, every panel marked at
    /// A's event of the split as `vtrace diff` reports it, and B's mark after
    /// its last aligned event; the split counter's panel says so.
    @Test func twoTracesMarkTheFirstDivergence() throws {
        let clean = try recorded("loopback-basic", "plot-clean.vtrace")
        let faulty = try recorded("loopback-basic", "plot-faulty.vtrace", ["--fault", "drop-rx:2"])
        let d = try CLI.run("diff", clean, faulty, "--json")
        let scope = try #require(((try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as? [String: Any])?["scopes"] as? [[String: Any]])?.first)
        let eventA = try #require(scope["event_a"] as? Int), afterB = try #require(scope["after_b"] as? Int)
        #expect(scope["split_counter"] as? String == "rx_packets" && scope["event_b"] is NSNull)

        let out = try temporaryFile("plot-two.svg", [])
        let r = try CLI.run("plot", clean, faulty, "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("first divergence: rx_packets at A #\(eventA), B lacks it"), "\(r.stderr)")
        let svg = SVGSummary(try String(contentsOfFile: out, encoding: .utf8))
        #expect(svg.error == nil, "\(svg.error ?? "")")
        #expect(svg.panels.map(\.counter) == ["tx_packets", "tx_bytes", "rx_packets", "rx_bytes"])
        for p in svg.panels {
            #expect(p.paths.map { $0["data-trace"] } == ["A", "B"])
            #expect(p.divergences.map { $0["data-event"] } == [String(eventA), ""], "\(p.counter)")
            #expect(p.divergences.last?["x1"] != nil)
            #expect(p.title.contains { $0.contains("first divergence") } == (p.counter == "rx_packets"))
        }
        let rx = try #require(svg.panels.first { $0.counter == "rx_packets" })
        #expect(rx.paths.map { $0["data-end"] } == ["3", "2"])
        #expect(rx.title.contains("B lacks it, after #\(afterB)"))

        // Identical traces: no marks, and the verdict says so.
        let same = try CLI.run("plot", clean, clean, "-o", out)
        #expect(same.status == 0 && same.stderr.contains("identical counter timelines"), "\(same.stderr)")
        #expect(SVGSummary(try String(contentsOfFile: out, encoding: .utf8)).panels.allSatisfy { $0.divergences.isEmpty })
    }

    /// The HTML page: self-contained (no fetch, no script), its SVG
    /// well-formed, the divergence table with the counters that differ; drawn
    /// by headless Chromium (when installed) into a PNG with both traces' colours.
    @Test func htmlPageIsSelfContainedAndRenders() throws {
        let clean = try recorded("loopback-basic", "plot-html-clean.vtrace")
        let faulty = try recorded("loopback-basic", "plot-html-faulty.vtrace", ["--fault", "drop-rx:2"])
        let out = try temporaryFile("plot.html", [])
        let r = try CLI.run("plot", clean, faulty, "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOfFile: out, encoding: .utf8)
        for fetch in ["src=", "href=", "<script", "url(", "@import", "<link"] { #expect(!html.contains(fetch), "\(fetch)") }
        let start = try #require(html.range(of: "<svg")), end = try #require(html.range(of: "</svg>"))
        let svg = SVGSummary(String(html[start.lowerBound..<end.upperBound]))
        #expect(svg.error == nil && svg.panels.count == 4)
        #expect(html.contains("<tr class=\"differs\" data-counter=\"rx_packets\"><td>rx_packets</td><td>1</td><td>1</td><td>3</td><td>2</td><td>-1</td></tr>"))
        #expect(html.contains("<tr data-counter=\"tx_packets\"><td>tx_packets</td><td>1</td><td>1</td><td>3</td><td>3</td><td>0</td></tr>"))
        #expect(html.contains("<table class=\"context\">"))

        guard let fields = try renderedColours(out, width: 1000, height: 1200, name: "plot") else {
            print("SKIPPED: chromium is not installed (tools/bootstrap.sh --test installs it); the HTML was checked as text only")
            return
        }
        #expect(fields.count == 4, "\(fields)")
        #expect(fields.prefix(2) == [1000, 1200])
        #expect(fields.count == 4 && fields[2] > 200 && fields[3] > 20, "pixels of A's and B's colours: \(fields)")
    }

    /// --from/--to draw only that range: transitions counted within it, axes
    /// ticked within it, the path ending at the value the counter had there.
    @Test func rangeDrawsOnlyItsEvents() throws {
        let trace = try recorded("loopback-basic", "plot-range.vtrace")
        let out = try temporaryFile("plot-range.svg", [])
        let r = try CLI.run("plot", trace, "--from", "60", "--to", "90", "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        let svg = SVGSummary(try String(contentsOfFile: out, encoding: .utf8))
        #expect(svg.error == nil)
        let counters = try dumpLines(trace, kind: "counter")
        for p in svg.panels {
            let inRange = counters.filter { $0["counter"] as? String == p.counter && (60...90).contains($0["n"] as! Int) }
            let before = counters.last { $0["counter"] as? String == p.counter && ($0["n"] as! Int) <= 90 }
            #expect(!inRange.isEmpty && p.paths.first?["data-transitions"] == String(inRange.count), "\(p.counter)")
            #expect(p.paths.first?["data-end"] == String(before?["value"] as! Int), "\(p.counter)")
            #expect(p.title.contains("at #90: A \(before?["value"] as! Int)"), "\(p.title)")
            // The x-axis labels come after the y-axis ones; none outside the range.
            let numbers = p.title.compactMap { Int($0) }
            #expect(numbers.suffix(7) == [60, 65, 70, 75, 80, 85, 90] && numbers.count <= 10, "\(p.title)")
        }
        #expect(svg.panels.map(\.counter) == ["tx_packets", "tx_bytes", "rx_packets", "rx_bytes"])
        let bad = try CLI.run("plot", trace, "--from", "90", "--to", "60", "-o", out)
        #expect(bad.status == 2 && bad.stderr.contains("--to 60 is before --from 90"), "\(bad.stderr)")
    }

    /// Two longer traces that part mid-way: the HTML page adds a close-up
    /// from 200 events before the split's earlier mark (A's event, or B's
    /// last aligned one) to 200 after the later, marked at A's event.
    @Test func htmlPageAddsACloseUpOfTheSplit() throws {
        let scenario = try temporaryFile("plot-long.scenario",
                                         Array(("driver init\n" + String(repeating: "rx post count=4\ntx send count=4\n", count: 30)).utf8))
        let clean = try recorded(scenario, "plot-long-clean.vtrace")
        let faulty = try recorded(scenario, "plot-long-faulty.vtrace", ["--fault", "drop-rx:60"])
        let eventA = try #require(try transition(clean, "rx_packets", 60))
        let d = try CLI.run("diff", clean, faulty, "--json")
        let scope = try #require(((try JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as? [String: Any])?["scopes"] as? [[String: Any]])?.first)
        #expect(scope["event_a"] as? Int == eventA)
        let afterB = try #require(scope["after_b"] as? Int)
        let low = min(eventA, afterB) - 200, high = max(eventA, afterB) + 200
        let out = try temporaryFile("plot-long.html", [])
        let r = try CLI.run("plot", clean, faulty, "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOfFile: out, encoding: .utf8)
        #expect(html.contains("<h2>Close-up: events \(low) to \(high) around the split</h2>"), "A #\(eventA), B after #\(afterB)")
        let svgs = html.components(separatedBy: "<svg").dropFirst().map { "<svg" + $0.components(separatedBy: "</svg>")[0] + "</svg>" }
        #expect(svgs.count == 2)
        let close = SVGSummary(svgs.last ?? "")
        #expect(close.error == nil && close.root["width"] == "960")
        let rx = try #require(close.panels.first { $0.counter == "rx_packets" })
        #expect(rx.divergences.first?["data-event"] == String(eventA))
        let inRange = try [clean, faulty].map { t in
            String(try dumpLines(t, kind: "counter").filter { $0["counter"] as? String == "rx_packets" && (low...high).contains($0["n"] as! Int) }.count)
        }
        #expect(rx.paths.map { $0["data-transitions"] } == inRange, "\(inRange)")
        #expect(inRange[0] != inRange[1])
    }

    @Test func badArgumentsExit2() throws {
        let trace = repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path
        let png = try CLI.run("plot", trace, "-o", "out.png")
        #expect(png.status == 2 && png.stderr.contains("must end in .svg or .html"), "\(png.stderr)")
        let nic = try CLI.run("plot", trace, "--nic", "3", "-o", try temporaryFile("x.svg", []))
        #expect(nic.status == 2 && nic.stderr.contains("--nic 3"), "\(nic.stderr)")
        let counter = try CLI.run("plot", trace, "--counters", "tx_pakets", "-o", try temporaryFile("x.svg", []))
        #expect(counter.status == 2 && counter.stderr.contains("unknown counter 'tx_pakets'"), "\(counter.stderr)")
    }
}

/// Renders `file` (SVG or HTML) in headless Chromium at `width`×`height` and
/// counts the pixels of A's and B's colours: [width, height, A's, B's]; nil
/// where Chromium is not installed.
func renderedColours(_ file: String, width: Int, height: Int, name: String) throws -> [Int]? {
    guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        return nil
    }
    let png = try temporaryFile("\(name).png", [])
    let profile = try temporaryFile("chromium-\(name)", [])
    try? FileManager.default.removeItem(atPath: profile)
    let shot = try runCombined("/usr/bin/timeout", ["120", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                    "--user-data-dir=\(profile)", "--window-size=\(width),\(height)", "--screenshot=\(png)", "file://\(file)"])
    #expect(shot.status == 0, "\(shot.output)")
    let counted = try runCombined("/usr/bin/python3", [repositoryRoot.appendingPathComponent("tools/png-colours.py").path, png, "1f77b4", "e8710a"])
    return counted.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
}

@Suite("vtrace plot axes")
struct PlotAxisTests {
    @Test func theTimeAndEventAxesDrawAndTimeRefusesAnEventRange() throws {
        let trace = repositoryRoot.appendingPathComponent("traces/golden/long-drain.vtrace").path
        let out = try temporaryFile("time-axis.svg", [])
        let time = try CLI.run("plot", trace, "--x", "time", "-o", out)
        #expect(time.status == 0, "\(time.stderr)")
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        #expect(svg.contains(">nanoseconds since the first access<"))
        let refused = try CLI.run("plot", trace, "--x", "time", "--from", "5", "-o", out)
        #expect(refused.status == 2 && refused.stderr.contains("not with --x time"), "\(refused.stderr)")
        let events = try CLI.run("plot", trace, trace, "--x", "events", "-o", out)
        let drawn = try String(contentsOfFile: out, encoding: .utf8)
        #expect(events.status == 0 && drawn.contains(">event number (each trace its own)<"))
    }
}
