//! The guest's 64-bit environment, written before the first KVM_RUN:
//! identity page tables, a flat GDT, and each vCPU's registers in long mode
//! at privilege level 3.

import CKVM
import VirtioCore

extension Machine {
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
}
