/* phone.h -- phone number normalisation and masking.
 *
 * Canonical form is E.164 with a leading '+': "+8613800138000". Accepted
 * input: +86 / 0086 / 86 prefixes, spaces, dashes, dots, parentheses and
 * full-width digits (U+FF10..U+FF19, full-width '+'). Chinese mobile numbers
 * are 11 digits starting 13-19. Other E.164 numbers are accepted only when
 * `allow_international` is set. */
#ifndef HERALD_PHONE_H
#define HERALD_PHONE_H

#include <stddef.h>

#define PHONE_MAX 20   /* "+" + 15 digits + NUL, with margin */

/* Normalises `in` (UTF-8) into `out` (PHONE_MAX bytes). Returns 0, or -1
 * with the reason in err (e.g. "not a Chinese mobile number: 12 digits"). */
int phone_normalize(const char *in, int allow_international,
                    char out[PHONE_MAX], char *err, size_t errlen);

/* Masks a number for logs: "+8613812345678" -> "138****5678"; anything
 * else keeps its first 3 and last 4 digits. `out` needs PHONE_MAX bytes.
 * Returns out. */
char *phone_mask(const char *number, char out[PHONE_MAX]);

/* The national part of a canonical Chinese number ("+8613800138000" ->
 * "13800138000"), or the number itself. Points into `canonical`. */
const char *phone_national(const char *canonical);

#endif
