/* A plain program that makes a known number of intercepted calls, then
 * either exits or (with STOPFILE) prints `ready` and waits until that file
 * exists, so a test can signal it or plant files meanwhile. It installs no
 * signal handler of its own.
 *
 * Prints `fadvise F/N fsync S/N`: calls that returned success; with
 * STOPFILE, then `pid P ready`.
 *
 * Usage: calls FILE N_FADVISE N_FSYNC [STOPFILE] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: calls FILE N_FADVISE N_FSYNC [STOPFILE]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "small file\n", 11) != 11) {
        perror(argv[1]);
        return 2;
    }
    long fadvises = atol(argv[2]), fsyncs = atol(argv[3]);
    long fadvise_ok = 0, fsync_ok = 0;
    for (long i = 0; i < fadvises; i++)
        fadvise_ok += posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED) == 0;
    for (long i = 0; i < fsyncs; i++)
        fsync_ok += fsync(fd) == 0;
    printf("fadvise %ld/%ld fsync %ld/%ld\n", fadvise_ok, fadvises, fsync_ok, fsyncs);
    if (argc == 5) {
        printf("pid %d ready\n", (int)getpid());
        fflush(stdout);
        while (access(argv[4], F_OK) != 0)
            usleep(5000);
        printf("stopping\n");
    }
    return 0;
}
