/* A daemon in miniature: installs its own SIGUSR1 handler (it counts
 * deliveries, as servers that reopen logs or report status do), makes 5
 * fsync calls, then forks 3 workers without exec. Worker I makes 10*(I+1)
 * fsync calls, prints `worker I pid P ready`, and waits until its handler
 * has run, then prints `worker I handled N` and exits. The server waits for
 * them and prints `server handled N` (signals it received itself).
 *
 * Usage: server FILE */
#include <fcntl.h>
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
        fprintf(stderr, "usage: server FILE\n");
        return 2;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &action, NULL) != 0)
        return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 2;
    for (int i = 0; i < 5; i++)
        fsync(fd);
    for (int worker = 0; worker < 3; worker++) {
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            for (int i = 0; i < 10 * (worker + 1); i++)
                fsync(fd);
            printf("worker %d pid %d ready\n", worker, (int)getpid());
            fflush(stdout);
            while (handled == 0)
                usleep(5000);
            printf("worker %d handled %d\n", worker, (int)handled);
            fflush(stdout);
            _exit(0);
        }
    }
    int failed = 0, status;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    printf("server handled %d\n", (int)handled);
    return failed;
}
