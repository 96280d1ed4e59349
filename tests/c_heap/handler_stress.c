/* The crash that started this: a SIGALRM handler calls fdatasync and fsync
 * (both async-signal-safe in POSIX) every 500 µs while the main thread
 * allocates and frees without pause. Under a shim that allocates from the
 * program's heap inside a hook, a handler that interrupts malloc corrupts
 * the heap. Prints "handler calls N" at the end, the number of fsync plus
 * fdatasync calls the handler made.
 *   handler_stress FILE MILLISECONDS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int fd;
static volatile sig_atomic_t handler_calls;

static void on_alarm(int signal) {
    (void)signal;
    if (handler_calls & 1) fsync(fd); else fdatasync(fd);
    handler_calls++;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: handler_stress FILE MILLISECONDS\n"); return 2; }
    fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0) { perror(argv[1]); return 1; }
    double end = now() + atoi(argv[2]) / 1000.0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    action.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &action, NULL);
    struct itimerval every = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &every, NULL);
    void *slots[64] = {0};
    unsigned seed = 12345;
    while (now() < end) {
        for (int i = 0; i < 1000; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned slot = (seed >> 8) % 64;
            size_t size = 16 + (seed >> 16) % (i % 10 == 0 ? 200000 : 2000);
            free(slots[slot]);
            slots[slot] = malloc(size);
            if (slots[slot]) memset(slots[slot], (int)slot, size < 64 ? size : 64);
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alarm, NULL);
    for (int i = 0; i < 64; i++) free(slots[i]);
    printf("handler calls %ld\n", (long)handler_calls);
    return 0;
}
