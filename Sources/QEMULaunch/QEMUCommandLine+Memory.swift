/// Guest memory vtrace's backend can map: vhost-user hands it over as file
/// descriptors, so RAM must be a shared memfd or file.
extension QEMUCommandLine {
    /// What to add for shared guest memory: nil when the user's memory
    /// backend (`-machine memory-backend=ID`, or every NUMA node's memdev) is
    /// shareable already; a memfd of `-m`'s size otherwise. Throws for a
    /// backend that is not shareable or missing, an `-m` that does not parse,
    /// or `-mem-path` (memory vtrace cannot share).
    func sharedMemory() throws(QEMULaunchError) -> QEMULaunchPlan.Addition? {
        if let id = machine["memory-backend"] {
            let written = all("machine").last { $0.properties["memory-backend"] != nil }?.option.written ?? "-machine"
            try requireShareable(id, namedBy: written)
            return nil
        }
        let nodes = all("numa").filter { $0.properties["type"] == "node" }
        if !nodes.isEmpty {
            for node in nodes {
                guard let memdev = node.properties["memdev"] else {
                    throw QEMULaunchError(node.option.written, "vhost-user needs each NUMA node's memory shared: memdev=ID naming a memory-backend-memfd")
                }
                try requireShareable(memdev, namedBy: node.option.written)
            }
            return nil
        }
        if let path = options.first(where: { $0.name == "mem-path" }) {
            throw QEMULaunchError(path.written, "vtrace needs guest memory it can share; for a file, use "
                                  + "-object memory-backend-file,id=ID,mem-path=FILE,size=SIZE,share=on -machine memory-backend=ID")
        }
        let sizes = all("m")
        let bytes: UInt64
        let from: String
        if let last = sizes.last {
            let merged = QEMUProperties(sizes.flatMap { $0.properties.items })
            guard let ram = QEMUMemorySize.ram(merged) else {
                throw QEMULaunchError(last.option.written, "not a memory size (256M, 1G, size=512M,..., or a number of MiB)")
            }
            bytes = ram
            from = "\(sizes.map(\.option.written).joined(separator: " "))"
        } else {
            bytes = QEMUMemorySize.defaultBytes
            from = "no -m: QEMU's default, \(QEMUMemorySize.text(bytes))"
        }
        let id = QEMULaunchPlan.memoryID
        return .init(arguments: ["-object", "memory-backend-memfd,id=\(id),size=\(QEMUMemorySize.text(bytes)),share=on", "-machine", "memory-backend=\(id)"],
                     reason: "guest RAM vtrace's backend can map: vhost-user shares guest memory as file descriptors (size from \(from))")
    }

    /// Throws unless `id` names an `-object` memfd (not share=off) or file (share=on) backend.
    func requireShareable(_ id: String, namedBy written: String) throws(QEMULaunchError) {
        guard let object = all("object").last(where: { $0.properties["id"] == id }) else {
            throw QEMULaunchError(written, "no -object with id=\(id)")
        }
        let type = object.properties["qom-type"] ?? ""
        switch type {
        case "memory-backend-memfd" where object.properties.flag("share") != false,
             "memory-backend-file" where object.properties.flag("share") == true:
            return
        case "memory-backend-memfd", "memory-backend-file":
            throw QEMULaunchError(object.option.written, "not shared: vhost-user maps guest memory into vtrace's process; it needs share=on")
        default:
            throw QEMULaunchError(object.option.written, "\(type.isEmpty ? "this object" : type) cannot be shared with vtrace's backend: "
                                  + "use memory-backend-memfd, or memory-backend-file with share=on")
        }
    }
}
