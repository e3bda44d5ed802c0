/* tpl.c -- the template engine: a mustache subset compiled to a node tree.
 *
 * The catalog (templates/catalog.c) hands each template body here once, at
 * load time; workers then render the compiled tree with a message's
 * variables. Memory in, memory out: nothing here opens a file.
 *
 * Syntax: {{name}} inserts a variable as is (no HTML escaping: the output
 * is an SMS, not a web page); {{#name}}...{{/name}} renders its content when
 * the variable is "true" (set, and not "", "0" or "false");
 * {{^name}}...{{/name}} when it is not; {{! anything }} is dropped. Names
 * are [A-Za-z_][A-Za-z0-9_]* with optional spaces inside the braces. Text
 * outside tags, newlines included, is kept exactly as written (there is
 * no "standalone line" trimming). Partials, triple braces, {{&name}} and
 * delimiter changes are refused at compile time, not ignored. */
#include "templates/tpl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TPL_MAX_DEPTH 32

typedef enum { NODE_TEXT, NODE_VAR, NODE_SECTION, NODE_INVERTED } node_kind;

typedef struct node {
    node_kind kind;
    const char *text;           /* NODE_TEXT: points into tpl->src */
    size_t len;
    char *name;                 /* NODE_VAR and sections */
    int line;
    struct node *child;         /* sections */
    struct node *next;
} node;

struct tpl {
    char *src;                  /* private copy the text nodes point into */
    node *root;
    char **vars;                /* distinct names, order of first use */
    int *var_lines;             /* line of each name's first use */
    size_t nvars;
};

static void set_err(char *err, size_t errlen, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!err || !errlen)
        return;
    n = snprintf(err, errlen, "line %d: ", line);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void nodes_free(node *n)
{
    while (n) {
        node *next = n->next;
        nodes_free(n->child);
        free(n->name);
        free(n);
        n = next;
    }
}

void tpl_free(tpl *t)
{
    if (!t)
        return;
    nodes_free(t->root);
    for (size_t i = 0; i < t->nvars; i++)
        free(t->vars[i]);
    free(t->vars);
    free(t->var_lines);
    free(t->src);
    free(t);
}

/* Returns the byte offset of the first invalid UTF-8 sequence in s, or
 * len when it is all valid. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        unsigned long cp, min;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF)      { need = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (i + need >= len)
            return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += need + 1;
    }
    return len;
}

static int count_lines(const char *s, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            n++;
    return n;
}

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Records name in t->vars unless it is there. -1 on allocation failure. */
static int note_var(tpl *t, const char *name, int line)
{
    for (size_t i = 0; i < t->nvars; i++)
        if (strcmp(t->vars[i], name) == 0)
            return 0;
    char **v = realloc(t->vars, (t->nvars + 1) * sizeof *v);
    if (!v)
        return -1;
    t->vars = v;
    int *l = realloc(t->var_lines, (t->nvars + 1) * sizeof *l);
    if (!l)
        return -1;
    t->var_lines = l;
    t->var_lines[t->nvars] = line;
    t->vars[t->nvars] = strdup(name);
    if (!t->vars[t->nvars])
        return -1;
    t->nvars++;
    return 0;
}

/* The list being filled at one nesting level. */
typedef struct level {
    node *owner;                /* the open section, NULL at top level */
    node **tail;                /* where the next node goes */
} level;

static node *node_new(node_kind kind, int line)
{
    node *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = line;
    }
    return n;
}

