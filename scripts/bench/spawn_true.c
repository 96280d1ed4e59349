/* Start-up cost (case 5): posix_spawn /bin/true COUNT times, one after the
 * other, waiting for each. The environment (and so LD_PRELOAD) is passed on,
 * so every child loads the shim. Prints microseconds per spawn, then the
 * children's minor page faults per spawn (from getrusage), which explain
 * most of what a preloaded library costs and do not vary between runs.
 * PROGRAM (default /bin/true) is what is spawned: case 8 builds this file
 * and true.c with musl-gcc and spawns that musl program instead.
 *
 *   spawn_true COUNT [PROGRAM] */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: %s COUNT [PROGRAM]\n", argv[0]);
    return 2;
  }
  long count = atol(argv[1]);
  char *program = argc == 3 ? argv[2] : "/bin/true";
  char *child_argv[] = {program, NULL};
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < count; i++) {
    pid_t pid;
    int status;
    int error = posix_spawn(&pid, program, NULL, NULL, child_argv, environ);
    if (error) {
      fprintf(stderr, "posix_spawn: error %d\n", error);
      return 1;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "%s failed\n", program);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double us = (double)(end.tv_sec - start.tv_sec) * 1e6 + (double)(end.tv_nsec - start.tv_nsec) / 1e3;
  struct rusage children;
  getrusage(RUSAGE_CHILDREN, &children);
  printf("%.2f %.1f\n", us / (double)count, (double)children.ru_minflt / (double)count);
  return 0;
}
