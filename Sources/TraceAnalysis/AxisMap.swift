//! A monotonic map from one axis to another through anchor points: B's event
//! numbers onto A's (through the diff's alignment), or a trace's event
//! numbers onto its time.

/// Maps `x` to `y` through anchors added in increasing order of `x`:
/// linear between two anchors, at the nearest anchor's offset beyond them,
/// the identity with none. Holds at most `capacity` anchors, thinned evenly
/// as they come (every other one dropped, the stride doubled), plus the last.
public struct AxisMap: Sendable {
    var xs: [UInt64] = []
    var ys: [UInt64] = []
    var last: (x: UInt64, y: UInt64)?
    var stride = 1
    var seen = 0
    let capacity: Int

    public init(capacity: Int = 8192) { self.capacity = max(2, capacity) }

    /// Anchors kept (the last one included).
    public var count: Int { xs.count + (last.map { $0.x != xs.last ? 1 : 0 } ?? 0) }

    /// `x` maps to `y`; `x` and `y` never below the previous anchor's.
    public mutating func add(_ x: UInt64, _ y: UInt64) {
        if let l = last, x < l.x || y < l.y { return }
        last = (x, y)
        defer { seen += 1 }
        guard seen % stride == 0 else { return }
        xs.append(x)
        ys.append(y)
        if xs.count > capacity {
            xs = xs.enumerated().compactMap { $0.offset % 2 == 0 ? $0.element : nil }
            ys = ys.enumerated().compactMap { $0.offset % 2 == 0 ? $0.element : nil }
            stride *= 2
        }
    }

    /// The anchors, the last one included.
    var anchors: (xs: [UInt64], ys: [UInt64]) {
        guard let l = last, l.x != xs.last else { return (xs, ys) }
        return (xs + [l.x], ys + [l.y])
    }

    /// Where `x` falls on the other axis.
    public func map(_ x: UInt64) -> UInt64 {
        let (xs, ys) = anchors
        guard let x0 = xs.first else { return x }
        if x <= x0 { return ys[0] > x0 - x ? ys[0] - (x0 - x) : 0 }
        if x >= xs[xs.count - 1] { return ys[ys.count - 1] &+ (x - xs[xs.count - 1]) }
        var low = 0, high = xs.count - 1   // xs[low] < x < xs[high]
        while high - low > 1 {
            let mid = (low + high) / 2
            if xs[mid] <= x { low = mid } else { high = mid }
        }
        let dx = Double(xs[high] - xs[low]), dy = Double(ys[high] - ys[low])
        return ys[low] + UInt64((Double(x - xs[low]) * dy / max(dx, 1)).rounded())
    }

    /// The same anchors, the other way round.
    public var inverse: AxisMap {
        var m = AxisMap(capacity: capacity)
        let (xs, ys) = anchors
        for (x, y) in zip(xs, ys) { m.add(y, x) }
        return m
    }
}
