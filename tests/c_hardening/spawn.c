/* Makes 2 fsync calls, then runs PROGRAM ARGS... with posix_spawn (glibc
 * uses a vfork-style clone for it) and waits. Prints `child S`: its exit
 * status.
 *
 * Usage: spawn FILE PROGRAM [ARG...] */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawn FILE PROGRAM [ARG...]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 2;
    for (int i = 0; i < 2; i++)
        fsync(fd);
    fflush(stdout);
    pid_t child;
    if (posix_spawn(&child, argv[2], NULL, NULL, &argv[2], environ) != 0)
        return 2;
    int status;
    if (waitpid(child, &status, 0) != child)
        return 2;
    printf("child %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
