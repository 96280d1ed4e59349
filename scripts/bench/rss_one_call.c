/* Resident memory (case 5): makes one posix_fadvise call, then prints what
 * the process holds, in KiB:
 *
 *   "<VmRSS> <RssAnon> <RssFile> <RssShmem> <stats file allocated> <stats file size>"
 *
 * the first four from /proc/self/status, the last two (st_blocks and
 * st_size) of this process's own stats file, the one named
 * "rss_one_call.<pid>." in $FADVISE_SHIM_STATS_DIR (0 0 when there is none,
 * as without the shim). Run with and without the shim; the difference is
 * what the shim keeps resident after a first call. Nothing here calls what
 * the shim intercepts besides the one posix_fadvise.
 *
 *   rss_one_call FILE */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The four resident-memory lines of /proc/self/status, read in one pass so
 * that they describe one moment; -1 for a line that is missing. */
static void status_kib(long kib[4]) {
  static const char *const names[4] = {"VmRSS:", "RssAnon:", "RssFile:", "RssShmem:"};
  FILE *status = fopen("/proc/self/status", "r");
  char line[256];
  for (int i = 0; i < 4; i++)
    kib[i] = -1;
  while (status && fgets(line, sizeof line, status)) {
    for (int i = 0; i < 4; i++)
      if (strncmp(line, names[i], strlen(names[i])) == 0)
        kib[i] = atol(line + strlen(names[i]));
  }
  if (status)
    fclose(status);
}

/* Allocated and apparent size of this process's stats file, in KiB. */
static void stats_file_kib(long *allocated, long *size) {
  *allocated = *size = 0;
  const char *dir = getenv("FADVISE_SHIM_STATS_DIR");
  DIR *listing = dir ? opendir(dir) : NULL;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "rss_one_call.%d.", (int)getpid());
  struct dirent *entry;
  while (listing && (entry = readdir(listing))) {
    struct stat file;
    if (strncmp(entry->d_name, prefix, strlen(prefix)) == 0 &&
        fstatat(dirfd(listing), entry->d_name, &file, 0) == 0) {
      *allocated = (long)file.st_blocks * 512 / 1024;
      *size = (long)file.st_size / 1024;
    }
  }
  if (listing)
    closedir(listing);
}

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
  long kib[4];
  status_kib(kib);
  if (kib[0] < 0 || kib[1] < 0 || kib[2] < 0 || kib[3] < 0) {
    fprintf(stderr, "no VmRSS, RssAnon, RssFile or RssShmem in /proc/self/status\n");
    return 1;
  }
  long allocated, size;
  stats_file_kib(&allocated, &size);
  printf("%ld %ld %ld %ld %ld %ld\n", kib[0], kib[1], kib[2], kib[3], allocated, size);
  return 0;
}
