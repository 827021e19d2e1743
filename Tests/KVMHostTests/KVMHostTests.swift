import CKVM
import Foundation
import Glibc
@testable import KVMHost
import Testing
import TraceFormat
import TraceAnalysis
import TraceRecording
import VirtioCore

/// A static x86-64 ELF with one executable PT_LOAD segment of `code` at `address`.
func makeELF(entry: UInt64 = 0x100000, address: UInt64 = 0x100000, code: [UInt8] = [0x0F, 0x0B], type: UInt16 = 2,
             machine: UInt16 = 62, flags: UInt32 = 5) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 64 + 56)
    func put16(_ o: Int, _ v: UInt16) { b[o] = UInt8(v & 0xff); b[o + 1] = UInt8(v >> 8) }
    func put32(_ o: Int, _ v: UInt32) { for k in 0..<4 { b[o + k] = UInt8((v >> (8 * k)) & 0xff) } }
    func put64(_ o: Int, _ v: UInt64) { for k in 0..<8 { b[o + k] = UInt8((v >> (8 * k)) & 0xff) } }
    b[0...3] = [0x7F, 0x45, 0x4C, 0x46]
    b[4] = 2; b[5] = 1; b[6] = 1
    put16(16, type); put16(18, machine); put32(20, 1)
    put64(24, entry); put64(32, 64); put16(52, 64); put16(54, 56); put16(56, 1)
    put32(64, 1); put32(68, flags); put64(72, 120); put64(80, address); put64(88, address)
    put64(96, UInt64(code.count)); put64(104, UInt64(code.count)); put64(112, 0x1000)
    return b + code
}

@Suite("KVM host with a mock kernel")
struct KVMHostMockTests {
    @Test func openFailuresSayWhatToDo() {
        let mock = MockKVMSystem()
        mock.openErrno = ENOENT
        #expect(throws: KVMError.unavailable(path: "/dev/kvm", errno: ENOENT)) { try KVM(system: mock) }
        #expect(KVMError.unavailable(path: "/dev/kvm", errno: ENOENT).description.contains("no KVM on this host"))
        #expect(KVMError.unavailable(path: "/dev/kvm", errno: EACCES).description.contains("kvm group"))
    }

    @Test func apiVersionAndCapabilitiesAreChecked() {
        let old = MockKVMSystem()
        old.apiVersion = 11
        #expect(throws: KVMError.apiVersion(found: 11, wanted: 12)) { try KVM(system: old) }
        let lacking = MockKVMSystem()
        lacking.missingCapability = ckvm_KVM_CAP_IMMEDIATE_EXIT
        #expect(throws: KVMError.missingCapability("KVM_CAP_IMMEDIATE_EXIT")) { try KVM(system: lacking) }
        #expect(lacking.calls.last == .init(name: "close"))  // the fd is closed when the check fails
    }

    @Test func interruptedCallsAreRetriedAndFailuresNamed() throws {
        let mock = MockKVMSystem()
        mock.results["KVM_CREATE_VM"] = [-EINTR, -EAGAIN]
        let kvm = try KVM(system: mock)
        _ = try kvm.createVM()
        #expect(mock.ioctls.filter { $0 == "KVM_CREATE_VM" }.count == 3)
        mock.results["KVM_SET_TSS_ADDR"] = [-EPERM]
        let vm = try kvm.createVM()
        #expect(throws: KVMError.call("KVM_SET_TSS_ADDR", errno: EPERM)) { try vm.setTSSAddress(0xFFFB_D000) }
        #expect(KVMError.call("KVM_SET_TSS_ADDR", errno: EPERM).description == "KVM_SET_TSS_ADDR failed: Operation not permitted (errno 1)")
    }

    func machine(_ mock: MockKVMSystem, workload: GuestWorkload = GuestWorkload(kind: .burst), nics: Int = 1)
        throws -> Machine<NoObserver> {
        let elf = makeELF()
        var options = MachineOptions()
        options.nics = nics
        return try Machine(image: try ElfImage(elf), imageBytes: elf, workload: workload, options: options, system: mock) { _ in NoObserver() }
    }

