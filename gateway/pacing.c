/* pacing.c -- local time for quiet hours and daily caps (see pacing.h).
 * The shared rate limits and caps themselves live in Redis (queue_pace). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gateway/pacing.h"

void pacing_set_timezone(const char *tz)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    if (strcmp(tz, "Asia/Shanghai") == 0 && stat(path, &st) != 0)
        tz = "CST-8";
    setenv("TZ", tz, 1);
    tzset();
}

/* The instant of local hh:mm on the day of `base` plus `days` days. */
static long long local_at(const struct tm *base, int minutes, int days)
{
    struct tm t = *base;
    t.tm_hour = minutes / 60;
    t.tm_min = minutes % 60;
    t.tm_sec = 0;
    t.tm_mday += days;
    t.tm_isdst = -1;
    return (long long)mktime(&t) * 1000;
}

long long pacing_quiet_until(int from_min, int to_min, long long now_ms)
{
    if (from_min == to_min)
        return 0;
    time_t now = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&now, &tm);
    int m = tm.tm_hour * 60 + tm.tm_min;
    int quiet = from_min < to_min ? (m >= from_min && m < to_min) : (m >= from_min || m < to_min);
    if (!quiet)
        return 0;
    /* the end is today when it is still ahead, else tomorrow */
    return local_at(&tm, to_min, m < to_min ? 0 : 1);
}

void pacing_local_day(long long now_ms, char day[16], long long *ms_to_midnight)
{
    time_t now = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(day, 16, "%Y%m%d", &tm);
    *ms_to_midnight = local_at(&tm, 0, 1) - now_ms;
    if (*ms_to_midnight < 1)
        *ms_to_midnight = 1;
}
