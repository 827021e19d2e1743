//! The recording VMM: one guest on KVM, its NICs on virtio-mmio, the vCPU
//! loop that routes exits to the device core.

import CKVM
import TraceFormat
import Tracing
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// Where things live in guest-physical memory (the reference VMM's x86 layout
/// where it has one).
public enum GuestLayout {
    public static let gdt: UInt64 = 0x500
    public static let parameters: UInt64 = 0x7000
    public static let pml4: UInt64 = 0x9000
    public static let pdpt: UInt64 = 0xA000
    /// Identity map of [0, 1 GiB) in 2 MiB pages.
    public static let lowDirectory: UInt64 = 0xB000
    /// [3 GiB, 4 GiB): the MMIO gap, uncached.
    public static let mmioDirectory: UInt64 = 0xC000
    public static let stackTop: UInt64 = 0x80000
    /// Everything below is the VMM's; a guest image must load above.
    public static let reservedEnd: UInt64 = 0x80000
    public static let tss: UInt64 = 0xFFFB_D000
    /// NIC n's 4 KiB virtio-mmio window is at mmioBase + n × 0x1000.
    public static let mmioBase: UInt64 = 0xC000_2000
    public static let mmioWindow: UInt64 = 0x1000
    /// Serial (COM1 data .. scratch) and the "done" port (a 32-bit exit status).
    public static let serialPorts: ClosedRange<UInt16> = 0x3F8...0x3FF
    public static let donePort: UInt16 = 0xF4
    /// The guest's heap starts here (rings, buffers).
    public static let heap: UInt64 = 0x100_0000
}

/// How a run ends.
public enum RunEnd: Equatable, Sendable, CustomStringConvertible {
    /// The guest wrote its exit status to the done port.
    case done(status: UInt32)
    /// HLT (at privilege level 3 a HLT faults, so this is a kernel-mode guest halting).
    case halted
    /// A triple fault, or a shutdown request.
    case shutdown
    /// The wall-clock limit passed.
    case timeout(seconds: Double)
    /// KVM could not run the guest (entry failure, internal error, a failed call).
    case failed(String)

    public var description: String {
        switch self {
        case .done(let s): return "the guest finished with status \(s)\(s == 0 ? "" : " (its own checks failed)")"
        case .halted: return "the guest halted"
        case .shutdown: return "the guest shut down (triple fault or reset request)"
        case .timeout(let s): return "timed out after \(s) s (--timeout)"
        case .failed(let why): return "KVM failed: \(why)"
        }
    }

    /// Whether the run counts as a success (the guest said 0).
    public var succeeded: Bool { self == .done(status: 0) }
}

/// What a run did.
public struct RunResult: Sendable {
    public var end: RunEnd
    /// Everything the guest wrote to the serial port (at most 1 MiB kept).
    public var serial: String
    public var mmioExits: UInt64 = 0
    public var ioExits: UInt64 = 0
    /// Accesses outside every NIC's window (reads answered all-ones, writes ignored).
    public var strayAccesses: UInt64 = 0
    /// The VMM's notes (the first stray accesses, the end).
    public var log: [String] = []
    public var seconds: Double = 0
    public var counters: [NetCounters] = []
}

/// Options of a run.
public struct MachineOptions: Sendable {
    public var memorySize: UInt64 = 64 << 20
    public var nics = 1
    public var queuePairs = 1
    public var timeoutSeconds: Double = 30
    /// Copy the guest's serial output to standard error as it comes.
    public var console = false
    public var kvmPath = "/dev/kvm"
    public var faults = DeviceFaults()
    public init() {}
}

/// A VM with one vCPU running the guest image and `nics` virtio-net devices.
public final class Machine<Observer: DeviceObserver> {
    public let options: MachineOptions
    let kvm: KVM
    let vm: VirtualMachine
    let vcpu: VCPU
    public let memory: GuestMemoryMapping
    public private(set) var devices: [VirtioNetDevice<GuestMemoryMapping, Observer>]

    /// Sets the VM up: memory, the image, page tables, GDT, the parameter
    /// block, one vCPU in 64-bit mode at privilege level 3 at the image's entry.
    public init(image: ElfImage, imageBytes: [UInt8], workload: GuestWorkload, options: MachineOptions,
                system: any KVMSystem = LiveKVMSystem(), observer: (Int) -> Observer) throws(MachineError) {
        self.options = options
        guard options.memorySize >= 4 << 20, options.memorySize <= 1 << 30, options.memorySize % (2 << 20) == 0 else {
            throw .setup("guest memory must be 4 MiB to 1 GiB in 2 MiB steps")
        }
        guard (1...8).contains(options.nics) else { throw .setup("1 to 8 NICs") }
        do throws(KVMError) {
            kvm = try KVM(path: options.kvmPath, system: system)
            vm = try kvm.createVM()
            memory = try GuestMemoryMapping(size: options.memorySize, system: system)
            try vm.setMemoryRegion(slot: 0, guestAddress: 0, size: options.memorySize, host: memory.base)
            try vm.setTSSAddress(GuestLayout.tss)
            vcpu = try vm.createVCPU(id: 0)
            try vcpu.setCPUID(try kvm.supportedCPUID())
        } catch {
            throw .kvm(error)
        }
        let config = NetConfig(queuePairs: options.queuePairs)
        let ram = memory, faults = options.faults
        devices = (0..<options.nics).map { VirtioNetDevice(config: config, memory: ram, observer: observer($0), faults: faults) }
        do throws(GuestMemoryError) {
            try load(image, imageBytes)
            try writeTables()
            let heapSize = options.memorySize - GuestLayout.heap - (1 << 20)
            try memory.place(workload.parameterBlock(nics: options.nics, mmioBase: GuestLayout.mmioBase, heap: GuestLayout.heap, heapSize: heapSize),
                             at: GuestLayout.parameters)
        } catch {
            throw .setup("\(error)")
        }
        do throws(KVMError) {
            try enterLongMode(entry: image.entry)
        } catch {
            throw .kvm(error)
        }
    }

