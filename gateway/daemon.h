/* daemon.h -- `herald run`: workers, promoter, reclaimer, inbound poller. */
#ifndef HERALD_DAEMON_H
#define HERALD_DAEMON_H

#include "gateway/config.h"

typedef struct gw_run_opts {
    int max_runtime_s;        /* 0: run until a signal; else stop by itself (tests) */
} gw_run_opts;

/* Runs the gateway until SIGTERM/SIGINT (or max_runtime). Returns the
 * process exit code. */
int gw_daemon_run(gw_config *cfg, const gw_run_opts *o);

/* Delay before attempt `attempts + 1`: base * 2^(attempts-1), capped, with
 * up to jitter_percent added at random. */
long long gw_backoff_ms(const gw_config *cfg, int attempts, unsigned *seed);

#endif
