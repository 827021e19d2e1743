// Fuzzes what `vtrace run` reads before the guest starts: the guest ELF (any
// bytes are an image or a GuestImageError, never a trap) and, for an image
// that parses, its placement in guest memory by the machine set-up, against
// a fake kernel (no /dev/kvm). The first byte picks a workload text instead
// when it is '#': the rest is parsed as NAME[:key=value,...].

import FuzzSupport
import Glibc
import KVMHost
import VirtioCore

/// A kernel that says yes to everything and maps plain memory.
final class FakeKVM: KVMSystem {
    var lastError: Int32 = 0
    var next: Int32 = 100
    func open(_ path: String) -> Int32 { next += 1; return next }
    func close(_ fd: Int32) {}
    func ioctl(_ fd: Int32, _ request: KVMRequest, _ argument: UnsafeMutableRawPointer?) -> Int32 { 0 }
    func ioctl(_ fd: Int32, _ request: KVMRequest, value: UInt) -> Int32 {
        switch request {
        case .getAPIVersion: return 12
        case .checkExtension: return 1
        case .getVCPUMmapSize: return 8192
        case .createVM, .createVCPU: next += 1; return next
        default: return 0
        }
    }
    func mmap(length: Int, fd: Int32?) -> UnsafeMutableRawPointer? { calloc(1, length) }
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) { free(address) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    if bytes.first == UInt8(ascii: "#") {
        switch GuestWorkload.parse(String(decoding: bytes.dropFirst(), as: UTF8.self)) {
        case .success(let w): precondition(w.length >= 1 && w.pairs >= 1 && w.descriptors >= 1)
        case .failure(let e): precondition(!e.message.isEmpty)
        }
        return 0
    }
    do throws(GuestImageError) {
        let image = try ElfImage(bytes)
        var options = MachineOptions()
        options.memorySize = 32 << 20
        do throws(MachineError) {
            _ = try Machine(image: image, imageBytes: bytes, workload: GuestWorkload(kind: .burst), options: options, system: FakeKVM()) { _ in NoObserver() }
        } catch {
            precondition(!error.description.isEmpty)
        }
    } catch {
        precondition(!error.message.isEmpty)
    }
    return 0
}

@_cdecl("FuzzGuest_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
