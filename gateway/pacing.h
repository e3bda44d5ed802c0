/* pacing.h -- local time for quiet hours and daily caps.
 *
 * Pure functions of a given time (the caller's clock: tests pass any
 * instant they like). The daemon sets the process time zone once, before
 * its threads start, with pacing_set_timezone(); localtime_r() then gives
 * the configured zone's wall clock. */
#ifndef HERALD_PACING_H
#define HERALD_PACING_H

/* Sets TZ for the process. Asia/Shanghai works without tzdata (it has had
 * no daylight saving since 1991: "CST-8"). Call before threads start. */
void pacing_set_timezone(const char *tz);

/* With quiet hours from_min..to_min (minutes after local midnight; from ==
 * to: none; from > to spans midnight), returns 0 when now_ms is outside
 * them, else the instant (ms) they end. */
long long pacing_quiet_until(int from_min, int to_min, long long now_ms);

/* The local day of now_ms as "YYYYMMDD" and the ms until it ends. */
void pacing_local_day(long long now_ms, char day[16], long long *ms_to_midnight);

#endif
