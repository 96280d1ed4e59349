/* Run setuid root by an unprivileged user: reports whether the shim is
 * mapped into this process, who it runs as, and whether its calls reached
 * the kernel. A seccomp filter makes fadvise64 and fsync fail with EPERM in
 * the kernel, so a call that returns EPERM went through and a call that
 * returns success was answered by the shim (dropped).
 *
 * Prints `shim mapped yes|no`, `uid R euid E secure S`, then
 * `fadvise kernel|dropped|other` and `fsync kernel|dropped|other`.
 *
 * Usage: secure_probe FILE */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int shim_mapped(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (maps && fgets(line, sizeof line, maps))
        found |= strstr(line, "libfadvise_shim.so") != NULL;
    if (maps)
        fclose(maps);
    return found;
}

static int deny_in_kernel(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fadvise64, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fsync, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

static const char *verdict(int error)
{
    return error == EPERM ? "kernel" : error == 0 ? "dropped" : "other";
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: secure_probe FILE\n");
        return 2;
    }
    printf("shim mapped %s\n", shim_mapped() ? "yes" : "no");
    printf("uid %d euid %d secure %lu\n", (int)getuid(), (int)geteuid(),
           getauxval(AT_SECURE));
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    if (!deny_in_kernel()) {
        perror("seccomp");
        return 2;
    }
    printf("fadvise %s\n", verdict(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)));
    errno = 0;
    printf("fsync %s\n", verdict(fsync(fd) == 0 ? 0 : errno));
    return 0;
}
