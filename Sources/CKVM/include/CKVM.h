// What Swift cannot reach in the KVM API: the ioctl request numbers (macros
// in <linux/kvm.h>), a non-variadic ioctl, and the exit unions of kvm_run.
// Every symbol starts with ckvm_.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stdint.h>

// ioctl request numbers.
extern const unsigned long ckvm_KVM_GET_API_VERSION;
extern const unsigned long ckvm_KVM_CREATE_VM;
extern const unsigned long ckvm_KVM_CHECK_EXTENSION;
extern const unsigned long ckvm_KVM_GET_VCPU_MMAP_SIZE;
extern const unsigned long ckvm_KVM_GET_SUPPORTED_CPUID;
extern const unsigned long ckvm_KVM_SET_USER_MEMORY_REGION;
extern const unsigned long ckvm_KVM_SET_TSS_ADDR;
extern const unsigned long ckvm_KVM_CREATE_VCPU;
extern const unsigned long ckvm_KVM_SET_CPUID2;
extern const unsigned long ckvm_KVM_GET_SREGS;
extern const unsigned long ckvm_KVM_SET_SREGS;
extern const unsigned long ckvm_KVM_GET_REGS;
extern const unsigned long ckvm_KVM_SET_REGS;
extern const unsigned long ckvm_KVM_RUN;

// Capabilities the VMM checks.
extern const int ckvm_KVM_CAP_USER_MEMORY;
extern const int ckvm_KVM_CAP_SET_TSS_ADDR;
extern const int ckvm_KVM_CAP_EXT_CPUID;
extern const int ckvm_KVM_CAP_IMMEDIATE_EXIT;

// Exit reasons.
extern const uint32_t ckvm_KVM_EXIT_IO;
extern const uint32_t ckvm_KVM_EXIT_MMIO;
extern const uint32_t ckvm_KVM_EXIT_HLT;
extern const uint32_t ckvm_KVM_EXIT_SHUTDOWN;
extern const uint32_t ckvm_KVM_EXIT_FAIL_ENTRY;
extern const uint32_t ckvm_KVM_EXIT_INTERNAL_ERROR;
extern const uint32_t ckvm_KVM_EXIT_INTR;
extern const uint32_t ckvm_KVM_EXIT_SYSTEM_EVENT;

/// ioctl with a pointer or integer argument; returns -1 with errno set on failure.
int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg);
int ckvm_ioctl_int(int fd, unsigned long request, unsigned long arg);

/// The current thread's errno.
int ckvm_errno(void);

/// The kvm_run exit union, read field by field.
uint32_t ckvm_run_exit_reason(const struct kvm_run *run);
/// KVM_EXIT_IO: direction (1 = out), size (1, 2, 4), port, count, and the data.
uint8_t ckvm_run_io_direction(const struct kvm_run *run);
uint8_t ckvm_run_io_size(const struct kvm_run *run);
uint16_t ckvm_run_io_port(const struct kvm_run *run);
uint32_t ckvm_run_io_count(const struct kvm_run *run);
uint8_t *ckvm_run_io_data(struct kvm_run *run);
/// KVM_EXIT_MMIO: address, length (1..8), write flag, and the 8 data bytes.
uint64_t ckvm_run_mmio_address(const struct kvm_run *run);
uint32_t ckvm_run_mmio_length(const struct kvm_run *run);
uint8_t ckvm_run_mmio_is_write(const struct kvm_run *run);
uint8_t *ckvm_run_mmio_data(struct kvm_run *run);
/// KVM_EXIT_INTERNAL_ERROR suberror, KVM_EXIT_FAIL_ENTRY reason, KVM_EXIT_SYSTEM_EVENT type.
uint32_t ckvm_run_internal_suberror(const struct kvm_run *run);
uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run);
uint32_t ckvm_run_system_event_type(const struct kvm_run *run);
/// Sets immediate_exit: the next (or current, once interrupted) KVM_RUN returns EINTR.
void ckvm_run_set_immediate_exit(struct kvm_run *run, uint8_t value);

/// Installs a handler that does nothing for `signal`, without SA_RESTART,
/// so the signal interrupts a blocked KVM_RUN (which returns EINTR), and
/// unblocks `signal` on the calling thread.
int ckvm_install_kick_handler(int signal);

#endif
