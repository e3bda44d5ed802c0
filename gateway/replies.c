/* replies.c -- the survey reply parser (see replies.h).
 *
 * The text is walked code point by code point on the original bytes, each
 * code point "normalised" on the fly (full-width ASCII U+FF01..U+FF5E to
 * ASCII, the ideographic space to a space), so offsets stay those of the
 * original text and a suggestion is cut out of it unchanged.
 *
 * Ratings are read from the start. A rating is a digit (1..scale) or a word
 * (满意, 基本满意, 不满意 and their usual variants); separators (spaces,
 * ASCII and Chinese punctuation) and the aspect names (执法程序：...) may
 * stand between them. A rating glued to the text after it ("3个月了",
 * "满意度不高") is only believed when it is the fourth: "1121谢谢" is four
 * ratings and a thank-you, "3个月了还没消息" is a sentence. When in doubt
 * the reply is `unparsed` and kept whole: staff read it, nothing is lost. */
#include <stdlib.h>
#include <string.h>

#include "gateway/replies.h"

const char *const reply_aspect_names[REPLY_ASPECTS] = { "执法程序", "执法能力", "执法文明", "廉洁执法" };
const char *const reply_aspect_keys[REPLY_ASPECTS] = { "procedure", "competence", "civility", "integrity" };

const char *reply_status_name(reply_status s)
{
    switch (s) {
    case REPLY_PARSED: return "parsed";
    case REPLY_PARTIAL: return "partial";
    case REPLY_UNPARSED: return "unparsed";
    case REPLY_OPTOUT: return "optout";
    case REPLY_OPTIN: return "optin";
    }
    return "?";
}

void reply_opts_default(reply_opts *o)
{
    memset(o, 0, sizeof *o);
    o->labels[0] = "满意";
    o->labels[1] = "基本满意";
    o->labels[2] = "不满意";
    o->nlabels = 3;
    o->optin_keyword = "订阅";
}

/* Variants people write for a label of the default scale. They count only
 * when that label is on the configured scale. */
static const struct { const char *word, *label; } synonyms[] = {
    { "非常满意", "满意" }, { "很满意", "满意" }, { "十分满意", "满意" }, { "特别满意", "满意" },
    { "一般", "基本满意" }, { "比较满意", "基本满意" }, { "还算满意", "基本满意" },
    { "很不满意", "不满意" }, { "非常不满意", "不满意" }, { "不太满意", "不满意" },
};

/* Skipped between ratings: "执法程序：1，执法能力：1 ..." */
static const char *const aspect_words[] = {
    "执法程序", "执法能力", "执法文明", "廉洁执法", "程序", "能力", "文明", "廉洁",
};

static const char *const optout_latin[] = { "T", "TD", "N", "R", "STOP" };
static const char *const optout_other[] = { "退订", "取消" };

/* ---- code points ---------------------------------------------------- */

/* Decodes one code point at *i (advancing it); an invalid byte is returned
 * as itself (0x80..0xFF) so nothing is dropped. */
