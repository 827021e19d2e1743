#include "CKVM.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

const unsigned long ckvm_KVM_GET_API_VERSION = KVM_GET_API_VERSION;
const unsigned long ckvm_KVM_CREATE_VM = KVM_CREATE_VM;
const unsigned long ckvm_KVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
const unsigned long ckvm_KVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
const unsigned long ckvm_KVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
const unsigned long ckvm_KVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
const unsigned long ckvm_KVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
const unsigned long ckvm_KVM_CREATE_VCPU = KVM_CREATE_VCPU;
const unsigned long ckvm_KVM_SET_CPUID2 = KVM_SET_CPUID2;
const unsigned long ckvm_KVM_GET_SREGS = KVM_GET_SREGS;
const unsigned long ckvm_KVM_SET_SREGS = KVM_SET_SREGS;
const unsigned long ckvm_KVM_GET_REGS = KVM_GET_REGS;
const unsigned long ckvm_KVM_SET_REGS = KVM_SET_REGS;
const unsigned long ckvm_KVM_RUN = KVM_RUN;

const int ckvm_KVM_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY;
const int ckvm_KVM_CAP_SET_TSS_ADDR = KVM_CAP_SET_TSS_ADDR;
const int ckvm_KVM_CAP_EXT_CPUID = KVM_CAP_EXT_CPUID;
const int ckvm_KVM_CAP_IMMEDIATE_EXIT = KVM_CAP_IMMEDIATE_EXIT;

const uint32_t ckvm_KVM_EXIT_IO = KVM_EXIT_IO;
const uint32_t ckvm_KVM_EXIT_MMIO = KVM_EXIT_MMIO;
const uint32_t ckvm_KVM_EXIT_HLT = KVM_EXIT_HLT;
const uint32_t ckvm_KVM_EXIT_SHUTDOWN = KVM_EXIT_SHUTDOWN;
const uint32_t ckvm_KVM_EXIT_FAIL_ENTRY = KVM_EXIT_FAIL_ENTRY;
const uint32_t ckvm_KVM_EXIT_INTERNAL_ERROR = KVM_EXIT_INTERNAL_ERROR;
const uint32_t ckvm_KVM_EXIT_INTR = KVM_EXIT_INTR;
const uint32_t ckvm_KVM_EXIT_SYSTEM_EVENT = KVM_EXIT_SYSTEM_EVENT;

int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int ckvm_ioctl_int(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }
int ckvm_errno(void) { return errno; }

uint32_t ckvm_run_exit_reason(const struct kvm_run *run) { return run->exit_reason; }
uint8_t ckvm_run_io_direction(const struct kvm_run *run) { return run->io.direction; }
uint8_t ckvm_run_io_size(const struct kvm_run *run) { return run->io.size; }
uint16_t ckvm_run_io_port(const struct kvm_run *run) { return run->io.port; }
uint32_t ckvm_run_io_count(const struct kvm_run *run) { return run->io.count; }
uint8_t *ckvm_run_io_data(struct kvm_run *run) { return (uint8_t *)run + run->io.data_offset; }
uint64_t ckvm_run_mmio_address(const struct kvm_run *run) { return run->mmio.phys_addr; }
uint32_t ckvm_run_mmio_length(const struct kvm_run *run) { return run->mmio.len; }
uint8_t ckvm_run_mmio_is_write(const struct kvm_run *run) { return run->mmio.is_write; }
uint8_t *ckvm_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }
uint32_t ckvm_run_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }
uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run) { return run->fail_entry.hardware_entry_failure_reason; }
uint32_t ckvm_run_system_event_type(const struct kvm_run *run) { return run->system_event.type; }
void ckvm_run_set_immediate_exit(struct kvm_run *run, uint8_t value) { run->immediate_exit = value; }

static void ckvm_kick(int signal) { (void)signal; }

int ckvm_install_kick_handler(int signal) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ckvm_kick;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN returns EINTR
    if (sigaction(signal, &action, 0) != 0) return -1;
    // A parent may have spawned us with signals blocked (Foundation's Process
    // does): unblock this one on the calling (vCPU) thread, or the kick never lands.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    return pthread_sigmask(SIG_UNBLOCK, &set, 0);
}
