/* Shows whether intercepted calls reach the kernel. Installs a seccomp
 * filter that answers EPERM to every system call behind them, then makes
 * each call once with good arguments and prints `NAME ret=R errno=E`.
 * A call that reached the kernel fails with EPERM (posix_fadvise returns
 * 1); a call the shim dropped returns 0.
 *
 * Usage: kernel_view DIR [nofilter]   (`nofilter`: for running under strace) */
#define _GNU_SOURCE
#define _LARGEFILE64_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "deny.h"

#define SENTINEL 12345

#define CALL(name, expr)                                                       \
    do {                                                                       \
        errno = SENTINEL;                                                      \
        long ret_ = (long)(expr);                                              \
        int err_ = errno;                                                      \
        printf("%s ret=%ld errno=%d\n", name, ret_, err_);                     \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kernel_view DIR [nofilter]\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/kernel_view.data", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    long page = sysconf(_SC_PAGESIZE);
    if (fd < 0 || ftruncate(fd, page) != 0) {
        perror(path);
        return 2;
    }
    char *map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    if (argc < 3 || strcmp(argv[2], "nofilter") != 0)
        deny_intercepted_syscalls();

    CALL("posix_fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
    CALL("posix_fadvise64", posix_fadvise64(fd, 0, 0, POSIX_FADV_DONTNEED));
    CALL("sys_fadvise64", syscall(SYS_fadvise64, fd, 0L, 0L, POSIX_FADV_DONTNEED));
    CALL("readahead", readahead(fd, 0, page));
    CALL("sys_readahead", syscall(SYS_readahead, fd, 0L, (long)page));
    CALL("sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
    CALL("sys_sync_file_range", syscall(SYS_sync_file_range, fd, 0L, 0L, SYNC_FILE_RANGE_WRITE));
    CALL("fsync", fsync(fd));
    CALL("sys_fsync", syscall(SYS_fsync, fd));
    CALL("fdatasync", fdatasync(fd));
    CALL("sys_fdatasync", syscall(SYS_fdatasync, fd));
    CALL("syncfs", syncfs(fd));
    CALL("sys_syncfs", syscall(SYS_syncfs, fd));
    CALL("sys_sync", syscall(SYS_sync));
    CALL("msync", msync(map, page, MS_SYNC));
    CALL("sys_msync", syscall(SYS_msync, map, (long)page, MS_SYNC));
    /* sync() returns nothing, so only strace can tell whether it reached the
     * kernel; it is made last so that the lines above are already out. */
    fflush(stdout);
    sync();
    printf("sync done\n");
    return 0;
}