static unsigned raw_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    size_t need;
    if (c < 0x80)
        need = 0;
    else if ((c & 0xE0) == 0xC0)
        need = 1;
    else if ((c & 0xF0) == 0xE0)
        need = 2;
    else if ((c & 0xF8) == 0xF0)
        need = 3;
    else
        need = 9;
    if (need == 9 || *i + need >= n) {
        (*i)++;
        return c;
    }
    unsigned cp = need == 0 ? c : need == 1 ? c & 0x1F : need == 2 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k <= need; k++) {
        unsigned b = s[*i + k];
        if ((b & 0xC0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    *i += need + 1;
    return cp;
}

/* Full-width ASCII and the ideographic space as their ASCII selves. */
static unsigned norm(unsigned cp)
{
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return cp - 0xFEE0;
    if (cp == 0x3000)
        return ' ';
    return cp;
}

static unsigned next_cp(const unsigned char *s, size_t n, size_t *i)
{
    return norm(raw_next(s, n, i));
}

static unsigned peek_cp(const unsigned char *s, size_t n, size_t i)
{
    return i < n ? next_cp(s, n, &i) : 0;
}

static int is_digit(unsigned cp) { return cp >= '0' && cp <= '9'; }
static int is_latin(unsigned cp) { return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z'); }

/* Spaces and punctuation, ASCII (full-width folded into it) or Chinese. */
static int is_sep(unsigned cp)
{
    if (cp < 0x80)
        return !is_digit(cp) && !is_latin(cp);
    switch (cp) {
    case 0x00A0: case 0x00B7: case 0x2010: case 0x2011: case 0x2012: case 0x2013:
    case 0x2014: case 0x2015: case 0x2018: case 0x2019: case 0x201C: case 0x201D:
    case 0x2026: case 0x2027: case 0x3001: case 0x3002: case 0x30FB: case 0xFF61:
    case 0xFF64: case 0xFE30: case 0xFE31: case 0xFE4F:
        return 1;
    }
    if (cp >= 0x3008 && cp <= 0x3011)          /* 〈〉《》「」『』【】 */
        return 1;
    if (cp >= 0xFE50 && cp <= 0xFE6B)          /* small forms: ﹐﹑﹒ ... */
        return 1;
    return 0;
}

static unsigned ascii_upper(unsigned cp) { return cp >= 'a' && cp <= 'z' ? cp - 32 : cp; }

/* Does `word` (UTF-8) start at s+i? Returns the byte length matched in s,
 * or 0. ASCII letters compare without case. */
static size_t match_at(const unsigned char *s, size_t n, size_t i, const char *word)
{
    const unsigned char *w = (const unsigned char *)word;
    size_t wn = strlen(word), wi = 0, start = i;
    while (wi < wn) {
        if (i >= n)
            return 0;
        unsigned a = next_cp(s, n, &i);
        unsigned b = raw_next(w, wn, &wi);
        if (ascii_upper(a) != ascii_upper(b))
            return 0;
    }
    return i - start;
}

/* ---- opt-out, opt-in --------------------------------------------------- */

typedef enum { CL_SEP, CL_DIGIT, CL_LATIN, CL_OTHER } cp_class;

static cp_class classify(unsigned cp)
{
    if (is_digit(cp)) return CL_DIGIT;
    if (is_latin(cp)) return CL_LATIN;
    if (is_sep(cp) || cp == 0xFE0F || cp == 0x200B) return CL_SEP;
    return CL_OTHER;
}

/* Is the token s[a, b) exactly `word`? */
static int token_is(const unsigned char *s, size_t a, size_t b, const char *word)
{
    return match_at(s, b, a, word) == b - a && b > a;
}

/* An opt-out keyword as a token of its own: tokens are the runs of one
 * class (letters, digits, other) between separators, so "1121TD",
 * "TD。" and "回复TD退订" hold one but "建议取消收费" does not. */
static int has_optout(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t a = i;
        cp_class c = classify(next_cp(s, n, &i));
        if (c == CL_SEP)
            continue;
        size_t b = i;
        while (b < n) {
            size_t j = b;
            unsigned cp = next_cp(s, n, &j);
            /* an apostrophe inside a word keeps it one word: the "t" of
             * "don't" is not an opt-out */
            if (c == CL_LATIN && (cp == '\'' || cp == 0x2019) && j < n && is_latin(peek_cp(s, n, j))) {
                b = j;
                continue;
            }
            if (classify(cp) != c)
                break;
            b = j;
        }
        i = b;
        if (c == CL_LATIN) {
            for (size_t k = 0; k < sizeof optout_latin / sizeof optout_latin[0]; k++)
                if (token_is(s, a, b, optout_latin[k]))
                    return 1;
        } else if (c == CL_OTHER) {
            for (size_t k = 0; k < sizeof optout_other / sizeof optout_other[0]; k++)
                if (token_is(s, a, b, optout_other[k]))
                    return 1;
        }
    }
    return 0;
}

/* [*a, *b): the text without separators at either end. */
static void trim_seps(const unsigned char *s, size_t n, size_t *a, size_t *b)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        if (classify(next_cp(s, n, &j)) != CL_SEP)
            break;
        i = j;
    }
    *a = i;
    /* the end: scan forward remembering the end of the last non-separator */
    size_t end = i;
    while (i < n) {
        unsigned cp = next_cp(s, n, &i);
        if (classify(cp) != CL_SEP)
            end = i;
    }
    *b = end;
}

/* ---- ratings ---------------------------------------------------------- */

typedef struct word_val {
    const char *word;
    int value;
} word_val;

/* The rating words of this scale: its labels, and the synonyms of those. */
static int rating_words(const reply_opts *o, word_val *out, int max)
{
    int n = 0;
    for (int l = 0; l < o->nlabels && n < max; l++) {
        if (!o->labels[l] || !o->labels[l][0])
            continue;
        out[n].word = o->labels[l];
        out[n++].value = l + 1;
        for (size_t k = 0; k < sizeof synonyms / sizeof synonyms[0] && n < max; k++)
            if (strcmp(synonyms[k].label, o->labels[l]) == 0) {
                out[n].word = synonyms[k].word;
                out[n++].value = l + 1;
            }
    }
    return n;
}

/* The longest rating word at i: its length (0 none) and value. */
static size_t word_at(const unsigned char *s, size_t n, size_t i, const word_val *w, int nw, int *value)
{
    size_t best = 0;
    for (int k = 0; k < nw; k++) {
        size_t m = match_at(s, n, i, w[k].word);
        if (m > best) {
            best = m;
            *value = w[k].value;
        }
    }
    return best;
}

static size_t aspect_at(const unsigned char *s, size_t n, size_t i)
{
    size_t best = 0;
    for (size_t k = 0; k < sizeof aspect_words / sizeof aspect_words[0]; k++) {
        size_t m = match_at(s, n, i, aspect_words[k]);
        if (m > best)
            best = m;
    }
    return best;
}

