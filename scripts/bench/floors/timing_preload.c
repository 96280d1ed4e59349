/* Case 1's floor: the least an LD_PRELOAD library can do to time a call the
 * way the shim's observed path does. posix_fadvise and posix_fadvise64 read
 * the TSC, call the real function (resolved once, in a constructor, with
 * dlsym(RTLD_NEXT)), read the TSC again and count the tick delta into one of
 * 64 power-of-two buckets with one relaxed atomic add. No policy, no clock
 * conversion, no stats file: what is left above this is the shim's own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <x86intrin.h>

/* musl's <fcntl.h> makes posix_fadvise64 a macro for posix_fadvise (and
 * off64_t one for off_t) under _GNU_SOURCE; without the macro the same
 * file builds with musl-gcc for the musl arms (case 8) and defines both
 * names there too. */
#undef posix_fadvise64

typedef int fadvise_fn(int, off_t, off_t, int);
typedef int fadvise64_fn(int, off64_t, off64_t, int);

static fadvise_fn *real_fadvise;
static fadvise64_fn *real_fadvise64;
static unsigned long buckets[64];

__attribute__((constructor)) static void resolve(void) {
  real_fadvise = (fadvise_fn *)dlsym(RTLD_NEXT, "posix_fadvise");
  real_fadvise64 = (fadvise64_fn *)dlsym(RTLD_NEXT, "posix_fadvise64");
}

/* log2 of the delta (0 for 0 and 1): one lzcnt/bsr. */
static inline void count(unsigned long long ticks) {
  unsigned bucket = 63 - __builtin_clzll(ticks | 1);
  __atomic_fetch_add(&buckets[bucket], 1, __ATOMIC_RELAXED);
}

int posix_fadvise(int fd, off_t offset, off_t len, int advice) {
  unsigned long long start = __rdtsc();
  int result = real_fadvise(fd, offset, len, advice);
  count(__rdtsc() - start);
  return result;
}

int posix_fadvise64(int fd, off64_t offset, off64_t len, int advice) {
  unsigned long long start = __rdtsc();
  int result = real_fadvise64(fd, offset, len, advice);
  count(__rdtsc() - start);
  return result;
}
