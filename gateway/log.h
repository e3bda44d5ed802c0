/* log.h -- one logging macro with levels, checked before formatting.
 *
 * Every event is one line on stderr: time, level, module, text. Phone
 * numbers are masked by the caller with phone_mask() (gateway/phone.h);
 * message bodies are logged at LOG_DEBUG only; secrets never. */
#ifndef HERALD_LOG_H
#define HERALD_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

extern int gw_log_level;

/* Parses "debug", "info", "warn", "error". Returns the level or -1. */
int gw_log_level_parse(const char *s);

void gw_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gw_log(level, module, ...)                                  \
    do {                                                            \
        if ((level) >= gw_log_level)                                \
            gw_log_write((level), (module), __VA_ARGS__);           \
    } while (0)

#endif
