/* The cost of a process's first posix_fadvise against its second (case 5):
 * under the shim the first call sets the library up and creates the
 * process's stats file. Each call is timed alone with clock_gettime, on a
 * cached page. Prints "<first ns> <second ns>".
 *
 *   first_call FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double timed_call(int fd) {
  double start = now_ns();
  int error = posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
  double elapsed = now_ns() - start;
  return error ? -1 : elapsed;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  char page[4096];
  if (fd < 0 || pread(fd, page, sizeof page, 0) < 0) {
    perror(argv[1]);
    return 1;
  }
  double first = timed_call(fd);
  double second = timed_call(fd);
  if (first < 0 || second < 0) {
    fprintf(stderr, "posix_fadvise failed\n");
    return 1;
  }
  printf("%.0f %.0f\n", first, second);
  return 0;
}
