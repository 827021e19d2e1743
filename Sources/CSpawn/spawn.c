#define _GNU_SOURCE
#include "CSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

/// In the child, before exec: every caught signal back to its default (an
/// inherited handler would run vtrace's code in the child), SIGPIPE too
/// (vtrace ignores it; the child expects the default). Ignored ones stay so.
static void default_dispositions(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct sigaction current;
        if (sigaction(sig, NULL, &current) != 0) continue;
        if (sig == SIGPIPE || (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN)) sigaction(sig, &dfl, NULL);
    }
}

pid_t cspawn_start(const char *path, char *const argv[], struct cspawn_options options) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -1;
    // Every signal blocked across fork: a signal must not run this process's
    // handlers in the child before exec; the child unblocks them itself.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        // The child: async-signal-safe calls only, until execve.
        setpgid(0, 0);
        if (options.terminal >= 0) tcsetpgrp(options.terminal, getpid());  // SIGTTOU is blocked
        if (options.death_signal != 0) {
            prctl(PR_SET_PDEATHSIG, options.death_signal);
            if (getppid() != parent) _exit(128 + options.death_signal);  // the parent already died
        }
        if (options.stdout_to_stderr) dup2(2, 1);
        default_dispositions();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, environ);
        int e = errno;
        (void)!write(report[1], &e, sizeof e);
        _exit(127);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        errno = fork_errno;
        return -1;
    }
    // Also here (whichever runs first wins; once the child has exec'd this fails harmlessly).
    setpgid(pid, pid);
    if (options.terminal >= 0) {
        sigset_t ttou, saved;
        sigemptyset(&ttou);
        sigaddset(&ttou, SIGTTOU);
        pthread_sigmask(SIG_BLOCK, &ttou, &saved);
        tcsetpgrp(options.terminal, pid);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    }
    // The report pipe closes at a successful exec; an errno comes through it otherwise.
    int e = 0;
    ssize_t n;
    do {
        n = read(report[0], &e, sizeof e);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof e) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        if (options.terminal >= 0) cspawn_reclaim_terminal(options.terminal);
        errno = e;
        return -1;
    }
    return pid;
}

int cspawn_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

int cspawn_has_ended(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return -1;
    return info.si_pid == pid ? 1 : 0;
}

int cspawn_reap(pid_t pid, int *code, int *signal) {
    // The group outlives its leader only through what it started; while the
    // leader is a zombie the group id cannot be reused, so this kill is safe.
    kill(-pid, SIGKILL);
    int status = 0;
    pid_t r;
    do {
        r = waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    if (WIFSIGNALED(status)) {
        *signal = WTERMSIG(status);
        *code = 0;
    } else {
        *signal = 0;
        *code = WEXITSTATUS(status);
    }
    return 0;
}

void cspawn_reclaim_terminal(int terminal) {
    sigset_t ttou, saved;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &ttou, &saved);
    tcsetpgrp(terminal, getpgrp());
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

int cspawn_in_foreground(int terminal) {
    if (!isatty(terminal)) return 0;
    return tcgetpgrp(terminal) == getpgrp() ? 1 : 0;
}

int cspawn_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    return fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0 && fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0 ? 0 : -1;
}
