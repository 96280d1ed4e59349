/* Makes an exact number of intercepted calls, for tests/serve.rs to find
 * again in Prometheus: FADVISE posix_fadvise(DONTNEED) and FSYNC fsync
 * calls on a file, then BAD fsync calls on a closed descriptor (which the
 * kernel fails with EBADF). Prints what it made and how many failed.
 * With a fifth argument `hold` it then waits for the end of its standard
 * input, so that its stats file can be copied while it runs (the fixtures
 * of tests/fixtures/stats/).
 *
 * Usage: calls FILE FADVISE FSYNC BAD [hold] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Closed, and high enough that the shim's own descriptors never land on it. */
#define CLOSED_FD 900

int main(int argc, char **argv)
{
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "hold") == 0)) {
        fprintf(stderr, "usage: calls FILE FADVISE FSYNC BAD [hold]\n");
        return 2;
    }
    long fadvise = atol(argv[2]), fsyncs = atol(argv[3]), bad = atol(argv[4]);
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1) {
        perror(argv[1]);
        return 2;
    }
    long failed = 0;
    for (long i = 0; i < fadvise; i++)
        failed += posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0;
    for (long i = 0; i < fsyncs; i++)
        failed += fsync(fd) != 0;
    close(CLOSED_FD);
    for (long i = 0; i < bad; i++)
        failed += fsync(CLOSED_FD) != 0 && errno == EBADF;
    printf("fadvise=%ld fsync=%ld bad=%ld failed=%ld\n", fadvise, fsyncs, bad, failed);
    if (argc == 6) {
        fflush(stdout);
        while (getchar() != EOF)
            ;
    }
    return 0;
}
