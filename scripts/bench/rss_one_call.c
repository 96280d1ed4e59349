/* Resident memory (case 5): makes one posix_fadvise call, then prints the
 * process's VmRSS in KiB from /proc/self/status. Run with and without the
 * shim; the difference is what the shim keeps resident after a first call.
 *
 *   rss_one_call FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0 || posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED) != 0) {
    perror(argv[1]);
    return 1;
  }
  FILE *status = fopen("/proc/self/status", "r");
  char line[256];
  while (status && fgets(line, sizeof line, status)) {
    long kib;
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
      printf("%ld\n", kib);
      return 0;
    }
  }
  fprintf(stderr, "no VmRSS in /proc/self/status\n");
  return 1;
}
