#define _GNU_SOURCE
#include "CVhost.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

ssize_t cvhost_recv(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated) {
    union {
        char bytes[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } control_buffer;
    char *control = control_buffer.bytes;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control_buffer.bytes;
    *nfds = 0;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return n;
    if (msg.msg_flags & MSG_CTRUNC) *truncated = 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *received = (int *)CMSG_DATA(c);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, received + i, sizeof fd);
            if (*nfds < maxfds) {
                fds[(*nfds)++] = fd;
            } else {
                close(fd);
                *truncated = 1;
            }
        }
    }
    return n;
}

ssize_t cvhost_send(int sock, const void *buf, size_t len) {
    ssize_t n;
    do {
        n = send(sock, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
}

/// The address of a Unix socket at `path`; -1 (ENAMETOOLONG) if it does not fit.
static int unix_address(const char *path, struct sockaddr_un *addr) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr->sun_path, path);
    return 0;
}

int cvhost_listen(const char *path) {
    struct sockaddr_un addr;
    if (unix_address(path, &addr) != 0) return -1;
    // Replace a stale socket, never anything else (a typo must not delete a file).
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int cvhost_epoll_add(int ep, int fd, uint64_t tag) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int cvhost_epoll_del(int ep, int fd) { return epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); }

int cvhost_epoll_wait(int ep, uint64_t *tags, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n;
    do {
        n = epoll_wait(ep, events, max, timeout_ms);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) tags[i] = events[i].data.u64;
    return n;
}

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

// Every live backend that asked for it has its stop eventfd here (fd + 1;
// 0 is a free slot): a signal writes to each, so two backends in one process
// (tests) both stop, and the handlers go back only after the last one leaves.
#define STOP_SLOTS 16
static _Atomic int stop_slots[STOP_SLOTS];
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static int stop_users;
static struct sigaction previous_int, previous_term;

/// `handler` for `sig` (no flags, nothing masked); the disposition it replaces into `previous`.
static void set_handler(int sig, void (*handler)(int), struct sigaction *previous) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, previous);
}

static volatile sig_atomic_t last_stop_signal;

int cvhost_stop_signal(void) { return last_stop_signal; }

static void on_stop_signal(int sig) {
    last_stop_signal = sig;
    uint64_t one = 1;
    int saved = errno;
    for (int i = 0; i < STOP_SLOTS; i++) {
        int v = atomic_load(&stop_slots[i]);
        if (v > 0) (void)!write(v - 1, &one, sizeof one);
    }
    errno = saved;
}

int cvhost_stop_on_signals(int fd) {
    int result = -1;
    pthread_mutex_lock(&stop_lock);
    for (int i = 0; i < STOP_SLOTS; i++)
        if (atomic_load(&stop_slots[i]) == fd + 1) result = 0;  // already watched
    for (int i = 0; i < STOP_SLOTS && result < 0; i++) {
        if (atomic_load(&stop_slots[i]) != 0) continue;
        atomic_store(&stop_slots[i], fd + 1);
        result = 0;
        if (stop_users++ == 0) {
            set_handler(SIGINT, on_stop_signal, &previous_int);
            set_handler(SIGTERM, on_stop_signal, &previous_term);
        }
    }
    pthread_mutex_unlock(&stop_lock);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return result;
}

void cvhost_stop_signals_off(int fd) {
    pthread_mutex_lock(&stop_lock);
    for (int i = 0; i < STOP_SLOTS; i++) {
        if (atomic_load(&stop_slots[i]) != fd + 1) continue;
        atomic_store(&stop_slots[i], 0);
        if (--stop_users == 0) {
            sigaction(SIGINT, &previous_int, NULL);
            sigaction(SIGTERM, &previous_term, NULL);
        }
    }
    pthread_mutex_unlock(&stop_lock);
}

// SIGPIPE is ignored while any backend lives (a count under a lock: tests
// create backends on several threads), and handed back after the last.
static pthread_mutex_t pipe_lock = PTHREAD_MUTEX_INITIALIZER;
static int pipe_users;
static struct sigaction previous_pipe;

void cvhost_ignore_sigpipe(void) {
    pthread_mutex_lock(&pipe_lock);
    if (pipe_users++ == 0) {
        set_handler(SIGPIPE, SIG_IGN, &previous_pipe);
    }
    pthread_mutex_unlock(&pipe_lock);
}

