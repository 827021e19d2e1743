import CKVM
import Glibc
@testable import KVMHost

/// A KVM that records every call and answers from a script: no kernel needed.
final class MockKVMSystem: KVMSystem {
    struct Call: Equatable, CustomStringConvertible {
        var name: String
        var value: UInt?
        var description: String { value.map { "\(name)(\($0))" } ?? name }
    }
    /// Every call, in order ("open", "close", request names, "mmap", "munmap").
    var calls: [Call] = []
    /// Per request: results to return in order (negative = fail with that errno); default 0.
    var results: [String: [Int32]] = [:]
    var apiVersion: Int32 = 12
    var missingCapability: Int32?
    var openErrno: Int32?
    /// The arguments of the calls that pass a pointer, copied.
    var arguments: [String: [UInt8]] = [:]
    /// Exits KVM_RUN produces, in order; each fills kvm_run. Past the end: a shutdown.
    var exits: [(UnsafeMutablePointer<kvm_run>) -> Void] = []
    var run: UnsafeMutablePointer<kvm_run>?
    var maps: [UnsafeMutableRawPointer: Int] = [:]
    var lastError: Int32 = 0
    /// Called with each KVM_SET_REGS argument.
    var onSetRegs: ((kvm_regs) -> Void)?
    var nextFD: Int32 = 10

    func open(_ path: String) -> Int32 {
        calls.append(Call(name: "open \(path)"))
        if let e = openErrno { lastError = e; return -1 }
        nextFD += 1
        return nextFD
    }
    func close(_ fd: Int32) { calls.append(Call(name: "close")) }

    func scripted(_ request: KVMRequest) -> Int32? {
        guard var list = results[request.name], !list.isEmpty else { return nil }
        let r = list.removeFirst()
        results[request.name] = list
        if r < 0 { lastError = -r; return -1 }
        return r
    }

    func ioctl(_ fd: Int32, _ request: KVMRequest, _ argument: UnsafeMutableRawPointer?) -> Int32 {
        calls.append(Call(name: request.name))
        if let r = scripted(request) { return r }
        switch request {
        case .getSupportedCPUID:
            argument!.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = 2
        case .setUserMemoryRegion:
            arguments[request.name] = Array(UnsafeRawBufferPointer(start: argument, count: MemoryLayout<kvm_userspace_memory_region>.size))
        case .setSregs:
            arguments[request.name] = Array(UnsafeRawBufferPointer(start: argument, count: MemoryLayout<kvm_sregs>.size))
        case .setRegs:
            arguments[request.name] = Array(UnsafeRawBufferPointer(start: argument, count: MemoryLayout<kvm_regs>.size))
            onSetRegs?(argument!.load(as: kvm_regs.self))
        default: break
        }
        return 0
    }

    func ioctl(_ fd: Int32, _ request: KVMRequest, value: UInt) -> Int32 {
        calls.append(Call(name: request.name, value: request == .checkExtension ? value : nil))
        if let r = scripted(request) { return r }
        switch request {
        case .getAPIVersion: return apiVersion
        case .checkExtension: return Int32(value) == missingCapability ? 0 : 1
        case .getVCPUMmapSize: return 4096 * 3
        case .createVM, .createVCPU:
            nextFD += 1
            return nextFD
        case .run:
            guard let run else { return 0 }
            if exits.isEmpty {
                run.pointee.exit_reason = UInt32(KVM_EXIT_SHUTDOWN)
            } else {
                exits.removeFirst()(run)
            }
            return 0
        default: return 0
        }
    }

    func mmap(length: Int, fd: Int32?) -> UnsafeMutableRawPointer? {
        calls.append(Call(name: fd == nil ? "mmap anonymous" : "mmap vcpu"))
        let p = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 4096)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        maps[p] = length
        if fd != nil { run = p.assumingMemoryBound(to: kvm_run.self) }
        return p
    }

    func munmap(_ address: UnsafeMutableRawPointer, length: Int) {
        calls.append(Call(name: "munmap"))
        maps[address] = nil
        address.deallocate()
    }

    /// The ioctl names called, in order (opens, maps and closes left out).
    var ioctls: [String] { calls.map(\.name).filter { $0.hasPrefix("KVM_") } }
}

extension UnsafeMutablePointer where Pointee == kvm_run {
    /// Fills kvm_run as KVM does for an MMIO exit (data at its fixed place).
    func mmio(_ address: UInt64, write: Bool, length: UInt32, value: UInt64 = 0) {
        pointee.exit_reason = UInt32(KVM_EXIT_MMIO)
        pointee.mmio.phys_addr = address
        pointee.mmio.len = length
        pointee.mmio.is_write = write ? 1 : 0
        withUnsafeBytes(of: value.littleEndian) { raw in
            withUnsafeMutableBytes(of: &pointee.mmio.data) { $0.copyMemory(from: raw) }
        }
    }

    /// Fills kvm_run for an OUT of `bytes` to `port` (data placed after the struct, as KVM does).
    func out(_ port: UInt16, _ bytes: [UInt8]) {
        pointee.exit_reason = UInt32(KVM_EXIT_IO)
        pointee.io.direction = UInt8(KVM_EXIT_IO_OUT)
        pointee.io.size = UInt8(bytes.count)
        pointee.io.port = port
        pointee.io.count = 1
        pointee.io.data_offset = 4096
        UnsafeMutableRawPointer(self).advanced(by: 4096).copyMemory(from: bytes, byteCount: bytes.count)
    }

    /// The MMIO data bytes as a little-endian value of `length` bytes.
    func mmioValue(_ length: Int) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeBytes(of: pointee.mmio.data) { raw in withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<length])) } }
        return UInt64(littleEndian: v)
    }
}
