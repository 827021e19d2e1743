// The fuzzer's bytes read as a stream of small integers (zeros past the end).

struct Input {
    let data: UnsafeBufferPointer<UInt8>
    var position = 0
    var atEnd: Bool { position >= data.count }
    mutating func byte() -> UInt8 {
        defer { position += 1 }
        return position < data.count ? data[position] : 0
    }
    mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
}