    /// The set-up issues exactly this sequence, enters 64-bit mode at
    /// privilege level 3 and lays out memory as documented.
    @Test func setupSequenceAndState() throws {
        let mock = MockKVMSystem()
        let m = try machine(mock, workload: GuestWorkload(kind: .mq, frames: 5, length: 100, pairs: 2, descriptors: 3))
        #expect(mock.ioctls == ["KVM_GET_API_VERSION", "KVM_CHECK_EXTENSION", "KVM_CHECK_EXTENSION", "KVM_CHECK_EXTENSION", "KVM_CHECK_EXTENSION",
                                "KVM_CREATE_VM", "KVM_SET_USER_MEMORY_REGION", "KVM_SET_TSS_ADDR", "KVM_GET_SUPPORTED_CPUID",
                                "KVM_GET_VCPU_MMAP_SIZE", "KVM_CREATE_VCPU", "KVM_SET_CPUID2", "KVM_GET_SREGS", "KVM_SET_SREGS", "KVM_SET_REGS"])
        let region = try #require(mock.arguments["KVM_SET_USER_MEMORY_REGION"]).withUnsafeBytes { $0.load(as: kvm_userspace_memory_region.self) }
        #expect(region.guest_phys_addr == 0 && region.memory_size == 64 << 20 && region.userspace_addr == UInt64(UInt(bitPattern: m.memory.base)))
        let s = try #require(mock.arguments["KVM_SET_SREGS"]).withUnsafeBytes { $0.load(as: kvm_sregs.self) }
        #expect(s.cs.dpl == 3 && s.cs.l == 1 && s.cs.selector == 0x23 && s.ss.dpl == 3 && s.ss.selector == 0x1B)
        #expect(s.cr0 == 0x8005_0033 && s.cr4 == 0x20 && s.efer == 0x500 && s.cr3 == GuestLayout.pml4)
        let r = try #require(mock.arguments["KVM_SET_REGS"]).withUnsafeBytes { $0.load(as: kvm_regs.self) }
        #expect(r.rip == 0x100000 && r.rsp == GuestLayout.stackTop - 8 && r.rflags == 0x3002)
        // The image, the page tables (user-accessible), the parameter block.
        #expect(try m.memory.load(UInt16.self, at: 0x100000) == 0x0B0F)
        #expect(try m.memory.load(UInt64.self, at: GuestLayout.pml4) == GuestLayout.pdpt | 7)
        #expect(try m.memory.load(UInt64.self, at: GuestLayout.mmioDirectory) == 0xC000_0000 | 0x9F)
        #expect(try m.memory.load(UInt32.self, at: GuestLayout.parameters) == 0x5047_5456)
        #expect(try m.memory.load(UInt32.self, at: GuestLayout.parameters + 8) == 2)  // mq
        #expect(try m.memory.load(UInt32.self, at: GuestLayout.parameters + 16) == 2)  // pairs
        #expect(try m.memory.load(UInt32.self, at: GuestLayout.parameters + 20) == 5)  // frames
        #expect(try m.memory.load(UInt32.self, at: GuestLayout.parameters + 24) == 100)  // len
        #expect(try m.memory.load(UInt32.self, at: GuestLayout.parameters + 28) == 3)  // descs
        #expect(try m.memory.load(UInt64.self, at: GuestLayout.parameters + 32) == GuestLayout.mmioBase)
        #expect(try m.memory.load(UInt32.self, at: GuestLayout.parameters + 64) == 32)  // batch
    }

    /// Each vCPU gets the CPUID, the same 64-bit state, its own stack and its index in rdi.
    @Test func everyVCPUStartsWithItsIndexAndStack() throws {
        let mock = MockKVMSystem()
        var regs: [kvm_regs] = []
        let elf = makeELF()
        var options = MachineOptions()
        options.nics = 3
        options.vcpus = 3
        mock.onSetRegs = { regs.append($0) }
        _ = try Machine(image: try ElfImage(elf), imageBytes: elf, workload: GuestWorkload(kind: .burst), options: options, system: mock) { _ in NoObserver() }
        #expect(mock.ioctls.filter { $0 == "KVM_CREATE_VCPU" }.count == 3 && mock.ioctls.filter { $0 == "KVM_SET_CPUID2" }.count == 3)
        let indices: [UInt64] = [0, 1, 2]
        #expect(regs.map(\.rdi) == indices)
        let stacks: [UInt64] = [0x7FFF8, 0x77FF8, 0x6FFF8]
        #expect(regs.map(\.rsp) == stacks)
        options.vcpus = 4
        #expect(throws: MachineError.self) {
            _ = try Machine(image: try ElfImage(elf), imageBytes: elf, workload: GuestWorkload(kind: .burst), options: options, system: MockKVMSystem()) { _ in NoObserver() }
        }
    }

    /// Exits are routed: MMIO in a NIC's window to its device, elsewhere
    /// all-ones and ignored; serial bytes collected; the done port ends the run.
    @Test func exitsAreRouted() throws {
        let mock = MockKVMSystem()
        let m = try machine(mock, nics: 2)
        var magic: UInt64 = 0, stray: UInt64 = 0, status: UInt64 = 0
        let base = GuestLayout.mmioBase
        mock.results["KVM_RUN"] = [-EINTR]  // a stray signal: the loop goes on
        mock.exits = [
            { $0.mmio(base, write: false, length: 4) },
            { magic = $0.mmioValue(4); $0.mmio(base + 0x1000 + 0x70, write: true, length: 4, value: 1) },
            { $0.mmio(base + 0x1000 + 0x70, write: false, length: 4) },
            { status = $0.mmioValue(4); $0.mmio(0xC000_0000, write: false, length: 4) },
            { stray = $0.mmioValue(4); $0.mmio(base + 0x2000, write: true, length: 4, value: 9) },
            { $0.out(0x3F8, Array("h".utf8)) },
            { $0.out(0x3F8, Array("i\n".utf8.prefix(1))) },
            { $0.out(0x80, [1]) },
            { $0.out(GuestLayout.donePort, [7, 0, 0, 0]) },
        ]
        let result = m.run()
        #expect(magic == 0x7472_6976 && status == 1 && stray == 0xFFFF_FFFF)
        #expect(result.end == .done(status: 7))
        #expect(result.serial == "hi")
        #expect(result.mmioExits == 5 && result.ioExits == 4 && result.strayAccesses == 3)
        #expect(result.log == ["stray MMIO read of 4 bytes at 0xc0000000", "stray MMIO write of 4 bytes at 0xc0004000", "stray port write at 0x80"])
        #expect(m.devices[1].state.status.rawValue == 1 && m.devices[0].state.status.rawValue == 0)
        #expect(mock.ioctls.filter { $0 == "KVM_RUN" }.count == 10)
    }

    @Test(arguments: [
        (UInt32(KVM_EXIT_INTERNAL_ERROR), "KVM failed: internal error, suberror 0"),
        (UInt32(KVM_EXIT_FAIL_ENTRY), "KVM failed: entry failed, hardware reason 0x0"),
        (UInt32(KVM_EXIT_HLT), "the guest halted"),
        (UInt32(KVM_EXIT_SHUTDOWN), "the guest shut down (triple fault or reset request)"),
    ])
    func endingExits(_ reason: UInt32, _ text: String) throws {
        let mock = MockKVMSystem()
        let m = try machine(mock)
        mock.exits = [{ $0.pointee.exit_reason = reason }]
        #expect(m.run().end.description == text)
    }

    @Test func aFailingRunNamesTheCall() throws {
        let mock = MockKVMSystem()
        let m = try machine(mock)
        mock.results["KVM_RUN"] = [-EFAULT]
        #expect(m.run().end == .failed("KVM_RUN failed: Bad address (errno 14)"))
    }

    /// A mock run recorded through the real recorder replays without KVM,
    /// with zero divergence.
    @Test func aRecordedMockRunReplays() throws {
        let mock = MockKVMSystem()
        let elf = makeELF()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvm-mock-\(getpid()).vtrace").path
        let recorder = try TraceRecorder(path: path, config: NetConfig(), nics: 1, regions: [MemoryRegion(base: 0, size: 64 << 20)])
        let m = try Machine(image: try ElfImage(elf), imageBytes: elf, workload: GuestWorkload(kind: .burst), options: MachineOptions(),
                            system: mock) { recorder.observer(nic: $0) }
        let base = GuestLayout.mmioBase
        for (offset, value) in [(0x70, 0), (0x70, 1), (0x70, 3), (0x14, 1)] as [(UInt64, UInt64)] {
            mock.exits.append { $0.mmio(base + offset, write: true, length: 4, value: value) }
        }
        mock.exits.append { $0.mmio(base + 0x10, write: false, length: 4) }
        mock.exits.append { $0.out(GuestLayout.donePort, [0, 0, 0, 0]) }
        #expect(m.run().end == .done(status: 0))
        let summary = try recorder.finish()
        #expect(summary.events > 5)
        let reader = try TraceReader(path: path)
        let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
        #expect(outcome.matched && outcome.segments == summary.chunks)
        #expect(outcome.counters.first?.txPackets == 0)
    }

    /// An image that would land on the VMM's tables, past the heap's start
    /// or past the end of memory is refused with where it may go.
    @Test(arguments: [UInt64(0x1000), 0x100_0000, 0x3FF_F000, 0xFFFF_FFFF_FFFF_F000])
    func misplacedImagesAreRefused(_ address: UInt64) throws {
        let elf = makeELF(entry: address, address: address)
        do {
            _ = try Machine(image: try ElfImage(elf), imageBytes: elf, workload: GuestWorkload(kind: .burst), options: MachineOptions(),
                            system: MockKVMSystem()) { _ in NoObserver() }
            Issue.record("0x\(String(address, radix: 16)) accepted")
        } catch {
            #expect("\(error)".contains("is outside [0x80000, 0x1000000): link the guest between 512 KiB and 16 MiB"), "\(error)")
        }
    }

    @Test func teardownUnmapsAndCloses() throws {
        let mock = MockKVMSystem()
        do { _ = try machine(mock) }
        #expect(mock.maps.isEmpty)
        #expect(mock.calls.filter { $0.name == "munmap" }.count == 2)
        #expect(mock.calls.filter { $0.name == "close" }.count == 3)  // vCPU, VM, /dev/kvm
    }
}

