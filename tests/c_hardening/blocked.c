/* Blocks every signal, makes 4 fsync calls, prints `pid P ready`, and
 * waits for the file UNBLOCK; then unblocks every signal (a pending dump
 * signal is delivered now), prints `unblocked`, and exits once STOP exists.
 *
 * Usage: blocked FILE UNBLOCK STOP */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void wait_for(const char *path)
{
    while (access(path, F_OK) != 0)
        usleep(5000);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: blocked FILE UNBLOCK STOP\n");
        return 2;
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 2;
    for (int i = 0; i < 4; i++)
        fsync(fd);
    printf("pid %d ready\n", (int)getpid());
    fflush(stdout);
    wait_for(argv[2]);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    printf("unblocked\n");
    fflush(stdout);
    wait_for(argv[3]);
    return 0;
}
