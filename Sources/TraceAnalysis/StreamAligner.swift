//! Aligning two key streams: Myers' shortest edit script, run over windows
//! of the streams so memory stays bounded however long the traces are.

import TraceFormat

/// One step of an alignment.
public enum DiffOp: Sendable {
    case both(KeyedEvent, KeyedEvent)
    case onlyA(KeyedEvent)
    case onlyB(KeyedEvent)
}

/// Myers' shortest edit script between two key sequences, with at most
/// `maxEdits` edits (nil beyond that). The script is returned as ops in order.
func myersDiff(_ x: ArraySlice<KeyedEvent>, _ y: ArraySlice<KeyedEvent>, maxEdits: Int) -> [DiffOp]? {
    let n = x.count, m = y.count
    let x0 = x.startIndex, y0 = y.startIndex
    let limit = min(maxEdits, n + m)
    let offset = limit + 1
    var v = [Int](repeating: 0, count: 2 * limit + 3)
    var trace: [[Int]] = []
    var found = -1
    outer: for d in 0...limit {
        trace.append(v)
        var k = -d
        while k <= d {
            var i: Int
            if k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]) {
                i = v[offset + k + 1]  // down: an insertion from y
            } else {
                i = v[offset + k - 1] + 1  // right: a deletion from x
            }
            var j = i - k
            while i < n && j < m && x[x0 + i].key == y[y0 + j].key {
                i += 1
                j += 1
            }
            v[offset + k] = i
            if i >= n && j >= m {
                found = d
                break outer
            }
            k += 2
        }
    }
    guard found >= 0 else { return nil }
    // Walk back through the saved frontiers.
    var ops: [DiffOp] = []
    var i = n, j = m
    var d = found
    while d >= 0 {
        let vd = trace[d]
        let k = i - j
        if d == 0 {
            while i > 0 && j > 0 {
                i -= 1
                j -= 1
                ops.append(.both(x[x0 + i], y[y0 + j]))
            }
            break
        }
        let down = k == -d || (k != d && vd[offset + k - 1] < vd[offset + k + 1])
        let prevK = down ? k + 1 : k - 1
        let prevI = vd[offset + prevK]
        let prevJ = prevI - prevK
        while i > prevI + (down ? 0 : 1) && j > prevJ + (down ? 1 : 0) {
            i -= 1
            j -= 1
            ops.append(.both(x[x0 + i], y[y0 + j]))
        }
        if down {
            j -= 1
            ops.append(.onlyB(y[y0 + j]))
        } else {
            i -= 1
            ops.append(.onlyA(x[x0 + i]))
        }
        d -= 1
    }
    return ops.reversed()
}

/// Aligns two key streams in windows: matching heads are taken directly; where
/// they differ, a Myers diff over the next window decides, and its script is
/// used up to a safe distance from the window's end (the rest is aligned again
/// with more data). Memory is bounded by the window and the edit limit.
public struct StreamAligner {
    public var a: KeyStream
    public var b: KeyStream
    var bufA: [KeyedEvent] = []
    var bufB: [KeyedEvent] = []
    var headA = 0, headB = 0
    var endA = false, endB = false
    var pending: [DiffOp] = []
    var pendingIndex = 0
    /// Keys looked at per side by one Myers run.
    public let window: Int
    /// Most edits one Myers run may find before the window counts as unaligned.
    public let maxEdits: Int
    /// Windows that could not be aligned within `maxEdits` (reported as all different).
    public private(set) var unalignedWindows = 0

    public init(a: KeyStream, b: KeyStream, window: Int = 8192, maxEdits: Int = 512) {
        self.a = a
        self.b = b
        self.window = window
        self.maxEdits = maxEdits
    }

    mutating func fill() throws(TraceError) {
        if headA > 4096 && headA * 2 > bufA.count { bufA.removeFirst(headA); headA = 0 }
        if headB > 4096 && headB * 2 > bufB.count { bufB.removeFirst(headB); headB = 0 }
        while !endA && bufA.count - headA < window {
            if let e = try a.next() { bufA.append(e) } else { endA = true }
        }
        while !endB && bufB.count - headB < window {
            if let e = try b.next() { bufB.append(e) } else { endB = true }
        }
    }

    /// The next step of the alignment, or nil when both traces are done.
    public mutating func next() throws(TraceError) -> DiffOp? {
        if pendingIndex < pending.count {
            pendingIndex += 1
            return pending[pendingIndex - 1]
        }
        if bufA.count - headA < 64 || bufB.count - headB < 64 { try fill() }
        let leftA = bufA.count - headA, leftB = bufB.count - headB
        if leftA == 0 && leftB == 0 { return nil }
        if leftA == 0 { headB += 1; return .onlyB(bufB[headB - 1]) }
        if leftB == 0 { headA += 1; return .onlyA(bufA[headA - 1]) }
        if bufA[headA].key == bufB[headB].key {
            headA += 1
            headB += 1
            return .both(bufA[headA - 1], bufB[headB - 1])
        }
        try fill()
        let x = bufA[headA..<min(bufA.count, headA + window)]
        let y = bufB[headB..<min(bufB.count, headB + window)]
        // Use the script up to a margin before either window's end, unless that
        // side's stream is finished (its window end is the real end).
        let margin = window / 4
        let safeA = endA && x.count < window ? x.count : max(1, x.count - margin)
        let safeB = endB && y.count < window ? y.count : max(1, y.count - margin)
        pending.removeAll(keepingCapacity: true)
        pendingIndex = 0
        if let script = myersDiff(x, y, maxEdits: maxEdits) {
            var usedA = 0, usedB = 0, inStep = 0
            for op in script {
                switch op {
                case .both: usedA += 1; usedB += 1; inStep += 1
                case .onlyA: usedA += 1; inStep = 0
                case .onlyB: usedB += 1; inStep = 0
                }
                pending.append(op)
                // Back in step for a while: the heads will match again from here.
                if inStep >= 32 || usedA >= safeA || usedB >= safeB { break }
            }
            headA += usedA
            headB += usedB
        } else {
            // Too different to align here: take half a window of each as unmatched.
            unalignedWindows += 1
            let takeA = max(1, min(x.count, window / 2)), takeB = max(1, min(y.count, window / 2))
            for e in x.prefix(takeA) { pending.append(.onlyA(e)) }
            for e in y.prefix(takeB) { pending.append(.onlyB(e)) }
            headA += takeA
            headB += takeB
        }
        return try next()
    }
}
