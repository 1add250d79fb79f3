#define _GNU_SOURCE
#include "csupport.h"
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

extern char **environ;

int csupport_syncfs(int fd) { return syncfs(fd); }

int csupport_limit_malloc_arenas(int count) {
    /* A fixed mmap threshold: large buffers go back to the system when freed (glibc would
       otherwise raise the threshold after the first free and keep them in the heap). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    return mallopt(M_ARENA_MAX, count);
}

int csupport_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

pid_t csupport_spawn(char *const argv[], int stdin_fd, int stdout_fd, int stderr_fd, int new_process_group) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t empty, all;
    pid_t pid = -1;
    int rc;
    int devnull = -1;

    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    sigemptyset(&empty);
    sigfillset(&all);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (new_process_group) flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setflags(&attr, flags);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    if (new_process_group) posix_spawnattr_setpgroup(&attr, 0);

    if (stdin_fd < 0) {
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        stdin_fd = devnull;
    }
    if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    if (stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);

    rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (devnull >= 0) close(devnull);
    return rc == 0 ? pid : -rc;
}

pid_t csupport_spawn_shell(const char *command, int stdout_fd, int stderr_fd) {
    char *argv[] = { "/bin/sh", "-c", (char *)command, NULL };
    return csupport_spawn(argv, -1, stdout_fd, stderr_fd, 1);
}
