/*
 * exporter: the whole process wired together: catalog, data sources,
 * targets, snapshot and HTTP on one libuv loop, until SIGTERM or SIGINT.
 */
#ifndef PGPULSE_EXPORTER_H
#define PGPULSE_EXPORTER_H

#include "config.h"
#include "log.h"

/* Runs until a termination signal. Returns the process exit status: 0
 * after a clean shutdown, 1 when start-up failed (the reason is logged). */
int pp_exporter_run(const pp_config *cfg, const pp_log *log);

#endif
