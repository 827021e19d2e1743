import VirtioCore

/// Renders counters as an aligned text table, one row per counter, one
/// column per NIC plus a total when there are several.
enum CounterTable {
    /// One column per NIC (nic0, nic1, …) and, with more than one, their total; non-zero rows.
    static func render(perNIC counters: [NetCounters]) -> String {
        var columns = counters.enumerated().map { ("nic\($0.offset)", $0.element) }
        if counters.count > 1 { columns.append(("total", NetCounters.aggregate(counters) ?? NetCounters())) }
        return render(columns, onlyNonZero: true)
    }

    static func render(_ columns: [(String, NetCounters)], onlyNonZero: Bool = false) -> String {
        let names = NetCounter.allCases.filter { c in !onlyNonZero || columns.contains { $0.1[c] != 0 } }
        return render(rows: names, columns: columns.map { col in (col.0, { String(col.1[$0]) }) })
    }

    /// The general form: `columns` give a heading and a cell per counter;
    /// `mark` a suffix per row (for example " *" where values differ).
    static func render(rows names: [NetCounter], columns: [(String, (NetCounter) -> String)], indent: String = "",
                       mark: (NetCounter) -> String = { _ in "" }) -> String {
        let nameWidth = max(7, names.map(\.name.count).max() ?? 0)
        let cells = names.map { c in columns.map { $0.1(c) } }
        let widths = columns.indices.map { i in max(columns[i].0.count, cells.map { $0[i].count }.max() ?? 1) }
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + fill : fill + s
        }
        var lines = [indent + pad("counter", nameWidth, left: true) + "  " + zip(columns, widths).map { pad($0.0, $1) }.joined(separator: "  ")]
        for (c, row) in zip(names, cells) {
            lines.append(indent + pad(c.name, nameWidth, left: true) + "  " + zip(row, widths).map { pad($0, $1) }.joined(separator: "  ") + mark(c))
        }
        if names.isEmpty { lines.append(indent + "(all counters are zero)") }
        return lines.joined(separator: "\n")
    }
}
