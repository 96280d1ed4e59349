/* The per-call workload of cases 1, 2, 4 and 6: one call in a tight loop,
 * timed as a whole with clock_gettime so that the timer costs nothing per
 * call. Prints "<ns per call>" on stdout.
 *
 *   call_loop fadvise   FILE ITERATIONS   posix_fadvise(fd, 0, 4096, WILLNEED)
 *   call_loop fdatasync FILE ITERATIONS   fdatasync(fd) (clean file)
 *   call_loop noop      FILE ITERATIONS   an opaque empty call: the loop's own cost
 *
 * The page is read once first so that WILLNEED finds it cached. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Kept out of line and opaque so the compiler cannot delete the loop. */
__attribute__((noinline)) static int noop_call(int fd) {
  __asm__ volatile("" : : "r"(fd) : "memory");
  return 0;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s fadvise|fdatasync|noop FILE ITERATIONS\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  long iterations = atol(argv[3]);
  int fd = open(argv[2], O_RDWR);
  if (fd < 0) {
    perror(argv[2]);
    return 1;
  }
  char page[4096];
  if (pread(fd, page, sizeof page, 0) < 0) {
    perror("pread");
    return 1;
  }
  int failures = 0;
  double start = now_ns();
  if (strcmp(mode, "fadvise") == 0) {
    for (long i = 0; i < iterations; i++)
      failures += posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED) != 0;
  } else if (strcmp(mode, "fdatasync") == 0) {
    for (long i = 0; i < iterations; i++)
      failures += fdatasync(fd) != 0;
  } else if (strcmp(mode, "noop") == 0) {
    for (long i = 0; i < iterations; i++)
      failures += noop_call(fd) != 0;
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  double elapsed = now_ns() - start;
  if (failures) {
    fprintf(stderr, "%d calls failed\n", failures);
    return 1;
  }
  printf("%.2f\n", elapsed / (double)iterations);
  return 0;
}
