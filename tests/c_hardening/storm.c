/* Signal storm target: THREADS threads each make CALLS posix_fadvise
 * calls while the test floods the process with its dump signal. Prints
 * `pid P ready` before the threads start, then `calls N failed F` when all
 * are done, and exits once STOPFILE exists (so signals sent late still find
 * it alive). No signal handler of its own.
 *
 * Usage: storm FILE THREADS CALLS STOPFILE */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int fd;
static long calls_per_thread;

static void *worker(void *failed)
{
    long *failures = failed;
    for (long i = 0; i < calls_per_thread; i++)
        if (posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED) != 0)
            ++*failures;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: storm FILE THREADS CALLS STOPFILE\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "small file\n", 11) != 11) {
        perror(argv[1]);
        return 2;
    }
    int threads = atoi(argv[2]);
    calls_per_thread = atol(argv[3]);
    printf("pid %d ready\n", (int)getpid());
    fflush(stdout);
    pthread_t ids[threads];
    long failures[threads];
    for (int t = 0; t < threads; t++) {
        failures[t] = 0;
        if (pthread_create(&ids[t], NULL, worker, &failures[t]) != 0)
            return 2;
    }
    long failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failed += failures[t];
    }
    printf("calls %ld failed %ld\n", threads * calls_per_thread, failed);
    fflush(stdout);
    while (access(argv[4], F_OK) != 0)
        usleep(5000);
    return 0;
}
