/* mms.c -- composing an MMS bulletin issue (see mms.h).
 *
 * Memory to memory: images are recognised from their first bytes and never
 * decoded; the parts are copied byte for byte into one multipart/related
 * body with a SMIL layout in front. */
#include "templates/buf.h"
#include "templates/mms.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mms_img_mime(mms_img_type t)
{
    switch (t) {
    case MMS_IMG_JPEG: return "image/jpeg";
    case MMS_IMG_PNG:  return "image/png";
    case MMS_IMG_GIF:  return "image/gif";
    default:           return "";
    }
}

const char *mms_img_ext(mms_img_type t)
{
    switch (t) {
    case MMS_IMG_JPEG: return "jpg";
    case MMS_IMG_PNG:  return "png";
    case MMS_IMG_GIF:  return "gif";
    default:           return "";
    }
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- images ---------------------------------------------------------- */

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* Walks the JPEG segments up to the first SOFn, which holds the size.
 * SOF markers are C0-CF except C4 (DHT), C8 (reserved) and CC (DAC). */
static int probe_jpeg(const unsigned char *b, size_t len, int *w, int *h, char *err, size_t errlen)
{
    size_t i = 2;
    while (i + 4 <= len) {
        if (b[i] != 0xFF)
            return fail(err, errlen, "JPEG: no marker at byte %zu", i);
        while (i < len && b[i] == 0xFF)        /* fill bytes */
            i++;
        if (i >= len)
            break;
        unsigned m = b[i++];
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue;                           /* markers without a length */
        if (m == 0xD9 || m == 0xDA)
            return fail(err, errlen, "JPEG without a frame header (SOF) before its image data");
        if (i + 2 > len)
            break;
        unsigned seglen = be16(b + i);
        if (seglen < 2)
            return fail(err, errlen, "JPEG: bad segment length at byte %zu", i);
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (seglen < 7 || i + 7 > len)
                break;
            *h = (int)be16(b + i + 3);
            *w = (int)be16(b + i + 5);
            if (*w == 0 || *h == 0)
                return fail(err, errlen, "JPEG with a zero width or height (%dx%d)", *w, *h);
            return 0;
        }
        i += seglen;
    }
    return fail(err, errlen, "JPEG truncated before its frame header");
}

int mms_image_probe(const unsigned char *b, size_t len, mms_img_type *type,
                    int *w, int *h, char *err, size_t errlen)
{
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A };
    *type = MMS_IMG_NONE;
    *w = *h = 0;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        *type = MMS_IMG_JPEG;
        return probe_jpeg(b, len, w, h, err, errlen);
    }
    if (len >= 8 && memcmp(b, png_sig, 8) == 0) {
        *type = MMS_IMG_PNG;
        if (len < 24 || memcmp(b + 12, "IHDR", 4) != 0)
            return fail(err, errlen, "PNG truncated or without IHDR first");
        unsigned long pw = be32(b + 16), ph = be32(b + 20);
        if (pw == 0 || ph == 0 || pw > 0x7fffffff || ph > 0x7fffffff)
            return fail(err, errlen, "PNG with a bad size %lux%lu", pw, ph);
        *w = (int)pw;
        *h = (int)ph;
        return 0;
    }
    if (len >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) {
        *type = MMS_IMG_GIF;
        if (len < 10)
            return fail(err, errlen, "GIF truncated");
        *w = b[6] | b[7] << 8;
        *h = b[8] | b[9] << 8;
        if (*w == 0 || *h == 0)
            return fail(err, errlen, "GIF with a zero width or height");
        return 0;
    }
    return fail(err, errlen, "not a JPEG, PNG or GIF image (first bytes %02x %02x %02x %02x)",
                len > 0 ? b[0] : 0, len > 1 ? b[1] : 0, len > 2 ? b[2] : 0, len > 3 ? b[3] : 0);
}

/* ---- text ------------------------------------------------------------ */

int mms_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return 0;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* ---- a growing buffer -------------------------------------------------- */

typedef hbuf buf;

static void b_add(buf *b, const void *data, size_t n) { hbuf_add(b, data, n); }

static void b_fmt(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void b_fmt(buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1;
        return;
    }
    b_add(b, tmp, (size_t)n);
}

