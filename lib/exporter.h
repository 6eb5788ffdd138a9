/*
 * exporter: the whole process wired together: configuration, catalog
 * generations, the registry of targets, the snapshot and HTTP on one libuv
 * loop, until SIGTERM or SIGINT. SIGHUP (and POST /-/reload when enabled)
 * reloads: the command line is parsed again with the flags file and the
 * environment, the data sources and the catalog are loaded, and only when
 * all of it is valid does the registry switch to it.
 */
#ifndef PGPULSE_EXPORTER_H
#define PGPULSE_EXPORTER_H

#include <stdio.h>

#include "config.h"
#include "log.h"

/* Runs until a termination signal. cfg is what argc/argv parsed to at
 * start-up; argv is kept (borrowed) and parsed again at every reload.
 * Returns the process exit status: 0 after a clean shutdown, 1 when
 * start-up failed (the reason is logged). */
int pp_exporter_run(int argc, char **argv, const pp_config *cfg, const pp_log *log);

/* --dumpmaps: loads the catalog as a start would (flags applied) and
 * writes it to out. On error returns -1 with the message in err. */
int pp_exporter_dumpmaps(const pp_config *cfg, FILE *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