    func load(_ image: ElfImage, _ bytes: [UInt8]) throws(GuestMemoryError) {
        for s in image.segments {
            guard s.physicalAddress >= GuestLayout.reservedEnd, s.physicalAddress <= options.memorySize,
                  s.memorySize <= min(options.memorySize, GuestLayout.heap) - s.physicalAddress else {
                throw GuestMemoryError(address: s.physicalAddress, length: Int(clamping: s.memorySize))
            }
            try memory.place(Array(bytes[s.fileOffset..<s.fileOffset + s.fileSize]), at: s.physicalAddress)
        }
    }

    /// Identity page tables (user-accessible: the guest runs at privilege
    /// level 3) and a flat GDT.
    func writeTables() throws(GuestMemoryError) {
        let present: UInt64 = 1, writable: UInt64 = 2, user: UInt64 = 4, large: UInt64 = 0x80, uncached: UInt64 = 0x18
        try memory.place64(GuestLayout.pdpt | present | writable | user, at: GuestLayout.pml4)
        try memory.place64(GuestLayout.lowDirectory | present | writable | user, at: GuestLayout.pdpt)
        try memory.place64(GuestLayout.mmioDirectory | present | writable | user, at: GuestLayout.pdpt + 3 * 8)
        for i in 0..<UInt64(512) {
            try memory.place64((i << 21) | present | writable | user | large, at: GuestLayout.lowDirectory + i * 8)
            try memory.place64((0xC000_0000 + (i << 21)) | present | writable | user | large | uncached, at: GuestLayout.mmioDirectory + i * 8)
        }
        // null, kernel code, kernel data, user data (0x1b), user code (0x23)
        for (i, d) in [UInt64(0), 0x00AF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF, 0x00CF_F300_0000_FFFF, 0x00AF_FB00_0000_FFFF].enumerated() {
            try memory.place64(d, at: GuestLayout.gdt + UInt64(i) * 8)
        }
    }

    func enterLongMode(entry: UInt64) throws(KVMError) {
        var s = try vcpu.specialRegisters()
        let code = kvm_segment(base: 0, limit: 0xFFFF_FFFF, selector: 0x23, type: 11, present: 1, dpl: 3, db: 0, s: 1, l: 1, g: 1,
                               avl: 0, unusable: 0, padding: 0)
        let data = kvm_segment(base: 0, limit: 0xFFFF_FFFF, selector: 0x1B, type: 3, present: 1, dpl: 3, db: 1, s: 1, l: 0, g: 1,
                               avl: 0, unusable: 0, padding: 0)
        s.cs = code
        s.ds = data
        s.es = data
        s.fs = data
        s.gs = data
        s.ss = data
        s.gdt.base = GuestLayout.gdt
        s.gdt.limit = 5 * 8 - 1
        s.cr3 = GuestLayout.pml4
        s.cr4 = 0x20  // PAE
        s.cr0 = 0x8005_0033  // PG, AM, WP, NE, ET, MP, PE
        s.efer = 0x500  // LME, LMA
        try vcpu.setSpecialRegisters(s)
        var r = kvm_regs()
        r.rip = entry
        r.rsp = GuestLayout.stackTop - 8
        r.rflags = 0x3002  // IOPL 3: the guest's port I/O reaches the VMM
        try vcpu.setRegisters(r)
    }

