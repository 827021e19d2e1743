import Testing
import VhostUser
import VirtioCore

@Suite("vhost-user protocol")
struct ProtocolTests {
    func header(_ r: VhostUserRequest, _ size: Int, flags: UInt32 = 1) -> VhostUserHeader {
        VhostUserHeader(request: r.rawValue, flags: flags, size: UInt32(size))
    }

    func parse(_ r: VhostUserRequest, _ payload: [UInt8], fds: Int = 0) throws(VhostUserError) -> VhostUserMessage {
        let h = header(r, payload.count)
        let result = payload.withUnsafeBytes { raw in Result { () throws(VhostUserError) in try VhostUserMessage.parse(h, payload: raw, fds: fds) } }
        return try result.get()
    }

    static func le(_ values: [UInt64]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } } }
    static func le32(_ values: [UInt32]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } } }

    @Test func headersRoundTripAndRefuseOtherVersionsAndGiantPayloads() throws {
        let h = VhostUserHeader(request: 5, flags: 1 | 8, size: 264)
        let back = try h.bytes.withUnsafeBytes { raw in try Result { () throws(VhostUserError) in try VhostUserHeader.parse(raw) }.get() }
        #expect(back == h)
        for (bytes, message) in [
            (VhostUserHeader(request: 1, flags: 2, size: 0).bytes, "protocol version 2, not 1"),
            (VhostUserHeader(request: 1, flags: 1, size: 4097).bytes, "claims a 4097-byte payload"),
            (Array(VhostUserHeader(request: 1, flags: 1, size: 0).bytes.prefix(11)), "11 bytes"),
        ] {
            let r = bytes.withUnsafeBytes { raw in Result { () throws(VhostUserError) in try VhostUserHeader.parse(raw) } }
            guard case .failure(let e) = r else { Issue.record("accepted \(bytes)"); continue }
            #expect(e.message.contains(message), "\(e.message)")
        }
    }

    @Test func everyHandledRequestDecodes() throws {
        #expect(try parse(.getFeatures, []) == .getFeatures)
        #expect(try parse(.setFeatures, Self.le([1 << 32 | 1 << 30])) == .setFeatures(1 << 32 | 1 << 30))
        #expect(try parse(.setOwner, []) == .setOwner)
        #expect(try parse(.setVringNum, Self.le32([1, 256])) == .setVringNum(index: 1, num: 256))
        #expect(try parse(.setVringAddr, Self.le32([1, 0]) + Self.le([0x1000, 0x3000, 0x2000, 0])) ==
            .setVringAddr(index: 1, flags: 0, desc: 0x1000, used: 0x3000, avail: 0x2000, log: 0))
        #expect(try parse(.setVringBase, Self.le32([0, 7])) == .setVringBase(index: 0, num: 7))
        #expect(try parse(.getVringBase, Self.le32([1, 0])) == .getVringBase(index: 1))
        #expect(try parse(.setVringKick, Self.le([1]), fds: 1) == .setVringFD(.setVringKick, index: 1, hasFD: true))
        #expect(try parse(.setVringCall, Self.le([1 | 1 << 8]), fds: 0) == .setVringFD(.setVringCall, index: 1, hasFD: false))
        #expect(try parse(.setVringEnable, Self.le32([1, 1])) == .setVringEnable(index: 1, enabled: true))
        #expect(try parse(.getQueueNum, []) == .getQueueNum)
        #expect(try parse(.sendRARP, Self.le([0])) == .ignored(.sendRARP))
        let table = Self.le32([2, 0]) + Self.le([0, 0xF_0000, 0x7000_0000_0000, 0]) + Self.le([0x10_0000, 0xFF0_0000, 0x7000_0010_0000, 0x10_0000])
        #expect(try parse(.setMemTable, table, fds: 2) == .setMemTable([
            VhostMemoryRegion(guestAddress: 0, size: 0xF_0000, userAddress: 0x7000_0000_0000, mmapOffset: 0),
            VhostMemoryRegion(guestAddress: 0x10_0000, size: 0xFF0_0000, userAddress: 0x7000_0010_0000, mmapOffset: 0x10_0000),
        ]))
    }

    @Test func malformedRequestsAreRefusedByName() {
        let cases: [(VhostUserRequest, [UInt8], Int, String)] = [
            (.setFeatures, [1, 2, 3], 0, "SET_FEATURES: payload of 3 bytes, expected 8"),
            (.setMemTable, Self.le32([0, 0]), 0, "0 regions"),
            (.setMemTable, Self.le32([9, 0]), 9, "9 regions"),
            (.setMemTable, Self.le32([2, 0]) + Self.le([0, 1, 2, 3]), 2, "2 regions need 72 bytes"),
            (.setMemTable, Self.le32([1, 0]) + Self.le([0, 1, 2, 3]), 0, "1 regions but 0 file descriptors"),
            (.setVringKick, Self.le([0]), 0, "0 file descriptors, expected 1"),
            (.setVringCall, Self.le([1 << 8]), 1, "1 file descriptors, expected 0"),
            (.setVringErr, Self.le([1 << 12]), 1, "stray bits"),
            (.setVringEnable, Self.le32([0, 2]), 0, "state 2"),
            (.getFeatures, [], 1, "carries 1 file descriptors"),
            (.setConfig, [], 0, "SET_CONFIG is not supported"),
        ]
        for (r, payload, fds, message) in cases {
            do {
                let m = try parse(r, payload, fds: fds)
                Issue.record("\(r.name) accepted as \(m)")
            } catch {
                #expect(error.message.contains(message), "\(r.name): \(error.message)")
            }
        }
        let unknown = VhostUserHeader(request: 77, flags: 1, size: 0)
        let r = [UInt8]().withUnsafeBytes { raw in Result { () throws(VhostUserError) in try VhostUserMessage.parse(unknown, payload: raw, fds: 0) } }
        guard case .failure(let e) = r else { Issue.record("request 77 accepted"); return }
        #expect(e.message == "unknown request 77")
    }

    @Test func memoryTablesAreValidatedBeforeAnythingIsMapped() {
        func check(_ table: [VhostMemoryRegion], _ message: String) {
            do {
                try VhostMemory.validate(table)
                Issue.record("accepted \(table)")
            } catch { #expect(error.message.contains(message), "\(error.message)") }
        }
        check([VhostMemoryRegion(guestAddress: 0, size: 0, userAddress: 0, mmapOffset: 0)], "empty")
        check([VhostMemoryRegion(guestAddress: .max - 10, size: 100, userAddress: 0, mmapOffset: 0)], "past the end")
        check([VhostMemoryRegion(guestAddress: 0, size: 1 << 41, userAddress: 0, mmapOffset: 0)], "at most 1 TiB")
        check([VhostMemoryRegion(guestAddress: 0, size: 0x2000, userAddress: 0x10000, mmapOffset: 0),
               VhostMemoryRegion(guestAddress: 0x1000, size: 0x2000, userAddress: 0x20000, mmapOffset: 0)], "overlap in guest-physical")
        check([VhostMemoryRegion(guestAddress: 0, size: 0x2000, userAddress: 0x10000, mmapOffset: 0),
               VhostMemoryRegion(guestAddress: 0x8000, size: 0x2000, userAddress: 0x11000, mmapOffset: 0)], "overlap in the frontend")
        let table = [VhostMemoryRegion(guestAddress: 0, size: 0xF_0000, userAddress: 0x7000_0000_0000, mmapOffset: 0),
                     VhostMemoryRegion(guestAddress: 0x10_0000, size: 0x100_0000, userAddress: 0x7000_0010_0000, mmapOffset: 0x10_0000)]
        #expect((try? VhostMemory.validate(table)) != nil)
        #expect(VhostMemory.guestAddress(ofFrontendAddress: 0x7000_0010_1234, in: table) == 0x10_1234)
        #expect(VhostMemory.guestAddress(ofFrontendAddress: 0x7000_000F_0000, in: table) == nil)
    }

    @Test func mappedMemoryReadsPeeksAndPrefetchesOnlyInsideItsRegions() throws {
        let fd = VhostFiles.memoryFile(size: 0x2000)
        #expect(fd >= 0)
        let memory = try VhostMemory(table: [VhostMemoryRegion(guestAddress: 0x10_0000, size: 0x2000, userAddress: 0x7000_0000, mmapOffset: 0)], fds: [fd])
        let bytes = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        try memory.write(0x10_1FE0, bytes: bytes)
        // 16 bytes (a descriptor, two loads), 2, 4, 8 and odd lengths, at the region's last bytes.
        for (offset, n) in [(0, 16), (3, 16), (16, 16), (0, 2), (4, 4), (8, 8), (1, 31)] {
            #expect(try memory.bytes(at: 0x10_1FE0 + UInt64(offset), count: n) == Array(bytes[offset..<offset + n]))
            var peeked = [UInt8](repeating: 0, count: n)
            #expect(peeked.withUnsafeMutableBytes { memory.peek(0x10_1FE0 + UInt64(offset), into: $0) })
            #expect(peeked == Array(bytes[offset..<offset + n]))
        }
        // One byte past the region, below it, or wrapping: refused, never touched.
        var sixteen = [UInt8](repeating: 0xEE, count: 16)
        for address: UInt64 in [0x10_1FF1, 0xF_FFFF, .max - 7, 0] {
            #expect(!sixteen.withUnsafeMutableBytes { memory.peek(address, into: $0) })
            #expect(throws: GuestMemoryError.self) { _ = try memory.bytes(at: address, count: 16) }
            memory.prefetch(address, length: 256)  // a hint outside the regions is dropped
        }
        #expect(sixteen == [UInt8](repeating: 0xEE, count: 16))
        memory.prefetch(0x10_1FF0, length: 4096)  // inside: a hint, never a fault
    }
}
