//! The recording VMM: one guest on KVM and its NICs on virtio-mmio; a
//! machine's options and its set-up (memory, the image, the vCPUs). The run
//! itself is in Machine+VCPULoop.swift.

import HostPrimitives
import VirtioCore

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
    /// Guards `stopping`, `stopRequested`, `watchdog` and the serial echo.
    let mutex = Mutex()
    var stopping = false
    /// `requestStop()` was called: the run ends as `.stopped`.
    var stopRequested = false
    /// The run's watchdog, while `run()` runs (`requestStop()` kicks the vCPUs through it).
    var watchdog: Watchdog?

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
