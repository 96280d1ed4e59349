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
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SENTINEL 12345

#define DENY(nr)                                                               \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                           \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

static void install_filter(void)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        DENY(SYS_fadvise64),
        DENY(SYS_readahead),
        DENY(SYS_sync_file_range),
        DENY(SYS_fsync),
        DENY(SYS_fdatasync),
        DENY(SYS_syncfs),
        DENY(SYS_sync),
        DENY(SYS_msync),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        perror("PR_SET_NO_NEW_PRIVS");
        exit(2);
    }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
        perror("seccomp");
        exit(2);
    }
}

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
        install_filter();

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
