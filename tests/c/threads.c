/* Calls posix_fadvise(WILLNEED) on a small file from many threads at once,
 * to check that the shim loses no count under contention. Prints
 * `calls N failed F`, where F counts calls that did not return 0.
 *
 * Usage: threads FILE THREADS CALLS_PER_THREAD */
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
    if (argc != 4) {
        fprintf(stderr, "usage: threads FILE THREADS CALLS_PER_THREAD\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "small file\n", 11) != 11) {
        perror(argv[1]);
        return 2;
    }
    int threads = atoi(argv[2]);
    calls_per_thread = atol(argv[3]);
    pthread_t ids[threads];
    long failures[threads];
    for (int t = 0; t < threads; t++) {
        failures[t] = 0;
        if (pthread_create(&ids[t], NULL, worker, &failures[t]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }
    long failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failed += failures[t];
    }
    printf("calls %ld failed %ld\n", threads * calls_per_thread, failed);
    return 0;
}
