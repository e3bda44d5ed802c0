/* bulletin.c -- subscriber lists and bulletin issues in Redis (see bulletin.h).
 *
 * Part of queue/, the only code that speaks Redis: it borrows queue.c's
 * connection through queue/internal.h and spells its own keys in
 * bkey() below (the one place for the bulletin keys). Its scripts are
 * sent with EVAL: they are small and Redis caches them by their SHA. */
#include "queue/bulletin.h"
#include "queue/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MID_TTL_MS   "5184000000"     /* 60 days: delivery reports come within days */
#define RCPT_CHUNK   200              /* phones per HSET when an issue is stored */

/* ---- keys ---------------------------------------------------------------- */

/* "{prefix}:<kind><a>[:<b>]" into a malloc'd string. */
static char *bkey(const queue *q, const char *kind, const char *a, long long issue)
{
    char *s = NULL;
    int n = issue > 0 ? asprintf(&s, "{%s}:%s%s:%lld", queue_internal_prefix(q), kind, a, issue)
                      : asprintf(&s, "{%s}:%s%s", queue_internal_prefix(q), kind, a ? a : "");
    return n < 0 ? NULL : s;
}

/* ---- a small argv ------------------------------------------------------- */

#define ARGS_MAX (RCPT_CHUNK * 2 + 8)

typedef struct args {
    int n, nown;
    const char *v[ARGS_MAX];
    size_t l[ARGS_MAX];
    char *own[16];
} args;

static void a_str(args *a, const char *s)
{
    if (a->n >= ARGS_MAX)
        return;
    a->v[a->n] = s ? s : "";
    a->l[a->n++] = s ? strlen(s) : 0;
}

static void a_bin(args *a, const char *s, size_t len)
{
    if (a->n >= ARGS_MAX)
        return;
    a->v[a->n] = s;
    a->l[a->n++] = len;
}

/* Pushes a string the args own (freed by a_free). NULL pushes "". */
static void a_own(args *a, char *s)
{
    if (s && a->nown < 16)
        a->own[a->nown++] = s;
    a_str(a, s);
}

static void a_ll(args *a, long long v)
{
    char *s = NULL;
    if (asprintf(&s, "%lld", v) < 0)
        s = NULL;
    a_own(a, s);
}

static void a_free(args *a)
{
    for (int i = 0; i < a->nown; i++)
        free(a->own[i]);
    a->n = a->nown = 0;
}

static redisReply *a_run(queue *q, args *a, const char *what, int *rc)
{
    for (int i = 0; i < a->nown; i++)
        if (!a->own[i]) {
            queue_internal_seterr(q, "out of memory");
            *rc = QUEUE_ERR_PROTO;
            return NULL;
        }
    return queue_internal_command(q, a->n, a->v, a->l, what, rc);
}

/* ---- lists ---------------------------------------------------------------- */

int queue_list_put(queue *q, const char *list, const char *phone, const char *name,
                   const char *org, int sms_only, int *added)
{
    static const char lua[] =
        "local n = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
        "redis.call('SADD', KEYS[2], ARGV[3])\n"
        "return n\n";
    queue_internal_clearerr(q);
    json_t *j = json_pack("{s:s, s:s, s:b}", "name", name ? name : "", "org", org ? org : "",
                          "sms_only", sms_only);
    char *val = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    args a = { 0 };
    a_str(&a, "EVAL"); a_str(&a, lua); a_str(&a, "2");
    a_own(&a, bkey(q, "list:", list, 0));
    a_own(&a, bkey(q, "lists", NULL, 0));
    a_str(&a, phone); a_own(&a, val); a_str(&a, list);
    int rc;
    redisReply *r = a_run(q, &a, "storing a list member", &rc);
    if (r) {
        if (added)
            *added = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
    }
    a_free(&a);
    return rc;
}

int queue_list_remove(queue *q, const char *list, const char *phone, int *removed)
{
    queue_internal_clearerr(q);
    args a = { 0 };
    a_str(&a, "HDEL");
    a_own(&a, bkey(q, "list:", list, 0));
    a_str(&a, phone);
    int rc;
    redisReply *r = a_run(q, &a, "removing a list member", &rc);
    if (r) {
        if (removed)
            *removed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
    }
    a_free(&a);
    return rc;
}

