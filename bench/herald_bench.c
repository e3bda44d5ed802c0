/* herald_bench.c -- the measuring half of `make bench` (bench/run.sh drives
 * it; docs/performance.md explains every figure).
 *
 * It links Herald's own modules, so what it times is the code the gateway
 * and the CLI run: svc_prepare (render, count parts, normalise) and
 * queue_enqueue (the library's bulk path). The gateway under test is a
 * separate `herald run` process started by run.sh (or by `process` below);
 * this program talks to its Redis directly only to read counters and INFO.
 *
 * Subcommands (each prints ONE line of flat JSON on stdout):
 *   render N
 *   enqueue CONF N BATCH TEMPLATE TAG          enqueue only (no gateway)
 *   e2e CONF N BATCH TEMPLATE TAG ROUTE GWPID  enqueue while the gateway runs,
 *                                              wait until all are `sent`
 *   process CONF N TEMPLATE TAG ROUTE INSTANCE CMD...
 *                                              pre-fill, then start CMD (the
 *                                              gateway) and time the drain
 *   latency CONF NBULK RATE TAG BULKROUTE SINKFILE
 *                                              urgent trickle behind a bulk batch
 * Every wait is bounded (BENCH_TIMEOUT_S, default 300 s). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/service.h"
#include "queue/queue.h"
#include "templates/catalog.h"

#define CHUNK_MAX 4096

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static pid_t child = -1;       /* a gateway this program started */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    if (child > 0) {             /* never leave our gateway running */
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "herald_bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double timeout_s(void)
{
    const char *t = getenv("BENCH_TIMEOUT_S");
    return t && atof(t) > 0 ? atof(t) : 300.0;
}

/* ---- the message generator --------------------------------------------- */

typedef struct gen {
    gw_config cfg;
    catalog *cat;
    catalog_opts co;
} gen;

static void gen_init(gen *g, const char *conf)
{
    char err[1024];
    memset(g, 0, sizeof *g);
    gw_log_level = LOG_WARN;
    if (gw_config_load(&g->cfg, conf, err, sizeof err) < 0)
        die("%s", err);
    g->cat = catalog_load_dir(g->cfg.templates_dir, err, sizeof err);
    if (!g->cat)
        die("%s", err);
    g->co.signature = g->cfg.signature;
    g->co.optout_line = g->cfg.optout_line;
}

/* Message i of run `tag`: realistic variables, a distinct number and key. */
static void gen_msg(gen *g, const char *tname, const char *tag, long i, svc_message *out)
{
    char to[24], key[64], name[32], case_no[64];
    snprintf(to, sizeof to, "138%08ld", i % 100000000);
    snprintf(key, sizeof key, "bench-%s-%ld", tag, i);
    snprintf(name, sizeof name, "张%ld", i % 1000);
    snprintf(case_no, sizeof case_no, "X检刑诉〔2026〕%ld号", 1000 + i % 9000);
    tpl_var v[8];
    size_t nv = 0;
    if (strcmp(tname, "evaluation_survey") == 0) {
        v[nv++] = (tpl_var){ "period", "2026年11月" };
        v[nv++] = (tpl_var){ "name", name };
    } else if (strcmp(tname, "case_stage_update") == 0) {
        v[nv++] = (tpl_var){ "name", name };
        v[nv++] = (tpl_var){ "case_no", case_no };
        v[nv++] = (tpl_var){ "stage", "审查起诉" };
        v[nv++] = (tpl_var){ "stage_date", "2026年11月20日" };
        v[nv++] = (tpl_var){ "office_phone", "0571-12345678" };
    } else {
        die("no variables known for template %s", tname);
    }
    svc_request rq = { tname, to, v, nv, key, 0 };
    char err[512];
    if (svc_prepare(g->cat, &g->co, g->cfg.allow_international, &rq, svc_now_ms(), out,
                    err, sizeof err) < 0)
        die("prepare %s: %s", tname, err);
}

/* Renders and enqueues n messages in batches of `batch` (1 = one call, one
 * round trip per message). Returns the seconds spent. */
static double enqueue_n(gen *g, queue *q, const char *tname, const char *tag, long first,
                        long n, int batch, char (*ids)[QUEUE_ID_MAX])
{
    if (batch < 1 || batch > CHUNK_MAX)
        die("batch must be 1..%d", CHUNK_MAX);
    svc_message *sm = calloc((size_t)batch, sizeof *sm);
    queue_new_msg *m = calloc((size_t)batch, sizeof *m);
    queue_enq_result *res = calloc((size_t)batch, sizeof *res);
    if (!sm || !m || !res)
        die("out of memory");
    double t0 = now_s();
    for (long base = 0; base < n; base += batch) {
        long k = n - base < batch ? n - base : batch;
        for (long i = 0; i < k; i++) {
            gen_msg(g, tname, tag, first + base + i, &sm[i]);
            m[i] = sm[i].msg;
        }
        if (queue_enqueue(q, m, (size_t)k, res) != 0)
            die("enqueue: %s", queue_errstr(q));
        for (long i = 0; i < k; i++) {
            if (res[i].status != 0 || res[i].duplicate)
                die("enqueue item %ld: status %d duplicate %d: %s", base + i, res[i].status,
                    res[i].duplicate, queue_errstr(q));
            if (ids)
                memcpy(ids[base + i], res[i].id, QUEUE_ID_MAX);
            svc_message_free(&sm[i]);
        }
    }
    double dt = now_s() - t0;
    free(sm); free(m); free(res);
    return dt;
}

static queue *connect_q(gen *g)
{
    char err[512];
    queue *q = queue_connect(&g->cfg.queue, err, sizeof err);
    if (!q)
        die("redis: %s", err);
    return q;
}

/* ---- Redis's own counters --------------------------------------------- */

typedef struct snap {
    double cpu_s;               /* used_cpu_sys + used_cpu_user */
    long long mem;              /* used_memory */
    long long reads;            /* total_reads_processed */
    long long calls;            /* commandstats calls, INFO excluded */
    long long evals;            /* EVALSHA + EVAL calls */
    char stats[4096];           /* "cmd=calls ..." */
} snap;

typedef struct rconn {
    redisContext *c;
    long long own;              /* commands this tool sent (polls), besides INFO */
    char prefix[64];
} rconn;

static void rconn_open(rconn *r, const gen *g)
{
    const queue_opts *o = &g->cfg.queue;
    if (o->socket && o->socket[0])
        r->c = redisConnectUnix(o->socket);
    else
        r->c = redisConnect(o->host ? o->host : "127.0.0.1", o->port ? o->port : 6379);
    if (!r->c || r->c->err)
        die("redis: cannot connect");
    r->own = 0;
    snprintf(r->prefix, sizeof r->prefix, "%s", o->prefix && o->prefix[0] ? o->prefix : "herald");
}

static long long info_ll(const char *info, const char *field)
{
    const char *p = strstr(info, field);
    return p ? strtoll(p + strlen(field), NULL, 10) : 0;
}

static double info_d(const char *info, const char *field)
{
    const char *p = strstr(info, field);
    return p ? strtod(p + strlen(field), NULL) : 0;
}

static void take_snap(rconn *r, snap *s)
{
    memset(s, 0, sizeof *s);
    redisReply *rep = redisCommand(r->c, "INFO everything");
    if (!rep || rep->type != REDIS_REPLY_STRING)
        die("INFO failed");
    const char *t = rep->str;
    s->cpu_s = info_d(t, "\nused_cpu_sys:") + info_d(t, "\nused_cpu_user:");
    s->mem = info_ll(t, "\nused_memory:");
    s->reads = info_ll(t, "\ntotal_reads_processed:");
    size_t sl = 0;
    for (const char *p = strstr(t, "cmdstat_"); p; p = strstr(p + 1, "\ncmdstat_")) {
        if (*p == '\n')
            p++;
        const char *name = p + 8, *colon = strchr(name, ':');
        const char *calls = colon ? strstr(colon, "calls=") : NULL;
        if (!colon || !calls)
            break;
        long long n = strtoll(calls + 6, NULL, 10);
        size_t nl = (size_t)(colon - name);
        if (nl == 4 && !strncmp(name, "info", 4))
            continue;
        s->calls += n;
        if ((nl == 7 && !strncmp(name, "evalsha", 7)) || (nl == 4 && !strncmp(name, "eval", 4)))
            s->evals += n;
        if (sl + nl + 32 < sizeof s->stats)
            sl += (size_t)snprintf(s->stats + sl, sizeof s->stats - sl, "%s%.*s=%lld",
                                   sl ? " " : "", (int)nl, name, n);
    }
    freeReplyObject(rep);
}

/* Per-command calls of b minus a, per message, as JSON ("xack":1.00,...). */
static void cmd_breakdown(const snap *a, const snap *b, long n, long long own_hget,
                          char *out, size_t len)
{
    size_t ol = 0;
    out[0] = '\0';
    char buf[sizeof b->stats];
    memcpy(buf, b->stats, sizeof buf);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        long long after = strtoll(eq + 1, NULL, 10), before = 0;
        char pat[80];
        snprintf(pat, sizeof pat, "%s=", tok);
        const char *p = a->stats;
        while ((p = strstr(p, pat)) && p != a->stats && p[-1] != ' ')
            p++;
        if (p)
            before = strtoll(p + strlen(pat), NULL, 10);
        long long d = after - before;
        if (!strcmp(tok, "hget"))
            d -= own_hget;
        if (d <= 0)
            continue;
        ol += (size_t)snprintf(out + ol, len > ol ? len - ol : 0, "%s\"%s\":%.3f",
                               ol ? "," : "", tok, (double)d / (double)n);
    }
}