@Suite("Guest images and workloads")
struct GuestImageTests {
    @Test func validImageParses() throws {
        let image = try ElfImage(makeELF(code: [0x90, 0x90, 0x0F, 0x0B]))
        #expect(image.entry == 0x100000)
        #expect(image.segments == [ElfImage.Segment(physicalAddress: 0x100000, fileOffset: 120, fileSize: 4, memorySize: 4, executable: true)])
    }

    @Test(arguments: [
        (Array("#!/bin/sh\necho hi\n".utf8), "not an ELF file"),
        (makeELF(machine: 3), "machine 3 is not x86-64"),
        (makeELF(type: 3), "not an executable (2): link it static, not PIE"),
        (makeELF(entry: 0x200000), "entry point 0x200000 is not in an executable segment"),
        (makeELF(flags: 4), "entry point 0x100000 is not in an executable segment"),
        (Array(makeELF().prefix(100)), "program headers at offset 64 run past the 100-byte file"),
    ])
    func badImagesAreRefused(_ bytes: [UInt8], _ message: String) {
        #expect(throws: GuestImageError.self) { try ElfImage(bytes) }
        do { _ = try ElfImage(bytes) } catch { #expect(error.message.contains(message), "\(error.message)") }
    }

    @Test func segmentPastTheFileIsRefused() {
        var b = makeELF()
        b[96] = 0xFF  // filesz
        b[104] = 0xFF  // memsz
        do { _ = try ElfImage(b); Issue.record("accepted") } catch { #expect(error.message.contains("segment 0: 255 bytes at offset 120 run past the file")) }
    }

    /// Every byte of a valid image cut short or bent: an error, never a trap.
    @Test func mangledImagesNeverTrap() {
        let good = makeELF()
        for cut in 0..<good.count { _ = try? ElfImage(Array(good.prefix(cut))) }
        for i in 0..<good.count {
            var b = good
            b[i] ^= 0xFF
            _ = try? ElfImage(b)
        }
    }

    @Test func workloadsParse() throws {
        #expect(try GuestWorkload.parse("burst").get() == GuestWorkload(kind: .burst))
        #expect(try GuestWorkload.parse("mq").get().pairs == 2)
        #expect(try GuestWorkload.parse("burst:frames=10,len=1500,pairs=2,descs=4").get()
                == GuestWorkload(kind: .burst, frames: 10, length: 1500, pairs: 2, descriptors: 4))
        #expect(try GuestWorkload.parse("rx-read-only").get().kind.codes == (3, 4))
        for (bad, message) in [("warp", "unknown workload 'warp'"), ("burst:len=0", "len=0 is not a number in 1...65535"),
                               ("burst:speed=9", "bad workload parameter 'speed=9'"), ("burst:pairs=9", "pairs=9 is not a number in 1...8")] {
            guard case .failure(let e) = GuestWorkload.parse(bad) else { Issue.record("\(bad) accepted"); continue }
            #expect(e.message.contains(message), "\(e.message)")
        }
    }
}
