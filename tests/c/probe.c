/* Runs every intercepted entry point with good and bad arguments and prints
 * one line per case: `CLASS NAME ret=R errno=E`. errno is set to a sentinel
 * before each call, so a call that leaves errno alone prints the sentinel.
 *
 * CLASS says what a dropping shim must do with the case (PRODUCT.md,
 * "Policy file"): `E` the arguments are wrong without asking the kernel, so
 * the dropped call must fail exactly like the real one; `S` a dropped call
 * must succeed (0, errno untouched); `P` not an intercepted call at all, so
 * it behaves like the real one under any policy.
 *
 * Measured on ext4 (kernel 6.18), and so classed `S`: a negative offset is
 * no error for posix_fadvise and readahead (the kernel checks only the
 * length), and an msync length that wraps rounds to 0 and succeeds.
 *
 * Usage: probe DIR   (DIR on the file system to test; a file is made there) */
#define _GNU_SOURCE
#define _LARGEFILE64_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SENTINEL 12345
/* A descriptor number that was open and is closed now; high enough that the
 * shim's own descriptors (policy file, dump) never land on it. */
#define CLOSED_FD 900

static void report(char class, const char *name, long ret, int err)
{
    printf("%c %s ret=%ld errno=%d\n", class, name, ret, err);
}

/* Every case: errno = sentinel, the call, then its result and errno. */
#define CASE(class, name, expr)                                                \
    do {                                                                       \
        errno = SENTINEL;                                                      \
        long ret_ = (long)(expr);                                              \
        int err_ = errno;                                                      \
        report(class, name, ret_, err_);                                       \
    } while (0)

#define CASE_VOID(class, name, stmt)                                           \
    do {                                                                       \
        errno = SENTINEL;                                                      \
        stmt;                                                                  \
        int err_ = errno;                                                      \
        report(class, name, 0, err_);                                          \
    } while (0)

