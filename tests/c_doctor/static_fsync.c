/* Built with -static: no loader, so no LD_PRELOAD library can reach it. */
#include <unistd.h>

int main(void) {
    return fsync(1) == 0 ? 0 : 1;
}
