/* The alloc spy's positive control: a library named libfadvise_shim.so whose
 * fsync allocates directly (malloc) and through libc (strdup), as a careless
 * shim would. The spy must report both. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

int fsync(int fd) {
    char *copy = strdup("through libc");
    /* volatile: the compiler may not pair the malloc with the free away. */
    void *volatile direct = malloc(40);
    free(direct);
    free(copy);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real ? real(fd) : -1;
}
