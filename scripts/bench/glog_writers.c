/* The seed's scenario (case 3): WRITERS processes at once, each appending
 * LINES glog-style lines to its own file, every line written with fwrite +
 * fflush and then, as glog before 0.4.0 did on every flush,
 * posix_fadvise(fd, 0, len & ~4095, POSIX_FADV_DONTNEED).
 * Prints the wall time from the first fork to the last exit, in seconds.
 *
 *   glog_writers fadvise|none DIR WRITERS LINES
 *
 * "none" skips the posix_fadvise call: the arm without any advice. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int write_log(const char *path, long lines, int advise) {
  FILE *log = fopen(path, "w");
  if (!log) {
    perror(path);
    return 1;
  }
  int fd = fileno(log);
  long length = 0;
  char line[256];
  for (long i = 0; i < lines; i++) {
    int n = snprintf(line, sizeof line,
                     "W0101 12:00:00.%06ld %5d writer.cc:42] request %ld took "
                     "longer than expected, retrying with backoff\n",
                     i % 1000000, (int)getpid(), i);
    if (fwrite(line, 1, (size_t)n, log) != (size_t)n || fflush(log) != 0) {
      perror("write");
      return 1;
    }
    length += n;
    if (advise)
      posix_fadvise(fd, 0, length & ~4095L, POSIX_FADV_DONTNEED);
  }
  return fclose(log) != 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s fadvise|none DIR WRITERS LINES\n", argv[0]);
    return 2;
  }
  int advise = strcmp(argv[1], "fadvise") == 0;
  int writers = atoi(argv[3]);
  long lines = atol(argv[4]);
  double start = now_s();
  for (int w = 0; w < writers; w++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      char path[4096];
      snprintf(path, sizeof path, "%s/writer%d.log", argv[2], w);
      _exit(write_log(path, lines, advise));
    }
  }
  int failed = 0, status;
  while (wait(&status) > 0)
    failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  double elapsed = now_s() - start;
  if (failed) {
    fprintf(stderr, "a writer failed\n");
    return 1;
  }
  printf("%.4f\n", elapsed);
  return 0;
}