    /// Runs the guest until it is done, halts, shuts down, fails or times out.
    ///
    /// Specialised for the two observers the CLI uses: unspecialised, every
    /// device call looked up generic metadata (15% of a recorded burst, perf).
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    public func run() -> RunResult {
        var result = RunResult(end: .failed("not run"), serial: "")
        var serial: [UInt8] = []
        let start = Self.now()
        let watchdog = Watchdog(seconds: options.timeoutSeconds, vcpu: vcpu)
        defer { watchdog.cancel() }
        func note(_ text: String) { if result.log.count < 32 { result.log.append(text) } }
        loop: while true {
            let exit: VCPUExit
            do throws(KVMError) { exit = try vcpu.runOnce() } catch {
                result.end = .failed("\(error)")
                break
            }
            switch exit {
            case .mmio(let address, let isWrite, let length, let data):
                result.mmioExits += 1
                let offset = address &- GuestLayout.mmioBase
                let nic = Int(truncatingIfNeeded: offset / GuestLayout.mmioWindow)
                if address >= GuestLayout.mmioBase, nic < devices.count, [1, 2, 4, 8].contains(length) {
                    let register = offset % GuestLayout.mmioWindow
                    if isWrite {
                        var value: UInt64 = 0
                        withUnsafeMutableBytes(of: &value) { $0.baseAddress!.copyMemory(from: data, byteCount: length) }
                        _ = devices[nic].write(offset: register, width: length, value: UInt64(littleEndian: value))
                    } else {
                        var value = devices[nic].read(offset: register, width: length).littleEndian
                        withUnsafeBytes(of: &value) { data.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: length) }
                    }
                } else {
                    result.strayAccesses += 1
                    if !isWrite { data.update(repeating: 0xFF, count: min(length, 8)) }
                    note("stray MMIO \(isWrite ? "write" : "read") of \(length) bytes at 0x\(String(address, radix: 16))")
                }
            case .io(let port, let isWrite, let size, let count, let data):
                result.ioExits += 1
                if isWrite && port == GuestLayout.donePort && size == 4 {
                    var status: UInt32 = 0
                    withUnsafeMutableBytes(of: &status) { $0.baseAddress!.copyMemory(from: data, byteCount: 4) }
                    result.end = .done(status: UInt32(littleEndian: status))
                    break loop
                }
                if GuestLayout.serialPorts.contains(port) {
                    if isWrite, port == 0x3F8 {
                        for k in 0..<count * size where serial.count < 1 << 20 {
                            serial.append(data[k])
                            if options.console { var b = data[k]; _ = Glibc.write(2, &b, 1) }
                        }
                    } else if !isWrite {
                        // Line status: transmitter empty and idle; everything else reads 0.
                        data.update(repeating: port == 0x3FD ? 0x60 : 0, count: size * count)
                    }
                } else {
                    result.strayAccesses += 1
                    if !isWrite { data.update(repeating: 0xFF, count: size * count) }
                    note("stray port \(isWrite ? "write" : "read") at 0x\(String(port, radix: 16))")
                }
            case .halt:
                result.end = .halted
                break loop
            case .shutdown:
                result.end = .shutdown
                break loop
            case .failEntry(let reason):
                result.end = .failed("entry failed, hardware reason 0x\(String(reason, radix: 16))")
                break loop
            case .internalError(let sub):
                result.end = .failed("internal error, suberror \(sub)")
                break loop
            case .systemEvent(let type):
                result.end = type == 1 || type == 2 ? .shutdown : .failed("system event \(type)")
                break loop
            case .interrupted:
                if watchdog.fired {
                    result.end = .timeout(seconds: options.timeoutSeconds)
                    break loop
                }
            case .other(let reason):
                result.end = .failed("unexpected exit reason \(reason)")
                break loop
            }
        }
        result.seconds = Self.now() - start
        result.serial = String(decoding: serial, as: UTF8.self)
        result.counters = devices.map(\.counters)
        return result
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Why a machine could not be set up.
public enum MachineError: Error, CustomStringConvertible {
    case kvm(KVMError)
    case setup(String)
    public var description: String {
        switch self {
        case .kvm(let e): return e.description
        case .setup(let s): return s
        }
    }
}

/// Ends a run that outlives its time: sets the vCPU's immediate_exit and
/// signals the vCPU thread, whose KVM_RUN then returns EINTR.
final class Watchdog: @unchecked Sendable {
    let mutex = Mutex()
    let condition = Condition()
    var cancelled = false
    private(set) var firedFlag = false
    var thread: BackgroundThread?
    static let signal = SIGUSR1
    /// How long past the deadline the vCPU may take to stop before the process exits.
    static let grace = 10.0

    init(seconds: Double, vcpu: VCPU) {
        _ = ckvm_install_kick_handler(Self.signal)
        let target = pthread_self()
        let deadline = Machine<NoObserver>.now() + seconds
        thread = BackgroundThread { [self] in
            mutex.lock()
            while !cancelled {
                let left = deadline - Machine<NoObserver>.now()
                if left < -Self.grace {
                    // The vCPU did not stop (a signal that cannot land): do not hang.
                    let text = "vtrace: the vCPU did not stop \(Int(Self.grace)) s after the timeout; exiting (a recording stays as .partial)\n"
                    _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
                    _exit(124)
                }
                if left <= 0 {
                    firedFlag = true
                    vcpu.requestImmediateExit(true)
                    pthread_kill(target, Self.signal)
                    // Keep kicking until the vCPU thread cancels (a signal may land before KVM_RUN).
                    condition.wait(mutex, milliseconds: 50)
                    continue
                }
                condition.wait(mutex, milliseconds: max(1, min(1000, Int(left * 1000))))
            }
            mutex.unlock()
        }
    }

    var fired: Bool { mutex.withLock { firedFlag } }

    func cancel() {
        mutex.withLock {
            cancelled = true
            condition.signal()
        }
        thread?.join()
        thread = nil
    }
}
