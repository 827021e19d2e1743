//! The system calls the VMM makes, behind one small interface: the live one
//! calls the kernel, tests substitute a mock that checks the sequence
//! (swift-system's pattern: one function per call, errors as errno values).

import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A KVM ioctl: its request number and its name (for errors and mocks).
public struct KVMRequest: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let number: UInt
    public var description: String { name }

    public static let getAPIVersion = KVMRequest(name: "KVM_GET_API_VERSION", number: ckvm_KVM_GET_API_VERSION)
    public static let createVM = KVMRequest(name: "KVM_CREATE_VM", number: ckvm_KVM_CREATE_VM)
    public static let checkExtension = KVMRequest(name: "KVM_CHECK_EXTENSION", number: ckvm_KVM_CHECK_EXTENSION)
    public static let getVCPUMmapSize = KVMRequest(name: "KVM_GET_VCPU_MMAP_SIZE", number: ckvm_KVM_GET_VCPU_MMAP_SIZE)
    public static let getSupportedCPUID = KVMRequest(name: "KVM_GET_SUPPORTED_CPUID", number: ckvm_KVM_GET_SUPPORTED_CPUID)
    public static let setUserMemoryRegion = KVMRequest(name: "KVM_SET_USER_MEMORY_REGION", number: ckvm_KVM_SET_USER_MEMORY_REGION)
    public static let setTSSAddress = KVMRequest(name: "KVM_SET_TSS_ADDR", number: ckvm_KVM_SET_TSS_ADDR)
    public static let createVCPU = KVMRequest(name: "KVM_CREATE_VCPU", number: ckvm_KVM_CREATE_VCPU)
    public static let setCPUID2 = KVMRequest(name: "KVM_SET_CPUID2", number: ckvm_KVM_SET_CPUID2)
    public static let getSregs = KVMRequest(name: "KVM_GET_SREGS", number: ckvm_KVM_GET_SREGS)
    public static let setSregs = KVMRequest(name: "KVM_SET_SREGS", number: ckvm_KVM_SET_SREGS)
    public static let getRegs = KVMRequest(name: "KVM_GET_REGS", number: ckvm_KVM_GET_REGS)
    public static let setRegs = KVMRequest(name: "KVM_SET_REGS", number: ckvm_KVM_SET_REGS)
    public static let run = KVMRequest(name: "KVM_RUN", number: ckvm_KVM_RUN)
}

/// The calls. Each returns what the C call returns (-1 on failure) and
/// leaves the error number for `lastError`.
public protocol KVMSystem: AnyObject {
    func open(_ path: String) -> Int32
    func close(_ fd: Int32)
    func ioctl(_ fd: Int32, _ request: KVMRequest, _ argument: UnsafeMutableRawPointer?) -> Int32
    func ioctl(_ fd: Int32, _ request: KVMRequest, value: UInt) -> Int32
    /// A shared mapping of `fd` (the vCPU's kvm_run), or anonymous memory when `fd` is nil.
    func mmap(length: Int, fd: Int32?) -> UnsafeMutableRawPointer?
    func munmap(_ address: UnsafeMutableRawPointer, length: Int)
    /// The error number of the last failed call on this thread.
    var lastError: Int32 { get }
}

/// The kernel.
public final class LiveKVMSystem: KVMSystem, @unchecked Sendable {
    public init() {}
    public func open(_ path: String) -> Int32 { Glibc.open(path, O_RDWR | O_CLOEXEC) }
    public func close(_ fd: Int32) { _ = Glibc.close(fd) }
    public func ioctl(_ fd: Int32, _ request: KVMRequest, _ argument: UnsafeMutableRawPointer?) -> Int32 {
        ckvm_ioctl_ptr(fd, request.number, argument)
    }
    public func ioctl(_ fd: Int32, _ request: KVMRequest, value: UInt) -> Int32 { ckvm_ioctl_int(fd, request.number, value) }
    public func mmap(length: Int, fd: Int32?) -> UnsafeMutableRawPointer? {
        let p: UnsafeMutableRawPointer?
        if let fd {
            p = Glibc.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        } else {
            p = Glibc.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        }
        return p == MAP_FAILED ? nil : p
    }
    public func munmap(_ address: UnsafeMutableRawPointer, length: Int) { _ = Glibc.munmap(address, length) }
    public var lastError: Int32 { ckvm_errno() }
}

/// A failed KVM call or an unusable host.
public enum KVMError: Error, Equatable, CustomStringConvertible {
    /// A system call failed: what was asked, and errno.
    case call(String, errno: Int32)
    /// /dev/kvm (or the given path) could not be opened.
    case unavailable(path: String, errno: Int32)
    /// The kernel speaks another KVM API version.
    case apiVersion(found: Int32, wanted: Int32)
    /// A capability the VMM needs is missing.
    case missingCapability(String)

    public var description: String {
        switch self {
        case .call(let what, let e): return "\(what) failed: \(Self.errorName(e))"
        case .unavailable(let path, let e):
            let hint = e == EACCES || e == EPERM ? " (add the user to the kvm group, or run as root)"
                : e == ENOENT ? " (no KVM on this host: load kvm_intel/kvm_amd, or run where /dev/kvm exists)" : ""
            return "cannot open \(path): \(Self.errorName(e))\(hint)"
        case .apiVersion(let found, let wanted): return "KVM API version \(found), this VMM needs \(wanted)"
        case .missingCapability(let cap): return "the host's KVM lacks \(cap), which this VMM needs"
        }
    }

    static func errorName(_ e: Int32) -> String {
        let text = strerror(e).map { String(cString: $0) } ?? "error"
        return "\(text) (errno \(e))"
    }
}

extension KVMSystem {
    /// Runs an ioctl, retrying on EINTR and EAGAIN; a failure becomes a `KVMError` naming it.
    @discardableResult
    func check(_ fd: Int32, _ request: KVMRequest, _ argument: UnsafeMutableRawPointer?) throws(KVMError) -> Int32 {
        while true {
            let r = ioctl(fd, request, argument)
            if r >= 0 { return r }
            let e = lastError
            if e == EINTR || e == EAGAIN { continue }
            throw .call(request.name, errno: e)
        }
    }

    @discardableResult
    func check(_ fd: Int32, _ request: KVMRequest, value: UInt) throws(KVMError) -> Int32 {
        while true {
            let r = ioctl(fd, request, value: value)
            if r >= 0 { return r }
            let e = lastError
            if e == EINTR || e == EAGAIN { continue }
            throw .call(request.name, errno: e)
        }
    }
}
