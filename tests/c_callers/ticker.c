/* Calls from two libraries over time, for a policy replaced while it runs:
 * TICKS times, liba_work(fd, 1) and libb_work(fd, 1), then 20 ms of sleep;
 * prints "tick N" after each.
 * Usage: ticker FILE TICKS */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void liba_work(int fd, int n);
void libb_work(int fd, int n);

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ticker FILE TICKS\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    int ticks = atoi(argv[2]);
    struct timespec pause = {0, 20 * 1000 * 1000};
    for (int i = 1; i <= ticks; i++) {
        liba_work(fd, 1);
        libb_work(fd, 1);
        printf("tick %d\n", i);
        fflush(stdout);
        nanosleep(&pause, NULL);
    }
    return 0;
}
