// What Swift cannot do safely for a supervised child process: the code between
// fork and exec (only async-signal-safe calls, prctl is variadic), and
// waitid's siginfo_t.
#ifndef CSPAWN_H
#define CSPAWN_H

#include <sys/types.h>

/// What the child gets besides `execve`.
struct cspawn_options {
    /// A terminal whose foreground process group becomes the child's (-1: none).
    int terminal;
    /// Nonzero: the child's standard output is this process's standard error.
    int stdout_to_stderr;
    /// Sent to the child when the thread that started it ends (PR_SET_PDEATHSIG; 0: none).
    int death_signal;
};

/// Starts `path` with `argv` (NULL-terminated; argv[0] as the program should
/// see it) and this process's environment, in a process group of its own,
/// with an empty signal mask and default dispositions for every signal this
/// process catches, and SIGPIPE. Returns the child's pid once it has exec'd,
/// or -1 with errno (the exec's own error when the program cannot run; the
/// child is then reaped and the terminal given back).
pid_t cspawn_start(const char *path, char *const argv[], struct cspawn_options options);

/// A pidfd for `pid` (readable once it exits), or -1 where the kernel has none.
int cspawn_pidfd(pid_t pid);

/// 1 when `pid` has ended (and is not reaped yet), 0 while it runs, -1 on error.
int cspawn_has_ended(pid_t pid);

/// Kills what is left of the process group `pid` leads (SIGKILL: helpers the
/// child started) and reaps `pid`, waiting for it. Its end: `*code` its exit
/// status and `*signal` 0, or `*signal` the signal that killed it. 0, or -1
/// with errno.
int cspawn_reap(pid_t pid, int *code, int *signal);

/// Makes this process's group the foreground group of `terminal` again
/// (SIGTTOU blocked meanwhile: this process is in the background then).
void cspawn_reclaim_terminal(int terminal);

/// The foreground process group of `terminal` is this process's own: 1, else 0.
int cspawn_in_foreground(int terminal);

/// A pipe (both ends close-on-exec, the read end non-blocking) into `fds`; 0 or -1.
int cspawn_pipe(int fds[2]);
#endif
