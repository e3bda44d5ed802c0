/* phone.c -- phone numbers to one canonical E.164 form, and masking.
 *
 * Case systems send numbers as people type them: "138 0013 8000",
 * "+86-138-0013-8000", "008613800138000", full-width "１３８…". All become
 * "+8613800138000". What is not a Chinese mobile number is refused with
 * the reason, unless international numbers are allowed. */
#include <stdio.h>
#include <string.h>

#include "gateway/phone.h"

/* Decodes one UTF-8 sequence; returns its length or 0 when invalid. */
static int utf8_next(const unsigned char *s, unsigned *cp)
{
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
        *cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        *cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        return 3;
    }
    return 0;
}

int phone_normalize(const char *in, int allow_international,
                    char out[PHONE_MAX], char *err, size_t errlen)
{
    char digits[32];
    size_t nd = 0;
    int plus = 0;
    const unsigned char *p = (const unsigned char *)in;

    if (!in || !*in) {
        snprintf(err, errlen, "empty phone number");
        return -1;
    }
    while (*p) {
        unsigned cp;
        int len = utf8_next(p, &cp);
        if (len == 0) {
            snprintf(err, errlen, "phone number is not valid UTF-8");
            return -1;
        }
        p += len;
        if (cp >= 0xFF10 && cp <= 0xFF19)          /* full-width digits */
            cp = '0' + (cp - 0xFF10);
        else if (cp == 0xFF0B)                     /* full-width plus */
            cp = '+';
        else if (cp == 0xFF0D || cp == 0x3000 || cp == 0x2010 || cp == 0x2013
                 || cp == 0x2212 || cp == 0xFF08 || cp == 0xFF09)
            cp = ' ';                              /* full-width dash, space, brackets */
        if (cp >= '0' && cp <= '9') {
            if (nd >= sizeof digits - 1) {
                snprintf(err, errlen, "phone number has too many digits");
                return -1;
            }
            digits[nd++] = (char)cp;
        } else if (cp == '+') {
            if (nd > 0 || plus) {
                snprintf(err, errlen, "'+' may only start a phone number");
                return -1;
            }
            plus = 1;
        } else if (cp == ' ' || cp == '-' || cp == '.' || cp == '(' || cp == ')'
                   || cp == '\t') {
            continue;
        } else {
            snprintf(err, errlen, "phone number contains '%.*s', which is not a digit",
                     len, (const char *)p - len);
            return -1;
        }
    }
    digits[nd] = '\0';
    if (nd == 0) {
        snprintf(err, errlen, "phone number has no digits");
        return -1;
    }

    /* Strip the international prefix to get country code + national part. */
    const char *e164 = digits;          /* digits after the '+' */
    int international = plus;
    if (!plus && strncmp(digits, "00", 2) == 0) {
        e164 = digits + 2;
        international = 1;
    }
    const char *national = NULL;
    if (international) {
        if (strncmp(e164, "86", 2) == 0)
            national = e164 + 2;
    } else if (nd == 13 && strncmp(digits, "86", 2) == 0) {
        national = digits + 2;          /* "8613800138000" without a plus */
    } else {
        national = digits;
    }

    if (national) {
        size_t nl = strlen(national);
        if (nl == 11 && national[0] == '1' && national[1] >= '3' && national[1] <= '9') {
            snprintf(out, PHONE_MAX, "+86%.11s", national);
            return 0;
        }
        /* A national number, or a +86 one, that is not a mobile cannot take
         * an SMS, even where international numbers are allowed. */
        if (nl != 11)
            snprintf(err, errlen, "not a Chinese mobile number: %zu digits, expected 11", nl);
        else
            snprintf(err, errlen, "not a Chinese mobile number: must start with 13-19");
        return -1;
    }
    if (!allow_international) {
        snprintf(err, errlen, "not a Chinese mobile number (international numbers are not allowed: gateway.allow_international)");
        return -1;
    }
    size_t el = strlen(e164);
    if (e164[0] == '0' || el < 7 || el > 15) {
        snprintf(err, errlen, "not a valid E.164 number: %zu digits after the country code prefix", el);
        return -1;
    }
    snprintf(out, PHONE_MAX, "+%.15s", e164);
    return 0;
}

const char *phone_national(const char *canonical)
{
    if (strncmp(canonical, "+86", 3) == 0 && strlen(canonical) == 14)
        return canonical + 3;
    return canonical;
}

char *phone_mask(const char *number, char out[PHONE_MAX])
{
    const char *n = number ? phone_national(number) : "";
    if (*n == '+')
        n++;
    size_t len = strlen(n);
    if (len < 8) {
        snprintf(out, PHONE_MAX, "****");
        return out;
    }
    snprintf(out, PHONE_MAX, "%.3s****%s", n, n + len - 4);
    return out;
}
