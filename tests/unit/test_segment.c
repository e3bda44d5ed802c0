/* test_segment.c -- unit tests for templates/segment.c.
 *
 * Every row of the table is checked twice: against the literal numbers
 * written in the row, and against libgammu itself (GSM_EncodeMultiPartSMS
 * with SMS_ConcatenatedAutoTextLong, the call the modem driver makes), so
 * the counter cannot drift from the library that actually sends. */
#include "tests/unit/test.h"
#include "templates/segment.h"

#include <gammu.h>
#include <stdint.h>
#include <stdlib.h>

/* Builds test texts: repeat(s, n) appended to a growing buffer. */
typedef struct text {
    char *p;
    size_t len;
} text;

static void add(text *t, const char *s, int times)
{
    size_t n = strlen(s);
    t->p = realloc(t->p, t->len + n * (size_t)times + 1);
    for (int i = 0; i < times; i++) {
        memcpy(t->p + t->len, s, n);
        t->len += n;
    }
    t->p[t->len] = '\0';
}

/* A text made of up to four runs: s1 x n1, s2 x n2, ... */
typedef struct row {
    const char *what;
    const char *s[4];
    int n[4];
    seg_encoding enc;
    int parts;
    int units;
    const char *forcing;     /* first forcing char, or NULL for none */
} row;

static const row rows[] = {
    { "empty",                     { "" }, { 0 }, SEG_GSM7, 1, 0, NULL },
    { "160 ascii",                 { "a" }, { 160 }, SEG_GSM7, 1, 160, NULL },
    { "161 ascii",                 { "a" }, { 161 }, SEG_GSM7, 2, 161, NULL },
    { "306 ascii (2 x 153)",       { "a" }, { 306 }, SEG_GSM7, 2, 306, NULL },
    { "307 ascii",                 { "a" }, { 307 }, SEG_GSM7, 3, 307, NULL },
    { "459 ascii (3 x 153)",       { "a" }, { 459 }, SEG_GSM7, 3, 459, NULL },
    { "460 ascii",                 { "a" }, { 460 }, SEG_GSM7, 4, 460, NULL },
    { "'{' on the boundary",       { "a", "{", "b" }, { 152, 1, 10 }, SEG_GSM7, 2, 164, NULL },
    { "'{' fits at 151-152",       { "a", "{", "b" }, { 151, 1, 10 }, SEG_GSM7, 2, 163, NULL },
    { "80 '{' = 160 septets",      { "{" }, { 80 }, SEG_GSM7, 1, 160, NULL },
    { "81 '{'",                    { "{" }, { 81 }, SEG_GSM7, 2, 162, NULL },
    { "158 a + euro",              { "a", "\xE2\x82\xAC" }, { 158, 1 }, SEG_GSM7, 1, 160, NULL },
    { "159 a + euro",              { "a", "\xE2\x82\xAC" }, { 159, 1 }, SEG_GSM7, 2, 161, NULL },
    { "extension set",             { "^{}\\[~]|\xE2\x82\xAC\f" }, { 1 }, SEG_GSM7, 1, 20, NULL },
    { "Greek and accents in GSM",  { "\xCE\x94\xCE\xA9 \xC3\xA9\xC3\xA8\xC3\x87 \xC2\xA3\xC2\xA5\xC2\xA7" }, { 1 },
      SEG_GSM7, 1, 10, NULL },
    { "CRLF stays 7-bit",          { "a\r\nb" }, { 1 }, SEG_GSM7, 1, 4, NULL },
    { "tab forces UCS-2",          { "a\tb" }, { 1 }, SEG_UCS2, 1, 3, "\t" },
    { "backtick forces UCS-2",     { "a`b" }, { 1 }, SEG_UCS2, 1, 3, "`" },
    { "small c cedilla is not GSM", { "\xC3\xA7" }, { 1 }, SEG_UCS2, 1, 1, "\xC3\xA7" },
    { "one Chinese comma in ascii", { "a", "\xEF\xBC\x8C", "b" }, { 100, 1, 50 }, SEG_UCS2, 3, 151,
      "\xEF\xBC\x8C" },
    { "70 Chinese",                { "\xE6\xA3\x80" }, { 70 }, SEG_UCS2, 1, 70, "\xE6\xA3\x80" },
    { "71 Chinese (67 + 4)",       { "\xE6\xA3\x80" }, { 71 }, SEG_UCS2, 2, 71, "\xE6\xA3\x80" },
    { "134 Chinese (2 x 67)",      { "\xE6\xA3\x80" }, { 134 }, SEG_UCS2, 2, 134, "\xE6\xA3\x80" },
    { "135 Chinese",               { "\xE6\xA3\x80" }, { 135 }, SEG_UCS2, 3, 135, "\xE6\xA3\x80" },
    { "268 Chinese (4 x 67)",      { "\xE6\xA3\x80" }, { 268 }, SEG_UCS2, 4, 268, "\xE6\xA3\x80" },
    { "emoji at the boundary",     { "\xE6\xA3\x80", "\xF0\x9F\x98\x80", "xyz" }, { 66, 1, 1 },
      SEG_UCS2, 2, 71, "\xE6\xA3\x80" },
    { "68 + emoji = 70 units",     { "\xE6\xA3\x80", "\xF0\x9F\x98\x80" }, { 68, 1 }, SEG_UCS2, 1, 70,
      "\xE6\xA3\x80" },
    { "69 + emoji = 71 units",     { "\xE6\xA3\x80", "\xF0\x9F\x98\x80" }, { 69, 1 }, SEG_UCS2, 2, 71,
      "\xE6\xA3\x80" },
    { "emoji only",                { "\xF0\x9F\x98\x80" }, { 40 }, SEG_UCS2, 2, 80, "\xF0\x9F\x98\x80" },
    { "combining mark at boundary", { "\xE6\xA3\x80", "e\xCC\x81", "x" }, { 66, 1, 5 }, SEG_UCS2, 2, 73,
      "\xE6\xA3\x80" },
    { "flags at boundary",         { "\xE6\xA3\x80", "\xF0\x9F\x87\xA8\xF0\x9F\x87\xB3", "x" }, { 63, 2, 5 },
      SEG_UCS2, 2, 76, "\xE6\xA3\x80" },
    { "superscript one is 7-bit",  { "a\xC2\xB9" "b" }, { 1 }, SEG_GSM7, 1, 3, NULL },
    { "superscript one before (",  { "a\xC2\xB9(" }, { 1 }, SEG_UCS2, 1, 3, "\xC2\xB9" },
    { "superscript one before {",  { "a\xC2\xB9{" }, { 1 }, SEG_GSM7, 1, 4, NULL },
    { "signature in brackets",     { "\xE3\x80\x90XX\xE3\x80\x91" "ok" }, { 1 }, SEG_UCS2, 1, 6,
      "\xE3\x80\x90" },
};