/* The gateway's `sent` counter for (family, route). */
static long long sent_count(rconn *r, const char *family, const char *route)
{
    redisReply *rep = redisCommand(r->c, "HGET {%s}:stats sent:%s:%s", r->prefix, family, route);
    r->own++;
    if (!rep)
        die("redis: connection lost while polling");
    long long v = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : 0;
    freeReplyObject(rep);
    return v;
}

/* Polls until the counter reaches target. Returns the monotonic time. */
static double wait_sent(rconn *r, const char *family, const char *route, long long target)
{
    double deadline = now_s() + timeout_s();
    for (;;) {
        long long v = sent_count(r, family, route);
        if (v >= target)
            return now_s();
        if (now_s() > deadline)
            die("timeout: %lld of %lld sent via %s", v, target, route);
        sleep_us(2000);
    }
}

/* utime + stime of a process, in seconds (0 when gone). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl))
            v = strtol(line + fl, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* The Redis cost of n finished messages between a and b, as JSON fields. */
static void print_cost(const snap *a, const snap *b, long n, long long own)
{
    /* INFO itself is excluded from calls; each INFO and each poll is one read. */
    long long calls = b->calls - a->calls - own;
    long long reads = b->reads - a->reads - own - 1;
    char bd[2048];
    cmd_breakdown(a, b, n, own, bd, sizeof bd);
    printf(",\"redis_cmds_per_msg\":%.3f,\"redis_scripts_per_msg\":%.3f,"
           "\"redis_round_trips_per_msg\":%.3f,\"redis_cpu_us_per_msg\":%.2f,"
           "\"redis_mem_delta_bytes_per_msg\":%.1f,\"redis_cmds\":{%s}",
           (double)calls / n, (double)(b->evals - a->evals) / n, (double)reads / n,
           (b->cpu_s - a->cpu_s) * 1e6 / n, (double)(b->mem - a->mem) / n, bd);
}

