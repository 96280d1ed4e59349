/* Sets up an io_uring instance, says "ready", then sleeps until killed:
 * a process whose ring `fadvise-shim doctor PID` must report. */
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    struct io_uring ring;
    int error = io_uring_queue_init(8, &ring, 0);
    if (error < 0) {
        fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-error));
        return 2;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
