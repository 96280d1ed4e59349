/* Case 2's floor: the least an LD_PRELOAD library can do to drop a call.
 * posix_fadvise and posix_fadvise64 return 0 at once: no argument checks
 * (the shim still answers a negative descriptor with EBADF and a negative
 * length or an unknown advice with EINVAL, as the kernel would; this floor
 * does not), no counting, nothing called. What is left above this is the
 * shim's policy lookup, those checks and its count of the dropped call. */
#define _GNU_SOURCE
#include <fcntl.h>

/* musl's <fcntl.h> makes posix_fadvise64 a macro for posix_fadvise (and
 * off64_t one for off_t) under _GNU_SOURCE; without the macro the same
 * file builds with musl-gcc for the musl arms (case 8) and defines both
 * names there too. */
#undef posix_fadvise64

int posix_fadvise(int fd, off_t offset, off_t len, int advice) {
  (void)fd, (void)offset, (void)len, (void)advice;
  return 0;
}

int posix_fadvise64(int fd, off64_t offset, off64_t len, int advice) {
  (void)fd, (void)offset, (void)len, (void)advice;
  return 0;
}
