/* A stand-in for libfadvise_shim.so in the install tests on musl roots:
 * install judges a library by its loading needs (DT_NEEDED files, imported
 * symbols), so a tiny library with chosen needs tells each case apart.
 * As it is, it needs only libc.so.6 and symbols both C libraries export;
 * with -DGLIBC_ONLY it also imports _dl_find_object, which musl lacks
 * (the loader would fail with "symbol not found"). */
#define _GNU_SOURCE
#include <unistd.h>
#ifdef GLIBC_ONLY
#include <dlfcn.h>
#endif

int stand_in_fsync(int fd) {
#ifdef GLIBC_ONLY
    struct dl_find_object found;
    if (_dl_find_object((void *)stand_in_fsync, &found) != 0)
        return -1;
#endif
    return fsync(fd);
}
