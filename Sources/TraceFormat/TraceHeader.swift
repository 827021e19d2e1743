//! The trace header: format version, device configuration, memory map, provenance.

/// The format version this code writes. A reader rejects another major
/// version and accepts any minor version of its own major (minor versions only
/// add header fields, which older readers skip, event kinds, which they
/// report as unknown, or flags and checkpoint fields marked by a bit older
/// writers never set).
public enum TraceVersion {
    public static let major: UInt16 = 1
    /// 1: vhost-user transport events (escape 15, aux 2) and the transport header tag.
    /// 2: checkpoints between two chains of a drain (a checkpoint's drain
    /// field), and the chunk flag "ends inside an access".
    /// 3: a window of a longer recording (the first event number, the
    /// window kept), the trigger header field and the marker event; a
    /// snaplen (the header field, and memory records that store part of
    /// their payload).
    /// 4: repeat records: a small memory access that repeats the last one at
    /// its address, a chain whose descriptors were just read (``RepeatRecord``).
    /// 5: address codes (a memory record's address as the same as or next to
    /// an access the chunk made before, or inside the last chain's buffers:
    /// ``AddressCode``) and predicted records (a chain at the head just read,
    /// a used publication of the element just written: ``PredictedRecord``).
    /// 6: address codes reach 4096 accesses back (256 in 1.5), and recalled
    /// reads (a read of a recent read's bytes: ``RecalledRecord``).
    /// 7: ring cursors (a ring index the chunk keeps touching, the avail ring
    /// slot and the used element after the last ones, as one small record:
    /// ``CursorRecord``); a used publication as written names the newest
    /// 8-byte write's values, wherever they were recorded.
    public static let minor: UInt16 = 7

    /// Which records a chunk of format 1.`minor` may hold, as the chunk
    /// encoder and decoder take them: repeat records from 1.4, address codes
    /// and predicted records from 1.5, far address codes and recalled reads
    /// from 1.6, ring cursors from 1.7.
    public static func records(minor: UInt16) -> (repeats: Bool, predicts: Bool, recalls: Bool, cursors: Bool) {
        (minor >= 4, minor >= 5, minor >= 6, minor >= 7)
    }
}

/// One RAM region of the recorded guest.
public struct TraceMemoryRegion: Hashable, Sendable, Codable {
    public var base: UInt64
    public var size: UInt64
    public init(base: UInt64, size: UInt64) {
        self.base = base
        self.size = size
    }
}

/// Everything in a trace besides its events.
public struct TraceHeader: Hashable, Sendable, Codable {
    public var majorVersion: UInt16 = TraceVersion.major
    public var minorVersion: UInt16 = TraceVersion.minor
    /// Number of NICs recorded.
    public var nics: Int = 1
    /// Queue pairs of each NIC.
    public var queuePairs: Int = 1
    /// MAC of each NIC, 6 bytes.
    public var mac: [UInt8] = [2, 0, 0, 0, 0, 1]
    /// Feature bits the device offered.
    public var offeredFeatures: UInt64 = 0
    /// QueueNumMax.
    public var maxQueueSize: Int = 256
    /// Guest RAM regions.
    public var memory: [TraceMemoryRegion] = []
    /// vtrace version that recorded the trace.
    public var recorderVersion: String = ""
    /// Git commit of the recorder, when known.
    public var gitCommit: String?
    public var hostName: String?
    /// Wall-clock start time, nanoseconds since the Unix epoch.
    public var startTimeNanoseconds: UInt64 = 0
    /// The command line that recorded the trace.
    public var commandLine: String = ""
    /// The scenario file, when a scenario was recorded.
    public var scenario: String?
    /// Free-form description of the guest.
    public var guestDescription: String?
    /// Faults injected into the device core (empty when none).
    public var faults: [String] = []
    /// How the driver reached the device: `mmio` (virtio-mmio, the default
    /// when absent) or `vhost-user` (minor version 1).
    public var transport: String = "mmio"
    /// The number of the first chunk's first event (minor version 3): 0,
    /// or where the window a flight recorder kept starts (the events before
    /// it were dropped; the first chunk starts at its checkpoint).
    public var firstEvent: UInt64 = 0
    /// The window a flight recorder kept, as asked (`--keep 8MiB`,
    /// `--keep-seconds 30`; minor version 3).
    public var window: String?
    /// The counter predicate a trigger waited for (`--trigger`; minor version 3).
    public var trigger: String?
    /// Frame payload bytes stored per frame (`--snaplen`; minor version 3):
    /// past the first `snaplen` bytes of each frame, its reads and writes
    /// store only their length. Nil: everything stored.
    public var snaplen: UInt32?

    public init() {}
}

/// Field tags of the header's TLV encoding (docs/trace-format.md).
enum HeaderTag: UInt64 {
    case nics = 1, queuePairs, mac, offeredFeatures, maxQueueSize, memoryRegion, recorderVersion, gitCommit,
         hostName, startTime, commandLine, scenario, guestDescription, fault, transport, firstEvent, window, trigger, snaplen
}

