/* Makes the intercepted system calls a known number of times, for
 * `run --supervise` (built with -static: no preload library can reach it).
 *
 *   calls loop FILE N        N rounds of fsync, sync_file_range, msync and
 *                            posix_fadvise(DONTNEED) on FILE (which the test
 *                            wrote and synced), then fsync(-1) and
 *                            posix_fadvise with advice 99, sync_file_range
 *                            with bad flags and a misaligned msync; prints
 *                            what each argument error returned and how many of FILE's
 *                            pages are resident (mincore, the page cache's
 *                            own answer), e.g. "resident 0 of 256".
 *   calls threads FILE N T   T threads, N rounds each (no argument errors).
 *   calls fork FILE N K      K children and the parent, N rounds each; each
 *                            prints "pid P".
 *   calls wait FILE N        N fsyncs, "ready", then waits for SIGUSR2 and
 *                            exits 7.
 *   calls slow FILE N        "ready", then N fsyncs 20 ms apart, each
 *                            printed as "fsync 0" or "fsync ERRNO"; exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fd;
static void *map;
static size_t length;
static int rounds;

static void fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(2);
}

static void open_file(const char *path)
{
    struct stat st;
    fd = open(path, O_RDWR);
    if (fd < 0 || fstat(fd, &st) != 0)
        fail(path);
    length = (size_t)st.st_size;
    map = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        fail("mmap");
    /* Read it through the page cache so that every page is resident. */
    char buffer[65536];
    while (read(fd, buffer, sizeof buffer) > 0) {
    }
}

static void do_rounds(void)
{
    for (int i = 0; i < rounds; i++) {
        if (fsync(fd) != 0)
            fail("fsync");
        if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) != 0)
            fail("sync_file_range");
        if (msync(map, length, MS_SYNC) != 0)
            fail("msync");
        int error = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (error != 0) {
            errno = error;
            fail("posix_fadvise");
        }
    }
}

static void *thread_main(void *unused)
{
    (void)unused;
    do_rounds();
    return NULL;
}

static void print_residency(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (length + page - 1) / page;
    unsigned char *vec = malloc(pages);
    if (vec == NULL || mincore(map, length, vec) != 0)
        fail("mincore");
    size_t resident = 0;
    for (size_t i = 0; i < pages; i++)
        resident += vec[i] & 1;
    printf("resident %zu of %zu\n", resident, pages);
}

static void on_usr2(int signal)
{
    (void)signal;
    static const char line[] = "got SIGUSR2\n";
    write(1, line, sizeof line - 1);
    _exit(7);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: calls loop|threads|fork|wait|slow FILE N [T|K]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argv[1];
    open_file(argv[2]);
    rounds = atoi(argv[3]);
    if (strcmp(mode, "loop") == 0) {
        do_rounds();
        errno = 0;
        int result = fsync(-1);
        printf("fsync(-1) %d %s\n", result, strerrorname_np(errno));
        printf("bad advice %s\n", strerrorname_np(posix_fadvise(fd, 0, 0, 99)));
        errno = 0;
        result = sync_file_range(fd, 0, 0, 0xff);
        printf("bad flags %d %s\n", result, strerrorname_np(errno));
        errno = 0;
        result = msync((char *)map + 1, length - 1, MS_SYNC);
        printf("misaligned msync %d %s\n", result, strerrorname_np(errno));
        print_residency();
    } else if (strcmp(mode, "threads") == 0) {
        int count = argc > 4 ? atoi(argv[4]) : 4;
        pthread_t threads[64];
        for (int i = 0; i < count && i < 64; i++)
            pthread_create(&threads[i], NULL, thread_main, NULL);
        for (int i = 0; i < count && i < 64; i++)
            pthread_join(threads[i], NULL);
    } else if (strcmp(mode, "fork") == 0) {
        int children = argc > 4 ? atoi(argv[4]) : 2;
        for (int i = 0; i < children; i++) {
            pid_t pid = fork();
            if (pid < 0)
                fail("fork");
            if (pid == 0) {
                printf("pid %d\n", getpid());
                do_rounds();
                _exit(0);
            }
        }
        printf("pid %d\n", getpid());
        do_rounds();
        while (wait(NULL) > 0) {
        }
    } else if (strcmp(mode, "wait") == 0) {
        signal(SIGUSR2, on_usr2);
        for (int i = 0; i < rounds; i++)
            fsync(fd);
        printf("ready\n");
        for (;;)
            pause();
    } else if (strcmp(mode, "slow") == 0) {
        printf("ready\n");
        struct timespec pause = {0, 20 * 1000 * 1000};
        for (int i = 0; i < rounds; i++) {
            int result = fsync(fd);
            printf("fsync %d\n", result == 0 ? 0 : errno);
            nanosleep(&pause, NULL);
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