/* Skips separators and aspect names. */
static size_t skip_filler(const unsigned char *s, size_t n, size_t i)
{
    while (i < n) {
        size_t j = i;
        if (classify(next_cp(s, n, &j)) == CL_SEP) {
            i = j;
            continue;
        }
        size_t m = aspect_at(s, n, i);
        if (!m)
            break;
        i += m;
    }
    return i;
}

/* True when a rating ending at i is cleanly set off from what follows. */
static int boundary(const unsigned char *s, size_t n, size_t i, const word_val *w, int nw)
{
    if (i >= n)
        return 1;
    unsigned cp = peek_cp(s, n, i);
    int v;
    return classify(cp) == CL_SEP || is_digit(cp) || word_at(s, n, i, w, nw, &v) || aspect_at(s, n, i);
}

/* Reads the ratings. Returns how many (0..4) with *end after the last one,
 * or -1 when the digits make no sense (a 0, a 7, a run too long: a phone
 * number, a date) or a rating is glued to text before the fourth. */
static int read_ratings(const unsigned char *s, size_t n, const reply_opts *o,
                        const word_val *w, int nw, int r[REPLY_ASPECTS], size_t *end)
{
    int k = 0;
    size_t i = 0;
    *end = 0;
    while (k < REPLY_ASPECTS) {
        i = skip_filler(s, n, i);
        if (i >= n)
            break;
        unsigned cp = peek_cp(s, n, i);
        int v = 0;
        if (is_digit(cp)) {
            size_t j = i;
            int run[16], len = 0;
            while (j < n && is_digit(peek_cp(s, n, j))) {
                unsigned d = next_cp(s, n, &j);
                if (len < 16)
                    run[len] = (int)(d - '0');
                len++;
            }
            if (k + len > REPLY_ASPECTS)
                return -1;
            for (int t = 0; t < len; t++)
                if (run[t] < 1 || run[t] > o->nlabels)
                    return -1;
            /* "1满意2基本满意...": a label echoed after its digit */
            if (len == 1) {
                size_t m = word_at(s, n, j, w, nw, &v);
                if (m && v == run[0])
                    j += m;
            }
            for (int t = 0; t < len; t++)
                r[k++] = run[t];
            i = j;
        } else {
            size_t m = word_at(s, n, i, w, nw, &v);
            if (!m)
                break;
            r[k++] = v;
            i += m;
        }
        *end = i;
        if (k < REPLY_ASPECTS && !boundary(s, n, i, w, nw))
            return -1;
    }
    return k;
}

static char *dup_range(const char *s, size_t a, size_t b)
{
    char *p = malloc(b - a + 1);
    if (p) {
        memcpy(p, s + a, b - a);
        p[b - a] = '\0';
    }
    return p;
}

/* The text from `from` on without spaces at either end; with skip_seps,
 * without separators in front either ("1121，态度很好" -> "态度很好"). */
static char *rest_text(const char *text, size_t n, size_t from, int skip_seps)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t a = from;
    while (a < n) {
        size_t j = a;
        unsigned cp = next_cp(s, n, &j);
        int space = cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n';
        if (!space && !(skip_seps && classify(cp) == CL_SEP))
            break;
        a = j;
    }
    size_t i = a, end = a;
    while (i < n) {
        unsigned cp = next_cp(s, n, &i);
        if (cp != ' ' && cp != '\t' && cp != '\r' && cp != '\n')
            end = i;
    }
    return dup_range(text, a, end);
}

int reply_parse(const char *text, size_t n, const reply_opts *o, reply_verdict *v)
{
    const unsigned char *s = (const unsigned char *)text;
    memset(v, 0, sizeof *v);
    size_t a, b;
    trim_seps(s, n, &a, &b);

    if (has_optout(s, n)) {
        v->status = REPLY_OPTOUT;
        v->suggestion = strdup("");
        return v->suggestion ? 0 : -1;
    }
    if (o->optin_keyword && o->optin_keyword[0] && b > a && token_is(s, a, b, o->optin_keyword)) {
        v->status = REPLY_OPTIN;
        v->suggestion = strdup("");
        return v->suggestion ? 0 : -1;
    }

    word_val w[64];
    int nw = rating_words(o, w, 64);
    int r[REPLY_ASPECTS] = { 0 };
    size_t end = 0;
    int k = read_ratings(s, n, o, w, nw, r, &end);
    if (k <= 0) {
        v->status = REPLY_UNPARSED;
        v->suggestion = rest_text(text, n, 0, 0);
        return v->suggestion ? 0 : -1;
    }
    if (k == 1)
        r[1] = r[2] = r[3] = r[0];
    v->status = (k == 1 || k == REPLY_ASPECTS) ? REPLY_PARSED : REPLY_PARTIAL;
    memcpy(v->ratings, r, sizeof r);
    v->suggestion = rest_text(text, n, end, 1);
    return v->suggestion ? 0 : -1;
}

void reply_verdict_clear(reply_verdict *v)
{
    if (!v)
        return;
    free(v->suggestion);
    v->suggestion = NULL;
}
