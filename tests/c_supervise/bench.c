/* The cost of one intercepted call, for BENCHMARKS.md: times N calls of
 * posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL) on FILE (a cheap call that
 * does reach the file) and prints the mean in nanoseconds per call.
 *   bench FILE N */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench FILE N\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    long calls = atol(argv[2]);
    if (fd < 0 || calls <= 0) {
        perror(argv[1]);
        return 2;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < calls; i++)
        posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("%.0f ns per call\n", ns / calls);
    return 0;
}
