/* Linked against libearly.so (see early.c), whose constructor makes calls
 * before main; main then makes one fsync of its own and prints
 * `main fsync R`.
 *
 * Usage: early_main FILE */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int early_linked(void);

int main(int argc, char **argv)
{
    if (argc != 2 || !early_linked()) {
        fprintf(stderr, "usage: early_main FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 2;
    printf("main fsync %d\n", fsync(fd));
    return 0;
}
