/* Exits while another thread is writing a signal dump. SIGUSR1 is blocked
 * in the main thread and open in a helper thread; the main thread makes 3
 * fsync calls, sends itself SIGUSR1 (so the helper runs the dump), waits
 * until the dump's temporary file appears in DUMPDIR, prints `pid P` and
 * calls exit(0). Run under strace with the dump's rename delayed, the
 * helper is still writing when the process exits.
 *
 * Usage: exit_during_dump FILE DUMPDIR */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *helper(void *unused)
{
    (void)unused;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: exit_during_dump FILE DUMPDIR\n");
        return 2;
    }
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    pthread_t thread;
    if (pthread_create(&thread, NULL, helper, NULL) != 0)
        return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 2;
    for (int i = 0; i < 3; i++)
        fsync(fd);
    char temp[4096];
    snprintf(temp, sizeof temp, "%s/.exit_during_dump.%d.dump.tmp", argv[2], (int)getpid());
    kill(getpid(), SIGUSR1);
    for (int waited = 0; access(temp, F_OK) != 0 && waited < 2000; waited++)
        usleep(5000);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    exit(0);
}
