/* replies.h -- reading what people answer to the monthly evaluation survey.
 *
 * Pure functions: bytes in, a verdict out; no Redis, no files, no clock
 * (tests/unit/test_replies.c feeds it a table of real-looking replies).
 *
 * A reply is, in order of precedence:
 *   optout    an opt-out keyword stands alone somewhere in it (TD, T, N, R,
 *             退订, STOP, 取消: any case, full-width, set off by spaces,
 *             punctuation, digits or a change of script): the number goes on
 *             the opt-out list, whatever else the reply says;
 *   optin     the whole reply is the configured opt-in keyword;
 *   parsed    four ratings (digits, ASCII or full-width, with or without
 *             separators, or words such as 满意 / 基本满意 / 不满意), or one
 *             rating that stands for all four, optionally followed by free
 *             text, which becomes the suggestion;
 *   partial   two or three ratings (the others stay 0), plus any text;
 *   unparsed  anything else (including the empty reply): the whole text is
 *             kept as the suggestion for staff to read. */
#ifndef HERALD_REPLIES_H
#define HERALD_REPLIES_H

#include <stddef.h>

#define REPLY_ASPECTS 4
#define REPLY_SCALE_MAX 9

/* The four aspects, in the order the survey text asks for them. */
extern const char *const reply_aspect_names[REPLY_ASPECTS];  /* 执法程序 ... 廉洁执法 */
extern const char *const reply_aspect_keys[REPLY_ASPECTS];   /* procedure ... integrity */

typedef enum {
    REPLY_PARSED = 0, REPLY_PARTIAL, REPLY_UNPARSED, REPLY_OPTOUT, REPLY_OPTIN
} reply_status;

const char *reply_status_name(reply_status s);   /* "parsed", "partial", ... */

/* The rating scale: labels[0] is rating 1 (default 满意, 基本满意, 不满意).
 * The best rating is 1; rating 1 counts as satisfied in the report. */
typedef struct reply_opts {
    const char *labels[REPLY_SCALE_MAX];
    int nlabels;
    const char *optin_keyword;      /* "" or NULL: none */
} reply_opts;

/* The default scale and keywords. */
void reply_opts_default(reply_opts *o);

typedef struct reply_verdict {
    reply_status status;
    int ratings[REPLY_ASPECTS];     /* 1..nlabels, 0 = not given */
    char *suggestion;               /* malloc'd, never NULL ("" when none) */
} reply_verdict;

/* Reads `text` (UTF-8, len bytes; invalid bytes are kept as text). Returns
 * 0, or -1 when out of memory. The caller frees v->suggestion with
 * reply_verdict_clear(). */
int reply_parse(const char *text, size_t len, const reply_opts *o, reply_verdict *v);
void reply_verdict_clear(reply_verdict *v);

#endif
