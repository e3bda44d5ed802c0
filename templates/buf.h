/* buf.h -- a growing byte buffer, always NUL-terminated, that remembers
 * running out of memory instead of failing every call (check `oom` once,
 * at the end). Shared by the code that builds texts and bodies: the MMS
 * composer (templates/mms.c), the MM7 and generic HTTP drivers. Header
 * only: static functions, no state. The caller frees `p`. */
#ifndef HERALD_BUF_H
#define HERALD_BUF_H

#include <stdlib.h>
#include <string.h>

typedef struct hbuf {
    char *p;
    size_t len, cap;
    int oom;
} hbuf;

static inline void hbuf_add(hbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void hbuf_puts(hbuf *b, const char *s) { hbuf_add(b, s, strlen(s)); }

#endif
