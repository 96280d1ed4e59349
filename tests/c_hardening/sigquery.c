/* Reports the SIGUSR1 disposition twice: as the program sees it through
 * sigaction(), and as the kernel holds it (raw rt_sigaction system call,
 * past any interposed sigaction). Prints `program DFL|IGN|handler` and
 * `kernel DFL|IGN|handler`.
 *
 * Usage: sigquery */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sigaction on x86_64 and aarch64. */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

static const char *name(void (*handler)(int))
{
    return handler == SIG_DFL ? "DFL" : handler == SIG_IGN ? "IGN" : "handler";
}

int main(void)
{
    struct sigaction seen;
    memset(&seen, 0, sizeof seen);
    sigaction(SIGUSR1, NULL, &seen);
    struct kernel_sigaction kernel;
    memset(&kernel, 0, sizeof kernel);
    if (syscall(SYS_rt_sigaction, SIGUSR1, NULL, &kernel, sizeof kernel.mask) != 0)
        return 2;
    printf("program %s\nkernel %s\n", name(seen.sa_handler), name(kernel.handler));
    return 0;
}