/* libgammu's own answer for utf8. Returns 0 or -1. */
static int gammu_count(const char *utf8, size_t len, int *parts, int *ucs2)
{
    unsigned char *buf = calloc(len + 2, 4);
    GSM_MultiSMSMessage *multi = calloc(1, sizeof *multi);
    GSM_MultiPartSMSInfo info;
    int rc = -1;

    if (!buf || !multi)
        goto out;
    DecodeUTF8(buf, utf8, len);
    GSM_ClearMultiPartSMSInfo(&info);
    info.EntriesNum = 1;
    info.Class = -1;
    info.Entries[0].ID = SMS_ConcatenatedAutoTextLong;
    info.Entries[0].Buffer = buf;
    if (GSM_EncodeMultiPartSMS(NULL, &info, multi) == ERR_NONE) {
        *parts = multi->Number;
        *ucs2 = info.UnicodeCoding ? 1 : 0;
        rc = 0;
    }
    /* Entries[0].Buffer is ours: do not let the library free it. */
out:
    free(buf);
    free(multi);
    return rc;
}

static void check_row(const row *r)
{
    text t = { NULL, 0 };
    seg_info si;
    char err[128] = "";
    int gparts = -1, gucs2 = -1;

    add(&t, "", 1);
    for (int i = 0; i < 4 && r->s[i]; i++)
        add(&t, r->s[i], r->n[i]);
    int rc = seg_count(t.p, t.len, &si, err, sizeof err);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        if ((int)si.encoding != (int)r->enc || si.parts != r->parts || si.units != r->units)
            fprintf(stderr, "row '%s'\n", r->what);
        CHECK_INT(si.encoding, r->enc);
        CHECK_INT(si.parts, r->parts);
        CHECK_INT(si.units, r->units);
        if (r->forcing) {
            CHECK(si.nforcing >= 1);
            CHECK_STR(si.forcing[0], r->forcing);
        } else {
            CHECK_INT(si.nforcing, 0);
        }
    }
    CHECK_INT(gammu_count(t.p, t.len, &gparts, &gucs2), 0);
    if (gparts != r->parts || gucs2 != (int)r->enc)
        fprintf(stderr, "row '%s': libgammu says %d parts, %s\n", r->what, gparts,
                gucs2 ? "ucs2" : "gsm7");
    CHECK_INT(gparts, r->parts);
    CHECK_INT(gucs2, r->enc);
    free(t.p);
}

