/*
 * authmod: postgres_exporter's configuration file (--config.file,
 * postgres_exporter.yml): the auth modules /probe?auth_module= names.
 *
 *   auth_modules:
 *     foo:
 *       type: userpass
 *       userpass: {username: monitor, password: secret}
 *       options: {sslmode: disable}
 *
 * A module's user and password replace any in the probed target, and its
 * options are added to the target's DSN. Read strictly, as upstream does
 * (unknown keys are errors), with "file:line:column" in every message; an
 * option libpq does not know is an error here rather than a failed probe.
 * The password is only ever in the module; no message holds it.
 */
#ifndef PGPULSE_AUTHMOD_H
#define PGPULSE_AUTHMOD_H

#include <stddef.h>

#include "dsn.h"

typedef struct pp_auth_module {
    char *name;     /* owned */
    char *username; /* owned, may be empty */
    char *password; /* owned, may be empty */
    char **keys;    /* owned: options, parallel to values */
    char **values;
    size_t nopts;
} pp_auth_module;

typedef struct pp_auth_modules {
    pp_auth_module *items; /* owned */
    size_t n;
} pp_auth_modules;

/* Parses the text of a configuration file; name is used in messages. An
 * empty document has no modules. Returns 0, or -1 with a message. */
int pp_auth_modules_parse(const char *name, const char *data, size_t len, pp_auth_modules *out,
                          char *err, size_t errlen) __attribute__((warn_unused_result));

/* Reads the file at path. A file that does not exist is no error when
 * missing_ok (the default file name, which upstream also only warns
 * about). */
int pp_auth_modules_load(const char *path, int missing_ok, pp_auth_modules *out, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

void pp_auth_modules_deinit(pp_auth_modules *m);

/* The module called name, or NULL. */
const pp_auth_module *pp_auth_modules_find(const pp_auth_modules *m, const char *name);

/* Applies a module to a DSN: its user and password replace the DSN's, its
 * options are set. */
void pp_auth_module_apply(const pp_auth_module *m, pp_dsn *dsn);

#endif
