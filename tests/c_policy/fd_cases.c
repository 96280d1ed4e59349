/* Walks a path rule through every way an fd number can change the file it
 * names: close and reopen, dup, dup2, dup3, fcntl(F_DUPFD), fork, exec,
 * unlink, rename, symlinks, mappings (also after their fd is closed), and
 * calls with no file. Under a seccomp filter that answers EPERM to the
 * intercepted syscalls, every probe prints `STEP CALL ret=R errno=E`: a call
 * that reached the kernel fails with EPERM (posix_fadvise returns 1), a call
 * the shim dropped returns 0 with errno untouched (SENTINEL).
 *
 * Usage: fd_cases MATCH_DIR OTHER_DIR
 *        fd_cases --exec-child MATCH_FD OTHER_FD   (run by itself) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../c/deny.h"

#define SENTINEL 12345

static const char *match_dir, *other_dir;

static void show(const char *step, const char *call, long ret, int err)
{
    printf("%s %s ret=%ld errno=%d\n", step, call, ret, err);
}

/* posix_fadvise and fsync on `fd`: one line each. */
static void probe(const char *step, int fd)
{
    errno = SENTINEL;
    long ret = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    show(step, "posix_fadvise", ret, errno);
    errno = SENTINEL;
    ret = fsync(fd);
    show(step, "fsync", ret, errno);
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

/* Opens DIR/NAME read-write, creating it with one page of data. */
static int open_in(const char *dir, const char *name)
{
    char path[4096];
    join(path, dir, name);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ftruncate(fd, sysconf(_SC_PAGESIZE)) != 0)
        die(path);
    return fd;
}

