/*
 * clock: see clock.h.
 */
#include "clock.h"

#include <time.h>

double pp_clock_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
