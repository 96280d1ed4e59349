/* The latency-sensitive neighbour of case 3: an open loop of RATE preads per
 * second of 64 KiB from a cached FILE, until SIGTERM or SIGINT. Each read's
 * latency is taken from its scheduled start, not from when it began, so a
 * stall delays every read queued behind it (no coordinated omission).
 * At the end prints "p50 p99 p99.9" in microseconds, and the read count.
 *
 *   latency_probe FILE RATE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)
#define MAX_SAMPLES (1 << 20)

static volatile sig_atomic_t stop;
static void on_stop(int sig) { (void)sig; stop = 1; }

static long long ns_of(const struct timespec *t) {
  return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static int by_value(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static double quantile_us(const long long *sorted, long n, double q) {
  long index = (long)(q * (double)(n - 1) + 0.5);
  return (double)sorted[index] / 1000.0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s FILE RATE\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  long blocks = size / READ_SIZE;
  long long period = 1000000000LL / atol(argv[2]);
  static char buffer[READ_SIZE];
  static long long samples[MAX_SAMPLES];
  struct sigaction action = {.sa_handler = on_stop};
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);

  /* Warm the cache so every read is served from memory. */
  for (long b = 0; b < blocks; b++)
    if (pread(fd, buffer, READ_SIZE, b * READ_SIZE) < 0) {
      perror("pread");
      return 1;
    }
  printf("ready\n");
  fflush(stdout);

  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long long scheduled = ns_of(&now);
  long n = 0;
  while (!stop && n < MAX_SAMPLES) {
    struct timespec due = {scheduled / 1000000000LL, scheduled % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR && !stop) {
    }
    if (stop)
      break;
    if (pread(fd, buffer, READ_SIZE, (n % blocks) * READ_SIZE) < 0) {
      perror("pread");
      return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    samples[n++] = ns_of(&now) - scheduled;
    scheduled += period;
  }
  if (n == 0) {
    printf("0 0 0 0\n");
    return 0;
  }
  qsort(samples, (size_t)n, sizeof samples[0], by_value);
  printf("%.1f %.1f %.1f %ld\n", quantile_us(samples, n, 0.5), quantile_us(samples, n, 0.99),
         quantile_us(samples, n, 0.999), n);
  return 0;
}