static int cmp_phone(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "phone")),
                  json_string_value(json_object_get(y, "phone")));
}

int queue_list_get(queue *q, const char *list, json_t **out)
{
    queue_internal_clearerr(q);
    *out = NULL;
    args a = { 0 };
    a_str(&a, "HGETALL");
    a_own(&a, bkey(q, "list:", list, 0));
    int rc;
    redisReply *r = a_run(q, &a, "reading a list", &rc);
    a_free(&a);
    if (!r)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        queue_internal_seterr(q, "reading a list: unexpected reply from redis");
        return QUEUE_ERR_PROTO;
    }
    size_t n = r->elements / 2;
    json_t **items = calloc(n ? n : 1, sizeof *items);
    size_t k = 0;
    for (size_t i = 0; items && i + 1 < r->elements; i += 2) {
        json_t *m = json_loads(r->element[i + 1]->str ? r->element[i + 1]->str : "", 0, NULL);
        if (!json_is_object(m)) {      /* a foreign value: keep the phone, say so */
            json_decref(m);
            m = json_pack("{s:s, s:s, s:b}", "name", "", "org", "", "sms_only", 0);
        }
        json_object_set_new(m, "phone", json_string(r->element[i]->str ? r->element[i]->str : ""));
        items[k++] = m;
    }
    freeReplyObject(r);
    if (!items) {
        queue_internal_seterr(q, "out of memory");
        return QUEUE_ERR_PROTO;
    }
    qsort(items, k, sizeof *items, cmp_phone);
    json_t *arr = json_array();
    for (size_t i = 0; i < k; i++) {
        /* a fixed field order for people reading the output */
        json_t *o = json_pack("{s:O, s:O, s:O, s:O}", "phone", json_object_get(items[i], "phone"),
                              "name", json_object_get(items[i], "name") ? json_object_get(items[i], "name") : json_string(""),
                              "org", json_object_get(items[i], "org") ? json_object_get(items[i], "org") : json_string(""),
                              "sms_only", json_object_get(items[i], "sms_only") ? json_object_get(items[i], "sms_only") : json_false());
        json_array_append_new(arr, o);
        json_decref(items[i]);
    }
    free(items);
    *out = arr;
    return 0;
}

int queue_list_exists(queue *q, const char *list, int *exists)
{
    queue_internal_clearerr(q);
    args a = { 0 };
    a_str(&a, "EXISTS");
    a_own(&a, bkey(q, "list:", list, 0));
    int rc;
    redisReply *r = a_run(q, &a, "EXISTS list", &rc);
    if (r) {
        *exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
    }
    a_free(&a);
    return rc;
}

/* ---- issues --------------------------------------------------------------- */

static int int_cmd(queue *q, const char *verb, char *key, long long *out, const char *what)
{
    queue_internal_clearerr(q);
    args a = { 0 };
    a_str(&a, verb);
    a_own(&a, key);
    int rc;
    redisReply *r = a_run(q, &a, what, &rc);
    if (r) {
        if (r->type == REDIS_REPLY_INTEGER)
            *out = r->integer;
        else if (r->type == REDIS_REPLY_STRING)
            *out = strtoll(r->str, NULL, 10);
        else
            *out = 0;
        freeReplyObject(r);
    }
    a_free(&a);
    return rc;
}

int queue_bulletin_next_issue(queue *q, const char *title, long long *issue)
{
    return int_cmd(q, "INCR", bkey(q, "bseq:", title, 0), issue, "taking an issue number");
}

int queue_bulletin_last_issue(queue *q, const char *title, long long *issue)
{
    return int_cmd(q, "GET", bkey(q, "bseq:", title, 0), issue, "reading the issue number");
}

