/* A library whose one function makes `n` each of fsync, posix_fadvise and
 * syscall(SYS_fdatasync): tests/callers.rs attributes them to liba_work. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

void liba_work(int fd, int n)
{
    for (int i = 0; i < n; i++) {
        fsync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        syscall(SYS_fdatasync, fd);
    }
}
