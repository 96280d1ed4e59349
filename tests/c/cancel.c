/* pthread_cancel of threads blocked in, or looping on, intercepted calls
 * that are cancellation points (fsync, fdatasync, msync): each thread must
 * be cancelled, run its cleanup handler, and join as PTHREAD_CANCELED —
 * whether the shim passes the call (the real call is cancelled and unwinds
 * through the hook) or drops it (the hook acts on the cancellation itself).
 *
 *   cancel FILE    prints "cancelled N cleanups N" */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define ROUNDS 10

static int fd;
static char *mapping;
static volatile int cleanups;

static void count_cleanup(void *unused) {
  (void)unused;
  __atomic_fetch_add(&cleanups, 1, __ATOMIC_SEQ_CST);
}

static void *loop_on(void *which) {
  pthread_cleanup_push(count_cleanup, NULL);
  for (;;) {
    switch ((long)which) {
    case 0: fsync(fd); break;
    case 1: fdatasync(fd); break;
    default: msync(mapping, 4096, MS_SYNC); break;
    }
  }
  pthread_cleanup_pop(0);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: cancel FILE\n");
    return 2;
  }
  fd = open(argv[1], O_RDWR | O_CREAT, 0644);
  if (fd < 0 || ftruncate(fd, 4096) != 0) {
    perror(argv[1]);
    return 1;
  }
  mapping = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  int cancelled = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (long which = 0; which < 3; which++) {
      pthread_t thread;
      void *result;
      pthread_create(&thread, NULL, loop_on, (void *)which);
      usleep(1000);
      pthread_cancel(thread);
      pthread_join(thread, &result);
      cancelled += result == PTHREAD_CANCELED;
    }
  }
  printf("cancelled %d cleanups %d\n", cancelled, cleanups);
  return 0;
}
