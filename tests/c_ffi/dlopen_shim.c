/* Loads the shim with dlopen (after libc, not preloaded) and looks fsync up
 * through the shim's own dlsym, on a handle and with RTLD_DEFAULT: both must
 * still find it (the shim's dlsym finds the real one even when libc comes
 * before it). Prints "found".
 *   dlopen_shim LIBRARY */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *shim = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!shim) { puts(dlerror()); return 1; }
    void *(*shim_dlsym)(void *, const char *) = (void *(*)(void *, const char *))dlsym(shim, "dlsym");
    void *libc = dlopen("libc.so.6", RTLD_NOW);
    if (!shim_dlsym || !libc) return 1;
    if (!shim_dlsym(libc, "fsync") || !shim_dlsym(RTLD_DEFAULT, "fsync")) {
        puts("not found");
        return 1;
    }
    puts("found");
    return 0;
}
