/* Walks a cached `path` rule verdict through every way the file behind a
 * descriptor number can change after the shim has seen it: every probe is
 * made twice, so the second call meets what the first one cached. Under a
 * seccomp filter that answers EPERM to the intercepted syscalls, each call
 * prints `STEP CALL ret=R errno=E`: a call that reached the kernel fails
 * with EPERM (posix_fadvise returns 1), a call the shim dropped returns 0
 * with errno untouched (SENTINEL).
 *
 * Usage: cache_cases MATCH_DIR OTHER_DIR POLICY_FILE
 *        cache_cases --exec-child MATCH_FD OTHER_FD   (run by itself)
 * POLICY_FILE is rewritten near the end (a path rule that passes instead of
 * dropping) to see a cached verdict give way to the reloaded policy. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "../c/deny.h"

#define SENTINEL 12345

static const char *match_dir, *other_dir;

static void show(const char *step, const char *call, long ret, int err)
{
    printf("%s %s ret=%ld errno=%d\n", step, call, ret, err);
}

/* posix_fadvise and fsync on `fd`, twice: the second pair meets the cache. */
static void probe(const char *step, int fd)
{
    for (int round = 0; round < 2; round++) {
        errno = SENTINEL;
        long ret = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        show(step, "posix_fadvise", ret, errno);
        errno = SENTINEL;
        ret = fsync(fd);
        show(step, "fsync", ret, errno);
    }
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void join(char *out, const char *dir, const char *name)
{
    snprintf(out, 4096, "%s/%s", dir, name);
}

/* Opens PATH read-write, creating it with one page of data. An existing
 * file is left as it is: a truncation would change its ctime, and the
 * cache must be seen to tell files apart without that help. */
static int open_path(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    struct stat status;
    if (fd < 0 || fstat(fd, &status) != 0 ||
        (status.st_size == 0 && ftruncate(fd, sysconf(_SC_PAGESIZE)) != 0))
        die(path);
    return fd;
}

static int open_in(const char *dir, const char *name)
{
    char path[4096];
    join(path, dir, name);
    return open_path(path);
}

static void same_number(int expected, int got)
{
    if (got != expected) {
        fprintf(stderr, "expected fd %d, got %d\n", expected, got);
        exit(3);
    }
}

/* close(2) with the syscall instruction, as the Go runtime makes it: no
 * libc symbol, no hook of the shim sees it. */
static void inline_close(int fd)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"((long)SYS_close), "D"((long)fd)
                     : "rcx", "r11", "memory");
    if (ret != 0)
        die("inline close");
}

static void wait_child(pid_t pid)
{
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child %d failed\n", (int)pid);
        exit(2);
    }
}

static void reuse(void)
{
    int fd = open_in(match_dir, "a");
    probe("open-match", fd);
    close(fd);
    same_number(fd, open_in(other_dir, "b"));
    probe("close-then-other", fd);
    close(fd);
    same_number(fd, open_in(match_dir, "a"));
    probe("close-then-match", fd);

    syscall(SYS_close, fd);
    same_number(fd, open_in(other_dir, "b"));
    probe("syscall-close-then-other", fd);
    inline_close(fd);
    same_number(fd, open_in(match_dir, "a"));
    probe("inline-close-then-match", fd);
    inline_close(fd);
    same_number(fd, open_in(other_dir, "b"));
    probe("inline-close-then-other", fd);
    close(fd);

    /* fclose closes inside libc, past any hook on close. */
    char path[4096];
    join(path, match_dir, "a");
    FILE *file = fopen(path, "r+");
    int number = fileno(file);
    probe("fopen-match", number);
    fclose(file);
    join(path, other_dir, "b");
    file = fopen(path, "r+");
    same_number(number, fileno(file));
    probe("fclose-then-other", number);
    fclose(file);
}

static void duplicates(void)
{
    int match = open_in(match_dir, "c");
    int other = open_in(other_dir, "d");
    probe("dup2-before", match);
    same_number(match, dup2(other, match));
    probe("dup2-other-onto-match", match);
    int match2 = open_in(match_dir, "c");
    same_number(match, dup3(match2, match, O_CLOEXEC));
    probe("dup3-match-onto-it", match);
    same_number(match, syscall(SYS_dup3, other, match, 0));
    probe("raw-dup3-other-onto-it", match);

    /* F_DUPFD takes the lowest free number from its argument: here one
     * whose cached file was closed behind the shim's back. */
    int high = fcntl(other, F_DUPFD, 120);
    probe("fcntl-dupfd-other", high);
    inline_close(high);
    same_number(high, fcntl(match2, F_DUPFD, high));
    probe("fcntl-dupfd-match-same-number", high);
    for (int fd = 3; fd < 200; fd++)
        close(fd);
}

