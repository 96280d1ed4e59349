/* Makes argv[2] fsync calls on the file argv[1], says "ready" on stdout,
 * then waits for signals forever: a live process for `dump` and `doctor`. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE COUNT\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    for (int i = 0; i < atoi(argv[2]); i++) {
        if (write(fd, "x", 1) != 1 || fsync(fd) != 0) {
            perror("write/fsync");
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