int queue_bulletin_create(queue *q, const queue_bulletin_new *b)
{
    /* KEYS: 1 issue, 2 content, 3 the index of issues. ARGV: title, issue,
     * subject, type, content, parts, recipients, sms_only, skipped_optout,
     * send_at, now. */
    static const char lua[] =
        "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
        "redis.call('HSET', KEYS[1], 'title', ARGV[1], 'issue', ARGV[2], 'subject', ARGV[3],\n"
        "  'content_type', ARGV[4], 'size', tostring(string.len(ARGV[5])), 'parts', ARGV[6],\n"
        "  'recipients', ARGV[7], 'sms_only', ARGV[8], 'skipped_optout', ARGV[9],\n"
        "  'send_at', ARGV[10], 'created', ARGV[11], 'mms_sent', '0', 'mms_retrieved', '0',\n"
        "  'failed', '0', 'sms_fallback', '0')\n"
        "redis.call('SET', KEYS[2], ARGV[5])\n"
        "redis.call('ZADD', KEYS[3], ARGV[11], ARGV[1] .. '\\t' .. ARGV[2])\n"
        "return 1\n";
    queue_internal_clearerr(q);
    int rc = 0;
    long long nsms = 0;
    /* The recipients first, in chunks: the issue record appears last, so
     * a reader never sees an issue without its recipients. */
    for (size_t i = 0; i < b->nrcpt && rc == 0; i += RCPT_CHUNK) {
        args a = { 0 };
        a_str(&a, "HSET");
        a_own(&a, bkey(q, "brcpt:", b->title, b->issue));
        for (size_t k = i; k < b->nrcpt && k < i + RCPT_CHUNK; k++) {
            a_str(&a, b->rcpt[k].phone);
            a_str(&a, b->rcpt[k].sms_only ? "sms_only" : "queued");
        }
        redisReply *r = a_run(q, &a, "storing the recipients", &rc);
        if (r)
            freeReplyObject(r);
        a_free(&a);
    }
    if (rc)
        return rc;
    for (size_t i = 0; i < b->nrcpt; i++)
        nsms += b->rcpt[i].sms_only;
    args a = { 0 };
    a_str(&a, "EVAL"); a_str(&a, lua); a_str(&a, "3");
    a_own(&a, bkey(q, "bissue:", b->title, b->issue));
    a_own(&a, bkey(q, "bcontent:", b->title, b->issue));
    a_own(&a, bkey(q, "bissues", NULL, 0));
    a_str(&a, b->title); a_ll(&a, b->issue); a_str(&a, b->subject); a_str(&a, b->content_type);
    a_bin(&a, b->content, b->content_len);
    a_str(&a, b->parts_json ? b->parts_json : "[]");
    a_ll(&a, (long long)b->nrcpt); a_ll(&a, nsms); a_ll(&a, b->skipped_optout);
    a_ll(&a, b->send_at_ms); a_ll(&a, b->now_ms);
    redisReply *r = a_run(q, &a, "storing the issue", &rc);
    if (r) {
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
            queue_internal_seterr(q, "the issue exists already");
            rc = QUEUE_ERR_STATE;
        }
        freeReplyObject(r);
    }
    a_free(&a);
    return rc;
}

int queue_bulletin_content(queue *q, const char *title, long long issue,
                           char **content, size_t *len, char **content_type, char **subject)
{
    queue_internal_clearerr(q);
    *content = *content_type = *subject = NULL;
    *len = 0;
    args a = { 0 };
    a_str(&a, "GET");
    a_own(&a, bkey(q, "bcontent:", title, issue));
    int rc;
    redisReply *r = a_run(q, &a, "reading the issue content", &rc);
    a_free(&a);
    if (!r)
        return rc;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        queue_internal_seterr(q, "the issue's content is gone");
        return QUEUE_ERR_NOTFOUND;
    }
    *content = malloc(r->len + 1);
    if (*content) {
        memcpy(*content, r->str, r->len);
        (*content)[r->len] = '\0';
        *len = r->len;
    }
    freeReplyObject(r);
    a_str(&a, "HMGET");
    a_own(&a, bkey(q, "bissue:", title, issue));
    a_str(&a, "content_type");
    a_str(&a, "subject");
    r = a_run(q, &a, "reading the issue", &rc);
    a_free(&a);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
        && r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        *content_type = strdup(r->element[0]->str);
        *subject = strdup(r->element[1]->str);
    } else if (!rc) {
        queue_internal_seterr(q, "the issue's record is gone");
        rc = QUEUE_ERR_NOTFOUND;
    }
    if (r)
        freeReplyObject(r);
    if (!rc && (!*content || !*content_type || !*subject)) {
        queue_internal_seterr(q, "out of memory");
        rc = QUEUE_ERR_PROTO;
    }
    if (rc) {
        free(*content); free(*content_type); free(*subject);
        *content = *content_type = *subject = NULL;
    }
    return rc;
}

