//! The device observer that records without encoding: each device action
//! appended to the open raw chunk, encoded later on the writer's thread.

import TraceFormat
import TraceMapping
import VirtioCore

/// The observer of a recorder that defers encoding
/// (``RecordingOptions/defersEncoding``): each action is appended to the
/// recorder's ``RawChunk`` in a fixed layout, and the writer's thread makes
/// the records, the same ones ``RecordingObserver`` makes inline. Access and
/// drain boundaries, the trigger and the snaplen behave as there.
public struct DeferredRecordingObserver: DeviceObserver {
    public let recorder: TraceRecorder
    public let nic: Int
    public var vcpu: UInt32

    public static var observesAccessBoundaries: Bool { true }
    public mutating func accessBegan(state: VirtioNetState) { recorder.accessBegan(nic: nic, state: state) }
    public mutating func accessEnded(state: VirtioNetState) { recorder.accessEnded(nic: nic, state: state) }
    public static var observesDrainBoundaries: Bool { true }
    @inlinable @inline(__always) public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction { recorder.drainBoundary(raw: true) }
    public mutating func drainCheckpoint(state: VirtioNetState) { recorder.cutInsideDrain(nic: nic, state: state) }

    @inlinable public mutating func mmioRead(offset: UInt64, width: Int, value: UInt64) {
        recorder.raw.append(.mmioRead(offset: offset, width: width, value: value), nic: nic, vcpu: vcpu, time: recorder.clock())
    }
    @inlinable public mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) {
        recorder.raw.append(.mmioWrite(offset: offset, width: width, value: value), nic: nic, vcpu: vcpu, time: recorder.clock())
    }
    @inlinable @inline(__always) public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.raw.memoryRead(nic: nic, address: address, bytes: bytes, ok: succeeded)
        recorder.checkRawLimit()
    }
    @inlinable @inline(__always) public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.raw.memoryWrite(nic: nic, address: address, bytes: bytes, ok: succeeded)
        recorder.checkRawLimit()
    }
    @inlinable @inline(__always) public mutating func frameRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        let kept = recorder.snaplen &- frameOffset
        if kept >= bytes.count || !succeeded { return memoryRead(address: address, bytes: bytes, succeeded: succeeded) }
        recorder.raw.truncatedAccess(nic: nic, address: address, length: bytes.count, bytes: RecordingObserver.prefix(bytes, kept), write: false)
        recorder.checkRawLimit()
    }
    @inlinable @inline(__always) public mutating func frameWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        let kept = recorder.snaplen &- frameOffset
        if kept >= bytes.count { return memoryWrite(address: address, bytes: bytes, succeeded: succeeded) }
        recorder.raw.truncatedAccess(nic: nic, address: address, length: bytes.count, bytes: RecordingObserver.prefix(bytes, kept), write: true, ok: succeeded)
        recorder.checkRawLimit()
    }
    @inlinable @inline(__always) public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        recorder.raw.chain(nic: nic, queue: queue, head: head, count: descriptors.count) { i in
            let d = descriptors[i]
            return (d.addr, d.len, d.flags.rawValue, d.next)
        }
        recorder.checkRawLimit()
    }
    @inlinable @inline(__always) public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        recorder.raw.used(nic: nic, queue: queue, id: id, len: len)
    }
    @inlinable @inline(__always) public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        recorder.raw.counter(nic: nic, index: counter.ordinal, value: value)
        if recorder.triggerArmed { recorder.counterMoved(nic: nic, counter: counter, value: value) }
    }
    @inlinable public mutating func interruptRaised(_ kind: InterruptSignals) { recorder.raw.append(.raised(kind), nic: nic) }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) { recorder.raw.append(.poisoned(queue: queue, error), nic: nic) }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) { recorder.raw.append(.status(old: old, new: new), nic: nic) }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        recorder.raw.append(.features(old: old, new: new), nic: nic)
    }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        recorder.raw.append(.pairs(old: old, new: new), nic: nic)
    }
    public mutating func deviceReset() { recorder.raw.append(.reset, nic: nic) }
    public mutating func warning(_ warning: DeviceWarning) { recorder.raw.append(.warned(warning), nic: nic) }
    public mutating func memoryBindingChanged(bound: Bool) { recorder.memoryBinding(nic: nic, bound: bound) }
    public mutating func transportOperation(_ operation: TransportOperation) {
        recorder.raw.append(.operation(operation), nic: nic, time: recorder.clock())
    }
}