/* ---- composition ------------------------------------------------------ */

/* Which parts a slide has, and their checks. */
static int check_slide(const mms_slide *s, int i, mms_img_type *t, int *w, int *h,
                       char *err, size_t errlen)
{
    char why[200];
    *t = MMS_IMG_NONE;
    if ((!s->text || !s->text_len) && (!s->image || !s->image_len))
        return fail(err, errlen, "slide %d has neither text nor an image", i + 1);
    if (s->text && s->text_len && !mms_utf8_valid(s->text, s->text_len))
        return fail(err, errlen, "slide %d: the text is not valid UTF-8", i + 1);
    if (s->image && s->image_len
        && mms_image_probe(s->image, s->image_len, t, w, h, why, sizeof why) < 0)
        return fail(err, errlen, "slide %d: %s: %s", i + 1,
                    s->image_name ? s->image_name : "image", why);
    if (s->dur_s < 0 || s->dur_s > 600)
        return fail(err, errlen, "slide %d: duration %d s is not within 0-600", i + 1, s->dur_s);
    return 0;
}

static void add_part(buf *b, const char *boundary, const mms_part *p, const void *data)
{
    b_fmt(b, "--%s\r\nContent-Type: %s\r\nContent-ID: <%s>\r\nContent-Location: %s\r\n"
          "Content-Transfer-Encoding: binary\r\n\r\n", boundary, p->type, p->cid, p->cid);
    b_add(b, data, p->size);
    b_add(b, "\r\n", 2);
}

/* 1 when a part's bytes contain the delimiter "--boundary". */
static int collides(const mms_issue *is, const char *smil, const char *boundary)
{
    char delim[96];
    snprintf(delim, sizeof delim, "--%s", boundary);
    size_t dl = strlen(delim);
    if (memmem(smil, strlen(smil), delim, dl))
        return 1;
    for (int i = 0; i < is->nslides; i++) {
        const mms_slide *s = &is->slides[i];
        if ((s->text && memmem(s->text, s->text_len, delim, dl))
            || (s->image && memmem(s->image, s->image_len, delim, dl)))
            return 1;
    }
    return 0;
}