static void same_number(int expected, int got)
{
    if (got != expected) {
        fprintf(stderr, "expected fd %d, got %d\n", expected, got);
        exit(3);
    }
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

static void reuse_after_close(void)
{
    int match = open_in(match_dir, "a");
    probe("open-match", match);
    close(match);
    int other = open_in(other_dir, "b");
    same_number(match, other);
    probe("reopen-other-same-number", other);
    close(other);
    same_number(other, open_in(match_dir, "a"));
    probe("reopen-match-same-number", other);
    close(other);
}

static void duplicates(void)
{
    int match = open_in(match_dir, "a");
    int copy = dup(match);
    close(match);
    probe("dup-of-match", copy);
    close(copy);

    int held = open_in(match_dir, "c");
    int other = open_in(other_dir, "d");
    probe("dup2-before", held);
    same_number(held, dup2(other, held));
    probe("dup2-other-onto-match-number", held);

    int match2 = open_in(match_dir, "c");
    same_number(other, dup2(match2, other));
    probe("dup2-match-onto-other-number", other);

    int other2 = open_in(other_dir, "d");
    same_number(match2, dup3(other2, match2, O_CLOEXEC));
    probe("dup3-other-onto-match-number", match2);

    int match3 = open_in(match_dir, "a");
    probe("fcntl-dupfd-of-match", fcntl(match3, F_DUPFD, 100));
    probe("fcntl-dupfd-cloexec-of-other", fcntl(other2, F_DUPFD_CLOEXEC, 100));
    for (int fd = 3; fd < 200; fd++)
        close(fd);
}

static void across_fork_and_exec(const char *self)
{
    int match = open_in(match_dir, "a");
    int other = open_in(other_dir, "b");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        probe("fork-child-match", match);
        probe("fork-child-other", other);
        /* The child's fd table is its own: this must not affect the parent. */
        dup2(other, match);
        probe("fork-child-dup2-other-onto-match", match);
        fflush(stdout);
        _exit(0);
    }
    wait_child(pid);
    probe("parent-after-child-dup2", match);

    char match_text[16], other_text[16];
    snprintf(match_text, sizeof match_text, "%d", match);
    snprintf(other_text, sizeof other_text, "%d", other);
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

static void msync_one(const char *step, void *map)
{
    errno = SENTINEL;
    long ret = msync(map, sysconf(_SC_PAGESIZE), MS_SYNC);
    show(step, "msync", ret, errno);
}

static void *map_of(int fd)
{
    void *map = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        die("mmap");
    return map;
}

static void mappings(void)
{
    int match = open_in(match_dir, "a");
    int other = open_in(other_dir, "b");
    void *match_map = map_of(match);
    void *other_map = map_of(other);
    msync_one("msync-match", match_map);
    msync_one("msync-other", other_map);
    /* A mapping outlives its fd; its file is still the one mapped. */
    close(match);
    close(other);
    msync_one("msync-match-fd-closed", match_map);
    msync_one("msync-other-fd-closed", other_map);
    munmap(match_map, sysconf(_SC_PAGESIZE));
    munmap(other_map, sysconf(_SC_PAGESIZE));

    /* Far down /proc/self/maps: later mappings go below it, and alternating
     * protections keep them from merging, so hundreds of lines (more than
     * the shim reads at once) come before its own. */
    enum { FILLERS = 400 };
    static void *fillers[FILLERS];
    long page = sysconf(_SC_PAGESIZE);
    int deep = open_in(match_dir, "deep");
    void *deep_map = map_of(deep);
    for (int i = 0; i < FILLERS; i++) {
        int protection = i % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
        fillers[i] = mmap(NULL, page, protection, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (fillers[i] == MAP_FAILED)
            die("mmap filler");
    }
    msync_one("msync-match-behind-many-mappings", deep_map);
    for (int i = 0; i < FILLERS; i++)
        munmap(fillers[i], page);
    munmap(deep_map, page);
    close(deep);
}

static void names_change(void)
{
    char from[4096], to[4096];
    int deleted = open_in(match_dir, "deleted");
    join(from, match_dir, "deleted");
    unlink(from);
    probe("unlinked-match", deleted);
    close(deleted);

    int moved_out = open_in(match_dir, "moved-out");
    join(from, match_dir, "moved-out");
    join(to, other_dir, "moved-out");
    if (rename(from, to) != 0)
        die("rename");
    probe("renamed-out-of-match", moved_out);
    close(moved_out);

    int moved_in = open_in(other_dir, "moved-in");
    join(from, other_dir, "moved-in");
    join(to, match_dir, "moved-in");
    if (rename(from, to) != 0)
        die("rename");
    probe("renamed-into-match", moved_in);
    close(moved_in);

    /* The file behind the fd counts, not the name it was opened by. */
    join(to, match_dir, "link-out");
    join(from, other_dir, "target");
    close(open_in(other_dir, "target"));
    if (symlink(from, to) != 0)
        die("symlink");
    int via_link = open(to, O_RDWR);
    probe("symlink-in-match-to-other", via_link);
    close(via_link);

    char deep[4096];
    join(deep, match_dir, "sub");
    mkdir(deep, 0700);
    int nested = open_in(deep, "nested");
    probe("nested-in-match", nested);
    close(nested);
}

static void other_calls(void)
{
    int match = open_in(match_dir, "a");
    long page = sysconf(_SC_PAGESIZE);
    errno = SENTINEL;
    long ret = syscall(SYS_fadvise64, match, 0L, 0L, POSIX_FADV_DONTNEED);
    show("match", "sys_fadvise64", ret, errno);
    errno = SENTINEL;
    ret = readahead(match, 0, page);
    show("match", "readahead", ret, errno);
    errno = SENTINEL;
    ret = sync_file_range(match, 0, 0, SYNC_FILE_RANGE_WRITE);
    show("match", "sync_file_range", ret, errno);
    errno = SENTINEL;
    ret = fdatasync(match);
    show("match", "fdatasync", ret, errno);
    errno = SENTINEL;
    ret = syncfs(match);
    show("match", "syncfs", ret, errno);
    /* sync has no file, so no path rule can match it. */
    errno = SENTINEL;
    ret = syscall(SYS_sync);
    show("no-file", "sys_sync", ret, errno);
    int pipe_ends[2];
    if (pipe(pipe_ends) != 0)
        die("pipe");
    probe("pipe", pipe_ends[0]);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    close(match);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "--exec-child") == 0) {
        exec_child(atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: fd_cases MATCH_DIR OTHER_DIR\n");
        return 2;
    }
    match_dir = argv[1];
    other_dir = argv[2];
    deny_intercepted_syscalls();
    reuse_after_close();
    duplicates();
    across_fork_and_exec("/proc/self/exe");
    mappings();
    names_change();
    other_calls();
    return 0;
}
