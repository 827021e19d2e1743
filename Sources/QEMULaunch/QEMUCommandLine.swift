/// A QEMU command line read for what vtrace adds to it: its options, each
/// with its properties where they matter (machine, memory, devices, objects,
/// netdevs, chardevs, accelerators, NUMA nodes, globals).
struct QEMUCommandLine {
    var options: [QEMUOption]
    /// The properties of each option (empty for options whose value is not a property list).
    var properties: [QEMUProperties]
    /// Every `-machine`/`-M` merged, later keys over earlier (as QEMU merges them).
    var machine: QEMUProperties

    /// The key of a first item written without one, for the options read here.
    static let impliedKeys = ["machine": "type", "m": "size", "device": "driver", "object": "qom-type", "netdev": "type",
                              "chardev": "backend", "accel": "accel", "numa": "type"]

    init(_ arguments: [String]) throws(QEMULaunchError) {
        options = try QEMUOption.split(arguments)
        var properties: [QEMUProperties] = []
        for option in options {
            guard let implied = Self.impliedKeys[option.name], let value = option.value else {
                properties.append(QEMUProperties())
                continue
            }
            do {
                properties.append(try QEMUProperties(parsing: value, impliedKey: implied))
            } catch {
                throw QEMULaunchError(option.written, error.problem)
            }
        }
        self.properties = properties
        machine = QEMUProperties(zip(options, properties).filter { $0.0.name == "machine" }.flatMap { $0.1.items })
    }

    /// The options named `name`, with their properties.
    func all(_ name: String) -> [(option: QEMUOption, properties: QEMUProperties)] {
        zip(options, properties).filter { $0.0.name == name }.map { ($0.0, $0.1) }
    }

    /// The machine type asked for, or QEMU's default for the program (pc on x86); nil when unknown.
    func machineType(program: String) -> String? {
        if let type = machine["type"], !type.isEmpty { return type }
        return program.hasPrefix("qemu-system-x86_64") || program.hasPrefix("qemu-system-i386") ? "pc" : nil
    }

    /// A QEMU that daemonizes leaves vtrace nothing to supervise; an id vtrace
    /// gives its own additions must be free.
    func refuseWhatVtraceCannotSupervise() throws(QEMULaunchError) {
        if let daemon = options.first(where: { $0.name == "daemonize" }) {
            throw QEMULaunchError(daemon.written, "vtrace supervises QEMU and cannot follow it into the background; leave it out")
        }
        let ours = [("netdev", QEMULaunchPlan.netdevID, "its vhost-user netdev"), ("chardev", QEMULaunchPlan.chardevID, "its vhost-user socket's chardev"),
                    ("object", QEMULaunchPlan.memoryID, "the guest memory it adds")]
        for (kind, id, what) in ours {
            if let clash = all(kind).first(where: { $0.properties["id"] == id }) {
                throw QEMULaunchError(clash.option.written, "the id \(id) is the one vtrace gives \(what); give yours another")
            }
        }
    }

    /// The user's own NIC on vtrace's netdev (`-device DRIVER,netdev=vtrace0`), if any: a virtio-net device.
    func userNIC() throws(QEMULaunchError) -> (driver: String, properties: QEMUProperties, written: String)? {
        guard let device = all("device").last(where: { $0.properties["netdev"] == QEMULaunchPlan.netdevID }) else { return nil }
        let driver = device.properties["driver"] ?? ""
        guard driver.hasPrefix("virtio-net") else {
            throw QEMULaunchError(device.option.written, "vtrace's netdev is vhost-user: its NIC must be a virtio-net device (virtio-net-pci, virtio-net-device)")
        }
        return (driver, device.properties, device.option.written)
    }

    /// The NIC vtrace adds: virtio-net-device on microvm's virtio-mmio,
    /// virtio-net-pci elsewhere, with vectors=0 under TCG.
    func vtraceNIC(machine type: String, accelerator: String) throws(QEMULaunchError) -> (String, QEMULaunchPlan.Addition) {
        let netdev = "netdev=\(QEMULaunchPlan.netdevID)"
        var mmio = type == "microvm"
        if mmio && machine.flag("virtio") == false {
            guard machine.flag("pcie") == true else {
                let written = all("machine").last { $0.properties["virtio"] != nil }?.option.written ?? "-machine"
                throw QEMULaunchError(written, "microvm without virtio-mmio (virtio=off) and without PCIe has no bus for vtrace's NIC")
            }
            mmio = false
        }
        if mmio {
            return ("virtio-net-device", .init(arguments: ["-device", "virtio-net-device,\(netdev)"],
                                               reason: "the NIC on that backend: microvm's virtio transport is virtio-mmio"))
        }
        if accelerator == "tcg" {
            return ("virtio-net-pci", .init(arguments: ["-device", "virtio-net-pci,\(netdev),vectors=0"],
                                            reason: "the NIC on that backend, on PCI (\(type)); vectors=0 (INTx, no MSI-X) because under TCG "
                                                + "Debian 12's QEMU 7.2 segfaults when the guest starts a vhost-user virtio-net-pci with MSI-X "
                                                + "(msix_set_vector_notifiers from vhost_net_start; docs/vhost-user.md)"))
        }
        return ("virtio-net-pci", .init(arguments: ["-device", "virtio-net-pci,\(netdev)"],
                                        reason: "the NIC on that backend, on PCI (\(type))"))
    }

    /// Whether a `-global` sets `driver`'s `property` (`DRIVER.PROP=VALUE`, or `driver=…,property=…,value=…`).
    func setsGlobal(driver: String, property: String) -> Bool {
        all("global").contains { global in
            guard let value = global.option.value else { return false }
            if value.hasPrefix("\(driver).\(property)=") { return true }
            let p = (try? QEMUProperties(parsing: value, impliedKey: nil)) ?? QEMUProperties()
            return p["driver"] == driver && p["property"] == property
        }
    }
}
