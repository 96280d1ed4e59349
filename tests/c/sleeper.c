/* A live process that made some intercepted calls and now sleeps: makes
 * 3 posix_fadvise and 2 fsync calls, prints `ready`, then sleeps until
 * killed. It installs no signal handler of its own.
 *
 * Usage: sleeper FILE */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sleeper FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "small file\n", 11) != 11) {
        perror(argv[1]);
        return 2;
    }
    for (int i = 0; i < 3; i++)
        posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    for (int i = 0; i < 2; i++)
        fsync(fd);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