/* ---- subcommands --------------------------------------------------------- */

static int cmd_render(long n)
{
    char err[512];
    catalog *cat = catalog_load_dir("templates/shipped", err, sizeof err);
    if (!cat)
        die("%s", err);
    const tpl_def *d = catalog_find(cat, "evaluation_survey");
    if (!d)
        die("no evaluation_survey template");
    catalog_opts co = { "【XX市人民检察院】", "回TD退订" };
    char name[32];
    int parts = 0;
    size_t bytes = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        snprintf(name, sizeof name, "张%ld", i % 1000);
        tpl_var v[2] = { { "period", "2026年11月" }, { "name", name } };
        rendered r;
        if (catalog_render(d, &co, v, 2, &r, err, sizeof err) < 0)
            die("render: %s", err);
        parts = r.seg.parts;
        bytes = strlen(r.text);
        free(r.text);
    }
    double dt = now_s() - t0;
    printf("{\"n\":%ld,\"seconds\":%.4f,\"render_per_s\":%.0f,\"parts\":%d,\"text_bytes\":%zu}\n",
           n, dt, n / dt, parts, bytes);
    catalog_free(cat);
    return 0;
}

static int cmd_enqueue(const char *conf, long n, int batch, const char *tname, const char *tag)
{
    gen g;
    gen_init(&g, conf);
    queue *q = connect_q(&g);
    rconn r;
    rconn_open(&r, &g);
    snap a, b;
    take_snap(&r, &a);
    double dt = enqueue_n(&g, q, tname, tag, 0, n, batch, NULL);
    take_snap(&r, &b);
    printf("{\"n\":%ld,\"batch\":%d,\"seconds\":%.4f,\"msgs_per_s\":%.0f,"
           "\"redis_bytes_per_queued_msg\":%.1f",
           n, batch, dt, n / dt, (double)(b.mem - a.mem) / n);
    print_cost(&a, &b, n, 0);
    printf("}\n");
    queue_free(q);
    return 0;
}

