import VirtioCore

/// Renders counters as an aligned text table, one row per counter, one
/// column per NIC plus a total when there are several.
enum CounterTable {
    static func render(_ columns: [(String, NetCounters)], onlyNonZero: Bool = false) -> String {
        let names = NetCounter.allCases.filter { c in !onlyNonZero || columns.contains { $0.1[c] != 0 } }
        let nameWidth = max(7, names.map(\.name.count).max() ?? 0)
        let widths = columns.map { col in max(col.0.count, names.map { String(col.1[$0]).count }.max() ?? 1) }
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        var lines = [pad("counter", nameWidth, left: true) + "  " + zip(columns, widths).map { pad($0.0, $1) }.joined(separator: "  ")]
        for c in names {
            lines.append(pad(c.name, nameWidth, left: true) + "  " + zip(columns, widths).map { pad(String($0.1[c]), $1) }.joined(separator: "  "))
        }
        if names.isEmpty { lines.append("(all counters are zero)") }
        return lines.joined(separator: "\n")
    }
}
