/* Many short processes, one after another, as a shell loop, `make` or a
 * crash-looping container makes them (issue 24):
 *   forker FILE N plain    N children, each: open FILE, one fsync, exit(3)
 *   forker FILE N kill     the same, but about half the children are sent
 *                          SIGKILL at a random moment after their fsync,
 *                          while they exit (and perhaps retire stats files)
 * A child reports its fsync through a pipe before exiting, so the parent
 * knows every fsync was made even when it kills the child. Prints
 * "fsyncs N killed K". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: forker FILE N plain|kill\n"); return 2; }
    long n = atol(argv[2]);
    int kill_some = !strcmp(argv[3], "kill");
    long fsyncs = 0, killed = 0;
    srand((unsigned)getpid());
    for (long i = 0; i < n; i++) {
        int done[2];
        if (pipe(done) != 0) { perror("pipe"); return 1; }
        pid_t child = fork();
        if (child < 0) { perror("fork"); return 1; }
        if (child == 0) {
            close(done[0]);
            int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
            if (fd < 0 || fsync(fd) != 0) _exit(1);
            char byte = 1;
            if (write(done[1], &byte, 1) != 1) _exit(1);
            exit(3);
        }
        close(done[1]);
        char byte;
        if (read(done[0], &byte, 1) == 1) fsyncs++;
        close(done[0]);
        if (kill_some && rand() % 2) {
            struct timespec pause = {0, (rand() % 400) * 1000L};
            nanosleep(&pause, NULL);
            kill(child, SIGKILL);
        }
        int status;
        if (waitpid(child, &status, 0) != child) { perror("waitpid"); return 1; }
        if (WIFSIGNALED(status)) killed++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 3) {
            fprintf(stderr, "child %ld: status %d\n", i, status);
            return 1;
        }
    }
    printf("fsyncs %ld killed %ld\n", fsyncs, killed);
    return 0;
}
