/*
 * procstat: the process_* metrics (CPU, memory, descriptors, start time),
 * read from /proc/self as the Prometheus client libraries do.
 */
#ifndef PGPULSE_PROCSTAT_H
#define PGPULSE_PROCSTAT_H

typedef struct pp_procstat {
    double cpu_seconds; /* user + system */
    double resident_bytes;
    double virtual_bytes;
    double open_fds;
    double max_fds;
    double start_time; /* unix seconds */
} pp_procstat;

/* Fills st; fields that cannot be read are set to -1. */
void pp_procstat_read(pp_procstat *st);

#endif