static int cmd_e2e(const char *conf, long n, int batch, const char *tname, const char *tag,
                   const char *route, pid_t gw)
{
    gen g;
    gen_init(&g, conf);
    queue *q = connect_q(&g);
    rconn r;
    rconn_open(&r, &g);
    const tpl_def *d = catalog_find(g.cat, tname);
    if (!d)
        die("no template %s", tname);
    const char *fam = family_name(d->family);
    long long base = sent_count(&r, fam, route);
    long rss0 = gw > 0 ? rss_kb(gw, "VmRSS:") : -1;
    snap a, b;
    take_snap(&r, &a);
    double gc0 = gw > 0 ? proc_cpu_s(gw) : 0, sc0 = self_cpu_s();
    double t0 = now_s();
    double enq = enqueue_n(&g, q, tname, tag, 0, n, batch, NULL);
    double sc1 = self_cpu_s();
    double t1 = wait_sent(&r, fam, route, base + n);
    take_snap(&r, &b);
    double gc1 = gw > 0 ? proc_cpu_s(gw) : 0;
    printf("{\"gw_cpu_us_per_msg\":%.2f,\"enqueuer_cpu_us_per_msg\":%.2f,",
           (gc1 - gc0) * 1e6 / n, (sc1 - sc0) * 1e6 / n);
    printf("\"n\":%ld,\"seconds\":%.4f,\"msgs_per_s\":%.0f,\"enqueue_seconds\":%.4f,"
           "\"gw_rss_before_kb\":%ld,\"gw_rss_after_kb\":%ld,\"gw_rss_peak_kb\":%ld,"
           "\"redis_bytes_per_finished_msg\":%.1f",
           n, t1 - t0, n / (t1 - t0), enq, rss0, gw > 0 ? rss_kb(gw, "VmRSS:") : -1,
           gw > 0 ? rss_kb(gw, "VmHWM:") : -1, (double)(b.mem - a.mem) / n);
    print_cost(&a, &b, n, r.own);
    printf("}\n");
    queue_free(q);
    return 0;
}

