/* Makes posix_fadvise(WILLNEED) calls on a file, for the live-statistics
 * tests, and then does what MODE says:
 *   calls FILE N exit            make N calls and exit
 *   calls FILE N linger MS       make N calls, stay MS milliseconds, exit
 *   calls FILE N wait            make N calls, print "ready", sleep until killed
 *   calls FILE N after PATH      wait until PATH exists, then make N calls, exit
 *   calls FILE N closeall        make N calls, close every descriptor but the
 *                                standard ones (a loop, then close_range),
 *                                print "closed", make N more over ~2 s, exit
 * Prints "made M" (calls made) before exiting. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fd;
static long made;

static void calls(long n) {
    for (long i = 0; i < n; i++) {
        if (posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED) == 0) made++;
    }
}

static void pause_ms(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: calls FILE N MODE [ARG]\n"); return 2; }
    const char *mode = argv[3];
    long n = atol(argv[2]);
    if (!strcmp(mode, "after")) {
        printf("ready\n");
        fflush(stdout);
        while (access(argv[4], F_OK) != 0) pause_ms(5);
    }
    fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0) { perror(argv[1]); return 1; }
    calls(n);
    if (!strcmp(mode, "linger")) {
        pause_ms(atol(argv[4]));
    } else if (!strcmp(mode, "wait")) {
        printf("ready\n");
        fflush(stdout);
        for (;;) pause_ms(1000);
    } else if (!strcmp(mode, "closeall")) {
        for (int other = 3; other < 4096; other++) close(other);
        close_range(3, ~0U, 0);
        /* Ours again, for the calls (the old one is closed). */
        fd = open(argv[1], O_RDWR);
        printf("closed\n");
        fflush(stdout);
        for (int round = 0; round < 20; round++) {
            calls(n / 20);
            pause_ms(100);
        }
        calls(n - (n / 20) * 20);
    }
    printf("made %ld\n", made);
    return 0;
}
