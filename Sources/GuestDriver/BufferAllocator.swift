//! First-fit allocation of guest buffers inside the driver's area.

/// Hands out byte ranges of a fixed guest-physical area and takes them back,
/// merging neighbours, so a long run reuses the same memory.
struct BufferAllocator: Sendable {
    /// Free ranges (start, length), sorted by start, never adjacent.
    private(set) var free: [(UInt64, UInt64)]
    let alignment: UInt64 = 16

    init(start: UInt64, end: UInt64) {
        free = end > start ? [(start, end - start)] : []
    }

    /// The bytes a range of `length` takes: rounded up to 16, at least 16.
    func footprint(_ length: UInt64) -> UInt64 { max(alignment, (length + alignment - 1) / alignment * alignment) }

    /// A range of `length` bytes (rounded up to 16), or nil when none is left.
    mutating func allocate(_ length: UInt64) -> UInt64? {
        let need = footprint(length)
        for i in free.indices where free[i].1 >= need {
            let start = free[i].0
            if free[i].1 == need {
                free.remove(at: i)
            } else {
                free[i] = (start + need, free[i].1 - need)
            }
            return start
        }
        return nil
    }

    /// Returns a range from ``allocate(_:)``.
    mutating func release(_ start: UInt64, _ length: UInt64) {
        let size = footprint(length)
        var i = 0
        while i < free.count && free[i].0 < start { i += 1 }
        free.insert((start, size), at: i)
        // Merge with the following range, then the preceding one.
        if i + 1 < free.count && free[i].0 + free[i].1 == free[i + 1].0 {
            free[i].1 += free[i + 1].1
            free.remove(at: i + 1)
        }
        if i > 0 && free[i - 1].0 + free[i - 1].1 == free[i].0 {
            free[i - 1].1 += free[i].1
            free.remove(at: i)
        }
    }

    /// Bytes still free.
    var available: UInt64 { free.reduce(0) { $0 + $1.1 } }

    /// How many ranges of `length` bytes ``allocate(_:)`` would still hand out.
    func count(fitting length: UInt64) -> Int { free.reduce(0) { $0 + Int($1.1 / footprint(length)) } }
}