static int cmd_process(const char *conf, long n, const char *tname, const char *tag,
                       const char *route, const char *instance, char **argv)
{
    gen g;
    gen_init(&g, conf);
    queue *q = connect_q(&g);
    rconn r;
    rconn_open(&r, &g);
    const tpl_def *d = catalog_find(g.cat, tname);
    if (!d)
        die("no template %s", tname);
    const char *fam = family_name(d->family);
    long long base = sent_count(&r, fam, route);
    snap a, b, c;
    take_snap(&r, &a);
    double fill = enqueue_n(&g, q, tname, tag, 0, n, 1000, NULL);
    take_snap(&r, &b);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    child = pid;
    /* The clock starts when the gateway holds its instance lease (config
     * read, templates loaded, Redis connected): startup is not processing. */
    double deadline = now_s() + 30;
    for (;;) {
        redisReply *rep = redisCommand(r.c, "EXISTS {%s}:gw:%s", r.prefix, instance);
        r.own++;
        long long e = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
        freeReplyObject(rep);
        if (e)
            break;
        if (now_s() > deadline || waitpid(pid, NULL, WNOHANG) == pid)
            die("the gateway did not start");
        sleep_us(500);
    }
    long long own0 = r.own;
    take_snap(&r, &b);
    double gc0 = proc_cpu_s(pid);
    double t0 = now_s();
    double t1 = wait_sent(&r, fam, route, base + n);
    take_snap(&r, &c);
    printf("{\"gw_cpu_us_per_msg\":%.2f,", (proc_cpu_s(pid) - gc0) * 1e6 / n);
    long peak = rss_kb(pid, "VmHWM:");
    kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 300 && waitpid(pid, &st, WNOHANG) == 0; i++)
        sleep_us(100000);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    child = -1;
    printf("\"n\":%ld,\"fill_seconds\":%.4f,\"fill_msgs_per_s\":%.0f,"
           "\"redis_bytes_per_queued_msg\":%.1f,\"seconds\":%.4f,\"msgs_per_s\":%.0f,"
           "\"gw_rss_peak_kb\":%ld,\"redis_bytes_per_finished_msg\":%.1f",
           n, fill, n / fill, (double)(b.mem - a.mem) / n, t1 - t0, n / (t1 - t0), peak,
           (double)(c.mem - a.mem) / n);
    print_cost(&b, &c, n, r.own - own0);
    printf("}\n");
    queue_free(q);
    return 0;
}

typedef struct urgent_rec {
    char id[QUEUE_ID_MAX];
    double enq_ms;
    double lat_ms;
} urgent_rec;

