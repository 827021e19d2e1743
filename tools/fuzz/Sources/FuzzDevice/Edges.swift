// Guest addresses next to the edges of the fuzzed memory layout, for the
// structure-aware steps: chains and rings that cross from one region into a
// hole, straddle the end of guest memory, or wrap the address space.

/// The edges: start of RAM, the driver area, the end of the first region,
/// the island's start and end, and the top of the address space.
let memoryEdges: [UInt64] = [0, 0x10_0000, 2 << 20, 4 << 20, (4 << 20) + (64 << 10), UInt64.max]

extension Input {
    /// An address within 128 bytes either side of one of ``memoryEdges`` (wrapping).
    mutating func edgeAddress() -> UInt64 {
        let edge = memoryEdges[Int(byte()) % memoryEdges.count]
        return edge &+ UInt64(bitPattern: Int64(Int8(bitPattern: byte())))
    }
}
