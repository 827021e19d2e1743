//! The recording VMM: one guest on KVM, its NICs on virtio-mmio, the vCPU
//! loop that routes exits to the device core.

import CKVM
import HostPrimitives
import TraceRecording
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
    /// CPU time the vCPU threads used (user + system, summed): unlike wall
    /// time, it leaves out the time this machine's other tenants took.
    public var vcpuSeconds: Double = 0
    public var counters: [NetCounters] = []
}

/// Options of a run.
public struct MachineOptions: Sendable {
    public var memorySize: UInt64 = 64 << 20
    public var nics = 1
    public var queuePairs = 1
    /// vCPUs; vCPU k drives NICs k, k + vcpus, … (so at most one per NIC).
    public var vcpus = 1
    public var timeoutSeconds: Double = 30
    /// Copy the guest's serial output to standard error, a line at a time.
    public var console = false
    public var kvmPath = "/dev/kvm"
    public var faults = DeviceFaults()
    public init() {}
}

/// One NIC's device, boxed so each vCPU thread mutates only its own object.
public final class DeviceBox<Observer: DeviceObserver>: @unchecked Sendable {
    public var device: VirtioNetDevice<GuestMemoryMapping, Observer>
    init(_ device: VirtioNetDevice<GuestMemoryMapping, Observer>) { self.device = device }
}

/// What one vCPU's loop saw.
struct VCPUOutcome {
    var end: RunEnd = .failed("not run")
    /// The vCPU stopped because another one ended the run.
    var stoppedByOther = false
    var mmioExits: UInt64 = 0
    var ioExits: UInt64 = 0
    var strayAccesses: UInt64 = 0
    var log: [String] = []
    /// Complete serial lines, and the line being written.
    var lines: [String] = []
    var partial: [UInt8] = []
    var serialBytes = 0
    var cpuSeconds: Double = 0
}

/// A VM running the guest image on `vcpus` vCPUs with `nics` virtio-net devices.
public final class Machine<Observer: DeviceObserver & SendableMetatype>: @unchecked Sendable {
    public let options: MachineOptions
    let kvm: KVM
    let vm: VirtualMachine
    let vcpus: [VCPU]
    public let memory: GuestMemoryMapping
    /// NIC n's device. Each is touched by one vCPU thread only (n mod vcpus).
    public let boxes: [DeviceBox<Observer>]
    public var devices: [VirtioNetDevice<GuestMemoryMapping, Observer>] { boxes.map(\.device) }
    /// Guards `stopping` and the serial echo.
    let mutex = Mutex()
    var stopping = false

    /// Each vCPU's stack: vCPU k's ends at stackTop − k × stackSize.
    public static var stackSize: UInt64 { 0x8000 }

    /// Sets the VM up: memory, the image, page tables, GDT, the parameter
    /// block, and the vCPUs in 64-bit mode at privilege level 3 at the
    /// image's entry (vCPU index in rdi, its own stack).
    public init(image: ElfImage, imageBytes: [UInt8], workload: GuestWorkload, options: MachineOptions,
                system: any KVMSystem = LiveKVMSystem(), observer: (Int) -> Observer) throws(MachineError) {
        self.options = options
        guard options.memorySize >= 32 << 20, options.memorySize <= 1 << 30, options.memorySize % (2 << 20) == 0 else {
            throw .setup("guest memory must be 32 MiB to 1 GiB in 2 MiB steps (the heap starts at 16 MiB)")
        }
        guard (1...8).contains(options.nics) else { throw .setup("1 to 8 NICs") }
        guard (1...8).contains(options.vcpus), options.vcpus <= options.nics else {
            throw .setup("1 to 8 vCPUs, at most one per NIC (each vCPU drives its own NICs): \(options.vcpus) vCPUs for \(options.nics) NIC(s)")
        }
        do throws(KVMError) {
            kvm = try KVM(path: options.kvmPath, system: system)
            vm = try kvm.createVM()
            memory = try GuestMemoryMapping(size: options.memorySize, system: system)
            try vm.setMemoryRegion(slot: 0, guestAddress: 0, size: options.memorySize, host: memory.base)
            try vm.setTSSAddress(GuestLayout.tss)
            let cpuid = try kvm.supportedCPUID()
            var list: [VCPU] = []
            for id in 0..<options.vcpus {
                let v = try vm.createVCPU(id: UInt32(id))
                try v.setCPUID(cpuid)
                list.append(v)
            }
            vcpus = list
        } catch {
            throw .kvm(error)
        }
        let config = NetConfig(queuePairs: options.queuePairs)
        let ram = memory, faults = options.faults
        boxes = (0..<options.nics).map { DeviceBox(VirtioNetDevice(config: config, memory: ram, observer: observer($0), faults: faults)) }
        try load(image, imageBytes)
        do throws(GuestMemoryError) {
            try writeTables()
            let heapSize = options.memorySize - GuestLayout.heap - (1 << 20)
            try memory.place(workload.parameterBlock(nics: options.nics, vcpus: options.vcpus, mmioBase: GuestLayout.mmioBase,
                                                     heap: GuestLayout.heap, heapSize: heapSize,
                                                     stackTop: GuestLayout.stackTop, stackSize: Self.stackSize),
                             at: GuestLayout.parameters)
        } catch {
            throw .setup("\(error)")
        }
        do throws(KVMError) {
            for (id, v) in vcpus.enumerated() { try enterLongMode(v, id: id, entry: image.entry) }
        } catch {
            throw .kvm(error)
        }
    }

