/* Closes every file descriptor, stdin, stdout and stderr included, then
 * opens DIR/fd0, DIR/fd1 and DIR/fd2 (which become descriptors 0, 1 and 2),
 * writes one line into each, makes 3 fsync and 2 posix_fadvise calls, and
 * writes a last line into each. Whatever else ends up in those files was
 * written by someone else.
 *
 * Usage: closefds DIR */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: closefds DIR\n");
        return 2;
    }
    char paths[3][4096];
    for (int fd = 0; fd < 3; fd++)
        snprintf(paths[fd], sizeof paths[fd], "%s/fd%d", argv[1], fd);
    for (int fd = sysconf(_SC_OPEN_MAX) - 1; fd >= 0; fd--)
        close(fd);
    for (int fd = 0; fd < 3; fd++)
        if (open(paths[fd], O_RDWR | O_CREAT | O_TRUNC, 0600) != fd)
            return 3;
    for (int fd = 0; fd < 3; fd++)
        if (write(fd, "first\n", 6) != 6)
            return 4;
    for (int i = 0; i < 3; i++)
        if (fsync(i) != 0)
            return 5;
    for (int i = 0; i < 2; i++)
        if (posix_fadvise(0, 0, 0, POSIX_FADV_WILLNEED) != 0)
            return 6;
    for (int fd = 0; fd < 3; fd++)
        if (write(fd, "last\n", 5) != 5)
            return 7;
    return 0;
}