int mms_compose(const mms_issue *is, const char *boundary_seed, mms_composed *out,
                char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (is->nslides <= 0)
        return fail(err, errlen, "the issue has no slides");
    if (is->nslides > MMS_MAX_SLIDES)
        return fail(err, errlen, "the issue has %d slides; at most %d", is->nslides, MMS_MAX_SLIDES);
    if (is->subject && !mms_utf8_valid(is->subject, strlen(is->subject)))
        return fail(err, errlen, "the subject is not valid UTF-8");

    mms_img_type types[MMS_MAX_SLIDES];
    int w[MMS_MAX_SLIDES], h[MMS_MAX_SLIDES];
    for (int i = 0; i < is->nslides; i++)
        if (check_slide(&is->slides[i], i, &types[i], &w[i], &h[i], err, errlen) < 0)
            return -1;

    /* The SMIL: a region for the image above one for the text. */
    buf sm = { 0 };
    b_fmt(&sm, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
          "<smil xmlns=\"http://www.w3.org/2001/SMIL20/Language\">\r\n<head>\r\n<layout>\r\n"
          "<root-layout width=\"240\" height=\"320\"/>\r\n"
          "<region id=\"Image\" top=\"0\" left=\"0\" width=\"100%%\" height=\"60%%\" fit=\"meet\"/>\r\n"
          "<region id=\"Text\" top=\"60%%\" left=\"0\" width=\"100%%\" height=\"40%%\" fit=\"scroll\"/>\r\n"
          "</layout>\r\n</head>\r\n<body>\r\n");
    mms_part *parts = out->parts;
    int np = 1;
    for (int i = 0; i < is->nslides; i++) {
        const mms_slide *s = &is->slides[i];
        b_fmt(&sm, "<par dur=\"%ds\">\r\n", s->dur_s > 0 ? s->dur_s : MMS_DEFAULT_DUR_S);
        if (types[i] != MMS_IMG_NONE) {
            mms_part *p = &parts[np++];
            snprintf(p->cid, sizeof p->cid, "s%d.%s", i + 1, mms_img_ext(types[i]));
            snprintf(p->type, sizeof p->type, "%s", mms_img_mime(types[i]));
            snprintf(p->name, sizeof p->name, "%s", s->image_name ? s->image_name : p->cid);
            p->size = s->image_len;
            p->width = w[i];
            p->height = h[i];
            b_fmt(&sm, "<img src=\"cid:%s\" region=\"Image\"/>\r\n", p->cid);
        }
        if (s->text && s->text_len) {
            mms_part *p = &parts[np++];
            snprintf(p->cid, sizeof p->cid, "s%d.txt", i + 1);
            snprintf(p->type, sizeof p->type, "text/plain; charset=utf-8");
            snprintf(p->name, sizeof p->name, "%s", p->cid);
            p->size = s->text_len;
            b_fmt(&sm, "<text src=\"cid:%s\" region=\"Text\"/>\r\n", p->cid);
        }
        b_fmt(&sm, "</par>\r\n");
    }
    b_fmt(&sm, "</body>\r\n</smil>\r\n");
    if (sm.oom) {
        free(sm.p);
        return fail(err, errlen, "out of memory");
    }
    snprintf(parts[0].cid, sizeof parts[0].cid, "smil");
    snprintf(parts[0].type, sizeof parts[0].type, "application/smil; charset=utf-8");
    snprintf(parts[0].name, sizeof parts[0].name, "layout.smil");
    parts[0].size = sm.len;
    out->nparts = np;
    out->smil = sm.p;

    char boundary[80];
    int tries = 0;
    do {
        snprintf(boundary, sizeof boundary, "=_herald_mms_%s_%d", boundary_seed ? boundary_seed : "b", tries);
    } while (collides(is, sm.p, boundary) && ++tries < 50);
    if (tries >= 50) {
        mms_composed_free(out);
        return fail(err, errlen, "no MIME boundary found that no part contains");
    }
    snprintf(out->content_type, sizeof out->content_type,
             "multipart/related; type=\"application/smil\"; start=\"<smil>\"; boundary=\"%s\"", boundary);

    buf b = { 0 };
    add_part(&b, boundary, &parts[0], sm.p);
    int k = 1;
    for (int i = 0; i < is->nslides; i++) {
        const mms_slide *s = &is->slides[i];
        if (types[i] != MMS_IMG_NONE)
            add_part(&b, boundary, &parts[k++], s->image);
        if (s->text && s->text_len)
            add_part(&b, boundary, &parts[k++], s->text);
    }
    b_fmt(&b, "--%s--\r\n", boundary);
    if (b.oom) {
        free(b.p);
        mms_composed_free(out);
        return fail(err, errlen, "out of memory");
    }
    out->body = b.p;
    out->len = b.len;
    return 0;
}

void mms_composed_free(mms_composed *c)
{
    if (!c)
        return;
    free(c->body);
    free(c->smil);
    c->body = c->smil = NULL;
    c->len = 0;
    c->nparts = 0;
}

static size_t sum_sizes(const mms_composed *c)
{
    size_t s = 0;
    for (int i = 0; i < c->nparts; i++)
        s += c->parts[i].size;
    return s;
}

int mms_check_budget(const mms_composed *c, size_t budget, char *err, size_t errlen)
{
    if (c->len <= budget)
        return 0;
    size_t n = (size_t)snprintf(err, errlen, "issue is %zu bytes, over the budget of %zu bytes (%zu KB); parts:",
                                c->len, budget, budget / 1024);
    for (int i = 0; i < c->nparts && n < errlen; i++) {
        const mms_part *p = &c->parts[i];
        if (strcmp(p->name, p->cid) != 0)
            n += (size_t)snprintf(err + n, errlen - n, "%s %s (%s) %zu bytes", i ? "," : "",
                                  p->cid, p->name, p->size);
        else
            n += (size_t)snprintf(err + n, errlen - n, "%s %s %zu bytes", i ? "," : "", p->cid, p->size);
    }
    if (n < errlen)
        snprintf(err + n, errlen - n, "; MIME headers %zu bytes", c->len - sum_sizes(c));
    return -1;
}
