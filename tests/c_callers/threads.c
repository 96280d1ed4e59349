/* Sites claimed by racing threads, and a forked child's own sites:
 * 8 threads start together and each call liba_work(fd, 100) (so 800 of
 * each of liba's calls, from its three sites); main makes 50 fsync of its
 * own; then a child is forked that calls libb_work(fd, 5) and exits. Prints
 * the child's pid.
 * Usage: threads FILE */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

void liba_work(int fd, int n);
void libb_work(int fd, int n);

static int fd;
static pthread_barrier_t start;

static void *worker(void *unused)
{
    (void)unused;
    pthread_barrier_wait(&start);
    liba_work(fd, 100);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: threads FILE\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    pthread_t threads[8];
    pthread_barrier_init(&start, NULL, 8);
    for (int i = 0; i < 8; i++)
        pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < 50; i++)
        fsync(fd);
    for (int i = 0; i < 8; i++)
        pthread_join(threads[i], NULL);
    pid_t child = fork();
    if (child == 0) {
        libb_work(fd, 5);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    printf("%d\n", (int)child);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
