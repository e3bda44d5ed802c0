/* segment.c -- SMS part counting, the way libgammu 1.42 splits a text.
 *
 * The gateway renders a template, then asks here how many SMS parts the
 * text will cost before it is queued (catalog_render checks max_parts).
 * The GSM modem driver hands the same text to libgammu's
 * GSM_EncodeMultiPartSMS with SMS_ConcatenatedAutoTextLong, so the answer
 * here must be libgammu's answer, quirks included. What libgammu does,
 * checked against the library itself (tests/unit/test_segment.c):
 *
 *  - Choice of coding: it encodes the UTF-16 text to the GSM default
 *    alphabet (with the extension table), decodes it back and compares. Any
 *    difference means UCS-2. Its default-alphabet table has Ç (U+00C7) at
 *    0x09 and, in the ESC slot 0x1B, U+00B9 (superscript one). So '¹' counts
 *    as 7-bit, unless the byte after it is one that the decoder reads as an
 *    escape sequence ("¹(" decodes to "{"): then the round trip fails and
 *    the text goes out in UCS-2. Tab, '`', 'ç' and the like force UCS-2.
 *  - 7-bit: at most 160 septets in one part, else 153 per part; an
 *    extension character (2 septets) is never split across parts.
 *  - UCS-2: at most 70 units in one part, else 67 per part. A part never
 *    ends on a lead surrogate; otherwise, if the next part would start with
 *    a combining mark (U+0300-036F, 1AB0-1AFF, 1DC0-1DFF, 20D0-20FF,
 *    FE20-FE2F) the character before it moves along too; and a part
 *    boundary between two regional-indicator symbols moves back by one
 *    symbol.
 *  - libgammu stops at 50 parts and at 5000 septets (it truncates the
 *    rest); this counter does not truncate, it reports the true number, so
 *    a caller can refuse such a text instead of losing its end.
 *
 * Pure: bytes in, numbers out; no allocation, no I/O. */
#include "templates/segment.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEG_SINGLE_SEPTETS  160
#define SEG_MULTI_SEPTETS   153
#define SEG_SINGLE_UNITS    70
#define SEG_MULTI_UNITS     67
#define SEG_ESC             0x1B

/* The GSM 03.38 default alphabet as libgammu 1.42 tabulates it: index is
 * the septet, value the Unicode code point. 0x1B (escape) holds U+00B9 in
 * libgammu's table, see the note at the top. */
static const uint16_t gsm_basic[128] = {
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,
    0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,
    0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
    0x03A3, 0x0398, 0x039E, 0x00B9, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
    0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027,
    0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,
    0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
    0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F,
    0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047,
    0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F,
    0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057,
    0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
    0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067,
    0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,
    0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,
    0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};

/* The extension table: ESC followed by `code` stands for `cp`. */
static const struct { uint8_t code; uint16_t cp; } gsm_ext[] = {
    { 0x0A, 0x000C },   /* form feed */
    { 0x14, 0x005E },   /* ^ */
    { 0x28, 0x007B },   /* { */
    { 0x29, 0x007D },   /* } */
    { 0x2F, 0x005C },   /* \ */
    { 0x3C, 0x005B },   /* [ */
    { 0x3D, 0x007E },   /* ~ */
    { 0x3E, 0x005D },   /* ] */
    { 0x40, 0x007C },   /* | */
    { 0x65, 0x20AC },   /* euro */
};
#define GSM_NEXT (sizeof gsm_ext / sizeof gsm_ext[0])

static void set_err(char *err, size_t errlen, const char *fmt, size_t at)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, at);
}

/* -1 if u is not in the extension table, else its code. */
static int ext_code(uint32_t u)
{
    if (u > 0x7E && u != 0x20AC)      /* fast path: CJK text is all past the table */
        return -1;
    for (size_t i = 0; i < GSM_NEXT; i++)
        if (gsm_ext[i].cp == u)
            return gsm_ext[i].code;
    return -1;
}

static int is_ext_code(int b)
{
    for (size_t i = 0; i < GSM_NEXT; i++)
        if (gsm_ext[i].code == b)
            return 1;
    return 0;
}