    func load(_ image: ElfImage, _ bytes: [UInt8]) throws(MachineError) {
        // Every segment lies in [reservedEnd, heap): above the VMM's tables and stacks, below the guest's heap.
        let limit = min(options.memorySize, GuestLayout.heap)
        for s in image.segments {
            guard s.physicalAddress >= GuestLayout.reservedEnd, s.physicalAddress <= limit, s.memorySize <= limit - s.physicalAddress else {
                throw .setup("guest image: a segment of \(s.memorySize) bytes at 0x\(String(s.physicalAddress, radix: 16)) is outside "
                             + "[0x\(String(GuestLayout.reservedEnd, radix: 16)), 0x\(String(limit, radix: 16))): link the guest between 512 KiB and 16 MiB")
            }
            do throws(GuestMemoryError) {
                try memory.place(Array(bytes[s.fileOffset..<s.fileOffset + s.fileSize]), at: s.physicalAddress)
            } catch {
                throw .setup("guest image: \(error)")
            }
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

    func enterLongMode(_ vcpu: VCPU, id: Int, entry: UInt64) throws(KVMError) {
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
        r.rsp = GuestLayout.stackTop - UInt64(id) * Self.stackSize - 8
        r.rdi = UInt64(id)
        r.rflags = 0x3002  // IOPL 3: the guest's port I/O reaches the VMM
        try vcpu.setRegisters(r)
    }

    /// Runs the guest until every vCPU is done, or one halts, shuts down,
    /// fails or times out (which stops the others).
    ///
    /// Specialised for the two observers the CLI uses: unspecialised, every
    /// device call looked up generic metadata (15% of a recorded burst, perf).
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    public func run() -> RunResult {
        let start = Self.now()
        let watchdog = Watchdog(seconds: options.timeoutSeconds, vcpus: vcpus.count)
        var outcomes = [VCPUOutcome](repeating: VCPUOutcome(), count: vcpus.count)
        let results = OutcomeSlots(count: vcpus.count)
        var threads: [BackgroundThread] = []
        for k in 1..<max(1, vcpus.count) {
            if let t = BackgroundThread({ [self] in results.set(k, loop(k, watchdog: watchdog)) }) {
                threads.append(t)
            } else {
                var o = VCPUOutcome()
                o.end = .failed("cannot start the thread of vCPU \(k)")
                results.set(k, o)
                stopAll(watchdog)
            }
        }
        outcomes[0] = loop(0, watchdog: watchdog)
        for t in threads { t.join() }
        watchdog.cancel()
        for k in 1..<max(1, vcpus.count) { outcomes[k] = results.get(k) }

        var result = RunResult(end: .done(status: 0), serial: "")
        for o in outcomes {
            result.mmioExits += o.mmioExits
            result.ioExits += o.ioExits
            result.strayAccesses += o.strayAccesses
            result.vcpuSeconds += o.cpuSeconds
            result.log += o.log
        }
        result.log = Array(result.log.prefix(32))
        // The vCPU that ended otherwise than done (not one stopped because of it) names the end; else the worst status.
        func abnormal(_ o: VCPUOutcome) -> Bool { if case .done = o.end { return false } else { return true } }
        if let cause = outcomes.first(where: { abnormal($0) && !$0.stoppedByOther }) ?? outcomes.first(where: abnormal) {
            result.end = cause.end
        } else {
            let worst = outcomes.compactMap { o -> UInt32? in if case .done(let s) = o.end { return s } else { return nil } }.max() ?? 0
            result.end = .done(status: worst)
        }
        // Each vCPU's lines, vCPU by vCPU (a line is written by one vCPU).
        var serial = ""
        for o in outcomes {
            for line in o.lines { serial += line + "\n" }
            if !o.partial.isEmpty { serial += String(decoding: o.partial, as: UTF8.self) }
        }
        result.serial = serial
        result.seconds = Self.now() - start
        result.counters = boxes.map(\.device.counters)
        return result
    }

    /// Asks every vCPU to stop (one ended abnormally).
    func stopAll(_ watchdog: Watchdog) {
        mutex.withLock { stopping = true }
        watchdog.kickAll()
    }

    var isStopping: Bool { mutex.withLock { stopping } }

    /// One vCPU's exit loop.
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    func loop(_ index: Int, watchdog: Watchdog) -> VCPUOutcome {
        let vcpu = vcpus[index]
        watchdog.register(index, vcpu)
        var o = VCPUOutcome()
        let cpuStart = Self.threadCPUSeconds()
        func note(_ text: String) { if o.log.count < 32 { o.log.append(text) } }
        loop: while true {
            let exit: VCPUExit
            do throws(KVMError) { exit = try vcpu.runOnce() } catch {
                o.end = .failed((vcpus.count > 1 ? "vCPU \(index): " : "") + "\(error)")
                stopAll(watchdog)
                break
            }
            switch exit {
            case .mmio(let address, let isWrite, let length, let data):
                o.mmioExits += 1
                let offset = address &- GuestLayout.mmioBase
                let nic = Int(truncatingIfNeeded: offset / GuestLayout.mmioWindow)
                if address >= GuestLayout.mmioBase, nic < boxes.count, nic % vcpus.count == index, length <= 8, length.nonzeroBitCount == 1 {
                    let register = offset % GuestLayout.mmioWindow
                    let box = boxes[nic]
                    if isWrite {
                        var value: UInt64 = 0
                        withUnsafeMutableBytes(of: &value) { $0.baseAddress!.copyMemory(from: data, byteCount: length) }
                        _ = box.device.write(offset: register, width: length, value: UInt64(littleEndian: value))
                    } else {
                        var value = box.device.read(offset: register, width: length).littleEndian
                        withUnsafeBytes(of: &value) { data.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: length) }
                    }
                } else {
                    o.strayAccesses += 1
                    if !isWrite { data.update(repeating: 0xFF, count: min(length, 8)) }
                    let owner = nic < boxes.count && address >= GuestLayout.mmioBase ? " (NIC \(nic) belongs to vCPU \(nic % vcpus.count))" : ""
                    note("stray MMIO \(isWrite ? "write" : "read") of \(length) bytes at 0x\(String(address, radix: 16))\(vcpus.count > 1 ? " from vCPU \(index)" : "")\(owner)")
                }
            case .io(let port, let isWrite, let size, let count, let data):
                o.ioExits += 1
                if isWrite && port == GuestLayout.donePort && size == 4 {
                    var status: UInt32 = 0
                    withUnsafeMutableBytes(of: &status) { $0.baseAddress!.copyMemory(from: data, byteCount: 4) }
                    o.end = .done(status: UInt32(littleEndian: status))
                    break loop
                }
                if GuestLayout.serialPorts.contains(port) {
                    if isWrite, port == 0x3F8 {
                        for k in 0..<count * size where o.serialBytes < 1 << 20 {
                            o.serialBytes += 1
                            if data[k] == 10 {
                                let line = String(decoding: o.partial, as: UTF8.self)
                                o.lines.append(line)
                                o.partial.removeAll(keepingCapacity: true)
                                if options.console { mutex.withLock { printLine(line) } }
                            } else {
                                o.partial.append(data[k])
                            }
                        }
                    } else if !isWrite {
                        // Line status: transmitter empty and idle; everything else reads 0.
                        data.update(repeating: port == 0x3FD ? 0x60 : 0, count: size * count)
                    }
                } else {
                    o.strayAccesses += 1
                    if !isWrite { data.update(repeating: 0xFF, count: size * count) }
                    note("stray port \(isWrite ? "write" : "read") at 0x\(String(port, radix: 16))")
                }
            case .halt:
                o.end = .halted
                stopAll(watchdog)
                break loop
            case .shutdown:
                o.end = .shutdown
                stopAll(watchdog)
                break loop
            case .failEntry(let reason):
                o.end = .failed("entry failed, hardware reason 0x\(String(reason, radix: 16))")
                stopAll(watchdog)
                break loop
            case .internalError(let sub):
                o.end = .failed("internal error, suberror \(sub)")
                stopAll(watchdog)
                break loop
            case .systemEvent(let type):
                o.end = type == 1 || type == 2 ? .shutdown : .failed("system event \(type)")
                stopAll(watchdog)
                break loop
            case .interrupted:
                if watchdog.fired {
                    o.end = .timeout(seconds: options.timeoutSeconds)
                    break loop
                }
                if isStopping {
                    o.end = .failed("stopped: another vCPU ended the run")
                    o.stoppedByOther = true
                    break loop
                }
            case .other(let reason):
                o.end = .failed("unexpected exit reason \(reason)")
                stopAll(watchdog)
                break loop
            }
        }
        // No kicks to this thread once it has left its loop (it may be joined and gone).
        watchdog.unregister(index)
        o.cpuSeconds = Self.threadCPUSeconds() - cpuStart
        return o
    }

    func printLine(_ line: String) {
        let text = line + "\n"
        _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// CPU time of the calling thread.
    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Results handed from vCPU threads to the caller.
final class OutcomeSlots: @unchecked Sendable {
    let mutex = Mutex()
    var slots: [VCPUOutcome]
    init(count: Int) { slots = Array(repeating: VCPUOutcome(), count: count) }
    func set(_ k: Int, _ o: VCPUOutcome) { mutex.withLock { slots[k] = o } }
    func get(_ k: Int) -> VCPUOutcome { mutex.withLock { slots[k] } }
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

/// Ends a run that outlives its time, or stops every vCPU when one ends
/// abnormally: sets each vCPU's immediate_exit and signals its thread, whose
/// KVM_RUN then returns EINTR.
final class Watchdog: @unchecked Sendable {
    let mutex = Mutex()
    let condition = Condition()
    var cancelled = false
    private(set) var firedFlag = false
    var thread: BackgroundThread?
    /// The vCPUs and their threads, as each loop registers.
    var targets: [(VCPU, pthread_t)?]
    static let signal = SIGUSR1
    /// How long past the deadline the vCPUs may take to stop before the process exits.
    static let grace = 10.0

    init(seconds: Double, vcpus: Int) {
        targets = Array(repeating: nil, count: vcpus)
        let deadline = Machine<NoObserver>.now() + seconds
        thread = BackgroundThread { [self] in
            mutex.lock()
            while !cancelled {
                let left = deadline - Machine<NoObserver>.now()
                if left < -Self.grace {
                    // A vCPU did not stop (a signal that cannot land): do not hang.
                    let text = "vtrace: the vCPU did not stop \(Int(Self.grace)) s after the timeout; exiting (a recording stays as .partial)\n"
                    _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
                    _exit(124)
                }
                if left <= 0 {
                    firedFlag = true
                    kickLocked()
                    // Keep kicking until the vCPUs are done (a signal may land before KVM_RUN).
                    condition.wait(mutex, milliseconds: 50)
                    continue
                }
                condition.wait(mutex, milliseconds: max(1, min(1000, Int(left * 1000))))
            }
            mutex.unlock()
        }
    }

    /// Called on each vCPU's thread before its first KVM_RUN.
    func register(_ index: Int, _ vcpu: VCPU) {
        _ = ckvm_install_kick_handler(Self.signal)
        mutex.withLock {
            targets[index] = (vcpu, pthread_self())
            if firedFlag { vcpu.requestImmediateExit(true) }
        }
    }

    /// Called by a vCPU's thread as it leaves its loop.
    func unregister(_ index: Int) { mutex.withLock { targets[index] = nil } }

    func kickLocked() {
        for case let (vcpu, thread)? in targets {
            vcpu.requestImmediateExit(true)
            pthread_kill(thread, Self.signal)
        }
    }

    /// Stops every registered vCPU now (one ended the run).
    func kickAll() { mutex.withLock { kickLocked() } }

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
