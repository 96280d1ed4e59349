/* More call sites than a process keeps (256): 320 fsync calls, each from a
 * call instruction of its own (the macros unroll them), once each.
 * Usage: many_sites FILE */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define CALL4(fd) fsync(fd); fsync(fd); fsync(fd); fsync(fd);
#define CALL16(fd) CALL4(fd) CALL4(fd) CALL4(fd) CALL4(fd)
#define CALL64(fd) CALL16(fd) CALL16(fd) CALL16(fd) CALL16(fd)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: many_sites FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    CALL64(fd) CALL64(fd) CALL64(fd) CALL64(fd) CALL64(fd)
    return 0;
}
