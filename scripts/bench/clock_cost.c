/* The cost of one clock read on this machine, for the table's header: a loop
 * of READS rdtsc reads, then a loop of READS clock_gettime(CLOCK_MONOTONIC)
 * reads, each timed as a whole with clock_gettime. Prints
 * "<ns per rdtsc> <ns per clock_gettime>". The shim's observed path makes
 * two TSC reads per call, so these bound what timing a call can cost.
 *
 *   clock_cost READS */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 2 || atol(argv[1]) <= 0) {
    fprintf(stderr, "usage: %s READS\n", argv[0]);
    return 2;
  }
  long reads = atol(argv[1]);
  /* Every reading feeds a sum that is printed, so no read can be dropped. */
  unsigned long long sum = 0;
  double start = now_ns();
  for (long i = 0; i < reads; i++)
    sum += __rdtsc();
  double tsc_ns = (now_ns() - start) / (double)reads;
  start = now_ns();
  for (long i = 0; i < reads; i++) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    sum += (unsigned long long)t.tv_nsec;
  }
  double monotonic_ns = (now_ns() - start) / (double)reads;
  printf("%.2f %.2f\n", tsc_ns, monotonic_ns);
  fprintf(stderr, "(checksum %llu)\n", sum);
  return 0;
}
