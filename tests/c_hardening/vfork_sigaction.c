/* A SIGUSR1 handler of its own, then a vfork child that resets SIGUSR1 to
 * SIG_DFL before exec, as spawners do (Python's subprocess, for one): the
 * child's disposition is its own, so the parent's handler must still run
 * when the parent then receives SIGUSR1. Prints `handled N`.
 *
 * Usage: vfork_sigaction PROGRAM   (PROGRAM: e.g. /bin/true) */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_usr1(int signal)
{
    (void)signal;
    handled++;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vfork_sigaction PROGRAM\n");
        return 2;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGUSR1, &action, NULL) != 0)
        return 2;
    pid_t child = vfork();
    if (child == 0) {
        struct sigaction reset;
        memset(&reset, 0, sizeof reset);
        reset.sa_handler = SIG_DFL;
        sigemptyset(&reset.sa_mask);
        sigaction(SIGUSR1, &reset, NULL);
        execl(argv[1], argv[1], (char *)NULL);
        _exit(127);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child)
        return 2;
    raise(SIGUSR1);
    printf("handled %d\n", (int)handled);
    return 0;
}
