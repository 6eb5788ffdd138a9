/*
 * pgpulse: parse argv, build the config, run the exporter. All logic lives
 * in lib/.
 */
#include <stdio.h>

#include "config.h"
#include "exporter.h"
#include "log.h"

int main(int argc, char **argv)
{
    pp_config cfg;
    pp_log log;
    char err[512];
    pp_log_init(&log);
    if (pp_config_parse(&cfg, argc, argv, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "pgpulse: %s (see --help)\n", err);
        return 1;
    }
    if (cfg.show_help) {
        pp_config_usage(stdout);
        pp_config_deinit(&cfg);
        return 0;
    }
    if (cfg.show_version) {
        printf("pgpulse version %s\n", PGPULSE_VERSION);
        pp_config_deinit(&cfg);
        return 0;
    }
    if (cfg.dumpmaps) {
        int rc = pp_exporter_dumpmaps(&cfg, stdout, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "pgpulse: %s\n", err);
        pp_config_deinit(&cfg);
        return rc == 0 ? 0 : 1;
    }
    log.level = cfg.log_level;
    log.format = cfg.log_format;
    int status = pp_exporter_run(argc, argv, &cfg, &log);
    pp_config_deinit(&cfg);
    return status;
}
