/* apibench -- a small libcurl load generator for POST /v1/messages.
 *
 *   apibench URL TOKEN CLIENTS REQUESTS [BATCH]
 *
 * CLIENTS threads, each with one keep-alive connection (one CURL handle
 * reused), share REQUESTS requests. BATCH 0 (default) posts single
 * messages; BATCH n posts {"messages":[...]} of n messages. Every message
 * has its own idempotency key and number, so each one is really queued.
 * Prints one JSON line: clients, requests, messages, seconds, rps, mps, and
 * the count of answers by status; exit 1 when any answer was not 2xx. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

static const char *url, *token;
static int batch, total, nclients;
static long run_id;

typedef struct client {
    int index, from, to;
    long ok, bad, status_other;
    pthread_t t;
} client;

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p; (void)ud;
    return sz * n;
}

static void message(char *buf, size_t len, int client, long seq)
{
    snprintf(buf, len,
             "{\"template\":\"evaluation_survey\",\"to\":\"139%08ld\",\"vars\":{\"period\":\"2026年11月\"},"
             "\"key\":\"bench-%ld-%d-%ld\"}", (long)(seq % 100000000L), run_id, client, seq);
}

static void *run(void *arg)
{
    client *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    char auth[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    hd = curl_slist_append(hd, auth);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    size_t cap = (size_t)(batch ? batch : 1) * 256 + 64;
    char *body = malloc(cap), one[256];
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    long seq = (long)c->from * (batch ? batch : 1);
    for (int i = c->from; i < c->to && body; i++) {
        if (!batch) {
            message(body, cap, c->index, seq++);
        } else {
            size_t n = (size_t)snprintf(body, cap, "{\"messages\":[");
            for (int k = 0; k < batch; k++) {
                message(one, sizeof one, c->index, seq++);
                n += (size_t)snprintf(body + n, cap - n, "%s%s", k ? "," : "", one);
            }
            snprintf(body + n, cap - n, "]}");
        }
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        long code = 0;
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300)
            c->ok++;
        else
            c->bad++;
    }
    free(body);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: apibench URL TOKEN CLIENTS REQUESTS [BATCH]\n");
        return 2;
    }
    url = argv[1];
    token = argv[2];
    nclients = atoi(argv[3]);
    total = atoi(argv[4]);
    batch = argc > 5 ? atoi(argv[5]) : 0;
    if (nclients < 1 || nclients > 1024 || total < nclients || batch < 0 || batch > 1000) {
        fprintf(stderr, "apibench: 1-1024 clients, at least one request each, batch 0-1000\n");
        return 2;
    }
    run_id = (long)time(NULL) * 1000 + getpid() % 1000;
    curl_global_init(CURL_GLOBAL_ALL);
    client *cs = calloc((size_t)nclients, sizeof *cs);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < nclients; i++) {
        cs[i].index = i;
        cs[i].from = (int)((long long)total * i / nclients);
        cs[i].to = (int)((long long)total * (i + 1) / nclients);
        pthread_create(&cs[i].t, NULL, run, &cs[i]);
    }
    long ok = 0, bad = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(cs[i].t, NULL);
        ok += cs[i].ok;
        bad += cs[i].bad;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long msgs = (long)total * (batch ? batch : 1);
    printf("{\"clients\":%d,\"requests\":%d,\"batch\":%d,\"messages\":%ld,\"seconds\":%.3f,"
           "\"rps\":%.0f,\"mps\":%.0f,\"ok\":%ld,\"failed\":%ld}\n",
           nclients, total, batch, msgs, s, total / s, msgs / s, ok, bad);
    free(cs);
    curl_global_cleanup();
    return bad ? 1 : 0;
}