extension TraceHeader {
    /// The header frame's payload: magic, version, then tag-length-value fields.
    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.append(TraceLayout.headerMagic)
        w.fixed(majorVersion)
        w.fixed(minorVersion)
        func field(_ tag: HeaderTag, _ body: (inout ByteWriter) -> Void) {
            var v = ByteWriter()
            body(&v)
            w.varint(tag.rawValue)
            w.varint(UInt64(v.count))
            w.append(v.bytes)
        }
        func text(_ tag: HeaderTag, _ s: String?) {
            guard let s else { return }
            field(tag) { $0.append(Array(s.utf8)) }
        }
        field(.nics) { $0.varint(UInt64(nics)) }
        field(.queuePairs) { $0.varint(UInt64(queuePairs)) }
        field(.mac) { $0.append(mac) }
        field(.offeredFeatures) { $0.varint(offeredFeatures) }
        field(.maxQueueSize) { $0.varint(UInt64(maxQueueSize)) }
        for r in memory {
            field(.memoryRegion) {
                $0.varint(r.base)
                $0.varint(r.size)
            }
        }
        text(.recorderVersion, recorderVersion)
        text(.gitCommit, gitCommit)
        text(.hostName, hostName)
        field(.startTime) { $0.varint(startTimeNanoseconds) }
        text(.commandLine, commandLine)
        text(.scenario, scenario)
        text(.guestDescription, guestDescription)
        for f in faults { text(.fault, f) }
        if transport != "mmio" { text(.transport, transport) }
        if firstEvent != 0 { field(.firstEvent) { $0.varint(firstEvent) } }
        text(.window, window)
        text(.trigger, trigger)
        if let snaplen { field(.snaplen) { $0.varint(UInt64(snaplen)) } }
        // CRC-32 of everything before it: a flipped header byte is an error, not a wrong value.
        w.fixed(CRC32.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes a header payload; `fileOffset` is where it starts, for messages.
    static func decode(_ raw: UnsafeRawBufferPointer, fileOffset: Int) throws(TraceError) -> TraceHeader {
        func bad(_ what: String, _ at: Int) -> TraceError { .corrupt(offset: fileOffset + at, chunk: nil, what) }
        guard raw.count >= 16, Array(raw[0..<8]) == TraceLayout.headerMagic else { throw TraceError.notATrace(offset: fileOffset) }
        let body = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 4)])
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 4, as: UInt32.self))
        var r = ByteReader(raw, from: 0, to: raw.count - 4)
        let major = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        if major != TraceVersion.major {
            // Refuse other major versions before anything else, with the version in the message.
            throw TraceError.unsupportedVersion(major: major, minor: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 10, as: UInt16.self)))
        }
        guard CRC32.checksum(body) == stored else { throw bad("header checksum mismatch", raw.count - 4) }
        do {
            guard r.remaining >= 12, Array(raw[0..<8]) == TraceLayout.headerMagic else {
                throw TraceError.notATrace(offset: fileOffset)
            }
            _ = try r.skip(8)
            var h = TraceHeader()
            h.majorVersion = try r.fixed(UInt16.self)
            h.minorVersion = try r.fixed(UInt16.self)
            guard h.majorVersion == TraceVersion.major else {
                throw TraceError.unsupportedVersion(major: h.majorVersion, minor: h.minorVersion)
            }
            var sawNics = false
            while !r.atEnd {
                let tagOffset = r.offset
                let tag = try r.varint()
                let length = try r.varint()
                guard length <= UInt64(r.remaining) else { throw bad("header field \(tag) claims \(length) bytes, \(r.remaining) remain", tagOffset) }
                let range = try r.skip(Int(length))
                var v = ByteReader(raw, from: range.lowerBound, to: range.upperBound)
                func text() -> String { String(decoding: raw[range], as: UTF8.self) }
                func small(_ limit: UInt64) throws(TraceError) -> Int {
                    let x: UInt64
                    do throws(ByteReadError) { x = try v.varint() } catch { throw bad("header field \(tag) is malformed", tagOffset) }
                    guard x <= limit else { throw bad("header field \(tag) value \(x) is over \(limit)", tagOffset) }
                    return Int(x)
                }
                switch HeaderTag(rawValue: tag) {
                case .nics: h.nics = try small(UInt64(TraceLayout.maxNICs)); sawNics = true
                case .queuePairs: h.queuePairs = try small(256)
                case .mac:
                    guard length == 6 else { throw bad("MAC is \(length) bytes, not 6", tagOffset) }
                    h.mac = Array(raw[range])
                case .offeredFeatures: h.offeredFeatures = try v.varint()
                case .maxQueueSize: h.maxQueueSize = try small(32768)
                case .memoryRegion:
                    guard h.memory.count < TraceLayout.maxMemoryRegions else { throw bad("more than \(TraceLayout.maxMemoryRegions) memory regions", tagOffset) }
                    h.memory.append(TraceMemoryRegion(base: try v.varint(), size: try v.varint()))
                case .recorderVersion: h.recorderVersion = text()
                case .gitCommit: h.gitCommit = text()
                case .hostName: h.hostName = text()
                case .startTime: h.startTimeNanoseconds = try v.varint()
                case .commandLine: h.commandLine = text()
                case .scenario: h.scenario = text()
                case .guestDescription: h.guestDescription = text()
                case .fault:
                    guard h.faults.count < 64 else { throw bad("more than 64 faults", tagOffset) }
                    h.faults.append(text())
                case .transport: h.transport = text()
                case .firstEvent: h.firstEvent = try v.varint()
                case .window: h.window = text()
                case .trigger: h.trigger = text()
                case .snaplen: h.snaplen = UInt32(try small(UInt64(UInt32.max)))
                case nil: break  // a newer minor version's field: skipped
                }
            }
            guard sawNics, h.nics >= 1 else { throw bad("header has no NIC count", 0) }
            return h
        } catch let e as TraceError {
            throw e
        } catch let e as ByteReadError {
            switch e {
            case .truncated(let o, _), .badVarint(let o): throw bad("header is truncated or malformed", o)
            }
        } catch {
            throw bad("header: \(error)", 0)
        }
    }
}
