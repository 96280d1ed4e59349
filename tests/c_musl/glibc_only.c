/* Reaches, through dlsym, the library's exports of functions musl lacks
 * (close_range, closefrom, sysv_signal, dlvsym), as a program that probes
 * for them at run time would, and prints what each did:
 *   close_range closed=1 ret=0   the descriptor is gone afterwards
 *   close_range_bad ret=-1 errno=22
 *   closefrom closed=1
 *   sysv_signal handler=1 flags=resethand,nodefer
 *   dlvsym null=1
 * or `NAME absent` where the process has none (musl without the shim). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void on_signal(int signal) { (void)signal; }

static int is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

int main(void)
{
    int (*close_range_fn)(unsigned, unsigned, int) = (int (*)(unsigned, unsigned, int))dlsym(RTLD_DEFAULT, "close_range");
    void (*closefrom_fn)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "closefrom");
    void (*(*sysv_signal_fn)(int, void (*)(int)))(int) = (void (*(*)(int, void (*)(int)))(int))dlsym(RTLD_DEFAULT, "sysv_signal");
    void *(*dlvsym_fn)(void *, const char *, const char *) = (void *(*)(void *, const char *, const char *))dlsym(RTLD_DEFAULT, "dlvsym");
    if (close_range_fn) {
        int fd = dup2(0, 700);
        int ret = close_range_fn(fd, fd, 0);
        printf("close_range closed=%d ret=%d\n", ret == 0 && !is_open(fd), ret);
        errno = 0;
        ret = close_range_fn(10, 5, 0);
        printf("close_range_bad ret=%d errno=%d\n", ret, errno);
    } else {
        printf("close_range absent\n");
    }
    if (closefrom_fn) {
        int fd = dup2(0, 800);
        closefrom_fn(750);
        printf("closefrom closed=%d\n", !is_open(fd));
    } else {
        printf("closefrom absent\n");
    }
    if (sysv_signal_fn) {
        sysv_signal_fn(SIGUSR2, on_signal);
        struct sigaction now;
        sigaction(SIGUSR2, 0, &now);
        printf("sysv_signal handler=%d flags=%s%s\n", now.sa_handler == on_signal,
               now.sa_flags & SA_RESETHAND ? "resethand," : "",
               now.sa_flags & SA_NODEFER ? "nodefer" : "");
    } else {
        printf("sysv_signal absent\n");
    }
    if (dlvsym_fn)
        printf("dlvsym null=%d\n", dlvsym_fn(RTLD_DEFAULT, "fsync", "GLIBC_2.2.5") == 0);
    else
        printf("dlvsym absent\n");
    return 0;
}
