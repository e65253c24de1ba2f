/*
 * occur_isolation.h — the system calls behind `isolation: process` that Swift cannot make
 * itself (CMSG macros, variadic prctl, posix_spawn attributes, sigabbrev_np).
 *
 * Every function returns -1 and leaves errno set on failure unless it says otherwise.
 * Every file descriptor made here is close-on-exec, so no child inherits it by accident.
 * Thread rule: any thread; the functions keep no state.
 */
#ifndef OCCUR_ISOLATION_H
#define OCCUR_ISOLATION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The fds a runner finds its two channels on (see occur_iso_spawn_runner). */
#define OCCUR_ISO_CHANNEL_FD 3
#define OCCUR_ISO_LOG_FD 4

/* An anonymous shared-memory file of `size` bytes (memfd_create + ftruncate). */
int occur_iso_memfd(const char *name, size_t size);

/* A connected pair of AF_UNIX stream sockets, both close-on-exec. */
int occur_iso_socketpair(int fds[2]);

/* Writes all `length` bytes of `bytes` to the stream socket `fd` (looping over partial
 * writes, never raising SIGPIPE). When `pass_fd` >= 0 it travels with the first byte as
 * SCM_RIGHTS: the receiver gets its own descriptor for the same file; the caller keeps
 * `pass_fd`. Returns 0, or -1 (EPIPE when the peer is gone). */
int occur_iso_send(int fd, const void *bytes, size_t length, int pass_fd);

/* One recvmsg of up to `capacity` bytes into `buffer`. Descriptors that came with them
 * (SCM_RIGHTS, made close-on-exec) are stored in fds_out, at most fds_capacity, their
 * number in *fds_count; any beyond that are closed. Returns the byte count, 0 at end of
 * stream, -1 on error (EINTR is retried). */
ssize_t occur_iso_recv(int fd, void *buffer, size_t capacity, int *fds_out, int fds_capacity,
                       int *fds_count);

/* Waits up to timeout_ms (-1 = for ever) for `fd` to become readable or hung up.
 * Returns 1 when it is, 0 on timeout, -1 on error. EINTR is retried with the time left. */
int occur_iso_wait_readable(int fd, int timeout_ms);

/* Waits up to timeout_ms (-1 = for ever) for `a` or `b` (either may be -1: ignored) to become
 * readable or hung up. Returns a bit mask (1: a, 2: b), 0 on timeout, -1 on error. */
int occur_iso_wait_either(int a, int b, int timeout_ms);

/* A descriptor for process `pid` (pidfd_open, Linux 5.3+): readable once the process has
 * ended, and a target for signals that can never hit a recycled pid. -1 when unsupported. */
int occur_iso_pidfd_open(pid_t pid);

/* Sends `signal_number` to the process `pidfd` refers to (pidfd_send_signal). */
int occur_iso_pidfd_kill(int pidfd, int signal_number);

/* Starts `executable plugin-runner --library <library> --id <id> --parent <this pid>` with
 * `channel_fd` as fd 3 and `log_fd` as fd 4, stdout sent to this process's stderr, every
 * signal at its default disposition and unblocked, in a process group of its own (so a
 * terminal's ^C reaches only the host, which then shuts the runner down). Other fds are not
 * inherited. The environment is this process's, plus SWIFT_BACKTRACE=enable=no unless
 * SWIFT_BACKTRACE is set (the Swift runtime's crash report takes seconds per crash). On success stores the child's pid and returns 0; else returns an errno value. */
int occur_iso_spawn_runner(const char *executable, const char *library, const char *id,
                           int channel_fd, int log_fd, pid_t *pid_out);

/* In a runner: die with SIGKILL when the thread that spawned it ends (the host's plugin
 * threads outlive their runners, so in practice: when the host dies). Returns -1 when the
 * parent is already gone (getppid() differs from expected_parent). */
int occur_iso_die_with_parent(pid_t expected_parent);

/* "SEGV" for SIGSEGV and so on (sigabbrev_np); NULL for an unknown number. Static storage. */
const char *occur_iso_signal_abbrev(int signal_number);

/* Decodes a waitpid status: 1 and the signal in *signal_out when a signal ended the process
 * (*core_out non-zero when it dumped core); 0 and the exit code in *code_out when it exited. */
int occur_iso_wait_status(int status, int *code_out, int *signal_out, int *core_out);

#ifdef __cplusplus
}
#endif

#endif /* OCCUR_ISOLATION_H */
