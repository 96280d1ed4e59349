/* A shared library whose constructor makes intercepted calls, the way
 * other preload libraries and early-initialising libraries do. Before its
 * first call it reads the kernel's SIGUSR1 disposition with the raw system
 * call: a handler there means the shim has already initialised.
 *
 * Prints `early shim-ready yes|no` and `early fadvise R1 R2 fsync R3 E3 R4
 * E4`: the results of posix_fadvise(WILLNEED), posix_fadvise(bad advice),
 * fsync(fd) and fsync(-1), with errno names after fsync results.
 *
 * The file is named by the EARLY_FILE environment variable. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *error_name(int error)
{
    return error == 0 ? "0" : error == EBADF ? "EBADF" : error == EINVAL ? "EINVAL" : "other";
}

static int kernel_has_handler(void)
{
    struct {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        unsigned long mask;
    } kernel;
    memset(&kernel, 0, sizeof kernel);
    syscall(SYS_rt_sigaction, SIGUSR1, NULL, &kernel, sizeof kernel.mask);
    return kernel.handler != SIG_DFL && kernel.handler != SIG_IGN;
}

__attribute__((constructor)) static void early_calls(void)
{
    printf("early shim-ready %s\n", kernel_has_handler() ? "yes" : "no");
    const char *path = getenv("EARLY_FILE");
    int fd = path ? open(path, O_RDWR | O_CREAT | O_TRUNC, 0600) : -1;
    if (fd < 0) {
        printf("early cannot open EARLY_FILE\n");
        return;
    }
    int willneed = posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    int bad_advice = posix_fadvise(fd, 0, 0, 12345);
    errno = 0;
    int synced = fsync(fd);
    int synced_errno = errno;
    errno = 0;
    int bad_fd = fsync(-1);
    int bad_fd_errno = errno;
    printf("early fadvise %s %s fsync %d %s %d %s\n", error_name(willneed),
           error_name(bad_advice), synced, error_name(synced_errno), bad_fd,
           error_name(bad_fd_errno));
    fflush(stdout);
    close(fd);
}

/* Linked into early_main, so the library is needed even without a preload. */
int early_linked(void)
{
    return 1;
}
