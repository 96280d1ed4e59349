/* Makes one posix_fadvise(DONTNEED) call on FILE every INTERVAL_US
 * microseconds, COUNT times (0: until killed), and prints each result as
 * `t=MICROS ret=R` with the wall-clock time of the call, so a test can see
 * when a changed policy took effect. Under a seccomp filter that answers
 * EPERM to the intercepted syscalls, a call that reached the kernel returns
 * 1 (EPERM), one the shim dropped returns 0. With `nofilter` the filter is
 * left out (to run under strace).
 *
 * Usage: ticker FILE INTERVAL_US COUNT [nofilter] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "../c/deny.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: ticker FILE INTERVAL_US COUNT [nofilter]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    long interval_us = atol(argv[2]);
    long count = atol(argv[3]);
    if (argc == 4 || strcmp(argv[4], "nofilter") != 0)
        deny_intercepted_syscalls();
    struct timespec pause = {.tv_sec = interval_us / 1000000,
                             .tv_nsec = interval_us % 1000000 * 1000};
    for (long i = 0; count == 0 || i < count; i++) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int ret = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        printf("t=%lld ret=%d\n", (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000, ret);
        fflush(stdout);
        nanosleep(&pause, NULL);
    }
    return 0;
}
