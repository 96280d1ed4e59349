/* A short process's cost (issue 24): fork COUNT children one after another,
 * each making one fsync on FILE (opened by the parent, on a real file
 * system) and calling exit(3), and wait for each. Prints microseconds per
 * child. Under the shim the parent loads it once and every child inherits
 * it: what a child pays is the fork of a process that holds the library,
 * its first intercepted call, and exit. Prints microseconds per child of
 * wall time, then of CPU time (this process's and its children's, user and
 * system, from getrusage), which a loaded machine disturbs less: a child
 * that waits for a CPU is not charged for the wait.
 *
 *   fork_fsync FILE COUNT */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s FILE COUNT\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  long count = atol(argv[2]);
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < count; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0)
      exit(fsync(fd) == 0 ? 0 : 1);
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "child %ld failed\n", i);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double us = (double)(end.tv_sec - start.tv_sec) * 1e6 + (double)(end.tv_nsec - start.tv_nsec) / 1e3;
  struct rusage self, children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  double cpu_us = 0;
  struct timeval *times[] = {&self.ru_utime, &self.ru_stime, &children.ru_utime, &children.ru_stime};
  for (int i = 0; i < 4; i++)
    cpu_us += (double)times[i]->tv_sec * 1e6 + (double)times[i]->tv_usec;
  printf("%.2f %.2f\n", us / (double)count, cpu_us / (double)count);
  return 0;
}
