// Fuzzes the vhost-user backend's message handling as a hostile frontend
// would drive it, without a socket: each input is a stream of records, each
// a message (header + payload, with 0-7 file descriptors: a shared memfd or
// eventfds), a kick of a ring, or a lone header to parse. Messages go
// through VhostUserBackend.process (parse, validate, map memory, set up
// rings, run the device core); a refused one ends the session as the socket
// loop would. Never a trap, a hang or unbounded memory; every refusal has a
// message.
//
// Record layout: one control byte c.
//   c & 3 == 0: a message: 12 header bytes, then min(size, rest) payload
//               bytes; (c >> 2) & 7 descriptors come with it (the memfd
//               when c & 0x20, else eventfds).
//   c & 3 == 1: a kick of ring c >> 2.
//   c & 3 == 2: 12 bytes parsed as a header only.
//   c & 3 == 3: a SET_MEM_TABLE built from 1 + (c >> 2) % 3 regions of 4
//               bytes each (MemTableRecord.swift), one memfd per region: so
//               tables that move, shrink or drop the memory of rings already
//               running come from a few bytes instead of a 40-byte payload.

import FuzzSupport
import Glibc
import VhostUser
import VirtioCore

/// One shared 2 MiB memfd for every input (regions map it at offsets of the fuzzer's choosing).
let sharedMemory: Int32 = VhostFiles.memoryFile(size: 2 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: start, count: count)
    guard let backend = try? VhostUserBackend(
        device: VirtioNetDevice(config: NetConfig(queuePairs: 2, queueMaxSize: 32768), memory: nil, observer: NoObserver()),
        log: { _, _ in }) else { return 0 }
    var at = 0
    while at < bytes.count {
        let c = bytes[at]
        at += 1
        switch c & 3 {
        case 0:
            guard bytes.count - at >= 12 else { return 0 }
            let raw = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[at..<(at + 12)]))
            at += 12
            var header = VhostUserHeader(request: raw.loadUnaligned(as: UInt32.self), flags: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
                                         size: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            let n = min(Int(header.size % 4096), bytes.count - at)
            header.size = UInt32(n)
            header.flags = (header.flags & ~3) | 1
            let payload = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[at..<(at + n)]))
            at += n
            let fds = (0..<Int((c >> 2) & 7)).map { _ in c & 0x20 != 0 ? dup(sharedMemory) : VhostFiles.eventFD() }
            do throws(VhostUserError) {
                _ = try backend.process(header: header, payload: payload, fds: fds)
            } catch {
                precondition(!error.message.isEmpty)
                backend.closeSession()
            }
        case 1:
            backend.deliverKick(ring: Int(c >> 2))
        case 3:
            let regions = 1 + Int(c >> 2) % 3
            guard bytes.count - at >= 4 * regions else { return 0 }
            let record = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[at..<(at + 4 * regions)]))
            at += 4 * regions
            withMemTablePayload(record) { payload in
                let header = VhostUserHeader(request: VhostUserRequest.setMemTable.rawValue, flags: 1, size: UInt32(payload.count))
                do throws(VhostUserError) {
                    _ = try backend.process(header: header, payload: payload, fds: (0..<regions).map { _ in dup(sharedMemory) })
                } catch {
                    precondition(!error.message.isEmpty)
                    backend.closeSession()
                }
            }
        default:
            guard bytes.count - at >= 12 else { return 0 }
            let raw = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[at..<(at + 12)]))
            at += 12
            do throws(VhostUserError) { _ = try VhostUserHeader.parse(raw) } catch { precondition(!error.message.isEmpty) }
        }
    }
    backend.closeSession()
    return 0
}

@_cdecl("FuzzVhost_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
