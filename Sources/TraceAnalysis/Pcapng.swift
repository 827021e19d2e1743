//! A pcapng writer (draft-ietf-opsawg-pcapng): a section header, interface
//! description blocks, and enhanced packet blocks with comments. Little-endian.

/// Builds a pcapng file in memory, block by block; the caller drains `bytes`.
public struct PcapngWriter {
    /// The encoded blocks not yet taken.
    public var bytes: [UInt8] = []
    /// Interfaces described so far.
    public private(set) var interfaces = 0

    /// LINKTYPE_ETHERNET.
    public static let ethernet: UInt16 = 1

    enum BlockType: UInt32 {
        case section = 0x0A0D_0D0A
        case interface = 1
        case enhancedPacket = 6
    }

    /// Option codes (the same number means different things in different blocks).
    enum Option {
        static let comment: UInt16 = 1
        static let shbUserApplication: UInt16 = 4
        static let ifName: UInt16 = 2
        static let ifDescription: UInt16 = 3
        static let ifTimestampResolution: UInt16 = 9
    }

    public init() {}

    /// Starts the section (call once, first).
    public mutating func section(application: String, comment: String?) {
        block(.section) { w in
            w.u32(0x1A2B_3C4D)  // byte-order magic
            w.u16(1)
            w.u16(0)
            w.u64(UInt64.max)  // section length not given
            if let comment { w.option(Option.comment, Array(comment.utf8)) }
            w.option(Option.shbUserApplication, Array(application.utf8))
            w.endOptions()
        }
    }

    /// Describes an interface with nanosecond timestamps; returns its id.
    /// `snapLength`: the most bytes of a packet captured (0: no limit).
    @discardableResult
    public mutating func interface(name: String, description: String, linkType: UInt16 = PcapngWriter.ethernet, snapLength: UInt32 = 0) -> UInt32 {
        block(.interface) { w in
            w.u16(linkType)
            w.u16(0)
            w.u32(snapLength)
            w.option(Option.ifName, Array(name.utf8))
            w.option(Option.ifDescription, Array(description.utf8))
            w.option(Option.ifTimestampResolution, [9])  // 10^-9 s
            w.endOptions()
        }
        interfaces += 1
        return UInt32(interfaces - 1)
    }

    /// Appends one packet; `nanoseconds` since the Unix epoch. `data` is
    /// what was captured of it, `originalLength` its length on the wire
    /// (more than `data.count` for a packet cut at a snap length).
    public mutating func packet(interface: UInt32, nanoseconds: UInt64, data: UnsafeRawBufferPointer, originalLength: Int? = nil, comment: String?) {
        block(.enhancedPacket) { w in
            w.u32(interface)
            w.u32(UInt32(truncatingIfNeeded: nanoseconds >> 32))
            w.u32(UInt32(truncatingIfNeeded: nanoseconds))
            w.u32(UInt32(data.count))
            w.u32(UInt32(max(originalLength ?? data.count, data.count)))
            w.bytes.append(contentsOf: data)
            w.pad()
            if let comment {
                w.option(Option.comment, Array(comment.utf8))
                w.endOptions()
            }
        }
    }

    /// Writes a block: type, total length, body, total length again.
    mutating func block(_ type: BlockType, _ body: (inout PcapngWriter) -> Void) {
        let start = bytes.count
        u32(type.rawValue)
        u32(0)  // patched below
        body(&self)
        let total = UInt32(bytes.count - start + 4)
        u32(total)
        withUnsafeBytes(of: total.littleEndian) { raw in
            for k in 0..<4 { bytes[start + 4 + k] = raw[k] }
        }
    }

    mutating func option(_ code: UInt16, _ value: [UInt8]) {
        let value = value.prefix(Int(UInt16.max) - 3)  // an option's length is 16 bits, padded to 4
        u16(code)
        u16(UInt16(value.count))
        bytes += value
        pad()
    }

    mutating func endOptions() { u32(0) }

    mutating func pad() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
}

