/* Forks children while another thread is busy making intercepted calls, to
 * check that each process's dump holds only its own calls and that fork
 * never hangs on a lock the busy thread held.
 *
 * The busy thread alternates posix_fadvise(WILLNEED) and fdatasync until
 * told to stop. Meanwhile the main thread forks CHILDREN children; child i
 * makes i+1 posix_fadvise calls and leaves with _exit(0), skipping atexit
 * handlers. After the thread has stopped, one last child is forked that
 * makes LAST_CALLS calls and returns from main normally. Prints one line
 * per child, `child PID CALLS`, and at the end
 * `parent PID posix_fadvise N fdatasync M` with the parent's own counts.
 *
 * Usage: fork_children FILE CHILDREN */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define LAST_CALLS 100

static int fd;
static atomic_int stop;
static atomic_long busy_calls;
static long fadvise_calls, fdatasync_calls;

static void *busy(void *unused)
{
    (void)unused;
    while (!atomic_load(&stop)) {
        posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
        fadvise_calls++;
        fdatasync(fd);
        fdatasync_calls++;
        atomic_fetch_add(&busy_calls, 1);
    }
    return NULL;
}

static void make_calls(long calls)
{
    for (long i = 0; i < calls; i++)
        posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
}

static pid_t fork_child(long calls, int leave_with_exit_underscore)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        make_calls(calls);
        if (leave_with_exit_underscore)
            _exit(0);
        exit(0);
    }
    printf("child %d %ld\n", (int)pid, calls);
    return pid;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fork_children FILE CHILDREN\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "small file\n", 11) != 11) {
        perror(argv[1]);
        return 2;
    }
    int children = atoi(argv[2]);
    pthread_t thread;
    if (pthread_create(&thread, NULL, busy, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 2;
    }
    for (int i = 0; i < children; i++) {
        /* Fork only while the thread is really in its loop. */
        long seen = atomic_load(&busy_calls);
        while (atomic_load(&busy_calls) == seen)
            sched_yield();
        fork_child(i + 1, 1);
    }
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    fork_child(LAST_CALLS, 0);
    int status, failed = 0;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    printf("parent %d posix_fadvise %ld fdatasync %ld\n", (int)getpid(), fadvise_calls,
           fdatasync_calls);
    if (failed) {
        fprintf(stderr, "%d children failed\n", failed);
        return 1;
    }
    return 0;
}
