//! The device observer that records: each device action staged as a trace record.

import TraceFormat
import TraceMapping
import VirtioCore

/// The device observer that records. One per NIC; all share one recorder.
public struct RecordingObserver: DeviceObserver {
    public let recorder: TraceRecorder
    public let nic: Int
    public var vcpu: UInt32

    public static var observesAccessBoundaries: Bool { true }
    public mutating func accessBegan(state: VirtioNetState) { recorder.accessBegan(nic: nic, state: state) }
    public mutating func accessEnded(state: VirtioNetState) { recorder.accessEnded(nic: nic, state: state) }
    public static var observesDrainBoundaries: Bool { true }
    @inlinable @inline(__always) public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction { recorder.drainBoundary() }
    public mutating func drainCheckpoint(state: VirtioNetState) { recorder.cutInsideDrain(nic: nic, state: state) }

    @inlinable public mutating func mmioRead(offset: UInt64, width: Int, value: UInt64) {
        recorder.staged.append(.mmioRead(offset: offset, width: width, value: value), nic: nic, vcpu: vcpu, time: recorder.clock())
    }
    @inlinable public mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) {
        recorder.staged.append(.mmioWrite(offset: offset, width: width, value: value), nic: nic, vcpu: vcpu, time: recorder.clock())
    }
    @inlinable @inline(__always) public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.staged.append(.memoryRead(address: address, length: bytes.count, ok: succeeded, bytes: bytes), nic: nic)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.staged.append(.memoryWrite(address: address, length: bytes.count, ok: succeeded, bytes: bytes), nic: nic)
        recorder.checkHardLimit()
    }
    /// Frame payload past the recorder's snaplen is recorded by its length alone.
    @inlinable @inline(__always) public mutating func frameRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        let kept = recorder.snaplen &- frameOffset
        if kept >= bytes.count || !succeeded { return memoryRead(address: address, bytes: bytes, succeeded: succeeded) }
        recorder.staged.append(.memoryRead(address: address, length: bytes.count, ok: true, bytes: Self.prefix(bytes, kept)), nic: nic)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func frameWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        let kept = recorder.snaplen &- frameOffset
        if kept >= bytes.count { return memoryWrite(address: address, bytes: bytes, succeeded: succeeded) }
        recorder.staged.append(.memoryWrite(address: address, length: bytes.count, ok: succeeded, bytes: Self.prefix(bytes, kept)), nic: nic)
        recorder.checkHardLimit()
    }
    /// The first `count` of `bytes` (none for a negative count).
    @inlinable static func prefix(_ bytes: UnsafeRawBufferPointer, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[0..<max(count, 0)])
    }
    @inlinable @inline(__always) public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        recorder.staged.append(.chain(queue: queue, head: head, descriptorCount: descriptors.count), nic: nic)
        for d in descriptors { recorder.staged.descriptor(addr: d.addr, len: d.len, flags: d.flags.rawValue, next: d.next) }
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        recorder.staged.append(.used(queue: queue, id: id, len: len), nic: nic)
    }
    @inlinable @inline(__always) public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        recorder.staged.append(.counterChanged(counter, value), nic: nic)
        if recorder.triggerArmed { recorder.counterMoved(nic: nic, counter: counter, value: value) }
    }
    @inlinable public mutating func interruptRaised(_ kind: InterruptSignals) { recorder.staged.append(.raised(kind), nic: nic) }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) { recorder.staged.append(.poisoned(queue: queue, error), nic: nic) }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) { recorder.staged.append(.status(old: old, new: new), nic: nic) }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        recorder.staged.append(.features(old: old, new: new), nic: nic)
    }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        recorder.staged.append(.pairs(old: old, new: new), nic: nic)
    }
    public mutating func deviceReset() { recorder.staged.append(.reset, nic: nic) }
    public mutating func warning(_ warning: DeviceWarning) { recorder.staged.append(.warned(warning), nic: nic) }
    public mutating func memoryBindingChanged(bound: Bool) { recorder.memoryBinding(nic: nic, bound: bound) }
    public mutating func transportOperation(_ operation: TransportOperation) {
        recorder.staged.append(.operation(operation), nic: nic, time: recorder.clock())
    }
}
