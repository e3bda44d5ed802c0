/* test_bulletin.c -- queue/bulletin.c (lists, issue numbers, recipient
 * statuses and figures) against a real redis-server.
 *
 * Needs REDIS_SOCK (tests/run.sh starts a private redis-server for the unit
 * tests). Uses its own prefix "{btest}" and, before and after, deletes its
 * own keys (SCAN MATCH on that prefix): the next unit test on the same server
 * (test_queue) checks that no key lies outside its own prefix. */
#include "queue/bulletin.h"
#include "queue/survey.h"
#include "tests/unit/test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#define P "btest"
#define TITLE "检察工作通讯"

static queue *open_q(void)
{
    queue_opts o = { .socket = getenv("REDIS_SOCK"), .prefix = P, .connect_timeout_ms = 1000,
                     .command_timeout_ms = 2000 };
    char err[256];
    queue *q = queue_connect(&o, err, sizeof err);
    if (!q)
        fprintf(stderr, "queue_connect: %s\n", err);
    return q;
}

static void test_lists(queue *q)
{
    int added = -1, removed = -1;
    CHECK_INT(queue_list_put(q, "deputies", "+8613800000002", "李四", "市人大", 0, &added), 0);
    CHECK_INT(added, 1);
    CHECK_INT(queue_list_put(q, "deputies", "+8613800000001", "张三", "市人大", 1, &added), 0);
    CHECK_INT(queue_list_put(q, "deputies", "+8613800000001", "张三", "市政协", 1, &added), 0);
    CHECK_INT(added, 0);                                /* replaced, not added */
    json_t *j = NULL;
    CHECK_INT(queue_list_get(q, "deputies", &j), 0);
    CHECK_INT(json_array_size(j), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "phone")), "+8613800000001");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "org")), "市政协");
    CHECK(json_is_true(json_object_get(json_array_get(j, 0), "sms_only")));
    CHECK(json_is_false(json_object_get(json_array_get(j, 1), "sms_only")));
    json_decref(j);
    CHECK_INT(queue_list_remove(q, "deputies", "+8613800000002", &removed), 0);
    CHECK_INT(removed, 1);
    CHECK_INT(queue_list_remove(q, "deputies", "+8613800000002", &removed), 0);
    CHECK_INT(removed, 0);
    CHECK_INT(queue_list_get(q, "nobody", &j), 0);
    CHECK_INT(json_array_size(j), 0);
    json_decref(j);
    CHECK_INT(queue_optout_has(q, "+8613800000001"), 0);
}

typedef struct racer {
    long long got[50];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    queue *q = open_q();
    for (int i = 0; q && i < 50; i++)
        queue_bulletin_next_issue(q, "race", &r->got[i]);
    queue_free(q);
    return NULL;
}

