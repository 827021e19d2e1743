//! Where things live in guest-physical memory: the VMM's tables and the
//! guest's stacks, parameter block and heap, the NICs' MMIO windows, and the
//! I/O ports the guest talks to.

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
