/* A program with its own SIGUSR1 disposition, to check that the shim keeps
 * out of its way: whatever the program installs is what it gets called with
 * and what sigaction() reports back.
 *
 * Modes:
 *   sigaction-first  install a handler with sigaction(), then make calls
 *   calls-first      make calls, then install a handler with sigaction()
 *   signal-first     install a handler with signal(), then make calls
 *   signal-after     make calls, then install a handler with signal()
 *   ignore           make calls, then signal(SIG_IGN), raise SIGUSR1, then
 *                    signal(SIG_DFL), reporting what each step returned
 *
 * The handler modes raise SIGUSR1 once themselves, print `ready`, then wait
 * until DELIVERIES signals have arrived in all, printing `count N` and the
 * disposition sigaction() reports after each new delivery.
 *
 * Usage: own_handler MODE FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DELIVERIES 3

static volatile sig_atomic_t deliveries;

static void on_usr1(int signo)
{
    (void)signo;
    deliveries++;
}

static const char *handler_name(void (*handler)(int))
{
    if (handler == SIG_DFL)
        return "SIG_DFL";
    if (handler == SIG_IGN)
        return "SIG_IGN";
    if (handler == on_usr1)
        return "own";
    return "OTHER";
}

/* What the program sees of its own disposition, not the kernel's view. */
static void print_disposition(const char *when)
{
    struct sigaction old;
    memset(&old, 0, sizeof old);
    if (sigaction(SIGUSR1, NULL, &old) != 0) {
        perror("sigaction query");
        return;
    }
    /* No mode sets SA_SIGINFO, so sa_handler is the member in use. */
    printf("%s: handler=%s flags=%#x usr1_masked=%d usr2_masked=%d\n", when, handler_name(old.sa_handler),
           (unsigned)old.sa_flags, sigismember(&old.sa_mask, SIGUSR1),
           sigismember(&old.sa_mask, SIGUSR2));
}

static void make_calls(int fd)
{
    posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    fdatasync(fd);
}

static void install_with_sigaction(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGUSR2);
    struct sigaction old;
    if (sigaction(SIGUSR1, &action, &old) != 0)
        perror("sigaction");
    printf("installed: previous=%s\n", handler_name(old.sa_handler));
}

static void install_with_signal(void)
{
    void (*old)(int) = signal(SIGUSR1, on_usr1);
    printf("installed: previous=%s\n", old == SIG_ERR ? "SIG_ERR" : handler_name(old));
}

static int wait_for_deliveries(void)
{
    raise(SIGUSR1);
    printf("ready\n");
    fflush(stdout);
    sig_atomic_t seen = 0;
    /* Polling, not pause(): a signal between the check and pause() would
     * otherwise leave the program waiting forever. */
    while (seen < DELIVERIES) {
        if (deliveries != seen) {
            seen = deliveries;
            printf("count %d\n", (int)seen);
            print_disposition("now");
            fflush(stdout);
        }
        usleep(10000);
    }
    return 0;
}

static int ignore_then_default(void)
{
    void (*old)(int) = signal(SIGUSR1, SIG_IGN);
    printf("ignore: previous=%s\n", handler_name(old));
    print_disposition("ignored");
    raise(SIGUSR1);
    printf("survived raise\n");
    old = signal(SIGUSR1, SIG_DFL);
    printf("default: previous=%s\n", handler_name(old));
    print_disposition("default");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: own_handler MODE FILE\n");
        return 2;
    }
    const char *mode = argv[1];
    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "small file\n", 11) != 11) {
        perror(argv[2]);
        return 2;
    }
    print_disposition("start");
    if (strcmp(mode, "sigaction-first") == 0) {
        install_with_sigaction();
        make_calls(fd);
    } else if (strcmp(mode, "calls-first") == 0) {
        make_calls(fd);
        install_with_sigaction();
    } else if (strcmp(mode, "signal-first") == 0) {
        install_with_signal();
        make_calls(fd);
    } else if (strcmp(mode, "signal-after") == 0) {
        make_calls(fd);
        install_with_signal();
    } else if (strcmp(mode, "ignore") == 0) {
        make_calls(fd);
        return ignore_then_default();
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    print_disposition("installed");
    return wait_for_deliveries();
}
