/* A preloaded library that makes time() report the wall clock stepped back
 * one hour from 1.5 s after the program starts, as after an NTP step or an
 * administrator's `date -s`. Every other clock is left alone. */
#define _GNU_SOURCE
#include <time.h>

static struct timespec start;

__attribute__((constructor)) static void remember_start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &start);
}

time_t time(time_t *out)
{
    struct timespec now, wall;
    clock_gettime(CLOCK_MONOTONIC, &now);
    clock_gettime(CLOCK_REALTIME, &wall);
    long long since_ms = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
    time_t seconds = wall.tv_sec - (since_ms >= 1500 ? 3600 : 0);
    if (out)
        *out = seconds;
    return seconds;
}
