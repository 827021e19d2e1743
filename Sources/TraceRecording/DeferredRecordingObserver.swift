//! The device observer that records without encoding: each device action
//! appended to the open raw chunk, encoded later on the writer's thread.

import TraceFormat
import TraceMapping
import VirtioCore

/// The observer of a recorder that defers encoding
/// (``RecordingOptions/defersEncoding``): each action is appended to the
/// recorder's ``RawChunk`` in a fixed layout, and the writer's thread makes
/// the records, the same ones ``RecordingObserver`` makes inline. Access and
/// drain boundaries, the trigger and the snaplen are ``RecordingObserving``'s.
public struct DeferredRecordingObserver: RecordingObserving {
    public let recorder: TraceRecorder
    public let nic: Int
    public var vcpu: UInt32

    @inlinable @inline(__always) public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction { recorder.drainBoundary(raw: true) }

    @inlinable public mutating func record(_ event: OutgoingEvent, vcpu: UInt32, time: UInt64) {
        recorder.raw.append(event, nic: nic, vcpu: vcpu, time: time)
    }
    @inlinable @inline(__always)
    public mutating func recordTruncated(address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, write: Bool, ok: Bool) {
        recorder.raw.truncatedAccess(nic: nic, address: address, length: length, bytes: bytes, write: write, ok: ok)
        recorder.checkRawLimit()
    }
    @inlinable @inline(__always) public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.raw.memoryRead(nic: nic, address: address, bytes: bytes, ok: succeeded)
        recorder.checkRawLimit()
    }
    @inlinable @inline(__always) public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.raw.memoryWrite(nic: nic, address: address, bytes: bytes, ok: succeeded)
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
}
