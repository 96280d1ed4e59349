/* A plugin loaded with dlopen and unloaded with dlclose mid-run; built
 * twice under two names from this one source, so that both copies have the
 * same code and, loaded one after the other at the same address, the same
 * return addresses. */
#include <unistd.h>

void plugin_work(int fd, int n)
{
    for (int i = 0; i < n; i++)
        fsync(fd);
}
