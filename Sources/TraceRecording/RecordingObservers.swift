//! What the two recording observers share: everything but where an event goes.

import TraceFormat
import TraceMapping
import VirtioCore

/// A device observer of a ``TraceRecorder``: ``RecordingObserver`` encodes
/// each event as it happens, ``DeferredRecordingObserver`` appends it to a
/// raw chunk the writer's thread encodes. Both hand the recorder the access
/// and drain boundaries, apply the snaplen and read the clock alike: those
/// are defined once here, and each observer says only where an event goes
/// (its hot records, memory accesses, chains, used elements and counters,
/// stay its own, each a direct call).
public protocol RecordingObserving: DeviceObserver {
    var recorder: TraceRecorder { get }
    var nic: Int { get }
    var vcpu: UInt32 { get }
    /// Records an event outside the hot records (``ChunkEncoder/append(_:nic:vcpu:time:)``'s arguments).
    mutating func record(_ event: OutgoingEvent, vcpu: UInt32, time: UInt64)
    /// Records a frame access of `length` bytes that keeps only `bytes` (a snaplen), then checks the hard limit.
    mutating func recordTruncated(address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, write: Bool, ok: Bool)
}

extension RecordingObserving {
    public static var observesAccessBoundaries: Bool { true }
    public mutating func accessBegan(state: VirtioNetState) { recorder.accessBegan(nic: nic, state: state) }
    public mutating func accessEnded(state: VirtioNetState) { recorder.accessEnded(nic: nic, state: state) }
    public static var observesDrainBoundaries: Bool { true }
    public mutating func drainCheckpoint(state: VirtioNetState) { recorder.cutInsideDrain(nic: nic, state: state) }

    @inlinable public mutating func mmioRead(offset: UInt64, width: Int, value: UInt64) {
        record(.mmioRead(offset: offset, width: width, value: value), vcpu: vcpu, time: recorder.clock())
    }
    @inlinable public mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) {
        record(.mmioWrite(offset: offset, width: width, value: value), vcpu: vcpu, time: recorder.clock())
    }
    /// Frame payload past the recorder's snaplen is recorded by its length alone.
    @inlinable @inline(__always) public mutating func frameRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        let kept = recorder.snaplen &- frameOffset
        if kept >= bytes.count || !succeeded {
            if Self.ringSized(bytes.count) { return memoryReadOutOfLine(address: address, bytes: bytes, succeeded: succeeded) }
            return memoryRead(address: address, bytes: bytes, succeeded: succeeded)
        }
        recordTruncated(address: address, length: bytes.count, bytes: Self.prefix(bytes, kept), write: false, ok: true)
    }
    @inlinable @inline(__always) public mutating func frameWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        let kept = recorder.snaplen &- frameOffset
        if kept >= bytes.count {
            if Self.ringSized(bytes.count) { return memoryWriteOutOfLine(address: address, bytes: bytes, succeeded: succeeded) }
            return memoryWrite(address: address, bytes: bytes, succeeded: succeeded)
        }
        recordTruncated(address: address, length: bytes.count, bytes: Self.prefix(bytes, kept), write: true, ok: succeeded)
    }
    /// Whether a frame piece has a ring access's size (2 or 8 bytes), which
    /// the encoder checks against its ring cursors (format 1.7). Such a piece
    /// is recorded out of line, exactly as any access: the frame's reads and
    /// writes inlined into the device's frame copy then leave the cursors'
    /// code out (the compiler knows their size is another), which kept
    /// `readFrame` ~20 instructions a frame larger.
    @inlinable static func ringSized(_ n: Int) -> Bool { n == 2 || n == 8 }
    @inlinable @inline(never) mutating func memoryReadOutOfLine(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        memoryRead(address: address, bytes: bytes, succeeded: succeeded)
    }
    @inlinable @inline(never) mutating func memoryWriteOutOfLine(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        memoryWrite(address: address, bytes: bytes, succeeded: succeeded)
    }
    /// The first `count` of `bytes` (none for a negative count).
    @inlinable static func prefix(_ bytes: UnsafeRawBufferPointer, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[0..<max(count, 0)])
    }
    @inlinable public mutating func interruptRaised(_ kind: InterruptSignals) { record(.raised(kind), vcpu: 0, time: 0) }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) { record(.poisoned(queue: queue, error), vcpu: 0, time: 0) }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) { record(.status(old: old, new: new), vcpu: 0, time: 0) }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) { record(.features(old: old, new: new), vcpu: 0, time: 0) }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) { record(.pairs(old: old, new: new), vcpu: 0, time: 0) }
    public mutating func deviceReset() { record(.reset, vcpu: 0, time: 0) }
    public mutating func warning(_ warning: DeviceWarning) { record(.warned(warning), vcpu: 0, time: 0) }
    public mutating func memoryBindingChanged(bound: Bool) { recorder.memoryBinding(nic: nic, bound: bound) }
    public mutating func transportOperation(_ operation: TransportOperation) { record(.operation(operation), vcpu: 0, time: recorder.clock()) }
}
