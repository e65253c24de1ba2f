// The system calls of occur_isolation.h. No state; every fd made here is close-on-exec.
#define _GNU_SOURCE
#include "occur_isolation.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int occur_iso_memfd(const char *name, size_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int occur_iso_socketpair(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }

int occur_iso_send(int fd, const void *bytes, size_t length, int pass_fd) {
    const char *at = bytes;
    size_t left = length;
    int first = 1;
    while (left > 0) {
        struct iovec iov = {(void *)at, left};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        union {
            char buffer[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } control;
        if (first && pass_fd >= 0) {
            memset(&control, 0, sizeof control);
            msg.msg_control = control.buffer;
            msg.msg_controllen = sizeof control.buffer;
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        first = 0;
        at += n;
        left -= (size_t)n;
    }
    return 0;
}

ssize_t occur_iso_recv(int fd, void *buffer, size_t capacity, int *fds_out, int fds_capacity, int *fds_count) {
    *fds_count = 0;
    union {
        char buffer[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } control;
    for (;;) {
        struct iovec iov = {buffer, capacity};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buffer;
        msg.msg_controllen = sizeof control.buffer;
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int received;
                memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (*fds_count < fds_capacity) fds_out[(*fds_count)++] = received;
                else close(received);
            }
        }
        return n;
    }
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int occur_iso_wait_readable(int fd, int timeout_ms) {
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        int wait = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());
        if (timeout_ms >= 0 && wait < 0) wait = 0;
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, wait);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        return n > 0 ? 1 : 0;
    }
}

int occur_iso_wait_either(int a, int b, int timeout_ms) {
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        int wait = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());
        if (timeout_ms >= 0 && wait < 0) wait = 0;
        struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        int n = poll(p, 2, wait);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        return (p[0].revents ? 1 : 0) | (p[1].revents ? 2 : 0);
    }
}

int occur_iso_pidfd_open(pid_t pid) { return pidfd_open(pid, 0); }

int occur_iso_pidfd_kill(int pidfd, int signal_number) { return pidfd_send_signal(pidfd, signal_number, NULL, 0); }

int occur_iso_spawn_runner(const char *executable, const char *library, const char *id, int channel_fd,
                           int log_fd, pid_t *pid_out) {
    // Move both fds above the target numbers first, so that dup2 onto 3 and 4 never
    // overwrites the other one and always clears close-on-exec.
    int channel = fcntl(channel_fd, F_DUPFD_CLOEXEC, 10);
    if (channel < 0) return errno;
    int log = fcntl(log_fd, F_DUPFD_CLOEXEC, 10);
    if (log < 0) {
        int saved = errno;
        close(channel);
        return saved;
    }
    char parent[32];
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    char *argv[] = {"occur", "plugin-runner", "--library", (char *)library, "--id", (char *)id,
                    "--parent", parent, NULL};

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_adddup2(&actions, channel, OCCUR_ISO_CHANNEL_FD);
    posix_spawn_file_actions_adddup2(&actions, log, OCCUR_ISO_LOG_FD);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&actions, OCCUR_ISO_LOG_FD + 1);
#endif
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

    // The Swift runtime's crash backtracer takes seconds and fills the host's log for every
    // crash of a plugin; runners skip it unless the host's environment asks for it.
    size_t count = 0;
    int has_backtrace_setting = 0;
    for (char **e = environ; *e; e++, count++)
        if (strncmp(*e, "SWIFT_BACKTRACE=", 16) == 0) has_backtrace_setting = 1;
    char **env = calloc(count + 2, sizeof *env);
    if (!env) {
        posix_spawnattr_destroy(&attributes);
        posix_spawn_file_actions_destroy(&actions);
        close(channel);
        close(log);
        return ENOMEM;
    }
    memcpy(env, environ, count * sizeof *env);
    if (!has_backtrace_setting) env[count] = "SWIFT_BACKTRACE=enable=no";

    int result = posix_spawn(pid_out, executable, &actions, &attributes, argv, env);

    free(env);

    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    close(channel);
    close(log);
    return result;
}

int occur_iso_die_with_parent(pid_t expected_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    return getppid() == expected_parent ? 0 : -1;
}

const char *occur_iso_signal_abbrev(int signal_number) { return sigabbrev_np(signal_number); }

int occur_iso_wait_status(int status, int *code_out, int *signal_out, int *core_out) {
    *code_out = 0;
    *signal_out = 0;
    *core_out = 0;
    if (WIFSIGNALED(status)) {
        *signal_out = WTERMSIG(status);
#ifdef WCOREDUMP
        *core_out = WCOREDUMP(status) ? 1 : 0;
#endif
        return 1;
    }
    *code_out = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return 0;
}