static void fail(const char *what)
{
    perror(what);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: probe DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/probe.data", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        fail("open");
    static char block[65536];
    memset(block, 'x', sizeof block);
    if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
        fail("write");
    int wronly = open(path, O_WRONLY);
    if (wronly < 0)
        fail("open wronly");
    int pipes[2];
    if (pipe(pipes) != 0)
        fail("pipe");
    if (dup2(fd, CLOSED_FD) != CLOSED_FD || close(CLOSED_FD) != 0)
        fail("dup2/close");
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        fail("mmap");
    /* A page-aligned range that is certainly not mapped: the second page,
     * below vm.mmap_min_addr. (A range unmapped here would not stay so:
     * the next mapping anyone makes, libc's or the shim's, may land in it.) */
    char *hole = (char *)(uintptr_t)page;
    int rd = pipes[0];
    const int ADV[] = {POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL,
                       POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE};
    const char *ADV_NAME[] = {"normal", "random", "sequential", "willneed", "dontneed", "noreuse"};

    /* posix_fadvise: returns the error number, never touches errno. */
    for (int i = 0; i < 6; i++) {
        char name[64];
        snprintf(name, sizeof name, "posix_fadvise_good_%s", ADV_NAME[i]);
        CASE('S', name, posix_fadvise(fd, 0, 4096, ADV[i]));
    }
    CASE('S', "posix_fadvise_good_whole_file", posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
    CASE('E', "posix_fadvise_fd_minus_1", posix_fadvise(-1, 0, 0, POSIX_FADV_DONTNEED));
    CASE('E', "posix_fadvise_fd_minus_1_bad_advice", posix_fadvise(-1, 0, 0, 99));
    CASE('E', "posix_fadvise_fd_minus_1_negative_len", posix_fadvise(-1, 0, -1, POSIX_FADV_DONTNEED));
    CASE('S', "posix_fadvise_closed_fd", posix_fadvise(CLOSED_FD, 0, 0, POSIX_FADV_DONTNEED));
    CASE('S', "posix_fadvise_pipe", posix_fadvise(rd, 0, 0, POSIX_FADV_DONTNEED));
    CASE('E', "posix_fadvise_bad_advice", posix_fadvise(fd, 0, 0, 99));
    CASE('E', "posix_fadvise_advice_minus_1", posix_fadvise(fd, 0, 0, -1));
    CASE('E', "posix_fadvise_negative_len", posix_fadvise(fd, 0, -1, POSIX_FADV_DONTNEED));
    CASE('E', "posix_fadvise_negative_len_bad_advice", posix_fadvise(fd, 0, -1, 99));
    CASE('S', "posix_fadvise_negative_offset", posix_fadvise(fd, -4096, 4096, POSIX_FADV_DONTNEED));
    CASE('S', "posix_fadvise64_good", posix_fadvise64(fd, 0, 4096, POSIX_FADV_WILLNEED));
    CASE('E', "posix_fadvise64_fd_minus_1", posix_fadvise64(-1, 0, 0, POSIX_FADV_DONTNEED));
    CASE('E', "posix_fadvise64_bad_advice", posix_fadvise64(fd, 0, 0, 99));
    CASE('E', "posix_fadvise64_negative_len", posix_fadvise64(fd, 0, -1, POSIX_FADV_DONTNEED));
    CASE('S', "posix_fadvise64_pipe", posix_fadvise64(rd, 0, 0, POSIX_FADV_DONTNEED));
    CASE('S', "sys_fadvise64_good", syscall(SYS_fadvise64, fd, 0L, 4096L, POSIX_FADV_DONTNEED));
    CASE('E', "sys_fadvise64_fd_minus_1", syscall(SYS_fadvise64, -1, 0L, 0L, POSIX_FADV_DONTNEED));
    CASE('S', "sys_fadvise64_closed_fd", syscall(SYS_fadvise64, CLOSED_FD, 0L, 0L, POSIX_FADV_DONTNEED));
    CASE('E', "sys_fadvise64_bad_advice", syscall(SYS_fadvise64, fd, 0L, 0L, 99));
    CASE('E', "sys_fadvise64_negative_len", syscall(SYS_fadvise64, fd, 0L, -1L, POSIX_FADV_DONTNEED));
    CASE('S', "sys_fadvise64_pipe", syscall(SYS_fadvise64, rd, 0L, 0L, POSIX_FADV_DONTNEED));

    /* readahead: -1 and errno. */
    CASE('S', "readahead_good", readahead(fd, 0, 4096));
    CASE('E', "readahead_fd_minus_1", readahead(-1, 0, 4096));
    CASE('S', "readahead_closed_fd", readahead(CLOSED_FD, 0, 4096));
    CASE('S', "readahead_pipe", readahead(rd, 0, 4096));
    CASE('S', "readahead_write_only_fd", readahead(wronly, 0, 4096));
    CASE('S', "readahead_negative_offset", readahead(fd, -4096, 4096));
    CASE('S', "sys_readahead_good", syscall(SYS_readahead, fd, 0L, 4096L));
    CASE('E', "sys_readahead_fd_minus_1", syscall(SYS_readahead, -1, 0L, 4096L));

    /* sync_file_range */
    const unsigned ALL = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    CASE('S', "sync_file_range_good_write", sync_file_range(fd, 0, 4096, SYNC_FILE_RANGE_WRITE));
    CASE('S', "sync_file_range_good_all_flags", sync_file_range(fd, 0, 0, ALL));
    CASE('S', "sync_file_range_good_no_flags", sync_file_range(fd, 0, 0, 0));
    CASE('E', "sync_file_range_fd_minus_1", sync_file_range(-1, 0, 0, SYNC_FILE_RANGE_WRITE));
    CASE('E', "sync_file_range_fd_minus_1_bad_flags", sync_file_range(-1, 0, 0, 8));
    CASE('S', "sync_file_range_closed_fd", sync_file_range(CLOSED_FD, 0, 0, SYNC_FILE_RANGE_WRITE));
    CASE('S', "sync_file_range_pipe", sync_file_range(rd, 0, 0, SYNC_FILE_RANGE_WRITE));
    CASE('E', "sync_file_range_bad_flags", sync_file_range(fd, 0, 0, 8));
    CASE('E', "sync_file_range_all_bits_flags", sync_file_range(fd, 0, 0, UINT_MAX));
    CASE('E', "sync_file_range_negative_offset", sync_file_range(fd, -1, 0, SYNC_FILE_RANGE_WRITE));
    CASE('E', "sync_file_range_negative_len", sync_file_range(fd, 0, -1, SYNC_FILE_RANGE_WRITE));
    CASE('E', "sync_file_range_end_overflows", sync_file_range(fd, LLONG_MAX - 10, 100, SYNC_FILE_RANGE_WRITE));
    CASE('S', "sys_sync_file_range_good", syscall(SYS_sync_file_range, fd, 0L, 4096L, SYNC_FILE_RANGE_WRITE));
    CASE('E', "sys_sync_file_range_fd_minus_1", syscall(SYS_sync_file_range, -1, 0L, 0L, SYNC_FILE_RANGE_WRITE));
    CASE('E', "sys_sync_file_range_bad_flags", syscall(SYS_sync_file_range, fd, 0L, 0L, 8));
    CASE('E', "sys_sync_file_range_negative_len", syscall(SYS_sync_file_range, fd, 0L, -1L, SYNC_FILE_RANGE_WRITE));

    /* fsync, fdatasync, syncfs */
    CASE('S', "fsync_good", fsync(fd));
    CASE('E', "fsync_fd_minus_1", fsync(-1));
    CASE('S', "fsync_closed_fd", fsync(CLOSED_FD));
    CASE('S', "fsync_pipe", fsync(rd));
    CASE('S', "sys_fsync_good", syscall(SYS_fsync, fd));
    CASE('E', "sys_fsync_fd_minus_1", syscall(SYS_fsync, -1));
    CASE('S', "fdatasync_good", fdatasync(fd));
    CASE('E', "fdatasync_fd_minus_1", fdatasync(-1));
    CASE('S', "fdatasync_closed_fd", fdatasync(CLOSED_FD));
    CASE('S', "fdatasync_pipe", fdatasync(rd));
    CASE('S', "sys_fdatasync_good", syscall(SYS_fdatasync, fd));
    CASE('E', "sys_fdatasync_fd_minus_1", syscall(SYS_fdatasync, -1));
    CASE('S', "syncfs_good", syncfs(fd));
    CASE('E', "syncfs_fd_minus_1", syncfs(-1));
    CASE('S', "syncfs_closed_fd", syncfs(CLOSED_FD));
    CASE('S', "syncfs_pipe", syncfs(rd));
    CASE('S', "sys_syncfs_good", syscall(SYS_syncfs, fd));
    CASE('E', "sys_syncfs_fd_minus_1", syscall(SYS_syncfs, -1));

    /* sync: no result at all; errno must survive it. */
    CASE_VOID('S', "sync", sync());
    CASE('S', "sys_sync", syscall(SYS_sync));

    /* msync */
    CASE('S', "msync_good_sync", msync(map, 4 * page, MS_SYNC));
    CASE('S', "msync_good_async", msync(map, page, MS_ASYNC));
    CASE('S', "msync_good_invalidate", msync(map, page, MS_INVALIDATE));
    CASE('S', "msync_good_zero_len", msync(map, 0, MS_SYNC));
    CASE('S', "msync_good_unaligned_len", msync(map, 1, MS_SYNC));
    CASE('E', "msync_bad_flags", msync(map, page, 0x100));
    CASE('E', "msync_async_and_sync", msync(map, page, MS_ASYNC | MS_SYNC));
    CASE('E', "msync_unaligned_address", msync(map + 1, page, MS_SYNC));
    CASE('E', "msync_unaligned_address_bad_flags", msync(map + 1, page, 0x100));
    CASE('S', "msync_unmapped_range", msync(hole, page, MS_SYNC));
    CASE('S', "msync_len_wraps", msync(map, SIZE_MAX - 10, MS_SYNC));
    CASE('S', "sys_msync_good", syscall(SYS_msync, map, (long)page, MS_SYNC));
    CASE('E', "sys_msync_bad_flags", syscall(SYS_msync, map, (long)page, 0x100));
    CASE('E', "sys_msync_unaligned_address", syscall(SYS_msync, map + 1, (long)page, MS_SYNC));
    CASE('S', "sys_msync_unmapped_range", syscall(SYS_msync, hole, (long)page, MS_SYNC));

    /* syscall() with numbers the shim does not intercept goes straight through. */
    CASE('P', "sys_dup_fd_minus_1", syscall(SYS_dup, -1));
    CASE('P', "sys_lseek_good", syscall(SYS_lseek, fd, 0L, SEEK_SET));
    CASE('P', "sys_getppid_is_positive", syscall(SYS_getppid) > 0);
    return 0;
}