void cvhost_sigpipe_release(void) {
    pthread_mutex_lock(&pipe_lock);
    if (pipe_users > 0 && --pipe_users == 0) sigaction(SIGPIPE, &previous_pipe, NULL);
    pthread_mutex_unlock(&pipe_lock);
}

int cvhost_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int cvhost_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int cvhost_accept(int listener) {
    int fd;
    do {
        fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

int cvhost_connect(const char *path) {
    struct sockaddr_un addr;
    if (unix_address(path, &addr) != 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

ssize_t cvhost_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    union {
        char bytes[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } control_buffer;
    char *control = control_buffer.bytes;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 16) nfds = 16;
    if (nfds > 0) {
        memset(control, 0, sizeof control_buffer.bytes);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
}

int cvhost_memfd(size_t size) {
    int fd = memfd_create("vtrace-test", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int cvhost_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int cvhost_wait(int fd, int for_write, int stop_fd, int timeout_ms) {
    struct pollfd p[2] = {{.fd = fd, .events = (short)(for_write ? POLLOUT : POLLIN)}, {.fd = stop_fd, .events = POLLIN}};
    int n;
    do {
        n = poll(p, stop_fd >= 0 ? 2 : 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (n == 0) return 0;
    if (stop_fd >= 0 && (p[1].revents & POLLIN)) return 2;
    return 1;
}

// Guest memory a frontend can shrink under us: mapping a memfd succeeds, and
// if the frontend later truncates it, the next access raises SIGBUS. The
// handler below replaces the faulting page of a registered mapping with a
// zero page, so the access completes (reading zeros), and notes the fault for
// the backend to end the session; a SIGBUS anywhere else goes to the handler
// that was there before.
#include <signal.h>
#include <sys/mman.h>
#include <stdint.h>

#define GUARD_SLOTS 64
static struct { uintptr_t start, end, page; } guarded[GUARD_SLOTS];
static volatile sig_atomic_t guard_faults;
static struct sigaction previous_bus;
static int guard_installed;

static void on_bus(int sig, siginfo_t *info, void *context) {
    uintptr_t a = (uintptr_t)info->si_addr;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        if (guarded[i].end == 0 || a < guarded[i].start || a >= guarded[i].end) continue;
        uintptr_t at = a & ~(guarded[i].page - 1);
        // Never map over anything outside the guarded mapping itself.
        if (at < guarded[i].start || guarded[i].end - at < guarded[i].page) break;
        void *page = (void *)at;
        int flags = MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | (guarded[i].page > 4096 ? MAP_HUGETLB : 0);
        if (mmap(page, guarded[i].page, PROT_READ | PROT_WRITE, flags, -1, 0) != MAP_FAILED ||
            mmap(page, guarded[i].page, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
            guard_faults = guard_faults + 1;
            return;
        }
        break;
    }
    (void)sig;
    (void)context;
    // Not ours (or not repairable): the previous disposition takes the re-raised fault.
    sigaction(SIGBUS, &previous_bus, NULL);
}

#include <sys/vfs.h>
#include <unistd.h>

size_t cvhost_mapping_page(int fd) {
    long base = sysconf(_SC_PAGESIZE);
    size_t page = base > 0 ? (size_t)base : 4096;
    struct statfs fs;
    struct stat st;
    // Only hugetlbfs promises mappings aligned to (and made of) its block size;
    // other file systems report large block sizes (NFS, FUSE) and map base pages.
    if (fstatfs(fd, &fs) == 0 && fs.f_type == 0x958458f6 && fstat(fd, &st) == 0 && (size_t)st.st_blksize > page &&
        ((size_t)st.st_blksize & ((size_t)st.st_blksize - 1)) == 0)
        page = (size_t)st.st_blksize;
    return page;
}

int cvhost_guard(void *start, size_t length, size_t page) {
    if (!guard_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_bus;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &previous_bus) != 0) return -1;
        guard_installed = 1;
    }
    for (int i = 0; i < GUARD_SLOTS; i++) {
        if (guarded[i].end != 0) continue;
        guarded[i].start = (uintptr_t)start;
        guarded[i].page = page < 4096 ? 4096 : page;
        guarded[i].end = (uintptr_t)start + length;
        return 0;
    }
    return -1;
}

void cvhost_unguard(void *start) {
    for (int i = 0; i < GUARD_SLOTS; i++) {
        if (guarded[i].start == (uintptr_t)start) guarded[i].end = 0;
    }
}

int cvhost_guard_faults(void) {
    int n = guard_faults;
    guard_faults = 0;
    return n;
}
