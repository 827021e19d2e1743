//! /dev/kvm, a VM and its vCPUs: each a thin owner of a file descriptor
//! whose methods are the KVM ioctls, failures named.

import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// The KVM subsystem (an open /dev/kvm).
public final class KVM {
    public let system: any KVMSystem
    public let fd: Int32
    /// The API version every KVM since Linux 2.6.22 reports.
    public static let apiVersion: Int32 = 12

    /// Opens `path` and checks the API version and the capabilities the VMM needs.
    /// The corresponding KVM ioctls are KVM_GET_API_VERSION and KVM_CHECK_EXTENSION.
    public init(path: String = "/dev/kvm", system: any KVMSystem = LiveKVMSystem()) throws(KVMError) {
        self.system = system
        let fd = system.open(path)
        guard fd >= 0 else { throw .unavailable(path: path, errno: system.lastError) }
        self.fd = fd
        let version = try system.check(fd, .getAPIVersion, value: 0)
        guard version == Self.apiVersion else { throw .apiVersion(found: version, wanted: Self.apiVersion) }
        for (cap, name) in [(ckvm_KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"), (ckvm_KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"),
                            (ckvm_KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"), (ckvm_KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT")] {
            guard try system.check(fd, .checkExtension, value: UInt(cap)) > 0 else { throw .missingCapability(name) }
        }
    }

    deinit { system.close(fd) }

    /// Bytes of each vCPU's shared kvm_run area. The corresponding KVM ioctl is KVM_GET_VCPU_MMAP_SIZE.
    public func vcpuMmapSize() throws(KVMError) -> Int { Int(try system.check(fd, .getVCPUMmapSize, value: 0)) }

    /// The CPUID leaves the host supports (up to 256 entries). The corresponding KVM ioctl is KVM_GET_SUPPORTED_CPUID.
    public func supportedCPUID() throws(KVMError) -> CPUIDTable {
        var table = CPUIDTable(capacity: 256)
        try table.withRaw { (raw) throws(KVMError) in _ = try system.check(fd, .getSupportedCPUID, raw) }
        return table
    }

    /// A new VM. The corresponding KVM ioctl is KVM_CREATE_VM.
    public func createVM() throws(KVMError) -> VirtualMachine {
        VirtualMachine(kvm: self, fd: try system.check(fd, .createVM, value: 0))
    }
}

/// A kvm_cpuid2 with room for `capacity` entries, as one owned buffer.
public struct CPUIDTable {
    var storage: [UInt8]
    public init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: MemoryLayout<kvm_cpuid2>.size + capacity * MemoryLayout<kvm_cpuid_entry2>.stride)
        storage.withUnsafeMutableBytes { $0.baseAddress!.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = UInt32(capacity) }
    }
    public var count: Int { storage.withUnsafeBytes { Int($0.baseAddress!.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent) } }
    mutating func withRaw<R>(_ body: (UnsafeMutableRawPointer) throws(KVMError) -> R) throws(KVMError) -> R {
        let result = storage.withUnsafeMutableBytes { raw in Result { () throws(KVMError) -> R in try body(raw.baseAddress!) } }
        return try result.get()
    }
}

/// One VM: its memory slots and vCPUs.
public final class VirtualMachine {
    public let kvm: KVM
    public let fd: Int32
    var system: any KVMSystem { kvm.system }

    init(kvm: KVM, fd: Int32) {
        self.kvm = kvm
        self.fd = fd
    }

    deinit { system.close(fd) }

    /// Maps `size` bytes at host `address` as guest-physical `guestAddress` in `slot`.
    /// The corresponding KVM ioctl is KVM_SET_USER_MEMORY_REGION.
    public func setMemoryRegion(slot: UInt32, guestAddress: UInt64, size: UInt64, host address: UnsafeMutableRawPointer) throws(KVMError) {
        var region = kvm_userspace_memory_region(slot: slot, flags: 0, guest_phys_addr: guestAddress, memory_size: size,
                                                 userspace_addr: UInt64(UInt(bitPattern: address)))
        try withUnsafeMutableBytes(of: &region) { (raw) throws(KVMError) in _ = try system.check(fd, .setUserMemoryRegion, raw.baseAddress) }
    }

    /// The three pages KVM may use for a real-mode TSS. The corresponding KVM ioctl is KVM_SET_TSS_ADDR.
    public func setTSSAddress(_ address: UInt64) throws(KVMError) { try system.check(fd, .setTSSAddress, value: UInt(address)) }

    /// vCPU `id`, its kvm_run mapped. The corresponding KVM ioctls are KVM_CREATE_VCPU and KVM_GET_VCPU_MMAP_SIZE.
    public func createVCPU(id: UInt32) throws(KVMError) -> VCPU {
        let size = try kvm.vcpuMmapSize()
        let vfd = try system.check(fd, .createVCPU, value: UInt(id))
        guard let run = system.mmap(length: size, fd: vfd) else {
            let e = system.lastError
            system.close(vfd)
            throw .call("mmap of vCPU \(id)'s kvm_run (\(size) bytes)", errno: e)
        }
        return VCPU(vm: self, id: id, fd: vfd, run: run, runSize: size)
    }
}