/* Random mixes of awkward characters, compared with libgammu only. */
static void check_random(int rounds)
{
    static const char *const pool[] = {
        "a", " ", "{", "}", "\xE2\x82\xAC", "\n", "\r", "(", "e", "/",
        "\xC2\xB9", "\xC2\xA1", "\xE6\xA3\x80", "\xEF\xBC\x8C", "\xF0\x9F\x98\x80",
        "\xCC\x81", "\xF0\x9F\x87\xA8", "\t", "\xC3\xA7", "@",
    };
    const int npool = (int)(sizeof pool / sizeof pool[0]);
    unsigned seed = 12345;
    int mismatches = 0;

    for (int it = 0; it < rounds; it++) {
        text t = { NULL, 0 };
        add(&t, "", 1);
        seed = seed * 1103515245u + 12345u;
        int len = 50 + (int)((seed >> 16) % 300);
        int base = (int)((seed >> 8) % 3);
        for (int i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            if (r % 6 == 0 || base == 2)
                add(&t, pool[(r / 6) % (unsigned)npool], 1);
            else
                add(&t, base == 0 ? "a" : "\xE6\xA3\x80", 1);
        }
        seg_info si;
        int gparts, gucs2;
        if (seg_count(t.p, t.len, &si, NULL, 0) != 0 ||
            gammu_count(t.p, t.len, &gparts, &gucs2) != 0 ||
            si.parts != gparts || (int)si.encoding != gucs2) {
            if (mismatches++ < 3)
                fprintf(stderr, "random mismatch on: %s\n", t.p);
        }
        free(t.p);
    }
    CHECK_INT(mismatches, 0);
}

static void check_errors(void)
{
    seg_info si;
    char err[128] = "";

    CHECK_INT(seg_count("ab\xFF", 3, &si, err, sizeof err), -1);
    CHECK_HAS(err, "byte 2");
    CHECK_INT(seg_count("\xC0\xAF", 2, &si, err, sizeof err), -1);      /* overlong */
    CHECK_HAS(err, "byte 0");
    CHECK_INT(seg_count("\xED\xA0\x80", 3, &si, err, sizeof err), -1);  /* surrogate */
    CHECK_INT(seg_count("\xE6\xA3", 2, &si, err, sizeof err), -1);      /* truncated */
    CHECK_INT(seg_count("a\0b", 3, &si, err, sizeof err), -1);
    CHECK_HAS(err, "NUL");
}

static void check_forcing_list(void)
{
    /* Distinct, in order of first appearance, at most 8 shown. */
    const char *s = "x\xE6\xA3\x80\xE6\xA3\x80\xE5\xAF\x9F\xEF\xBC\x8C\tabc`\xE4\xB8\x80\xE4\xBA\x8C"
                    "\xE4\xB8\x89\xE5\x9B\x9B\xE4\xBA\x94\xE6\xA3\x80";
    seg_info si;

    CHECK_INT(seg_count(s, strlen(s), &si, NULL, 0), 0);
    CHECK_INT(si.encoding, SEG_UCS2);
    CHECK_INT(si.nforcing, 10);
    CHECK_STR(si.forcing[0], "\xE6\xA3\x80");
    CHECK_STR(si.forcing[1], "\xE5\xAF\x9F");
    CHECK_STR(si.forcing[2], "\xEF\xBC\x8C");
    CHECK_STR(si.forcing[3], "\t");
    CHECK_STR(si.forcing[4], "`");
    CHECK_STR(si.forcing[7], "\xE4\xB8\x89");
    CHECK_INT(si.chars, 16);
    CHECK_STR(seg_encoding_name(SEG_GSM7), "gsm7");
    CHECK_STR(seg_encoding_name(SEG_UCS2), "ucs2");
}

int main(void)
{
    GSM_InitLocales(NULL);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_row(&rows[i]);
    check_random(3000);
    check_errors();
    check_forcing_list();
    return TEST_REPORT();
}
