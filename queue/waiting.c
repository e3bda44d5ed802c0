/* waiting.c -- what waits, per family (see waiting.h).
 *
 * Part of queue/: it borrows queue.c's connection through queue/internal.h
 * and spells the three keys it reads (lanes, schedule, records) in wkey()
 * below, the same spelling as key_kinds[] in queue.c. Read only: it
 * writes nothing and runs no script. */
#include "queue/waiting.h"
#include "queue/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "templates/catalog.h"

/* "{prefix}:<kind><a>" into a malloc'd string (NULL when out of memory). */
static char *wkey(const queue *q, const char *kind, const char *a)
{
    char *s = NULL;
    return asprintf(&s, "{%s}:%s%s", queue_int_prefix(q), kind, a ? a : "") < 0 ? NULL : s;
}

static void bump(json_t *o, const char *family)
{
    json_t *c = json_object_get(o, family);
    json_object_set_new(o, family, json_integer((c ? json_integer_value(c) : 0) + 1));
}

/* One command (argv NULL-terminated, at most 8 words) on q; NULL and *rc
 * set on failure. */
static redisReply *cmd(queue *q, const char *const *argv, const char *what, int *rc)
{
    size_t lens[8];
    int n = 0;
    while (n < 8 && argv[n]) {
        lens[n] = strlen(argv[n]);
        n++;
    }
    redisReply *r = queue_int_command(q, n, (const char **)argv, lens, what);
    *rc = queue_int_check(q, r, what);
    return *rc ? NULL : r;
}

/* The records' family and status of `n` ids, in one pipeline; each id
 * counted into `into` when its status is `want` (NULL: any status). */
static int count_records(queue *q, char **ids, size_t n, const char *want, json_t *into)
{
    if (!n)
        return 0;
    int rc = 0;
    int *argcs = calloc(n, sizeof *argcs);
    const char *(*argv)[4] = calloc(n, sizeof *argv);
    size_t (*lens)[4] = calloc(n, sizeof *lens);
    const char *const **pv = calloc(n, sizeof *pv);
    const size_t **pl = calloc(n, sizeof *pl);
    char **keys = calloc(n, sizeof *keys);
    redisReply **out = calloc(n, sizeof *out);
    if (!argcs || !argv || !lens || !pv || !pl || !keys || !out) {
        queue_int_seterr(q, "out of memory");
        rc = QUEUE_ERR_PROTO;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(keys[i] = wkey(q, "msg:", ids[i]))) {
            queue_int_seterr(q, "out of memory");
            rc = QUEUE_ERR_PROTO;
            goto done;
        }
        const char *v[4] = { "HMGET", keys[i], "family", "status" };
        for (int k = 0; k < 4; k++) {
            argv[i][k] = v[k];
            lens[i][k] = strlen(v[k]);
        }
        argcs[i] = 4;
        pv[i] = argv[i];
        pl[i] = lens[i];
    }
    rc = queue_int_pipeline(q, n, argcs, (const char *const *const *)pv, pl, out,
                            "reading the waiting messages");
    for (size_t i = 0; i < n && rc == 0; i++) {
        redisReply *r = out[i];
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            continue;                        /* an error reply: skipped, counted nowhere */
        const char *fam = r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : NULL;
        const char *st = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : NULL;
        if (!fam || !st || !*fam)
            continue;                        /* a record past its retention: nothing to count */
        if (!want || strcmp(st, want) == 0)
            bump(into, fam);
    }
done:
    for (size_t i = 0; out && i < n; i++)
        if (out[i])
            freeReplyObject(out[i]);
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(argcs);
    free(argv);
    free(lens);
    free(pv);
    free(pl);
    free(keys);
    free(out);
    return rc;
}

int queue_waiting_by_family(queue *q, int max, json_t **out)
{
    queue_int_clearerr(q);
    *out = NULL;
    if (max < 1)
        max = 1;
    char maxs[24], last[24];
    snprintf(maxs, sizeof maxs, "%d", max);
    snprintf(last, sizeof last, "%d", max - 1);
    json_t *waiting = json_object(), *scheduled = json_object();
    for (int f = 0; f < FAMILY_COUNT; f++) {
        json_object_set_new(waiting, family_name((tpl_family)f), json_integer(0));
        json_object_set_new(scheduled, family_name((tpl_family)f), json_integer(0));
    }
    long long scanned = 0, unscanned = 0;
    int rc = 0;
    char **ids = calloc((size_t)max, sizeof *ids);
    size_t nids = 0;
    if (!ids) {
        queue_int_seterr(q, "out of memory");
        rc = QUEUE_ERR_PROTO;
    }
    /* the lanes, oldest first: entries [entry id, [field, value, ...]] with
     * the field `id`; then the schedule, soonest first: message ids */
    for (int l = 0; l <= LANE_COUNT && rc == 0; l++) {
        int sched = l == LANE_COUNT;
        char *key = sched ? wkey(q, "sched", NULL) : wkey(q, "lane:", lane_name((tpl_lane)l));
        if (!key) {
            queue_int_seterr(q, "out of memory");
            rc = QUEUE_ERR_PROTO;
            break;
        }
        const char *lenv[] = { sched ? "ZCARD" : "XLEN", key, NULL };
        const char *lane_v[] = { "XRANGE", key, "-", "+", "COUNT", maxs, NULL };
        const char *sched_v[] = { "ZRANGE", key, "0", last, NULL };
        redisReply *len = cmd(q, lenv, "waiting: length", &rc);
        redisReply *r = len ? cmd(q, sched ? sched_v : lane_v, "waiting: entries", &rc) : NULL;
        nids = 0;
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && nids < (size_t)max; i++) {
            redisReply *e = r->element[i];
            if (sched) {
                if (e->type == REDIS_REPLY_STRING)
                    ids[nids++] = e->str;
                continue;
            }
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            redisReply *kv = e->element[1];
            for (size_t k = 0; k + 1 < kv->elements; k += 2)
                if (kv->element[k]->type == REDIS_REPLY_STRING && strcmp(kv->element[k]->str, "id") == 0
                    && kv->element[k + 1]->type == REDIS_REPLY_STRING) {
                    ids[nids++] = kv->element[k + 1]->str;
                    break;
                }
        }
        if (r) {
            long long got = r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : 0;
            scanned += got;
            if (len->type == REDIS_REPLY_INTEGER && len->integer > got)
                unscanned += len->integer - got;
            rc = count_records(q, ids, nids, sched ? NULL : "queued", sched ? scheduled : waiting);
            freeReplyObject(r);
        }
        if (len)
            freeReplyObject(len);
        free(key);
    }
    free(ids);
    if (rc) {
        json_decref(waiting);
        json_decref(scheduled);
        return rc;
    }
    *out = json_pack("{s:o, s:o, s:i, s:I, s:I, s:b}", "waiting", waiting, "scheduled", scheduled,
                     "limit", max, "scanned", (json_int_t)scanned, "unscanned", (json_int_t)unscanned,
                     "exact", unscanned == 0);
    return *out ? 0 : QUEUE_ERR_PROTO;
}