static void test_numbers(queue *q)
{
    long long n = -1;
    CHECK_INT(queue_bulletin_last_issue(q, TITLE, &n), 0);
    CHECK_INT(n, 0);
    CHECK_INT(queue_bulletin_next_issue(q, TITLE, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_bulletin_next_issue(q, "预防犯罪", &n), 0);
    CHECK_INT(n, 1);                                    /* each title numbers itself */
    /* two connections taking numbers at once never share one */
    racer a = { { 0 } }, b = { { 0 } };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    pthread_create(&tb, NULL, race, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    char seen[101] = { 0 };
    int dup = 0;
    for (int i = 0; i < 50; i++) {
        long long x[2] = { a.got[i], b.got[i] };
        for (int k = 0; k < 2; k++) {
            if (x[k] < 1 || x[k] > 100 || seen[x[k]])
                dup++;
            else
                seen[x[k]] = 1;
        }
    }
    CHECK_INT(dup, 0);
}

static void test_issue(queue *q)
{
    queue_bulletin_rcpt rc[] = { { "+8613800000001", 0 }, { "+8613800000002", 0 }, { "+8613800000009", 1 } };
    const char content[] = "--b\r\nbinary \0 bytes\r\n--b--\r\n";
    queue_bulletin_new b = {
        .title = TITLE, .issue = 1, .subject = "第1期", .content_type = "multipart/related; boundary=b",
        .content = content, .content_len = sizeof content - 1, .parts_json = "[{\"cid\":\"smil\"}]",
        .rcpt = rc, .nrcpt = 3, .skipped_optout = 2, .now_ms = 1000,
    };
    CHECK_INT(queue_bulletin_create(q, &b), 0);
    CHECK_INT(queue_bulletin_create(q, &b), QUEUE_ERR_STATE);    /* never twice */

    char *c = NULL, *ct = NULL, *subj = NULL;
    size_t len = 0;
    CHECK_INT(queue_bulletin_content(q, TITLE, 1, &c, &len, &ct, &subj), 0);
    CHECK_INT(len, sizeof content - 1);
    CHECK(c && memcmp(c, content, len) == 0);           /* binary-safe, NUL included */
    CHECK_STR(ct, "multipart/related; boundary=b");
    CHECK_STR(subj, "第1期");
    free(c); free(ct); free(subj);
    CHECK_INT(queue_bulletin_content(q, TITLE, 99, &c, &len, &ct, &subj), QUEUE_ERR_NOTFOUND);

    int changed = -1, first = -1;
    CHECK_INT(queue_bulletin_mark(q, TITLE, 1, "+8613800000001", "sent", "mms_sent", "mid-1", &changed), 0);
    CHECK_INT(changed, 1);
    CHECK_INT(queue_bulletin_mark(q, TITLE, 1, "+8613800000001", "sent", "mms_sent", "mid-1", &changed), 0);
    CHECK_INT(changed, 0);                              /* the same outcome twice counts once */
    CHECK_INT(queue_bulletin_mark(q, TITLE, 1, "+8613800000001", "retrieved", "mms_retrieved", NULL, &changed), 0);
    CHECK_INT(queue_bulletin_mark(q, TITLE, 1, "+8613800000001", "expired", "failed", NULL, &changed), 0);
    CHECK_INT(changed, 0);                              /* a final status stays */
    /* a report that overtakes the submit's record still counts the MMS sent */
    CHECK_INT(queue_bulletin_mark(q, TITLE, 1, "+8613800000002", "retrieved", "mms_retrieved", NULL, &changed), 0);
    CHECK_INT(changed, 1);
    CHECK_INT(queue_bulletin_mark(q, TITLE, 1, "+8613800000002", "sent", "mms_sent", "mid-2", &changed), 0);
    CHECK_INT(changed, 0);
    CHECK_INT(queue_bulletin_mark(q, TITLE, 1, "+8613800000077", "sent", "mms_sent", NULL, &changed),
              QUEUE_ERR_NOTFOUND);
    CHECK_INT(queue_bulletin_fallback(q, TITLE, 1, "+8613800000009", &first), 0);
    CHECK_INT(first, 1);
    CHECK_INT(queue_bulletin_fallback(q, TITLE, 1, "+8613800000009", &first), 0);
    CHECK_INT(first, 0);

    char *t = NULL;
    long long n = 0;
    CHECK_INT(queue_bulletin_by_mid(q, "mid-1", &t, &n), 0);
    CHECK_STR(t, TITLE);
    CHECK_INT(n, 1);
    free(t);
    CHECK_INT(queue_bulletin_by_mid(q, "mid-404", &t, &n), QUEUE_ERR_NOTFOUND);

    json_t *j = NULL;
    CHECK_INT(queue_bulletin_stats(q, TITLE, 1, &j), 0);
    CHECK_INT(json_integer_value(json_object_get(j, "recipients")), 3);
    CHECK_INT(json_integer_value(json_object_get(j, "sms_only")), 1);
    CHECK_INT(json_integer_value(json_object_get(j, "skipped_optout")), 2);
    CHECK_INT(json_integer_value(json_object_get(j, "mms_sent")), 2);
    CHECK_INT(json_integer_value(json_object_get(j, "mms_retrieved")), 2);
    CHECK_INT(json_integer_value(json_object_get(j, "failed")), 0);
    CHECK_INT(json_integer_value(json_object_get(j, "sms_fallback")), 1);
    CHECK_INT(json_integer_value(json_object_get(j, "size")), (long long)(sizeof content - 1));
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "statuses"), "retrieved")), 2);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "statuses"), "sms_only")), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "parts"), 0), "cid")), "smil");
    json_decref(j);
    CHECK_INT(queue_bulletin_stats(q, TITLE, 2, &j), QUEUE_ERR_NOTFOUND);
}

/* Deletes every "{btest}:*" key: only this test writes that prefix. */
static void drop_own_keys(void)
{
    redisContext *c = redisConnectUnix(getenv("REDIS_SOCK"));
    if (!c || c->err) {
        redisFree(c);
        return;
    }
    unsigned long long cursor = 0;
    int rounds = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %llu MATCH %s COUNT 100", cursor, "{" P "}:*");
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            break;
        }
        cursor = strtoull(r->element[0]->str, NULL, 10);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            freeReplyObject(redisCommand(c, "DEL %s", r->element[1]->element[i]->str));
        freeReplyObject(r);
    } while (cursor != 0 && ++rounds < 1000);
    redisFree(c);
}

int main(void)
{
    if (!getenv("REDIS_SOCK")) {
        printf("test_bulletin: REDIS_SOCK not set (tests/run.sh sets it); skipped\n");
        return TEST_REPORT();
    }
    drop_own_keys();              /* a server kept from an earlier run (AOF) */
    queue *q = open_q();
    CHECK(q != NULL);
    if (!q)
        return TEST_REPORT();
    test_lists(q);
    test_numbers(q);
    test_issue(q);
    queue_free(q);
    drop_own_keys();
    return TEST_REPORT();
}
