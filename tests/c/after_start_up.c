/* For tests/resolved_at_start_up.rs: marks on stderr where `main` begins,
 * then calls every hooked function the shim exports, harmlessly (bad
 * descriptors, empty ranges, queries), so that a next definition looked up
 * lazily inside a hook would show after the mark. Prints the marker line
 * `after_start_up: main` with write(2), unbuffered, in order with the
 * loader's LD_DEBUG lines. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  static const char mark[] = "after_start_up: main\n";
  if (write(2, mark, sizeof mark - 1) < 0)
    return 1;
  posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL);
  posix_fadvise64(-1, 0, 0, POSIX_FADV_NORMAL);
  readahead(-1, 0, 0);
  sync_file_range(-1, 0, 0, 0);
  fsync(-1);
  fdatasync(-1);
  syncfs(-1);
  msync(NULL, 0, 0);
  syscall(SYS_getpid);
  close(-1);
  dup2(-1, -1);
  dup3(-1, -1, 0);
  close_range(100000, 100000, 0);
  closefrom(100000);
  struct sigaction old;
  sigaction(SIGUSR2, NULL, &old);
  signal(SIGUSR2, SIG_DFL);
  sysv_signal(SIGUSR2, SIG_DFL);
  void *self = dlopen(NULL, RTLD_NOW);
  if (self != NULL) {
    dlsym(self, "fsync");
    dlclose(self);
  }
  return 0;
}