tpl *tpl_compile(const char *src, size_t len, char *err, size_t errlen)
{
    level stack[TPL_MAX_DEPTH + 1];
    int depth = 0, line = 1;
    size_t bad, pos = 0;
    tpl *t = calloc(1, sizeof *t);

    if (!t) {
        set_err(err, errlen, 0, "out of memory");
        return NULL;
    }
    bad = utf8_check((const unsigned char *)src, len);
    if (bad < len) {
        set_err(err, errlen, 1 + count_lines(src, bad),
                "invalid UTF-8 at byte %zu", bad);
        goto fail;
    }
    if (memchr(src, '\0', len)) {
        const char *z = memchr(src, '\0', len);
        set_err(err, errlen, 1 + count_lines(src, (size_t)(z - src)),
                "NUL byte in template");
        goto fail;
    }
    t->src = malloc(len + 1);
    if (!t->src) {
        set_err(err, errlen, 0, "out of memory");
        goto fail;
    }
    memcpy(t->src, src, len);
    t->src[len] = '\0';
    const char *s = t->src;

    stack[0].owner = NULL;
    stack[0].tail = &t->root;

    while (pos < len) {
        const char *open = strstr(s + pos, "{{");
        size_t text_end = open ? (size_t)(open - s) : len;

        if (text_end > pos) {
            node *n = node_new(NODE_TEXT, line);
            if (!n) { set_err(err, errlen, line, "out of memory"); goto fail; }
            n->text = s + pos;
            n->len = text_end - pos;
            *stack[depth].tail = n;
            stack[depth].tail = &n->next;
            line += count_lines(s + pos, text_end - pos);
        }
        if (!open)
            break;

        int tag_line = line;
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            set_err(err, errlen, tag_line, "unclosed tag '{{'");
            goto fail;
        }
        line += count_lines(open, (size_t)(close - open));
        pos = (size_t)(close - s) + 2;

        const char *b = open + 2, *e = close;
        while (b < e && is_space(*b)) b++;
        while (e > b && is_space(e[-1])) e--;
        if (b == e) {
            set_err(err, errlen, tag_line, "empty tag");
            goto fail;
        }
        char sigil = *b;
        if (sigil == '!')
            continue;           /* comment: may hold anything but "}}" */
        if (sigil == '{' || sigil == '&' || sigil == '>' || sigil == '=' ||
            sigil == '<') {
            set_err(err, errlen, tag_line, "unsupported tag '{{%c': only "
                    "{{name}}, {{#name}}, {{^name}}, {{/name}} and {{! }}", sigil);
            goto fail;
        }
        if (sigil == '#' || sigil == '^' || sigil == '/') {
            b++;
            while (b < e && is_space(*b)) b++;
        }
        if (b == e) {
            set_err(err, errlen, tag_line, "tag '{{%c}}' has no name", sigil);
            goto fail;
        }
        if (!is_name_start(*b)) {
            set_err(err, errlen, tag_line, "malformed tag '{{%.*s}}': a name "
                    "is letters, digits and '_'", (int)(close - open - 2), open + 2);
            goto fail;
        }
        for (const char *p = b; p < e; p++) {
            if (!is_name_char(*p)) {
                set_err(err, errlen, tag_line, "malformed tag '{{%.*s}}': a name "
                        "is letters, digits and '_'", (int)(close - open - 2), open + 2);
                goto fail;
            }
        }
        char *name = strndup(b, (size_t)(e - b));
        if (!name) { set_err(err, errlen, tag_line, "out of memory"); goto fail; }

        if (sigil == '/') {
            node *owner = stack[depth].owner;
            if (!owner) {
                set_err(err, errlen, tag_line, "'{{/%s}}' closes no open section", name);
                free(name);
                goto fail;
            }
            if (strcmp(owner->name, name) != 0) {
                set_err(err, errlen, tag_line, "'{{/%s}}' does not match "
                        "'{{%c%s}}' opened on line %d", name,
                        owner->kind == NODE_SECTION ? '#' : '^',
                        owner->name, owner->line);
                free(name);
                goto fail;
            }
            free(name);
            depth--;
            continue;
        }

        node *n = node_new(sigil == '#' ? NODE_SECTION :
                           sigil == '^' ? NODE_INVERTED : NODE_VAR, tag_line);
        if (!n || note_var(t, name, tag_line) < 0) {
            free(n);
            free(name);
            set_err(err, errlen, tag_line, "out of memory");
            goto fail;
        }
        n->name = name;
        *stack[depth].tail = n;
        stack[depth].tail = &n->next;
        if (n->kind != NODE_VAR) {
            if (depth == TPL_MAX_DEPTH) {
                set_err(err, errlen, tag_line, "sections nested deeper than %d",
                        TPL_MAX_DEPTH);
                goto fail;
            }
            depth++;
            stack[depth].owner = n;
            stack[depth].tail = &n->child;
        }
    }
    if (depth > 0) {
        node *owner = stack[depth].owner;
        set_err(err, errlen, owner->line, "section '{{%c%s}}' is never closed",
                owner->kind == NODE_SECTION ? '#' : '^', owner->name);
        goto fail;
    }
    return t;
fail:
    tpl_free(t);
    return NULL;
}

void tpl_each_var(const tpl *t, void (*fn)(const char *name, void *ud), void *ud)
{
    for (size_t i = 0; t && i < t->nvars; i++)
        fn(t->vars[i], ud);
}

int tpl_var_line(const tpl *t, const char *name)
{
    for (size_t i = 0; t && i < t->nvars; i++)
        if (strcmp(t->vars[i], name) == 0)
            return t->var_lines[i];
    return 0;
}

/* A growing output buffer; `failed` sticks after an allocation failure. */
typedef struct outbuf {
    char *p;
    size_t len, cap;
    int failed;
} outbuf;

static void out_put(outbuf *o, const char *s, size_t n)
{
    if (o->failed || n == 0)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static const char *lookup(const tpl_var *vars, size_t nvars, const char *name)
{
    for (size_t i = 0; i < nvars; i++)
        if (vars[i].name && strcmp(vars[i].name, name) == 0)
            return vars[i].value ? vars[i].value : "";
    return "";
}

static int truthy(const char *v)
{
    return v[0] != '\0' && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
}

static void render_nodes(const node *n, const tpl_var *vars, size_t nvars, outbuf *o)
{
    for (; n; n = n->next) {
        switch (n->kind) {
        case NODE_TEXT:
            out_put(o, n->text, n->len);
            break;
        case NODE_VAR: {
            const char *v = lookup(vars, nvars, n->name);
            out_put(o, v, strlen(v));
            break;
        }
        case NODE_SECTION:
        case NODE_INVERTED: {
            int on = truthy(lookup(vars, nvars, n->name));
            if (on == (n->kind == NODE_SECTION))
                render_nodes(n->child, vars, nvars, o);
            break;
        }
        }
    }
}

char *tpl_render(const tpl *t, const tpl_var *vars, size_t nvars)
{
    outbuf o = { NULL, 0, 0, 0 };

    render_nodes(t->root, vars, nvars, &o);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    if (!o.p)
        return strdup("");
    return o.p;
}