int queue_bulletin_mark(queue *q, const char *title, long long issue, const char *phone,
                        const char *status, const char *counter, const char *mid, int *changed)
{
    /* KEYS: 1 issue, 2 rcpt, 3 mid. ARGV: phone, status, counter, mid value,
     * mid ttl. A delivery report may overtake the record of the submit: a
     * recipient still `queued` that gets a report was sent, so mms_sent is
     * bumped too. */
    static const char lua[] =
        "local final = {retrieved=true, failed=true, rejected=true, expired=true,\n"
        "  unreachable=true, notsupported=true, unrecognized=true, forwarded=true}\n"
        "if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5]) end\n"
        "local old = redis.call('HGET', KEYS[2], ARGV[1])\n"
        "if not old then return -1 end\n"
        "if old == ARGV[2] or final[old] then return 0 end\n"
        "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
        "if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[3], 1) end\n"
        "if old == 'queued' and ARGV[2] ~= 'sent' and ARGV[3] ~= 'mms_sent'\n"
        "   and ARGV[2] ~= 'failed' then\n"
        "  redis.call('HINCRBY', KEYS[1], 'mms_sent', 1)\n"
        "end\n"
        "return 1\n";
    queue_internal_clearerr(q);
    char *midval = NULL;
    if (mid && *mid && asprintf(&midval, "%s\t%lld", title, issue) < 0)
        midval = NULL;
    args a = { 0 };
    a_str(&a, "EVAL"); a_str(&a, lua); a_str(&a, "3");
    a_own(&a, bkey(q, "bissue:", title, issue));
    a_own(&a, bkey(q, "brcpt:", title, issue));
    a_own(&a, bkey(q, "bmid:", mid && *mid ? mid : "-", 0));
    a_str(&a, phone); a_str(&a, status); a_str(&a, counter ? counter : "");
    a_str(&a, midval ? midval : ""); a_str(&a, MID_TTL_MS);
    int rc;
    redisReply *r = a_run(q, &a, "recording a recipient's status", &rc);
    if (r) {
        if (changed)
            *changed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
            queue_internal_seterr(q, "not a recipient of this issue");
            rc = QUEUE_ERR_NOTFOUND;
        }
        freeReplyObject(r);
    }
    a_free(&a);
    free(midval);
    return rc;
}

int queue_bulletin_fallback(queue *q, const char *title, long long issue,
                            const char *phone, int *first)
{
    static const char lua[] =
        "if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then\n"
        "  redis.call('HINCRBY', KEYS[1], 'sms_fallback', 1)\n"
        "  return 1\n"
        "end\n"
        "return 0\n";
    queue_internal_clearerr(q);
    args a = { 0 };
    a_str(&a, "EVAL"); a_str(&a, lua); a_str(&a, "2");
    a_own(&a, bkey(q, "bissue:", title, issue));
    a_own(&a, bkey(q, "bfb:", title, issue));
    a_str(&a, phone);
    int rc;
    redisReply *r = a_run(q, &a, "recording a fallback SMS", &rc);
    if (r) {
        if (first)
            *first = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
    }
    a_free(&a);
    return rc;
}

int queue_bulletin_by_mid(queue *q, const char *mid, char **title, long long *issue)
{
    queue_internal_clearerr(q);
    *title = NULL;
    args a = { 0 };
    a_str(&a, "GET");
    a_own(&a, bkey(q, "bmid:", mid, 0));
    int rc;
    redisReply *r = a_run(q, &a, "looking up a MessageID", &rc);
    a_free(&a);
    if (!r)
        return rc;
    const char *tab = r->type == REDIS_REPLY_STRING ? strchr(r->str, '\t') : NULL;
    if (!tab) {
        freeReplyObject(r);
        queue_internal_seterr(q, "unknown MessageID");
        return QUEUE_ERR_NOTFOUND;
    }
    *title = strndup(r->str, (size_t)(tab - r->str));
    *issue = strtoll(tab + 1, NULL, 10);
    freeReplyObject(r);
    return *title ? 0 : QUEUE_ERR_PROTO;
}

