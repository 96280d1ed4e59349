/* Makes 7 fsync and 5 posix_fadvise calls, then vforks twice: the first
 * child calls _exit(0) at once, the second execs PROGRAM (which should make
 * no intercepted calls, e.g. /bin/true). Prints `child1 S1 child2 S2`: the
 * children's exit statuses.
 *
 * Usage: vfork_exit FILE PROGRAM */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int status_of(pid_t child)
{
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vfork_exit FILE PROGRAM\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 2;
    for (int i = 0; i < 7; i++)
        fsync(fd);
    for (int i = 0; i < 5; i++)
        posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    pid_t first = vfork();
    if (first == 0)
        _exit(0);
    int first_status = status_of(first);
    pid_t second = vfork();
    if (second == 0) {
        execl(argv[2], argv[2], (char *)NULL);
        _exit(127);
    }
    printf("child1 %d child2 %d\n", first_status, status_of(second));
    return 0;
}
