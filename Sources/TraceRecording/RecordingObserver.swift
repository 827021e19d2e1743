//! The device observer that records: each device action encoded as a trace record.

import TraceFormat
import TraceMapping
import VirtioCore

/// The device observer that records. One per NIC; all share one recorder.
/// What it shares with ``DeferredRecordingObserver`` is ``RecordingObserving``'s.
public struct RecordingObserver: RecordingObserving {
    public let recorder: TraceRecorder
    public let nic: Int
    public var vcpu: UInt32

    @inlinable @inline(__always) public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction { recorder.drainBoundary() }

    @inlinable public mutating func record(_ event: OutgoingEvent, vcpu: UInt32, time: UInt64) {
        recorder.encoder.append(event, nic: nic, vcpu: vcpu, time: time)
    }
    @inlinable @inline(__always)
    public mutating func recordTruncated(address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, write: Bool, ok: Bool) {
        recorder.encoder.truncatedAccess(nic: nic, address: address, length: length, bytes: bytes, write: write, ok: ok)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.encoder.memoryRead(nic: nic, address: address, bytes: bytes, ok: succeeded)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.encoder.memoryWrite(nic: nic, address: address, bytes: bytes, ok: succeeded)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        recorder.encoder.chain(nic: nic, queue: queue, head: head, count: descriptors.count) { i in
            let d = descriptors[i]
            return (d.addr, d.len, d.flags.rawValue, d.next)
        }
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        recorder.encoder.used(nic: nic, queue: queue, id: id, len: len)
    }
    @inlinable @inline(__always) public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        recorder.encoder.counter(nic: nic, index: counter.ordinal, value: value)
        if recorder.triggerArmed { recorder.counterMoved(nic: nic, counter: counter, value: value) }
    }
}