/* -1 if u is not in the basic table, else its septet. */
static int basic_code(uint32_t u)
{
    if (u > 0x03A9)                   /* the table's largest code point */
        return -1;
    for (int i = 0; i < 128; i++)
        if (gsm_basic[i] == u)
            return i;
    return -1;
}

/* Decodes one UTF-8 sequence at s[*i] (n bytes in all). Returns the code
 * point and advances *i, or returns -1 on an invalid, overlong, truncated
 * or surrogate sequence, and on NUL (libgammu stops at a zero unit, so a
 * NUL would silently cut the message). */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp, min;
    size_t need;

    if (c == 0)
        return -1;
    if (c < 0x80) { (*i)++; return c; }
    if (c >= 0xC2 && c <= 0xDF)      { need = 1; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
    else return -1;
    if (*i + need >= n)
        return -1;
    for (size_t k = 1; k <= need; k++) {
        unsigned char d = s[*i + k];
        if ((d & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += need + 1;
    return (long)cp;
}

/* Does the GSM round trip of the code point at index k (within cps[0..n))
 * fail in libgammu's check? Characters outside both tables always fail;
 * U+00B9 (libgammu's ESC slot) fails when the next encoded byte forms an
 * escape sequence with it. */
static int forces_ucs2(const uint32_t *cps, size_t n, size_t k)
{
    uint32_t u = cps[k];
    if (ext_code(u) >= 0)
        return 0;
    int b = basic_code(u);
    if (b < 0)
        return 1;
    if (b == SEG_ESC && k + 1 < n) {
        /* An extension character encodes as ESC first: no sequence. */
        if (ext_code(cps[k + 1]) >= 0)
            return 0;
        int nb = basic_code(cps[k + 1]);
        return nb >= 0 && is_ext_code(nb);
    }
    return 0;
}

static int is_combining(uint16_t u)
{
    return (u >= 0xFE20 && u <= 0xFE2F) || (u >= 0x0300 && u <= 0x036F) ||
           (u >= 0x1AB0 && u <= 0x1AFF) || (u >= 0x1DC0 && u <= 0x1DFF) ||
           (u >= 0x20D0 && u <= 0x20FF);
}

static int is_ri_low(uint16_t u)
{
    return u >= 0xDDE6 && u <= 0xDDFF;
}

/* How many UTF-16 units of u[0..len) go into the next UCS-2 part of at
 * most `room` units, with libgammu's boundary adjustments. */
static size_t ucs2_take(const uint16_t *u, size_t len, size_t room)
{
    size_t copy = len < room ? len : room;
    int moved = 0;

    if (copy > 1 && u[copy - 1] >= 0xD800 && u[copy - 1] <= 0xDBFF) {
        copy--;
        moved = 1;
    }
    if (!moved && copy > 1 && copy < len && is_combining(u[copy]))
        copy--;
    if (copy > 2 && copy + 2 < len &&
        u[copy - 2] == 0xD83C && u[copy] == 0xD83C &&
        is_ri_low(u[copy - 1]) && is_ri_low(u[copy + 1]))
        copy -= 2;
    return copy;
}

/* Adds the UTF-8 form of cp to out->forcing unless it is there already. */
static void note_forcing(seg_info *out, uint32_t cp)
{
    char buf[5];
    size_t n;

    if (cp < 0x80) { buf[0] = (char)cp; n = 1; }
    else if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F)); n = 2;
    } else if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        buf[0] = (char)(0xF0 | (cp >> 18));
        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    buf[n] = '\0';
    int shown = out->nforcing < SEG_MAX_FORCING ? out->nforcing : SEG_MAX_FORCING;
    for (int i = 0; i < shown; i++)
        if (strcmp(out->forcing[i], buf) == 0)
            return;
    if (out->nforcing < SEG_MAX_FORCING) {
        memcpy(out->forcing[out->nforcing], buf, n + 1);
        out->nforcing++;
    } else {
        /* Past the first 8 this counts occurrences, not distinct
         * characters; seg_count recounts exactly in that case. */
        out->nforcing++;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Counts the parts of a 7-bit text. */
static int gsm7_parts(const uint32_t *cps, size_t n, int septets)
{
    if (septets <= SEG_SINGLE_SEPTETS)
        return 1;
    int parts = 0;
    size_t k = 0;
    while (k < n) {
        int used = 0;
        while (k < n) {
            int w = ext_code(cps[k]) >= 0 ? 2 : 1;
            if (used + w > SEG_MULTI_SEPTETS)
                break;
            used += w;
            k++;
        }
        parts++;
    }
    return parts;
}

int seg_count(const char *text, size_t len, seg_info *out, char *err, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)text;
    uint32_t *cps = NULL, *fcp = NULL;
    uint16_t *units = NULL;
    size_t ncp = 0, nu = 0, i = 0;
    int rc = -1;

    memset(out, 0, sizeof *out);
    /* At most one code point and two units per input byte. */
    cps = malloc((len + 1) * sizeof *cps);
    fcp = malloc((len + 1) * sizeof *fcp);
    units = malloc((len + 1) * 2 * sizeof *units);
    if (!cps || !fcp || !units) {
        set_err(err, errlen, "out of memory counting %zu bytes", len);
        goto out;
    }
    while (i < len) {
        size_t at = i;
        long cp = utf8_next(s, len, &i);
        if (cp < 0) {
            set_err(err, errlen, s[at] ? "invalid UTF-8 at byte %zu"
                                       : "NUL byte at byte %zu", at);
            goto out;
        }
        cps[ncp++] = (uint32_t)cp;
        if (cp >= 0x10000) {
            uint32_t v = (uint32_t)cp - 0x10000;
            units[nu++] = (uint16_t)(0xD800 | (v >> 10));
            units[nu++] = (uint16_t)(0xDC00 | (v & 0x3FF));
        } else {
            units[nu++] = (uint16_t)cp;
        }
    }

    /* One pass finds the characters that force UCS-2; the first
     * SEG_MAX_FORCING distinct ones are shown, and only when there are that
     * many is the exact distinct count taken (sort and count runs). Pairwise
     * comparison here cost 40 us for one Chinese survey text. */
    int septets = 0;
    size_t nf = 0;
    for (size_t k = 0; k < ncp; k++) {
        if (forces_ucs2(cps, ncp, k))
            fcp[nf++] = cps[k];
        septets += ext_code(cps[k]) >= 0 ? 2 : 1;
    }
    for (size_t k = 0; k < nf && out->nforcing < SEG_MAX_FORCING; k++)
        note_forcing(out, fcp[k]);
    if (out->nforcing >= SEG_MAX_FORCING) {
        /* a bit per BMP code point; the rare astral ones sorted */
        uint64_t *seen = calloc(0x10000 / 64, sizeof *seen);
        if (!seen) {
            set_err(err, errlen, "out of memory counting %zu bytes", len);
            goto out;
        }
        int distinct = 0;
        size_t nastral = 0;
        for (size_t k = 0; k < nf; k++) {
            uint32_t u = fcp[k];
            if (u >= 0x10000) {
                fcp[nastral++] = u;       /* k >= nastral: nothing unread is overwritten */
            } else if (!(seen[u >> 6] & (1ULL << (u & 63)))) {
                seen[u >> 6] |= 1ULL << (u & 63);
                distinct++;
            }
        }
        free(seen);
        qsort(fcp, nastral, sizeof *fcp, cmp_u32);
        for (size_t k = 0; k < nastral; k++)
            if (k == 0 || fcp[k] != fcp[k - 1])
                distinct++;
        out->nforcing = distinct;
    }

    out->chars = (int)ncp;
    if (out->nforcing == 0) {
        out->encoding = SEG_GSM7;
        out->units = septets;
        out->parts = gsm7_parts(cps, ncp, septets);
    } else {
        out->encoding = SEG_UCS2;
        out->units = (int)nu;
        if (nu <= SEG_SINGLE_UNITS) {
            out->parts = 1;
        } else {
            size_t k = 0;
            while (k < nu) {
                k += ucs2_take(units + k, nu - k, SEG_MULTI_UNITS);
                out->parts++;
            }
        }
    }
    rc = 0;
out:
    free(cps);
    free(fcp);
    free(units);
    return rc;
}

const char *seg_encoding_name(seg_encoding e)
{
    return e == SEG_UCS2 ? "ucs2" : "gsm7";
}