static void across_fork_and_exec(const char *self)
{
    int match = open_in(match_dir, "a");
    int other = open_in(other_dir, "b");
    probe("before-fork-match", match);
    probe("before-fork-other", other);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        probe("fork-child-match", match);
        /* The child's table is its own; so is its copy of the cache. */
        dup2(other, match);
        probe("fork-child-dup2-other-onto-match", match);
        fflush(stdout);
        _exit(0);
    }
    wait_child(pid);
    probe("parent-after-child-dup2", match);

    /* The exec'd program starts with the numbers swapped behind the
     * cache's back: a fresh process, a fresh cache. */
    int spare = dup(match);
    inline_close(match);
    same_number(match, dup(other));
    inline_close(other);
    same_number(other, dup(spare));
    close(spare);
    probe("swapped-behind-cache-match", other);
    probe("swapped-behind-cache-other", match);
    char match_text[16], other_text[16];
    snprintf(match_text, sizeof match_text, "%d", other);
    snprintf(other_text, sizeof other_text, "%d", match);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        execl(self, self, "--exec-child", match_text, other_text, (char *)NULL);
        die("execl");
    }
    wait_child(pid);
    close(match);
    close(other);
}

static void exec_child(int match, int other)
{
    probe("exec-inherited-match", match);
    probe("exec-inherited-other", other);
}

