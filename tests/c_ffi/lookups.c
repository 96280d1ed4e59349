/* Calls fsync through every way of looking it up: a handle from
 * dlopen("libc.so.6") with dlsym and dlvsym, RTLD_DEFAULT, and RTLD_NEXT
 * from the program itself, each COUNT times; then asks libnext.so (a
 * library that looks fsync up with RTLD_NEXT itself) which object its
 * answer lies in, and prints it: "next-from-library OBJECT".
 *   lookups FILE COUNT */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*fsync_fn)(int);
const char *where_next_fsync_lies(void);

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    int count = atoi(argv[2]);
    void *libc = dlopen("libc.so.6", RTLD_NOW);
    fsync_fn ways[4] = {
        (fsync_fn)dlsym(libc, "fsync"),
        (fsync_fn)dlvsym(libc, "fsync", "GLIBC_2.2.5"),
        (fsync_fn)dlsym(RTLD_DEFAULT, "fsync"),
        (fsync_fn)dlsym(RTLD_NEXT, "fsync"),
    };
    for (int way = 0; way < 4; way++) {
        if (!ways[way]) { fprintf(stderr, "way %d: %s\n", way, dlerror()); return 1; }
        for (int i = 0; i < count; i++) ways[way](fd);
    }
    printf("next-from-library %s\n", where_next_fsync_lies());
    return 0;
}
