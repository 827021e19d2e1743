//! The guest program: a static x86-64 ELF, loaded by physical address.

/// What is wrong with a guest image.
public struct GuestImageError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { "guest image: \(message)" }
    init(_ message: String) { self.message = message }
}

/// A parsed ELF64 executable: its loadable segments and entry point. Every
/// offset and size is checked against the file before use.
public struct ElfImage: Equatable {
    public struct Segment: Equatable {
        public var physicalAddress: UInt64
        public var fileOffset: Int
        public var fileSize: Int
        public var memorySize: UInt64
        public var executable: Bool
    }
    public var entry: UInt64
    public var segments: [Segment]

    public init(_ bytes: [UInt8]) throws(GuestImageError) {
        func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
        func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw GuestImageError("not an ELF file (no \\x7fELF magic in the first 4 bytes)")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw GuestImageError("not a little-endian 64-bit ELF (class \(bytes[4]), data \(bytes[5]))") }
        guard u16(18) == 62 else { throw GuestImageError("machine \(u16(18)) is not x86-64 (62)") }
        guard u16(16) == 2 else { throw GuestImageError("type \(u16(16)) is not an executable (2): link it static, not PIE") }
        let entryPoint = u64(24)
        let phoff = u64(32), phentsize = Int(u16(54)), phnum = Int(u16(56))
        guard phentsize >= 56, phnum > 0, phnum <= 64 else { throw GuestImageError("\(phnum) program headers of \(phentsize) bytes") }
        guard phoff <= UInt64(bytes.count), UInt64(phnum * phentsize) <= UInt64(bytes.count) - phoff else {
            throw GuestImageError("program headers at offset \(phoff) run past the \(bytes.count)-byte file")
        }
        var segments: [Segment] = []
        for i in 0..<phnum {
            let h = Int(phoff) + i * phentsize
            guard u32(h) == 1 else { continue }  // PT_LOAD
            let offset = u64(h + 8), paddr = u64(h + 24), filesz = u64(h + 32), memsz = u64(h + 40)
            guard offset <= UInt64(bytes.count), filesz <= UInt64(bytes.count) - offset, filesz <= memsz else {
                throw GuestImageError("segment \(i): \(filesz) bytes at offset \(offset) run past the file or exceed its memory size \(memsz)")
            }
            segments.append(Segment(physicalAddress: paddr, fileOffset: Int(offset), fileSize: Int(filesz), memorySize: memsz,
                                    executable: u32(h + 4) & 1 != 0))
        }
        guard !segments.isEmpty else { throw GuestImageError("no loadable segment") }
        guard segments.contains(where: { $0.executable && entryPoint >= $0.physicalAddress && entryPoint - $0.physicalAddress < $0.memorySize }) else {
            throw GuestImageError("entry point 0x\(String(entryPoint, radix: 16)) is not in an executable segment")
        }
        self.segments = segments
        entry = entryPoint
    }
}