/// Why KVM_RUN returned.
public enum VCPUExit: Equatable {
    /// An OUT (`isWrite`) or IN on `port` of `size` bytes (× `count`); `data` is in kvm_run.
    case io(port: UInt16, isWrite: Bool, size: Int, count: Int, data: UnsafeMutablePointer<UInt8>)
    /// A load or store at an unmapped guest-physical address; `data` (8 bytes) is in kvm_run.
    case mmio(address: UInt64, isWrite: Bool, length: Int, data: UnsafeMutablePointer<UInt8>)
    case halt
    /// A triple fault or a shutdown request.
    case shutdown
    case failEntry(reason: UInt64)
    case internalError(suberror: UInt32)
    case systemEvent(type: UInt32)
    /// A signal interrupted the run (the watchdog's kick).
    case interrupted
    case other(reason: UInt32)
}

/// One vCPU. Sendable so the watchdog can request an immediate exit from
/// another thread (that write to kvm_run is the one cross-thread access).
public final class VCPU: @unchecked Sendable {
    public let vm: VirtualMachine
    public let id: UInt32
    public let fd: Int32
    /// The kvm_run area shared with the kernel.
    public let run: UnsafeMutableRawPointer
    let runSize: Int
    var system: any KVMSystem { vm.system }

    init(vm: VirtualMachine, id: UInt32, fd: Int32, run: UnsafeMutableRawPointer, runSize: Int) {
        self.vm = vm
        self.id = id
        self.fd = fd
        self.run = run
        self.runSize = runSize
    }

    deinit {
        system.munmap(run, length: runSize)
        system.close(fd)
    }

    var runStruct: UnsafeMutablePointer<kvm_run> { run.assumingMemoryBound(to: kvm_run.self) }

    /// The corresponding KVM ioctl is KVM_SET_CPUID2.
    public func setCPUID(_ table: CPUIDTable) throws(KVMError) {
        var t = table
        try t.withRaw { (raw) throws(KVMError) in _ = try system.check(fd, .setCPUID2, raw) }
    }

    /// The corresponding KVM ioctl is KVM_GET_SREGS.
    public func specialRegisters() throws(KVMError) -> kvm_sregs { try fetch(.getSregs, kvm_sregs()) }

    /// The corresponding KVM ioctl is KVM_SET_SREGS.
    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) { try send(.setSregs, sregs) }

    /// The corresponding KVM ioctl is KVM_GET_REGS.
    public func registers() throws(KVMError) -> kvm_regs { try fetch(.getRegs, kvm_regs()) }

    /// The corresponding KVM ioctl is KVM_SET_REGS.
    public func setRegisters(_ regs: kvm_regs) throws(KVMError) { try send(.setRegs, regs) }

    /// An ioctl that fills a struct.
    func fetch<T>(_ request: KVMRequest, _ empty: T) throws(KVMError) -> T {
        var value = empty
        try withUnsafeMutableBytes(of: &value) { (raw) throws(KVMError) in _ = try system.check(fd, request, raw.baseAddress) }
        return value
    }

    /// An ioctl that reads a struct.
    func send<T>(_ request: KVMRequest, _ value: T) throws(KVMError) {
        var copy = value
        try withUnsafeMutableBytes(of: &copy) { (raw) throws(KVMError) in _ = try system.check(fd, request, raw.baseAddress) }
    }

    /// Makes the next (or the interrupted) KVM_RUN return at once.
    public func requestImmediateExit(_ on: Bool) { ckvm_run_set_immediate_exit(runStruct, on ? 1 : 0) }

    /// Runs the vCPU until an exit that needs the VMM. EAGAIN is retried;
    /// EINTR is `.interrupted` (the caller decides whether to go on).
    /// The corresponding KVM ioctl is KVM_RUN.
    public func runOnce() throws(KVMError) -> VCPUExit {
        while true {
            if system.ioctl(fd, .run, value: 0) >= 0 { break }
            let e = system.lastError
            if e == EINTR { return .interrupted }
            if e == EAGAIN { continue }
            throw .call("KVM_RUN", errno: e)
        }
        let r = runStruct
        let reason = ckvm_run_exit_reason(r)
        switch reason {
        case ckvm_KVM_EXIT_IO:
            return .io(port: ckvm_run_io_port(r), isWrite: ckvm_run_io_direction(r) == 1, size: Int(ckvm_run_io_size(r)),
                       count: Int(ckvm_run_io_count(r)), data: ckvm_run_io_data(r))
        case ckvm_KVM_EXIT_MMIO:
            return .mmio(address: ckvm_run_mmio_address(r), isWrite: ckvm_run_mmio_is_write(r) != 0, length: Int(ckvm_run_mmio_length(r)),
                         data: ckvm_run_mmio_data(r))
        case ckvm_KVM_EXIT_HLT: return .halt
        case ckvm_KVM_EXIT_SHUTDOWN: return .shutdown
        case ckvm_KVM_EXIT_FAIL_ENTRY: return .failEntry(reason: ckvm_run_fail_entry_reason(r))
        case ckvm_KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: ckvm_run_internal_suberror(r))
        case ckvm_KVM_EXIT_SYSTEM_EVENT: return .systemEvent(type: ckvm_run_system_event_type(r))
        case ckvm_KVM_EXIT_INTR: return .interrupted
        default: return .other(reason: reason)
        }
    }
}
