//! The model driver's side of the rings: chains added to the avail ring,
//! used elements reclaimed (descriptors and buffers freed, the used log kept).

import VirtioCore

extension VirtioNetDriver {
    // MARK: Used ring

    /// used.idx as the driver reads it from guest memory.
    public func usedIdx(queue: Int) throws(DriverError) -> UInt16 {
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        return try load(UInt16.self, at: dq.used + 2)
    }

    /// Consumes new used elements of `queue`: logs them and frees their
    /// descriptors and buffers. Returns the new records.
    @discardableResult
    public mutating func reclaim(queue: Int) throws(DriverError) -> [UsedRecord] {
        var records: [UsedRecord] = []
        try reclaim(queue: queue) { records.append($0) }
        return records
    }

    /// Consumes new used elements of `queue` as ``reclaim(queue:)`` does,
    /// handing each record to `body` instead of collecting them.
    mutating func reclaim(queue: Int, _ body: (UsedRecord) -> Void) throws(DriverError) {
        // Taken out of the dictionary while it changes, so its arrays are not
        // copied on write (the used log grows for the whole run); always put back.
        guard var dq = queues.removeValue(forKey: queue) else { throw .queueNotSetUp(queue) }
        defer { queues[queue] = dq }
        let usedIdx = try load(UInt16.self, at: dq.used + 2)
        // A hostile device could claim far more; never consume more than a ring's worth.
        var budget = Int(dq.size)
        while dq.lastUsed != usedIdx && budget > 0 {
            let slot = UInt64(dq.lastUsed % dq.size)
            let (id, len) = try usedElement(at: dq.used + 4 + 8 * slot)
            var rec = UsedRecord(id: id, len: len, buffers: [])
            if id <= UInt32(UInt16.max), let entry = dq.inFlight.removeValue(forKey: UInt16(id)) {
                rec.buffers = entry.buffers
                dq.returnedDescriptors.append(contentsOf: entry.descs.reversed())
                for (a, n) in entry.allocations { buffers.release(a, n) }
            }
            dq.usedLog.append(rec)
            body(rec)
            dq.lastUsed &+= 1
            budget -= 1
        }
    }

    /// The used element {id, len} at `address`: one 8-byte read; where that
    /// fails, the two 4-byte reads, so the error names the field that is unmapped.
    func usedElement(at address: UInt64) throws(DriverError) -> (id: UInt32, len: UInt32) {
        if let both = try? load(UInt64.self, at: address) {
            return (UInt32(truncatingIfNeeded: both), UInt32(truncatingIfNeeded: both >> 32))
        }
        return (try load(UInt32.self, at: address), try load(UInt32.self, at: address + 4))
    }

    /// Reclaims every queue.
    public mutating func reclaimAll() throws(DriverError) {
        for q in queues.keys { try reclaim(queue: q) }
    }

    /// The bytes the device wrote into the chain of `record` (its used len,
    /// gathered from the chain's buffers in order).
    public func receivedBytes(_ record: UsedRecord) throws(DriverError) -> [UInt8] {
        var out: [UInt8] = []
        var remaining = Int(record.len)
        for b in record.buffers where remaining > 0 {
            let n = min(remaining, Int(b.len))
            out += try bytes(b.addr, n)
            remaining -= n
        }
        return out
    }

    // MARK: Adding chains

    /// Reclaims, then checks that `needed` descriptors are free, so a request
    /// too large fails whole before anything is posted.
    mutating func ensureFree(queue: Int, _ needed: Int) throws(DriverError) {
        reclaimBeforeAllocating(queue)
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        guard dq.freeCount >= needed else { throw .outOfDescriptors(queue: queue, wanted: needed, free: dq.freeCount) }
    }

    /// Reclaims before allocating, as a driver does. A used ring the driver
    /// cannot read (a quirk put it at an unmapped address) reclaims nothing.
    mutating func reclaimBeforeAllocating(_ queue: Int) {
        try? reclaim(queue: queue) { _ in }
    }

    mutating func addBufferChain(
        queue: Int, _ contents: BufferContents, length: Int, descriptors: Int, writable: Bool
    ) throws(DriverError) {
        guard descriptors >= 1 else { throw .emptyChain }
        reclaimBeforeAllocating(queue)
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        guard dq.freeCount >= descriptors else {
            throw .outOfDescriptors(queue: queue, wanted: descriptors, free: dq.freeCount)
        }
        guard let base = buffers.allocate(UInt64(length)) else { throw .outOfBufferSpace(wanted: UInt64(length)) }
        try write(contents, at: base, length: length)
        var raw: [RawDescriptor] = []
        raw.reserveCapacity(descriptors)
        var offset: UInt64 = 0
        for i in 0..<descriptors {
            let piece = Self.piece(i, of: length, into: descriptors)
            raw.append(RawDescriptor(addr: base + offset, len: UInt32(piece), writable: writable))
            offset += UInt64(piece)
        }
        try addChain(queue: queue, raw, allocations: [(base, UInt64(length))])
    }

    mutating func addChain(queue: Int, _ raw: [RawDescriptor], allocations: [(UInt64, UInt64)]) throws(DriverError) {
        guard !raw.isEmpty else { throw .emptyChain }
        reclaimBeforeAllocating(queue)
        guard var dq = queues.removeValue(forKey: queue) else { throw .queueNotSetUp(queue) }
        defer { queues[queue] = dq }
        guard dq.freeCount >= raw.count else {
            for (a, n) in allocations { buffers.release(a, n) }
            throw .outOfDescriptors(queue: queue, wanted: raw.count, free: dq.freeCount)
        }
        var slots: [UInt16] = []
        slots.reserveCapacity(raw.count)
        for _ in raw { slots.append(dq.takeDescriptor()) }
        for (i, r) in raw.enumerated() {
            var flags = r.extraFlags
            if r.writable { flags.insert(.write) }
            var next: UInt16 = 0
            if i + 1 < raw.count {
                flags.insert(.next)
                next = slots[i + 1]
            }
            try write(Descriptor(addr: r.addr, len: r.len, flags: flags, next: next), at: dq.desc + UInt64(slots[i]) * 16)
        }
        let head = slots[0]
        try store(head, at: dq.avail + 4 + 2 * UInt64(dq.availIdx % dq.size))
        dq.availIdx &+= 1
        try store(dq.availIdx, at: dq.avail + 2)
        dq.inFlight[head] = (slots, allocations, raw)
    }
}