static int cmp_urec(const void *a, const void *b)
{
    return strcmp(((const urgent_rec *)a)->id, ((const urgent_rec *)b)->id);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_latency(const char *conf, long nbulk, int rate, const char *tag,
                       const char *bulk_route, const char *sinkfile)
{
    gen g;
    gen_init(&g, conf);
    queue *q = connect_q(&g);
    rconn r;
    rconn_open(&r, &g);
    long long base = sent_count(&r, "survey", bulk_route);
    double fill = enqueue_n(&g, q, "evaluation_survey", tag, 0, nbulk, 1000, NULL);
    /* Trickle urgent notices while the bulk batch drains (bounded). */
    long cap = (long)(timeout_s() * rate);
    urgent_rec *u = calloc((size_t)cap + 1, sizeof *u);
    if (!u)
        die("out of memory");
    long nu = 0;
    double period = 1.0 / rate, t0 = now_s(), next = t0;
    char utag[80];
    snprintf(utag, sizeof utag, "%s-u", tag);
    long long bulk_done = base;
    while (nu < cap) {
        double now = now_s();
        if (now < next) {
            sleep_us((long)((next - now) * 1e6));
            continue;
        }
        next += period;
        u[nu].enq_ms = wall_ms_f();
        char ids[1][QUEUE_ID_MAX];
        enqueue_n(&g, q, "case_stage_update", utag, nu, 1, 1, ids);
        memcpy(u[nu].id, ids[0], QUEUE_ID_MAX);
        u[nu].lat_ms = -1;
        nu++;
        if (nu % 10 == 0 && (bulk_done = sent_count(&r, "survey", bulk_route)) >= base + nbulk)
            break;
    }
    double drain = now_s() - t0;
    /* Wait for the last urgent ones, then read when the driver got each. */
    double deadline = now_s() + 30;
    qsort(u, (size_t)nu, sizeof *u, cmp_urec);
    long got = 0;
    while (got < nu && now_s() < deadline) {
        got = 0;
        FILE *f = fopen(sinkfile, "r");
        char line[8192];
        while (f && fgets(line, sizeof line, f)) {
            const char *ip = strstr(line, "\"id\":\""), *ap = strstr(line, "\"at\":");
            if (!ip || !ap)
                continue;
            urgent_rec key;
            memset(&key, 0, sizeof key);
            snprintf(key.id, sizeof key.id, "%.*s", (int)strcspn(ip + 6, "\""), ip + 6);
            urgent_rec *hit = bsearch(&key, u, (size_t)nu, sizeof *u, cmp_urec);
            if (hit) {
                hit->lat_ms = strtod(ap + 5, NULL) - hit->enq_ms;
                got++;
            }
        }
        if (f)
            fclose(f);
        if (got < nu)
            sleep_us(50000);
    }
    if (got < nu)
        die("only %ld of %ld urgent messages reached the driver", got, nu);
    if (nu < 1)
        die("no urgent message was sent");
    double *lat = calloc((size_t)nu + 1, sizeof *lat);
    if (!lat)
        die("out of memory");
    for (long i = 0; i < nu; i++)
        lat[i] = u[i].lat_ms < 0 ? 0 : u[i].lat_ms;
    qsort(lat, (size_t)nu, sizeof *lat, cmp_d);
    printf("{\"bulk\":%ld,\"fill_seconds\":%.3f,\"urgent\":%ld,\"rate\":%d,\"drain_seconds\":%.3f,"
           "\"bulk_drained\":%s,\"urgent_p50_ms\":%.1f,\"urgent_p99_ms\":%.1f,\"urgent_max_ms\":%.1f}\n",
           nbulk, fill, nu, rate, drain, bulk_done >= base + nbulk ? "true" : "false",
           lat[nu / 2], lat[(long)(nu * 0.99) < nu ? (long)(nu * 0.99) : nu - 1], lat[nu - 1]);
    free(lat);
    free(u);
    queue_free(q);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 3 && !strcmp(argv[1], "render"))
        return cmd_render(atol(argv[2]));
    if (argc == 7 && !strcmp(argv[1], "enqueue"))
        return cmd_enqueue(argv[2], atol(argv[3]), atoi(argv[4]), argv[5], argv[6]);
    if (argc == 9 && !strcmp(argv[1], "e2e"))
        return cmd_e2e(argv[2], atol(argv[3]), atoi(argv[4]), argv[5], argv[6], argv[7],
                       (pid_t)atoi(argv[8]));
    if (argc >= 9 && !strcmp(argv[1], "process"))
        return cmd_process(argv[2], atol(argv[3]), argv[4], argv[5], argv[6], argv[7], argv + 8);
    if (argc == 8 && !strcmp(argv[1], "latency"))
        return cmd_latency(argv[2], atol(argv[3]), atoi(argv[4]), argv[5], argv[6], argv[7]);
    fprintf(stderr, "usage: herald_bench render N | enqueue CONF N BATCH TEMPLATE TAG |\n"
                    "  e2e CONF N BATCH TEMPLATE TAG ROUTE GWPID |\n"
                    "  process CONF N TEMPLATE TAG ROUTE INSTANCE CMD... |\n"
                    "  latency CONF NBULK RATE TAG BULKROUTE SINKFILE\n");
    return 2;
}
