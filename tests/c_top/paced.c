/* Makes posix_fadvise(WILLNEED) calls at a steady rate, for the `top` tests:
 *   paced FILE RATE SECONDS
 * makes 5 calls, prints "ready", then RATE calls per second (paced against
 * the clock, so a slow moment is caught up) for SECONDS seconds, and exits.
 * RATE 0 makes it idle after its first calls. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: paced FILE RATE SECONDS\n"); return 2; }
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0) { perror(argv[1]); return 1; }
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    for (int i = 0; i < 5; i++) posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
    printf("ready\n");
    fflush(stdout);
    double start = now();
    long made = 0;
    for (;;) {
        double elapsed = now() - start;
        if (elapsed >= seconds) break;
        while (made < (long)(elapsed * rate)) {
            posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
            made++;
        }
        struct timespec pause = {0, 1000000L};
        nanosleep(&pause, NULL);
    }
    return 0;
}
