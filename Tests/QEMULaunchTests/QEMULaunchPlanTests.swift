import QEMULaunch
import Testing

/// What `vtrace record -- QEMU ...` adds to a QEMU command line, exactly, and
/// every command line it refuses, naming the argument.
@Suite("QEMU command line: what vtrace adds")
struct QEMULaunchPlanTests {
    static let socket = "/tmp/vt.X/vhost.sock"
    static let chardev = ["-chardev", "socket,id=vtrace-chr0,path=/tmp/vt.X/vhost.sock"]
    static let netdev = ["-netdev", "vhost-user,id=vtrace0,chardev=vtrace-chr0"]

    func plan(_ words: String..., kvm: Bool = false, assume: Bool = false) throws -> QEMULaunchPlan {
        try QEMULaunchPlan(command: words, socket: Self.socket, kvmAvailable: kvm, assumeQEMU: assume)
    }

    func refusal(_ words: String..., assume: Bool = false) -> QEMULaunchError? {
        do {
            _ = try QEMULaunchPlan(command: words, socket: Self.socket, kvmAvailable: false, assumeQEMU: assume)
            return nil
        } catch {
            return error
        }
    }

    @Test func microvmGetsAnMMIONICMemfdMemoryAndAModernTransport() throws {
        let p = try plan("qemu-system-x86_64", "-M", "microvm", "-m", "256M", "-kernel", "vmlinuz")
        #expect(p.machine == "microvm" && p.accelerator == "tcg" && p.nic == "virtio-net-device" && p.notes.isEmpty)
        #expect(p.finalCommand == ["qemu-system-x86_64", "-M", "microvm", "-m", "256M", "-kernel", "vmlinuz"] + Self.chardev + Self.netdev + [
            "-device", "virtio-net-device,netdev=vtrace0",
            "-object", "memory-backend-memfd,id=vtrace-mem,size=256M,share=on", "-machine", "memory-backend=vtrace-mem",
            "-global", "virtio-mmio.force-legacy=false",
        ])
        #expect(p.additions.map(\.reason) == [
            "the vhost-user socket vtrace serves (private: in a directory of this run's own)",
            "a network backend on that socket: vtrace's device core",
            "the NIC on that backend: microvm's virtio transport is virtio-mmio",
            "guest RAM vtrace's backend can map: vhost-user shares guest memory as file descriptors (size from -m 256M)",
            "QEMU 7.2's virtio-mmio is legacy (virtio 0.9) unless told otherwise; the device needs VERSION_1",
        ])
    }

    @Test func pcUnderTCGGetsAPCINICWithoutMSIX() throws {
        let p = try plan("/usr/bin/qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "1G")
        #expect(p.machine == "pc" && p.accelerator == "tcg" && p.nic == "virtio-net-pci")
        #expect(Array(p.finalCommand.dropFirst(7)) == Self.chardev + Self.netdev + [
            "-device", "virtio-net-pci,netdev=vtrace0,vectors=0",
            "-object", "memory-backend-memfd,id=vtrace-mem,size=1G,share=on", "-machine", "memory-backend=vtrace-mem",
        ])
        #expect(p.additions[2].reason == "the NIC on that backend, on PCI (pc); vectors=0 (INTx, no MSI-X) because under TCG "
                + "Debian 12's QEMU 7.2 segfaults when the guest starts a vhost-user virtio-net-pci with MSI-X "
                + "(msix_set_vector_notifiers from vhost_net_start; docs/vhost-user.md)")
    }

    @Test func q35OnKVMKeepsMSIX() throws {
        for kvm in [["-accel", "kvm"], ["-enable-kvm"], ["-machine", "accel=kvm:tcg"]] {
            let p = try QEMULaunchPlan(command: ["qemu-system-x86_64", "-M", "q35,smm=off"] + kvm, socket: Self.socket, kvmAvailable: true, assumeQEMU: false)
            #expect(p.machine == "q35" && p.accelerator == "kvm", "\(kvm)")
            #expect(p.additions[2].arguments == ["-device", "virtio-net-pci,netdev=vtrace0"], "\(kvm)")
            #expect(p.additions[2].reason == "the NIC on that backend, on PCI (q35)")
        }
        // Without a usable /dev/kvm, `accel=kvm:tcg` falls back to TCG, and so does the workaround.
        let fallback = try plan("qemu-system-x86_64", "-M", "q35,accel=kvm:tcg")
        #expect(fallback.accelerator == "tcg" && fallback.additions[2].arguments == ["-device", "virtio-net-pci,netdev=vtrace0,vectors=0"])
    }

    @Test func noMachineAndNoMemoryMeanQEMUsDefaults() throws {
        let p = try plan("qemu-system-x86_64", "-kernel", "k")
        #expect(p.machine == "pc" && p.accelerator == "tcg")
        #expect(p.additions[3].arguments == ["-object", "memory-backend-memfd,id=vtrace-mem,size=128M,share=on", "-machine", "memory-backend=vtrace-mem"])
        #expect(p.additions[3].reason.hasSuffix("(size from no -m: QEMU's default, 128M)"))
        #expect(p.additions.count == 4)
    }

    @Test func memorySizesInEveryForm() throws {
        let cases: [([String], String)] = [
            (["-m", "512"], "512M"), (["-m", "size=512M,slots=2,maxmem=4G"], "512M"), (["-m", "2g"], "2G"), (["-m", "1.5G"], "1536M"),
            (["-m", "slots=2,maxmem=4G"], "128M"), (["-m", "0"], "128M"), (["-m", "100000K"], "100000K"), (["-m", "1000000000B"], "976568K"),
            (["-m", "256M", "-m", "size=1G"], "1G"),
        ]
        for (m, size) in cases {
            let p = try QEMULaunchPlan(command: ["qemu-system-x86_64", "-M", "microvm"] + m, socket: Self.socket, kvmAvailable: false, assumeQEMU: false)
            #expect(p.additions[3].arguments[1] == "memory-backend-memfd,id=vtrace-mem,size=\(size),share=on", "\(m)")
        }
    }

    @Test func theUsersOwnNICOnVtraceNetdevIsUsedAsItIs() throws {
        let p = try plan("qemu-system-x86_64", "-M", "microvm", "-device", "virtio-net-device,netdev=vtrace0,rx_queue_size=256,mac=52:54:00:00:00:01")
        #expect(p.nic == "virtio-net-device")
        #expect(p.additions.map(\.arguments.first) == ["-chardev", "-netdev", "-object", "-global"])
        #expect(p.notes.isEmpty)
        // A PCI one of theirs under TCG without vectors: left as it is, with a note saying why it may crash.
        let pci = try plan("qemu-system-x86_64", "-M", "q35", "--device", "{\"driver\": \"virtio-net-pci\", \"netdev\": \"vtrace0\"}")
        #expect(pci.nic == "virtio-net-pci" && pci.additions.map(\.arguments.first) == ["-chardev", "-netdev", "-object"])
        #expect(pci.notes == ["--device {\"driver\": \"virtio-net-pci\", \"netdev\": \"vtrace0\"}: under TCG, Debian 12's QEMU 7.2 segfaults when the "
                              + "guest starts a virtio-net-pci with MSI-X over vhost-user; vectors=0 on the device (INTx) avoids it (docs/vhost-user.md)"])
        #expect(try plan("qemu-system-x86_64", "-M", "q35", "-device", "virtio-net-pci,netdev=vtrace0,vectors=0").notes.isEmpty)
    }

    @Test func aShareableBackendOfTheUsersIsKept() throws {
        let memfd = try plan("qemu-system-x86_64", "-M", "microvm,memory-backend=mem", "-object", "memory-backend-memfd,id=mem,size=256M")
        #expect(memfd.additions.map(\.arguments.first) == ["-chardev", "-netdev", "-device", "-global"])
        let file = try plan("qemu-system-x86_64", "-machine", "memory-backend=ram0", "-m", "junk is not read here",
                            "-object", "memory-backend-file,id=ram0,size=1G,mem-path=/dev/shm/g,share=on")
        #expect(file.additions.map(\.arguments.first) == ["-chardev", "-netdev", "-device"])
        let json = try plan("qemu-system-x86_64", "-M", "microvm,memory-backend=j", "-object", "{\"qom-type\":\"memory-backend-file\",\"id\":\"j\",\"share\":true,\"size\":268435456}")
        #expect(json.additions.count == 4)
        let numa = try plan("qemu-system-x86_64", "-M", "q35", "-object", "memory-backend-memfd,id=n0,size=1G", "-object", "memory-backend-memfd,id=n1,size=1G",
                            "-numa", "node,memdev=n0", "-numa", "node,memdev=n1")
        #expect(numa.additions.map(\.arguments.first) == ["-chardev", "-netdev", "-device"])
    }

    @Test func theUsersGlobalForVirtioMMIOWins() throws {
        for global in ["virtio-mmio.force-legacy=true", "driver=virtio-mmio,property=force-legacy,value=false"] {
            let p = try plan("qemu-system-x86_64", "-M", "microvm", "-global", global)
            #expect(!p.additions.contains { $0.arguments.first == "-global" }, "\(global)")
        }
    }

    @Test func microvmWithoutMMIOButWithPCIeGetsAPCINIC() throws {
        let p = try plan("qemu-system-x86_64", "-M", "microvm,virtio=off,pcie=on")
        #expect(p.nic == "virtio-net-pci" && !p.additions.contains { $0.arguments.first == "-global" })
    }

    @Test func everyRefusalNamesItsArgument() {
        let cases: [(QEMULaunchError?, String)] = [
            (refusal("qemu-system-x86_64", "-netdev", "user,id=vtrace0"),
             "-netdev user,id=vtrace0: the id vtrace0 is the one vtrace gives its vhost-user netdev; give yours another"),
            (refusal("qemu-system-x86_64", "-chardev", "stdio,id=vtrace-chr0"),
             "-chardev stdio,id=vtrace-chr0: the id vtrace-chr0 is the one vtrace gives its vhost-user socket's chardev; give yours another"),
            (refusal("qemu-system-x86_64", "-object", "memory-backend-memfd,id=vtrace-mem,size=1G", "-M", "microvm,memory-backend=vtrace-mem"),
             "-object memory-backend-memfd,id=vtrace-mem,size=1G: the id vtrace-mem is the one vtrace gives the guest memory it adds; give yours another"),
            (refusal("qemu-system-x86_64", "-M", "microvm,memory-backend=mem", "-object", "memory-backend-ram,id=mem,size=1G"),
             "-object memory-backend-ram,id=mem,size=1G: memory-backend-ram cannot be shared with vtrace's backend: use memory-backend-memfd, or memory-backend-file with share=on"),
            (refusal("qemu-system-x86_64", "-M", "microvm,memory-backend=mem", "-object", "memory-backend-memfd,id=mem,size=1G,share=off"),
             "-object memory-backend-memfd,id=mem,size=1G,share=off: not shared: vhost-user maps guest memory into vtrace's process; it needs share=on"),
            (refusal("qemu-system-x86_64", "-M", "pc", "-machine", "memory-backend=m", "-object", "memory-backend-file,id=m,size=1G,mem-path=/x"),
             "-object memory-backend-file,id=m,size=1G,mem-path=/x: not shared: vhost-user maps guest memory into vtrace's process; it needs share=on"),
            (refusal("qemu-system-x86_64", "-M", "microvm,memory-backend=nowhere"), "-M microvm,memory-backend=nowhere: no -object with id=nowhere"),
            (refusal("qemu-system-x86_64", "-numa", "node,mem=1G"),
             "-numa node,mem=1G: vhost-user needs each NUMA node's memory shared: memdev=ID naming a memory-backend-memfd"),
            (refusal("qemu-system-x86_64", "-m", "12X"), "-m 12X: not a memory size (256M, 1G, size=512M,..., or a number of MiB)"),
            (refusal("qemu-system-x86_64", "-m", "size=1.5"), "-m size=1.5: not a memory size (256M, 1G, size=512M,..., or a number of MiB)"),
            (refusal("qemu-system-x86_64", "-m"), "-m: needs a value"),
            (refusal("qemu-system-x86_64", "-mem-path", "/dev/hugepages"),
             "-mem-path /dev/hugepages: vtrace needs guest memory it can share; for a file, use -object memory-backend-file,id=ID,mem-path=FILE,size=SIZE,share=on -machine memory-backend=ID"),
            (refusal("qemu-system-x86_64", "-daemonize"), "-daemonize: vtrace supervises QEMU and cannot follow it into the background; leave it out"),
            (refusal("qemu-system-x86_64", "-device", "e1000,netdev=vtrace0"),
             "-device e1000,netdev=vtrace0: vtrace's netdev is vhost-user: its NIC must be a virtio-net device (virtio-net-pci, virtio-net-device)"),
            (refusal("qemu-system-x86_64", "-device", "{\"driver\": "), "-device {\"driver\": : not a JSON object"),
            (refusal("qemu-system-x86_64", "-M", "microvm,virtio=off"),
             "-M microvm,virtio=off: microvm without virtio-mmio (virtio=off) and without PCIe has no bus for vtrace's NIC"),
            (refusal("./run-tests.sh", "-M", "microvm"),
             "./run-tests.sh: not a QEMU system emulator (qemu-system-*): vtrace would add QEMU arguments to it (--assume-qemu if it is QEMU under another name, or a wrapper that passes them on)"),
            (refusal("qemu-system-", "-M", "microvm"),
             "qemu-system-: not a QEMU system emulator (qemu-system-*): vtrace would add QEMU arguments to it (--assume-qemu if it is QEMU under another name, or a wrapper that passes them on)"),
            (refusal(), "--: no QEMU command follows it"),
        ]
        for (error, message) in cases {
            #expect(error?.description == message)
        }
        // A program of another name is taken on the user's word.
        #expect(refusal("/usr/libexec/qemu-kvm", "-M", "q35", assume: true) == nil)
    }

    @Test func idsOfOtherKindsDoNotCollide() throws {
        // A device or an object may be called vtrace0: QEMU keeps netdev, chardev and object ids apart.
        let p = try plan("qemu-system-x86_64", "-M", "microvm", "-device", "virtio-rng-device,id=vtrace0", "-chardev", "null,id=vtrace0")
        #expect(p.additions.count == 5)
    }
}
