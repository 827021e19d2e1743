/// The QEMU command line `vtrace record -- QEMU ARGS...` runs: the user's,
/// then what a NIC served by vtrace over vhost-user needs and the user did
/// not give, each addition with the reason for it.
public struct QEMULaunchPlan: Equatable, Sendable {
    /// Arguments vtrace adds, and why.
    public struct Addition: Equatable, Sendable, Encodable {
        public var arguments: [String]
        public var reason: String
    }

    /// The ids of what vtrace adds: its netdev (a user's `-device …,netdev=vtrace0` is the NIC), chardev and memory.
    public static let netdevID = "vtrace0"
    public static let chardevID = "vtrace-chr0"
    public static let memoryID = "vtrace-mem"

    /// The user's command, the program first.
    public var command: [String]
    public var additions: [Addition]
    /// What the user may want to change (printed whether or not --verbose).
    public var notes: [String]
    /// The machine type (`microvm`, `pc`, ...; `the default machine` where QEMU picks).
    public var machine: String
    /// The accelerator QEMU will pick (``QEMUAccelerator/chosen(program:options:machine:kvmAvailable:)``).
    public var accelerator: String
    /// The NIC's device driver, the user's or vtrace's.
    public var nic: String

    /// The command QEMU runs with: the user's, then the additions.
    public var finalCommand: [String] { command + additions.flatMap(\.arguments) }

    /// Analyses `command` (QEMU and its arguments) for a NIC on the vhost-user
    /// socket `socket`. `kvmAvailable`: whether /dev/kvm can be used (for the
    /// accelerator QEMU will pick). `assumeQEMU`: accept a program not named
    /// qemu-system-*. Throws, naming the argument, for a command line vtrace
    /// cannot extend.
    public init(command: [String], socket: String, kvmAvailable: Bool, assumeQEMU: Bool) throws(QEMULaunchError) {
        guard let program = command.first, !program.isEmpty else {
            throw QEMULaunchError("--", "no QEMU command follows it")
        }
        let name = program.split(separator: "/").last.map(String.init) ?? program
        if !assumeQEMU && !(name.hasPrefix("qemu-system-") && name.count > "qemu-system-".count) {
            throw QEMULaunchError(program, "not a QEMU system emulator (qemu-system-*): vtrace would add QEMU arguments to it "
                                  + "(--assume-qemu if it is QEMU under another name, or a wrapper that passes them on)")
        }
        let line = try QEMUCommandLine(Array(command.dropFirst()))
        try line.refuseWhatVtraceCannotSupervise()
        self.command = command
        machine = line.machineType(program: name) ?? "the default machine"
        accelerator = QEMUAccelerator.chosen(program: name, options: line.options, machine: line.machine, kvmAvailable: kvmAvailable)
        additions = [
            Addition(arguments: ["-chardev", "socket,id=\(Self.chardevID),path=\(socket)"],
                     reason: "the vhost-user socket vtrace serves (private: in a directory of this run's own)"),
            Addition(arguments: ["-netdev", "vhost-user,id=\(Self.netdevID),chardev=\(Self.chardevID)"],
                     reason: "a network backend on that socket: vtrace's device core"),
        ]
        notes = []
        if let theirs = try line.userNIC() {
            nic = theirs.driver
            if theirs.driver.hasPrefix("virtio-net-pci") && accelerator == "tcg" && theirs.properties["vectors"] == nil {
                notes.append("\(theirs.written): under TCG, Debian 12's QEMU 7.2 segfaults when the guest starts a virtio-net-pci "
                             + "with MSI-X over vhost-user; vectors=0 on the device (INTx) avoids it (docs/vhost-user.md)")
            }
        } else {
            let (device, addition) = try line.vtraceNIC(machine: machine, accelerator: accelerator)
            nic = device
            additions.append(addition)
        }
        if let memory = try line.sharedMemory() { additions.append(memory) }
        if nic == "virtio-net-device" && !line.setsGlobal(driver: "virtio-mmio", property: "force-legacy") {
            additions.append(Addition(arguments: ["-global", "virtio-mmio.force-legacy=false"],
                                      reason: "QEMU 7.2's virtio-mmio is legacy (virtio 0.9) unless told otherwise; the device needs VERSION_1"))
        }
    }
}
