/* Makes every kind of intercepted call, in every situation the shim must
 * handle without the program's allocator: the first call of a forked child
 * of a multithreaded program, the parent's first call inside a signal
 * handler, calls from a second thread, a policy file rewritten twice (each
 * picked up by a reload), a dump on SIGUSR1 and one at exit. Run under
 * alloc_spy.so, which reports any allocation made from the shim.
 *   every_call FILE [POLICY-FILE POLICY-A POLICY-B]
 * The policy file is rewritten with the contents of POLICY-A, then POLICY-B.
 * Prints "done" at the end. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fd;
static char *mapping;

static void every_call(void) {
    posix_fadvise(fd, 0, 4096, POSIX_FADV_WILLNEED);
    posix_fadvise(fd, 0, 4096, POSIX_FADV_DONTNEED);
    posix_fadvise64(fd, 0, 4096, POSIX_FADV_SEQUENTIAL);
    posix_fadvise(fd, 0, 4096, 77);            /* invalid advice */
    posix_fadvise(-1, 0, 4096, POSIX_FADV_DONTNEED);
    readahead(fd, 0, 4096);
    sync_file_range(fd, 0, 4096, SYNC_FILE_RANGE_WRITE);
    fsync(fd);
    fdatasync(fd);
    syncfs(fd);
    sync();
    mapping[0]++;
    msync(mapping, 4096, MS_SYNC);
    syscall(SYS_fsync, fd);
    syscall(SYS_fadvise64, fd, 0, 4096, POSIX_FADV_DONTNEED);
    syscall(SYS_getpid);
}

static void on_alarm(int signal) {
    (void)signal;
    fdatasync(fd);
}

static volatile int stop_worker;

static void *worker(void *unused) {
    (void)unused;
    while (!stop_worker) {
        every_call();
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void copy_file(const char *from, const char *to) {
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.new", to);
    int in = open(from, O_RDONLY), out = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buffer[8192];
    ssize_t n;
    while (in >= 0 && out >= 0 && (n = read(in, buffer, sizeof buffer)) > 0)
        if (write(out, buffer, (size_t)n) != n) break;
    close(in);
    close(out);
    rename(temporary, to);
}

static void pause_ms(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&pause, NULL);
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: every_call FILE [POLICY-FILE POLICY-A POLICY-B]\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, 8192) != 0) { perror(argv[1]); return 1; }
    mapping = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapping == MAP_FAILED) { perror("mmap"); return 1; }

    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    /* The worker is already calling; fork now, so the child's first call
     * is the first call of a forked child of a multithreaded program. */
    pid_t child = fork();
    if (child == 0) {
        every_call();
        exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "child failed\n"); return 1; }

    signal(SIGALRM, on_alarm);
    raise(SIGALRM);
    every_call();
    if (argc == 5) {
        copy_file(argv[3], argv[2]);
        pause_ms(1100);
        every_call();
        copy_file(argv[4], argv[2]);
        pause_ms(1100);
        every_call();
    }
    raise(SIGUSR1);
    pause_ms(50);
    stop_worker = 1;
    pthread_join(thread, NULL);
    every_call();
    puts("done");
    return 0;
}
