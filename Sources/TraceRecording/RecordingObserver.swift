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
        recorder.staged.mmio(nic: nic, vcpu: vcpu, time: recorder.clock(), isWrite: false, offset: offset, width: width, value: value)
    }
    @inlinable public mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) {
        recorder.staged.mmio(nic: nic, vcpu: vcpu, time: recorder.clock(), isWrite: true, offset: offset, width: width, value: value)
    }
    @inlinable @inline(__always) public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.staged.memory(nic: nic, isWrite: false, address: address, bytes: bytes, ok: succeeded)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.staged.memory(nic: nic, isWrite: true, address: address, bytes: bytes, ok: succeeded)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        recorder.staged.chain(nic: nic, queue: queue, head: head, descriptorCount: descriptors.count)
        for d in descriptors { recorder.staged.descriptor(addr: d.addr, len: d.len, flags: d.flags.rawValue, next: d.next) }
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        recorder.staged.used(nic: nic, queue: queue, id: id, len: len)
    }
    @inlinable @inline(__always) public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        recorder.staged.counter(nic: nic, index: counter.ordinal, value: value)
    }
    @inlinable public mutating func interruptRaised(_ kind: InterruptSignals) { recorder.staged.interrupt(nic: nic, kind: kind.rawValue) }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) {
        let (code, details) = PoisonCode.encode(error)
        recorder.staged.poison(nic: nic, queue: queue, code: code, details: details)
    }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) { recorder.staged.status(nic: nic, old: old, new: new) }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        recorder.staged.features(nic: nic, old: old, new: new)
    }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        recorder.staged.pairs(nic: nic, old: old, new: new)
    }
    public mutating func deviceReset() { recorder.staged.reset(nic: nic) }
    public mutating func warning(_ warning: DeviceWarning) {
        let (code, details) = WarningCode.encode(warning)
        recorder.staged.warning(nic: nic, code: code, details: details)
    }
    public mutating func memoryBindingChanged(bound: Bool) { recorder.memoryBinding(nic: nic, bound: bound) }
    public mutating func transportOperation(_ operation: TransportOperation) {
        recorder.staged.transport(nic: nic, time: recorder.clock(), code: operation.traceCode, queue: operation.queue, values: operation.traceValues)
    }
}
