/* Calls posix_fadvise(WILLNEED) on FILE in a tight loop from THREADS
 * threads for SECONDS, under a seccomp filter that answers EPERM to the
 * intercepted syscalls, and counts from the kernel's side: a call that
 * reached the kernel returns EPERM, one the shim answered returns 0.
 * Prints `calls N kernel K answered A other O`.
 *
 * Usage: rate_loop FILE THREADS SECONDS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include "../c/deny.h"

struct tally {
    long calls, kernel, answered, other;
};

static int fd;
static struct timespec deadline;

static int before_deadline(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec < deadline.tv_sec ||
           (now.tv_sec == deadline.tv_sec && now.tv_nsec < deadline.tv_nsec);
}

static void *worker(void *argument)
{
    struct tally *tally = argument;
    while (before_deadline()) {
        int ret = posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
        tally->calls++;
        if (ret == EPERM)
            tally->kernel++;
        else if (ret == 0)
            tally->answered++;
        else
            tally->other++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: rate_loop FILE THREADS SECONDS\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    int threads = atoi(argv[2]);
    deny_intercepted_syscalls();
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += atoi(argv[3]);
    pthread_t ids[threads];
    struct tally tallies[threads];
    for (int t = 0; t < threads; t++) {
        tallies[t] = (struct tally){0};
        if (pthread_create(&ids[t], NULL, worker, &tallies[t]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }
    struct tally total = {0};
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        total.calls += tallies[t].calls;
        total.kernel += tallies[t].kernel;
        total.answered += tallies[t].answered;
        total.other += tallies[t].other;
    }
    printf("calls %ld kernel %ld answered %ld other %ld\n", total.calls, total.kernel,
           total.answered, total.other);
    return 0;
}