/// Reads back what `PcapngWriter` writes (little-endian sections; section
/// header, interface description and enhanced packet blocks; other blocks
/// skipped). Every length is checked: a malformed file is an error naming
/// the block's offset, never a trap.
public struct PcapngFile: Sendable {
    public struct Interface: Sendable, Equatable {
        public var linkType: UInt16
        /// The most bytes of a packet captured (0: no limit).
        public var snapLength: UInt32
        public var name: String?
        public var description: String?
        public var timestampResolution: UInt8?
    }
    public struct Packet: Sendable, Equatable {
        public var interface: UInt32
        public var timestamp: UInt64
        public var originalLength: UInt32
        public var data: [UInt8]
        public var comment: String?
    }
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        public var offset: Int
        public var message: String
        public var description: String { "pcapng: at offset \(offset): \(message)" }
    }

    public var application: String?
    public var comment: String?
    public var interfaces: [Interface] = []
    public var packets: [Packet] = []

    public init(_ bytes: [UInt8]) throws(FormatError) {
        var at = 0
        func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
        /// Options from `o` to `end`: code → value.
        func options(_ o: Int, _ end: Int) throws(FormatError) -> [UInt16: [UInt8]] {
            var o = o, found: [UInt16: [UInt8]] = [:]
            while o + 4 <= end {
                let code = u16(o), length = Int(u16(o + 2))
                if code == 0 { break }
                guard o + 4 + length <= end else { throw FormatError(offset: o, message: "option \(code) runs past its block") }
                found[code] = Array(bytes[o + 4..<o + 4 + length])
                o += 4 + (length + 3) & ~3
            }
            return found
        }
        func text(_ v: [UInt8]?) -> String? { v.map { String(decoding: $0, as: UTF8.self) } }
        var sawSection = false
        while at < bytes.count {
            guard at + 12 <= bytes.count else { throw FormatError(offset: at, message: "truncated block header") }
            let type = u32(at), total = Int(u32(at + 4))
            guard total >= 12, total % 4 == 0, at + total <= bytes.count else {
                throw FormatError(offset: at, message: "block length \(total) does not fit the \(bytes.count - at) bytes left")
            }
            guard Int(u32(at + total - 4)) == total else { throw FormatError(offset: at, message: "trailing block length differs") }
            let end = at + total - 4
            switch type {
            case PcapngWriter.BlockType.section.rawValue:
                guard total >= 28, u32(at + 8) == 0x1A2B_3C4D else { throw FormatError(offset: at, message: "not a little-endian section header") }
                let o = try options(at + 24, end)
                application = text(o[PcapngWriter.Option.shbUserApplication])
                comment = text(o[PcapngWriter.Option.comment])
                sawSection = true
            case PcapngWriter.BlockType.interface.rawValue:
                guard sawSection, total >= 20 else { throw FormatError(offset: at, message: "interface block before a section or too short") }
                let o = try options(at + 16, end)
                interfaces.append(Interface(linkType: u16(at + 8), snapLength: u32(at + 12), name: text(o[PcapngWriter.Option.ifName]),
                                            description: text(o[PcapngWriter.Option.ifDescription]),
                                            timestampResolution: o[PcapngWriter.Option.ifTimestampResolution]?.first))
            case PcapngWriter.BlockType.enhancedPacket.rawValue:
                guard total >= 32 else { throw FormatError(offset: at, message: "packet block too short") }
                let interface = u32(at + 8), captured = Int(u32(at + 20))
                guard Int(interface) < interfaces.count else { throw FormatError(offset: at, message: "packet on undescribed interface \(interface)") }
                let dataEnd = at + 28 + captured
                guard dataEnd <= end else { throw FormatError(offset: at, message: "captured length \(captured) runs past the block") }
                let o = try options(at + 28 + (captured + 3) & ~3, end)
                packets.append(Packet(interface: interface, timestamp: UInt64(u32(at + 12)) << 32 | UInt64(u32(at + 16)),
                                      originalLength: u32(at + 24), data: Array(bytes[at + 28..<dataEnd]),
                                      comment: text(o[PcapngWriter.Option.comment])))
            default:
                break
            }
            at += total
        }
    }
}
