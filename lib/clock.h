/*
 * clock: wall-clock time for the values pages show (timestamps, ages).
 * Schedules and durations use the loop's monotonic clock instead.
 */
#ifndef PGPULSE_CLOCK_H
#define PGPULSE_CLOCK_H

/* Unix time in seconds, with sub-second precision. */
double pp_clock_wall(void);

#endif
