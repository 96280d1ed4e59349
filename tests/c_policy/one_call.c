/* One posix_fadvise(DONTNEED) and one fsync on FILE under a seccomp filter
 * that answers EPERM to the intercepted syscalls, each printed as
 * `NAME CALL ret=R errno=E` where NAME is the executable's file name: a
 * call that reached the kernel fails with EPERM (posix_fadvise returns 1),
 * one the shim dropped returns 0 with errno untouched (SENTINEL).
 * With NEXT, it then executes NEXT with FILE, in the same process.
 * Exits with status 5, so that a run that changed the status shows.
 *
 * Usage: one_call FILE [NEXT] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <string.h>

#include "../c/deny.h"

#define SENTINEL 12345

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: one_call FILE [NEXT]\n");
        return 2;
    }
    char exe[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (length < 0) {
        perror("/proc/self/exe");
        return 2;
    }
    exe[length] = '\0';
    const char *name = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    int fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    deny_intercepted_syscalls();
    errno = SENTINEL;
    long ret = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    printf("%s posix_fadvise ret=%ld errno=%d\n", name, ret, errno);
    errno = SENTINEL;
    ret = fsync(fd);
    printf("%s fsync ret=%ld errno=%d\n", name, ret, errno);
    if (argc == 3) {
        fflush(stdout);
        execl(argv[2], argv[2], argv[1], (char *)NULL);
        perror(argv[2]);
        return 2;
    }
    return 5;
}
