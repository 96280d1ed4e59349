/* A preload that interposes dlsym itself, as some GPU and profiling
 * libraries do: it finds the real one with dlvsym(RTLD_NEXT, …) and counts
 * the lookups it forwards, printing the count at exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

static void *(*real_dlsym)(void *, const char *);
static int forwarded;

void *dlsym(void *handle, const char *name) {
    if (!real_dlsym) real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!real_dlsym) real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    forwarded++;
    return real_dlsym ? real_dlsym(handle, name) : NULL;
}

__attribute__((destructor)) static void report(void) {
    char line[64];
    int length = snprintf(line, sizeof line, "wrapper forwarded %d\n", forwarded);
    if (length > 0) write(2, line, (size_t)length);
}
