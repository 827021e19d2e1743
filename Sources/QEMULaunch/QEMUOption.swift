/// One option of a QEMU command line.
public struct QEMUOption: Equatable, Sendable {
    /// Its name without dashes, `-M` spelled `machine` (QEMU's alias).
    public var name: String
    /// Its value; nil for an option that takes none.
    public var value: String?
    /// The option as written, for messages: `-m 12X`.
    public var written: String

    /// The options of a QEMU command line (its arguments, without the
    /// program), in order. QEMU takes `-opt` and `--opt` alike; an option not
    /// in ``flags`` takes the next word as its value, whatever it looks like;
    /// a word that is not an option (QEMU reads it as a disk image) is skipped.
    public static func split(_ arguments: [String]) throws(QEMULaunchError) -> [QEMUOption] {
        var options: [QEMUOption] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            i += 1
            guard word.hasPrefix("-"), word.count > 1 else { continue }
            var name = String(word.dropFirst(word.hasPrefix("--") ? 2 : 1))
            if name == "M" { name = "machine" }
            if flags.contains(name) {
                options.append(QEMUOption(name: name, value: nil, written: word))
                continue
            }
            guard i < arguments.count else { throw QEMULaunchError(word, "needs a value") }
            options.append(QEMUOption(name: name, value: arguments[i], written: "\(word) \(arguments[i])"))
            i += 1
        }
        return options
    }

    /// The options QEMU 7.2 takes without a value (qemu-options.hx, every
    /// target, and a few removed since that older scripts still pass).
    public static let flags: Set<String> = [
        "h", "help", "version", "mem-prealloc", "audio-help", "snapshot", "usb", "nographic", "portrait", "full-screen",
        "win2k-hack", "no-fd-bootchk", "no-acpi", "no-hpet", "no-quit", "alt-grab", "ctrl-grab", "sdl", "curses", "no-frame",
        "singlestep", "preconfig", "S", "s", "enable-kvm", "xen-attach", "xen-domid-restrict", "no-reboot", "no-shutdown",
        "daemonize", "only-migratable", "nodefaults", "no-user-config", "nodefconfig", "async-teardown", "enable-sync-profile",
        "semihosting", "old-param", "enable-fips", "no-kvm", "no-kvm-irqchip", "no-kvm-pit", "no-kvm-pit-reinjection", "tdf",
    ]
}
