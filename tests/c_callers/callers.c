/* Calls from everywhere: liba (3 of each), libb (5 of each), main itself
 * (7 fsync, 1 fdatasync), then a plugin dlopen'ed, used (4 fsync) and
 * dlclose'd, then a second plugin the same way (2 fsync).
 * Usage: callers FILE PLUGIN_ONE PLUGIN_TWO [wait]
 * With `wait`, it then prints "ready" and waits for a signal, so that it
 * can be looked at alive. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void liba_work(int fd, int n);
void libb_work(int fd, int n);

static int use_plugin(const char *path, int fd, int n)
{
    void *plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!plugin) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return -1;
    }
    void (*work)(int, int) = (void (*)(int, int))dlsym(plugin, "plugin_work");
    if (!work) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return -1;
    }
    work(fd, n);
    return dlclose(plugin);
}

int main(int argc, char **argv)
{
    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "wait") == 0)) {
        fprintf(stderr, "usage: callers FILE PLUGIN_ONE PLUGIN_TWO [wait]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1) {
        perror(argv[1]);
        return 1;
    }
    liba_work(fd, 3);
    libb_work(fd, 5);
    for (int i = 0; i < 7; i++)
        fsync(fd);
    fdatasync(fd);
    if (use_plugin(argv[2], fd, 4) != 0 || use_plugin(argv[3], fd, 2) != 0)
        return 1;
    if (argc == 5) {
        printf("ready\n");
        fflush(stdout);
        pause();
    }
    return 0;
}
