/// Which accelerator a QEMU command line runs on.
public enum QEMUAccelerator {
    /// The accelerator QEMU picks: the first of those asked for (`-accel`,
    /// `-enable-kvm`, else `-machine accel=A:B`) that is available, or QEMU's
    /// default (TCG, or KVM then TCG for a program whose name ends in "kvm").
    /// TCG is always available; KVM when `kvmAvailable`; others are assumed
    /// to be. When none is, the first asked for (QEMU will say why it fails).
    public static func chosen(program: String, options: [QEMUOption], machine: QEMUProperties, kvmAvailable: Bool) -> String {
        var asked: [String] = []
        for option in options {
            if option.name == "accel", let value = option.value {
                let properties = (try? QEMUProperties(parsing: value, impliedKey: "accel")) ?? QEMUProperties()
                asked += (properties["accel"] ?? "").split(separator: ":").map(String.init)
            } else if option.name == "enable-kvm" {
                asked.append("kvm")
            }
        }
        if asked.isEmpty, let list = machine["accel"] { asked = list.split(separator: ":").map(String.init) }
        if asked.isEmpty { asked = program.hasSuffix("kvm") ? ["kvm", "tcg"] : ["tcg"] }
        return asked.first { $0 == "tcg" || ($0 == "kvm" ? kvmAvailable : true) } ?? asked[0]
    }
}