static int is_counter(const char *f)
{
    static const char *const nums[] = { "issue", "size", "recipients", "sms_only", "skipped_optout",
        "send_at", "created", "mms_sent", "mms_retrieved", "failed", "sms_fallback", NULL };
    for (const char *const *n = nums; *n; n++)
        if (strcmp(*n, f) == 0)
            return 1;
    return 0;
}

/* An issue record (HGETALL's field, value, ...) as JSON: counters as
 * numbers, parts as an array, the rest as strings. */
static json_t *issue_json(const redisReply *r)
{
    json_t *o = json_object();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!f || !v)
            continue;
        if (strcmp(f, "parts") == 0) {
            json_t *p = json_loads(v, 0, NULL);
            json_object_set_new(o, f, p ? p : json_array());
        } else if (is_counter(f)) {
            json_object_set_new(o, f, json_integer(strtoll(v, NULL, 10)));
        } else {
            json_object_set_new(o, f, json_string(v));
        }
    }
    return o;
}

int queue_bulletin_stats(queue *q, const char *title, long long issue, json_t **out)
{
    queue_internal_clearerr(q);
    *out = NULL;
    args a = { 0 };
    a_str(&a, "HGETALL");
    a_own(&a, bkey(q, "bissue:", title, issue));
    int rc;
    redisReply *r = a_run(q, &a, "reading the issue", &rc);
    a_free(&a);
    if (!r)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        queue_internal_seterr(q, "no such issue");
        return QUEUE_ERR_NOTFOUND;
    }
    json_t *o = issue_json(r);
    freeReplyObject(r);
    a_str(&a, "HVALS");
    a_own(&a, bkey(q, "brcpt:", title, issue));
    r = a_run(q, &a, "reading the recipients", &rc);
    a_free(&a);
    if (!r) {
        json_decref(o);
        return rc;
    }
    json_t *st = json_object();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const char *s = r->element[i]->str ? r->element[i]->str : "?";
        json_t *c = json_object_get(st, s);
        json_object_set_new(st, s, json_integer((c ? json_integer_value(c) : 0) + 1));
    }
    freeReplyObject(r);
    json_object_set_new(o, "statuses", st);
    *out = o;
    return 0;
}

int queue_bulletin_list(queue *q, int max, json_t **out)
{
    queue_internal_clearerr(q);
    *out = NULL;
    if (max < 1)
        max = 1;
    args a = { 0 };
    a_str(&a, "ZREVRANGE");
    a_own(&a, bkey(q, "bissues", NULL, 0));
    a_str(&a, "0");
    a_ll(&a, (long long)max - 1);
    int rc;
    redisReply *idx = a_run(q, &a, "reading the index of issues", &rc);
    a_free(&a);
    if (!idx)
        return rc;
    json_t *list = json_array();
    /* one HGETALL per issue: at most max (bounded by the caller) */
    for (size_t i = 0; idx->type == REDIS_REPLY_ARRAY && i < idx->elements && rc == 0; i++) {
        const char *m = idx->element[i]->str;
        const char *tab = m ? strrchr(m, '\t') : NULL;
        if (!tab)
            continue;
        char *title = strndup(m, (size_t)(tab - m));
        long long issue = strtoll(tab + 1, NULL, 10);
        if (!title) {
            queue_internal_seterr(q, "out of memory");
            rc = QUEUE_ERR_PROTO;
            break;
        }
        a_str(&a, "HGETALL");
        a_own(&a, bkey(q, "bissue:", title, issue));
        redisReply *r = a_run(q, &a, "reading an issue", &rc);
        a_free(&a);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            json_t *o = issue_json(r);
            json_object_del(o, "parts");       /* the listing: figures, not the content's layout */
            json_array_append_new(list, o);
        }                                     /* an issue deleted by hand: left out */
        if (r)
            freeReplyObject(r);
        free(title);
    }
    freeReplyObject(idx);
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}