static void names_change(void)
{
    char from[4096], to[4096];
    int fd = open_in(match_dir, "moving");
    probe("before-rename-out", fd);
    join(from, match_dir, "moving");
    join(to, other_dir, "moving");
    if (rename(from, to) != 0)
        die("rename");
    probe("renamed-out-of-match", fd);
    if (rename(to, from) != 0)
        die("rename");
    probe("renamed-back-into-match", fd);
    close(fd);

    /* Two names, one inode: the verdict follows the name it was opened by. */
    join(from, match_dir, "linked");
    join(to, other_dir, "linked");
    close(open_path(from));
    if (link(from, to) != 0)
        die("link");
    fd = open_path(from);
    probe("hard-link-opened-by-match-name", fd);
    inline_close(fd);
    same_number(fd, open_path(to));
    probe("hard-link-opened-by-other-name", fd);
    inline_close(fd);
    same_number(fd, open_path(from));
    probe("hard-link-match-name-again", fd);
    close(fd);

    /* A name replaced by another file (rename over it): the old descriptor
     * keeps its file (now unlinked, its name in match); a new open gets the
     * new file. */
    join(to, other_dir, "replaced");
    fd = open_path(to);
    probe("before-replace-other", fd);
    int keep = open_in(match_dir, "new");
    char new_path[4096];
    join(new_path, match_dir, "new");
    if (rename(new_path, to) != 0)
        die("rename over");
    probe("replaced-name-old-fd", fd);
    inline_close(fd);
    same_number(fd, open_path(to));
    probe("replaced-name-reopened", fd);
    inline_close(fd);
    same_number(fd, open_in(match_dir, "fresh"));
    probe("after-replace-match", fd);
    close(fd);
    close(keep);

    /* ext4 gives a freed inode's number to the next file created in the
     * same block group (so in the same directory), and without a look at
     * its times in between (no fstat), a new file's times are the clock's
     * coarse tick: the same as the unlinked file's last change. The new
     * file, moved out of match, must not inherit the verdict of the
     * unlinked one that had its inode number and its descriptor number. */
    for (int round = 0; round < 3; round++) {
        join(from, match_dir, "unlinked");
        fd = open(from, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || ftruncate(fd, sysconf(_SC_PAGESIZE)) != 0 || unlink(from) != 0)
            die(from);
        probe("unlinked-match", fd);
        inline_close(fd);
        join(from, match_dir, "reusing");
        join(to, other_dir, "reusing");
        same_number(fd, open(from, O_RDWR | O_CREAT | O_EXCL, 0600));
        if (ftruncate(fd, sysconf(_SC_PAGESIZE)) != 0 || rename(from, to) != 0)
            die(to);
        probe("new-file-after-unlinked", fd);
        unlink(to);
        inline_close(fd);
    }

    /* A parent directory renamed: no inode of the file changes, so the
     * cache may keep the old verdict for up to its freshness bound (1 s). */
    join(from, match_dir, "parent");
    mkdir(from, 0700);
    fd = open_in(from, "inside");
    probe("before-parent-rename", fd);
    join(to, other_dir, "parent");
    if (rename(from, to) != 0)
        die("rename parent");
    probe("parent-renamed-at-once", fd);
    struct timespec pause = {1, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    probe("parent-renamed-after-bound", fd);
    close(fd);
}

/* The same inode through a bind mount of the match directory under other/,
 * in a mount namespace of this process's own (where it may have one; made
 * before the seccomp filter, which does not affect it). */
static int bind_mount_made(void)
{
    char mount_point[4096];
    join(mount_point, other_dir, "bind");
    mkdir(mount_point, 0700);
    return unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
           mount(match_dir, mount_point, NULL, MS_BIND, NULL) == 0;
}

static void bind_mount(int made)
{
    char mount_point[4096], path[4096];
    if (!made) {
        printf("bind-mount-skipped\n");
        return;
    }
    join(mount_point, other_dir, "bind");
    int fd = open_in(match_dir, "bound");
    probe("bind-opened-by-match-path", fd);
    inline_close(fd);
    join(path, mount_point, "bound");
    same_number(fd, open_path(path));
    probe("bind-opened-by-other-mount", fd);
    close(fd);
}

/* Threads and a signal handler racing: one thread swaps which file a
 * number names; the others, and a SIGALRM handler, call on descriptors
 * that never change, and count any verdict that is not theirs. */
static atomic_int stop, wrong;
static int handler_fd;

static void on_alarm(int signal)
{
    (void)signal;
    int saved = errno;
    if (posix_fadvise(handler_fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
        atomic_fetch_add(&wrong, 1);
    errno = saved;
}

struct steady {
    int fd;
    int expected;
};

static void *steady_caller(void *argument)
{
    struct steady *steady = argument;
    while (!atomic_load(&stop))
        if (posix_fadvise(steady->fd, 0, 0, POSIX_FADV_DONTNEED) != steady->expected)
            atomic_fetch_add(&wrong, 1);
    return NULL;
}

static void racing(void)
{
    int match = open_in(match_dir, "steady-match");
    int other = open_in(other_dir, "steady-other");
    int swapped = open_in(match_dir, "swapped");
    int match_source = dup(match), other_source = dup(other);
    handler_fd = match;
    signal(SIGALRM, on_alarm);
    struct itimerval every = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &every, NULL);
    struct steady steadies[] = {{match, 0}, {other, 1}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, steady_caller, &steadies[i]);
    for (int i = 0; i < 4000; i++) {
        dup2(i % 2 ? match_source : other_source, swapped);
        posix_fadvise(swapped, 0, 0, POSIX_FADV_DONTNEED);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("racing wrong=%d\n", atomic_load(&wrong));
    dup2(other_source, swapped);
    probe("after-racing-other", swapped);
    dup2(match_source, swapped);
    probe("after-racing-match", swapped);
    for (int fd = 3; fd < 200; fd++)
        close(fd);
}

/* The policy file rewritten: the same path rule, now passing. Each round
 * calls on the cached file, then on a file never seen before: in the
 * first round where the new file's call reaches the kernel, the new policy
 * is in force, and the cached verdict must have given way too. */
static void reload(const char *policy_file)
{
    int fd = open_in(match_dir, "a");
    probe("before-reload", fd);
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.new", policy_file);
    FILE *policy = fopen(temporary, "w");
    fprintf(policy, "[[rule]]\ncall = \"*\"\npath = [\"%s/**\"]\naction = \"pass\"\n", match_dir);
    fclose(policy);
    if (rename(temporary, policy_file) != 0)
        die("rename policy");
    for (int i = 0; i < 200; i++) {
        /* A new ctime: the cached file is looked up again now, so its entry
         * is young when the new policy comes (older than the freshness
         * bound, it would be looked up again anyway). */
        fchmod(fd, 0600);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        int fresh = open_in(match_dir, "fresh-each-round");
        char path[4096];
        join(path, match_dir, "fresh-each-round");
        unlink(path);
        int reloaded = posix_fadvise(fresh, 0, 0, POSIX_FADV_DONTNEED) != 0;
        close(fresh);
        if (reloaded)
            break;
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    probe("after-reload", fd);
    close(fd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "--exec-child") == 0) {
        exec_child(atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: cache_cases MATCH_DIR OTHER_DIR POLICY_FILE\n");
        return 2;
    }
    match_dir = argv[1];
    other_dir = argv[2];
    int bind_made = bind_mount_made();
    deny_intercepted_syscalls();
    bind_mount(bind_made);
    reuse();
    duplicates();
    across_fork_and_exec("/proc/self/exe");
    names_change();
    racing();
    reload(argv[3]);
    return 0;
}
