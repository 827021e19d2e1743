/// Guest memory sizes as QEMU writes them.
public enum QEMUMemorySize {
    /// QEMU's RAM when `-m` does not say (pc, q35, microvm).
    public static let defaultBytes: UInt64 = 128 << 20

    /// The RAM an `-m` value gives the guest: `256M`, `1G`, `size=512M,slots=2,maxmem=4G`,
    /// a plain number of MiB; no size (or 0) is QEMU's default; rounded up to
    /// 8 KiB as QEMU does. Nil when it does not parse.
    public static func ram(_ value: String) -> UInt64? {
        guard let properties = try? QEMUProperties(parsing: value, impliedKey: "size") else { return nil }
        return ram(properties)
    }

    /// The RAM `-m`'s properties give the guest (its `size`), as ``ram(_:)-(String)`` reads it.
    public static func ram(_ properties: QEMUProperties) -> UInt64? {
        guard let size = properties["size"] else { return defaultBytes }
        guard let last = size.last else { return nil }
        // A number without a suffix is MiB (QEMU's legacy -m format; read as bytes first, so no fraction).
        guard var bytes = self.bytes(size) else { return nil }
        if last.isNumber {
            let (mib, overflow) = bytes.multipliedReportingOverflow(by: 1 << 20)
            guard !overflow else { return nil }
            bytes = mib
        }
        if bytes == 0 { return defaultBytes }
        let (rounded, overflow) = bytes.addingReportingOverflow(8191)
        return overflow ? nil : rounded & ~8191
    }

    /// A size with an optional suffix (B, K, M, G, T, P, E, either case; a
    /// fraction only with K and up), as QEMU's qemu_strtosz reads it. Nil when it does not parse.
    public static func bytes(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = ["b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60]
        var number = Substring(text)
        var unit: UInt64 = 1
        if let last = text.last, let u = units[Character(last.lowercased())] {
            unit = u
            number = number.dropLast()
        }
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCII), let integer = UInt64(whole) else { return nil }
        var fraction = 0.0
        if parts.count == 2 {
            guard unit > 1, !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let f = Double("0." + parts[1]) else { return nil }
            fraction = f
        }
        let (scaled, overflow) = integer.multipliedReportingOverflow(by: unit)
        guard !overflow else { return nil }
        let (total, over) = scaled.addingReportingOverflow(UInt64(fraction * Double(unit)))
        return over ? nil : total
    }

    /// `bytes` in QEMU's notation, as short as exact: `1G`, `256M`, `8K`, or bytes.
    public static func text(_ bytes: UInt64) -> String {
        for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] where bytes != 0 && bytes % (1 << UInt64(shift)) == 0 {
            return "\(bytes >> UInt64(shift))\(suffix)"
        }
        return "\(bytes)"
    }
}
