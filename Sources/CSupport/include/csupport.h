#ifndef CSUPPORT_H
#define CSUPPORT_H
#include <sys/types.h>

/// syncfs(2) needs _GNU_SOURCE, which Swift's Glibc module does not define.
int csupport_syncfs(int fd);

/// mallopt(M_ARENA_MAX, count): malloc.h is not in the Glibc module.
int csupport_limit_malloc_arenas(int count);

/// Bytes malloc has handed out and not got back (mallinfo2's uordblks, main arena and mmaps).
size_t csupport_heap_in_use(void);

/// pipe2(fds, O_CLOEXEC); pipe2 also needs _GNU_SOURCE.
int csupport_pipe_cloexec(int fds[2]);

/// Spawns `/bin/sh -c command` in its own process group with an empty signal mask and
/// default signal dispositions (a child of a Dispatch thread otherwise inherits a blocked
/// mask and ignores SIGTERM). stdin is /dev/null; stdout and stderr go to the given fds.
/// Returns the pid, or -errno.
pid_t csupport_spawn_shell(const char *command, int stdout_fd, int stderr_fd);

/// Same as csupport_spawn_shell for an argv vector (argv[0] is looked up in PATH).
pid_t csupport_spawn(char *const argv[], int stdin_fd, int stdout_fd, int stderr_fd, int new_process_group);
#endif
