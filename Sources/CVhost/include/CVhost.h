// What Swift cannot express for the vhost-user backend: SCM_RIGHTS control
// messages (CMSG_* are macros) and epoll_event (a packed struct on x86-64).
#ifndef CVHOST_H
#define CVHOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// recvmsg of up to `len` bytes into `buf`, collecting up to `maxfds` file
/// descriptors passed with SCM_RIGHTS into `fds` (`*nfds` of them; extra or
/// truncated descriptors are closed and flagged by setting `*truncated`,
/// which is never cleared here). Returns recvmsg's result (-1 with errno on
/// failure, 0 at end of stream).
ssize_t cvhost_recv(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated);

/// One send() of `len` bytes (MSG_NOSIGNAL: a vanished peer is an error, not a signal).
ssize_t cvhost_send(int sock, const void *buf, size_t len);

/// A listening Unix stream socket at `path` (an existing socket file is
/// replaced). Returns the fd, or -1 with errno.
int cvhost_listen(const char *path);

/// Starts fetching the cache lines of [p, p + len) (a hint; at most 4 lines).
static inline void cvhost_prefetch(const void *p, size_t len) {
    const char *c = (const char *)p;
    __builtin_prefetch(c);
    if (len > 64) __builtin_prefetch(c + 64);
    if (len > 128) __builtin_prefetch(c + 128);
    if (len > 192) __builtin_prefetch(c + 192);
}

/// epoll_ctl(ADD) of `fd` for input, tagged with `tag`.
int cvhost_epoll_add(int ep, int fd, uint64_t tag);
/// epoll_ctl(DEL).
int cvhost_epoll_del(int ep, int fd);
/// epoll_wait for up to `max` events, writing their tags to `tags`.
int cvhost_epoll_wait(int ep, uint64_t *tags, int max, int timeout_ms);



/// Has SIGINT/SIGTERM write to `fd` (an eventfd the backend's loop watches),
/// so a signal ends serving cleanly; every registered fd gets each signal.
/// -1 when 16 fds are already registered.
int cvhost_stop_on_signals(int fd);
/// The signal that last wrote to the registered fds (0: none yet).
int cvhost_stop_signal(void);
/// Unregisters `fd`; after the last one, SIGINT/SIGTERM's previous
/// dispositions are back.
void cvhost_stop_signals_off(int fd);
/// SIGPIPE ignored process-wide: a write to a frontend's call fd whose
/// reader is gone (a pipe, a socket) fails with EPIPE instead of killing us.
void cvhost_ignore_sigpipe(void);
/// One `cvhost_ignore_sigpipe` undone: after the last, SIGPIPE's previous
/// disposition is back (processes started later do not inherit SIG_IGN).
void cvhost_sigpipe_release(void);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int cvhost_eventfd(void);
/// epoll_create1(EPOLL_CLOEXEC).
int cvhost_epoll_create(void);
/// accept4(SOCK_CLOEXEC), retried on EINTR.
int cvhost_accept(int listener);

/// For tests and tools that play the frontend: connect to `path`.
int cvhost_connect(const char *path);
/// sendmsg of `len` bytes with `nfds` descriptors (SCM_RIGHTS; none: no control message).
ssize_t cvhost_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
/// A memfd of `size` bytes (for a test frontend's shared memory).
int cvhost_memfd(size_t size);

/// O_NONBLOCK on `fd`; -1 with errno on failure.
int cvhost_set_nonblocking(int fd);
/// Waits up to `timeout_ms` for `fd` to be readable (or writable), or for
/// `stop_fd` (if >= 0) to be readable: 1 ready, 2 stop, 0 timeout, -1 error.
int cvhost_wait(int fd, int for_write, int stop_fd, int timeout_ms);

/// The page size a shared mapping of `fd` is made of: hugetlbfs's block size
/// on hugetlbfs, the base page size anywhere else.
size_t cvhost_mapping_page(int fd);
/// Watches `length` bytes at `start` (a shared mapping of `page`-sized pages):
/// a SIGBUS there (its file was truncated) maps a zero page in its place and
/// is counted instead of killing the process. -1 when no slot is free.
int cvhost_guard(void *start, size_t length, size_t page);
/// Stops watching the mapping at `start` (before unmapping it).
void cvhost_unguard(void *start);
/// SIGBUS faults repaired since the last call (and resets the count).
int cvhost_guard_faults(void);
#endif
