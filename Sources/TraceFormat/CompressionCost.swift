//! What compressing a byte has cost the writer's thread, as a running average.

/// CPU nanoseconds a byte that one way of compressing (a level, a match
/// finder) has cost the writer's thread over the chunks it compressed: a
/// running average in which each new chunk weighs a quarter, so that a
/// change in the traffic shows within a few chunks. Chunks smaller than
/// ``smallestMeasured`` are not counted (their cost is zstd's set-up).
public struct CompressionCost: Sendable, Equatable {
    /// Chunks smaller than this are not measured.
    public static let smallestMeasured = 16 * 1024
    /// Weight of a new measurement in the running average.
    static let weight = 0.25

    /// Nanoseconds a byte (nil: nothing measured yet).
    public private(set) var perByte: Double?

    public init() {}

    /// What compressing `bytes` bytes cost.
    public mutating func observe(nanoseconds: UInt64, bytes: Int) {
        guard bytes >= Self.smallestMeasured else { return }
        let cost = Double(nanoseconds) / Double(bytes)
        perByte = perByte.map { $0 + Self.weight * (cost - $0) } ?? cost
    }
}
