/* A program for the install tests, run inside a chroot (often setuid root
 * and started as nobody). It reports whether it runs in secure-execution
 * mode and whether libfadvise_shim.so is mapped into it, makes one fsync,
 * then waits until its stdin closes, so that the test can signal it while
 * it is alive. Compiled on the host, which is Debian bookworm like the
 * chroot, so its glibc needs are met there; with musl-gcc for a musl root. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(void) {
    int shim = 0;
    char line[4096];
    FILE *maps = fopen("/proc/self/maps", "r");
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "libfadvise_shim.so"))
            shim = 1;
    int fd = open("/tmp/install-probe.data", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int synced = fd >= 0 && write(fd, "x", 1) == 1 && fsync(fd) == 0;
    printf("pid=%d secure=%lu shim=%d fsync=%d\n", (int)getpid(), getauxval(AT_SECURE), shim,
           synced);
    fflush(stdout);
    char byte;
    while (read(0, &byte, 1) > 0) {
    }
    return 0;
}
