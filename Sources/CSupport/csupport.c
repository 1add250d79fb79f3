#define _GNU_SOURCE
#include "csupport.h"
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static size_t csupport_xml_size(const char *from, const char *tag) {
    const char *at = strstr(from, tag);
    const char *size = at ? strstr(at, "size=\"") : NULL;
    return size ? strtoull(size + 6, NULL, 10) : 0;
}

size_t csupport_heap_in_use(void) {
    /* mallinfo2 sees the main arena only; malloc_info's totals (after the last </heap>)
       cover every arena: obtained from the system, less free chunks, plus mmapped chunks. */
    char *text = NULL;
    size_t length = 0;
    FILE *stream = open_memstream(&text, &length);
    if (!stream) return 0;
    malloc_info(0, stream);
    fclose(stream);
    const char *totals = text, *p;
    while ((p = strstr(totals, "</heap>")) != NULL) totals = p + 7;
    size_t current = csupport_xml_size(totals, "<system type=\"current\"");
    size_t freed = csupport_xml_size(totals, "<total type=\"fast\"") + csupport_xml_size(totals, "<total type=\"rest\"");
    size_t mapped = csupport_xml_size(totals, "<total type=\"mmap\"");
    free(text);
    return (current > freed ? current - freed : 0) + mapped;
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
