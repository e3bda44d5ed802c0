/* main.c -- the `herald` command: one binary, subcommands.
 *
 *   herald run        the gateway daemon
 *   herald enqueue    queue one message
 *   herald status     a message's record and timeline (JSON)
 *   herald case       the messages of a case number, newest first
 *   herald render     preview a template's text, encoding and parts
 *   herald templates  list, or check the template files
 *   herald dead       list or retry dead letters
 *   herald queue      depth and age per lane
 *   herald config     check the configuration, list the keys it may hold
 *   herald ping       exit 0 when Redis answers
 *   herald list       subscriber lists of the bulletins (gateway/bulletin.c)
 *   herald bulletin   send an issue, its figures, a delivery report
 *   herald contacts, survey, report survey, optout   the monthly survey
 *                     (gateway/survey_cli.c)
 *   herald retention  purge texts past their days, or show the totals
 *                     (gateway/retention.c)
 *
 * Exit codes: 0 done, 2 bad input (reason on stderr), 1 any other failure.
 * The configuration comes from -c FILE, else $HERALD_CONFIG, else
 * ./herald.conf, else /etc/herald/herald.conf. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "gateway/bulletin.h"
#include "gateway/config.h"
#include "gateway/daemon.h"
#include "gateway/log.h"
#include "gateway/pacing.h"
#include "gateway/retention.h"
#include "gateway/service.h"
#include "gateway/survey.h"

#define HERALD_VERSION "0.1.0"
#define MAX_CLI_VARS 64

static const char *config_flag;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: herald [-c FILE] COMMAND [ARGS]\n"
        "  run [--max-runtime SECONDS]          run the gateway in the foreground\n"
        "  enqueue --template T --to NUMBER [--var k=v]... [--key K] [--at TIME] [--json]\n"
        "  enqueue --batch FILE                 one JSON object a line ({template,to,vars,key,send_at})\n"
        "  status ID                            the message's record and timeline as JSON\n"
        "  case CASE_NO [--max N] [--json]      the messages of a case number, newest first\n"
        "  render --template T [--var k=v]... [--json]\n"
        "  templates [list|check [DIR]]\n"
        "  dead list [--max N] | dead retry ID\n"
        "  queue stats\n"
        "  routes                               each route's breaker, error rate and in-flight count\n"
        "  modems [--json]                      the modems the gateways see: IMEI, state, counters\n"
        "  config check | config keys\n"
        "  list add|remove|show|import NAME ...   subscriber lists of the bulletins\n"
        "  bulletin send --title T --content DIR_OR_FILE --list L [--list L2] [--at TIME]\n"
        "  bulletin stats --title T --issue N | bulletin dlr [FILE]\n"
        "  ping                                 exit 0 when Redis answers\n"
        "  contacts add|import FILE.csv|list    whom the monthly survey goes to\n"
        "  survey plan|run|status|replies --period YYYY-MM [--dry-run] [--json]\n"
        "  report survey --period YYYY-MM [--csv FILE] [--html FILE] [--json]\n"
        "  optout list|add NUMBER|remove NUMBER\n"
        "  retention purge [--now TIME] | retention status   texts past their days (JSON)\n"
        "  version\n"
        "Exit codes: 0 done, 2 bad input, 1 other failure.\n");
}

static int load_config(gw_config *cfg)
{
    char err[1024];
    const char *path = gw_config_locate(config_flag, err, sizeof err);
    if (!path)
        return svc_die(EXIT_BAD_INPUT, "%s", err);
    if (gw_config_load(cfg, path, err, sizeof err) < 0)
        return svc_die(EXIT_BAD_INPUT, "%s", err);
    gw_log_level = cfg->log_level;
    return 0;
}

/* ---- message options shared by enqueue and render ---- */

typedef struct msg_args {
    const char *template_name, *to, *key, *at;
    tpl_var vars[MAX_CLI_VARS];
    size_t nvars;
    int json;
} msg_args;

static int parse_msg_args(int argc, char **argv, msg_args *a)
{
    static const struct option opts[] = {
        { "template", required_argument, NULL, 't' },
        { "to", required_argument, NULL, 'n' },
        { "var", required_argument, NULL, 'v' },
        { "key", required_argument, NULL, 'k' },
        { "at", required_argument, NULL, 'a' },
        { "json", no_argument, NULL, 'j' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    int ch;
    char err[256];
    memset(a, 0, sizeof *a);
    optind = 1;
    while ((ch = getopt_long(argc, argv, "t:n:v:k:a:jc:", opts, NULL)) != -1) {
        switch (ch) {
        case 't': a->template_name = optarg; break;
        case 'n': a->to = optarg; break;
        case 'k': a->key = optarg; break;
        case 'a': a->at = optarg; break;
        case 'j': a->json = 1; break;
        case 'c': break;
        case 'v':
            if (a->nvars >= MAX_CLI_VARS)
                return svc_die(EXIT_BAD_INPUT, "at most %s variables", "64");
            if (svc_parse_var(optarg, &a->vars[a->nvars], err, sizeof err) < 0)
                return svc_die(EXIT_BAD_INPUT, "%s", err);
            a->nvars++;
            break;
        default:
            return EXIT_BAD_INPUT;
        }
    }
    if (optind < argc)
        return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[optind]);
    if (!a->template_name)
        return svc_die(EXIT_BAD_INPUT, "%s", "--template is required");
    return 0;
}

static catalog *load_catalog(const gw_config *cfg)
{
    char err[512];
    catalog *c = catalog_load_dir(cfg->templates_dir, err, sizeof err);
    if (!c)
        svc_die(EXIT_BAD_INPUT, "%s", err);
    return c;
}

/* `herald enqueue --batch FILE`: one JSON object a line,
 * {"template":T,"to":N,"vars":{...},"key":K,"send_at":"+10m"}; one result a
 * line on stdout. Bad lines are reported and skipped; good ones are queued. */
#define BATCH_CHUNK 1000

typedef struct batch_item {
    long line;
    svc_message m;
} batch_item;

static int flush_batch(queue *q, batch_item *items, size_t n)
{
    queue_new_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    queue_enq_result *res = calloc(n ? n : 1, sizeof *res);
    int rc = 0;
    if (!msgs || !res) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        msgs[i] = items[i].m.msg;
    if (queue_enqueue(q, msgs, n, res) < 0) {
        fprintf(stderr, "herald: enqueue failed at line %ld: %s\n", items[0].line, queue_errstr(q));
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (res[i].status < 0) {
            /* not the line's fault: Redis refused the write (out of
             * memory, a read-only replica, a disk error) */
            char why[600];
            snprintf(why, sizeof why, "redis refused the message: %s", queue_errstr(q));
            json_t *e = json_pack("{s:I, s:s}", "line", (json_int_t)items[i].line, "error", why);
            char *es = e ? json_dumps(e, JSON_COMPACT) : NULL;
            if (es)
                puts(es);
            free(es);
            json_decref(e);
            if (!rc)
                fprintf(stderr, "herald: line %ld: %s\n", items[i].line, why);
            rc = 1;
        } else {
            printf("{\"line\":%ld,\"id\":\"%s\",\"parts\":%d,\"encoding\":\"%s\",\"duplicate\":%s}\n",
                   items[i].line, res[i].id, msgs[i].parts, msgs[i].encoding,
                   res[i].duplicate ? "true" : "false");
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        svc_message_free(&items[i].m);
    free(msgs);
    free(res);
    return rc;
}

static int enqueue_batch(gw_config *cfg, const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f)
        return svc_die(EXIT_BAD_INPUT, "--batch: cannot open '%s'", file);
    catalog *cat = load_catalog(cfg);
    queue *q = cat ? svc_connect(&cfg->queue) : NULL;
    batch_item *items = calloc(BATCH_CHUNK, sizeof *items);
    catalog_opts co = { cfg->signature, cfg->optout_line };
    size_t n = 0;
    long lineno = 0;
    int bad = 0, refused = 0, failed = !cat || !q || !items;
    char *line = NULL;
    size_t cap = 0;
    while (!failed && getline(&line, &cap, f) != -1) {
        lineno++;
        char err[512];
        json_error_t jerr;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        json_t *j = json_loads(line, 0, &jerr);
        svc_json_req jr;
        char field[SVC_FIELD_MAX] = "";
        long long now = svc_now_ms();
        err[0] = '\0';
        if (!j) {
            snprintf(err, sizeof err, "not JSON: %s", jerr.text);
        } else if (svc_request_from_json(j, now, &jr, err, sizeof err, field) == 0) {
            if (svc_prepare(cat, &co, cfg->allow_international, &jr.rq, now, &items[n].m, err, sizeof err) == 0) {
                items[n].line = lineno;
                n++;
            } else {
                snprintf(field, sizeof field, "%s", items[n].m.err_field);
                svc_message_free(&items[n].m);
            }
        }
        if (err[0]) {
            json_t *e = json_pack("{s:I, s:s}", "line", (json_int_t)lineno, "error", err);
            if (field[0])
                json_object_set_new(e, "field", json_string(field));
            char *es = json_dumps(e, JSON_COMPACT);
            if (es)
                puts(es);
            free(es);
            json_decref(e);
            bad = 1;
        }
        /* svc_prepare copied all it keeps (number, key, text, vars): j may go */
        json_decref(j);
        if (n == BATCH_CHUNK) {
            int rc = flush_batch(q, items, n);
            n = 0;
            if (rc < 0)
                failed = 1;
            else if (rc > 0)
                refused = 1;
        }
    }
    if (!failed && n) {
        int rc = flush_batch(q, items, n);
        if (rc < 0)
            failed = 1;
        else if (rc > 0)
            refused = 1;
    } else {
        for (size_t i = 0; i < n; i++)
            svc_message_free(&items[i].m);
    }
    free(line);
    free(items);
    queue_free(q);
    catalog_free(cat);
    if (f != stdin)
        fclose(f);
    if (failed)
        return cat ? EXIT_FAILURE_OTHER : EXIT_BAD_INPUT;
    return refused ? EXIT_FAILURE_OTHER : bad ? EXIT_BAD_INPUT : EXIT_DONE;
}

static int cmd_enqueue(gw_config *cfg, int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--batch") == 0) {
            if (argc != 3)
                return svc_die(EXIT_BAD_INPUT, "%s", "--batch FILE takes no other options");
            return enqueue_batch(cfg, argv[i + 1]);
        }
    msg_args a;
    int rc = parse_msg_args(argc, argv, &a);
    if (rc)
        return rc;
    if (!a.to)
        return svc_die(EXIT_BAD_INPUT, "%s", "--to is required");
    char err[512];
    long long now = svc_now_ms(), at = 0;
    if (a.at && svc_parse_time(a.at, now, &at, err, sizeof err) < 0)
        return svc_die(EXIT_BAD_INPUT, "--at: %s", err);
    catalog *cat = load_catalog(cfg);
    if (!cat)
        return EXIT_BAD_INPUT;
    catalog_opts co = { cfg->signature, cfg->optout_line };
    svc_request rq = { a.template_name, a.to, a.vars, a.nvars, a.key, at };
    svc_message m;
    if (svc_prepare(cat, &co, cfg->allow_international, &rq, now, &m, err, sizeof err) < 0) {
        svc_message_free(&m);
        catalog_free(cat);
        return svc_die(EXIT_BAD_INPUT, "%s", err);
    }
    rc = EXIT_FAILURE_OTHER;
    queue *q = svc_connect(&cfg->queue);
    queue_enq_result res;
    if (q) {
        if (queue_enqueue(q, &m.msg, 1, &res) < 0 || res.status < 0) {
            svc_die(EXIT_FAILURE_OTHER, "enqueue failed: %s", queue_errstr(q));
        } else {
            char masked[PHONE_MAX];
            gw_log(LOG_INFO, "enqueue", "%s %s to %s: %d parts %s%s", res.duplicate ? "duplicate of" : "queued",
                   res.id, phone_mask(m.to, masked), m.msg.parts, m.msg.encoding,
                   m.msg.send_at_ms ? " (scheduled)" : "");
            if (a.json) {
                json_t *j = json_pack("{s:s, s:i, s:s, s:b, s:s}", "id", res.id, "parts", m.msg.parts,
                                      "encoding", m.msg.encoding, "duplicate", res.duplicate,
                                      "lane", lane_name(m.msg.lane));
                if (m.msg.send_at_ms)
                    json_object_set_new(j, "send_at", json_integer(m.msg.send_at_ms));
                svc_print_json(j);
                json_decref(j);
            } else {
                printf("%s\nparts: %d\nencoding: %s\n%s", res.id, m.msg.parts, m.msg.encoding,
                       res.duplicate ? "duplicate: the key was used within the window; nothing new was queued\n" : "");
            }
            rc = EXIT_DONE;
        }
        queue_free(q);
    }
    svc_message_free(&m);
    catalog_free(cat);
    return rc;
}

static int cmd_render(gw_config *cfg, int argc, char **argv)
{
    msg_args a;
    int rc = parse_msg_args(argc, argv, &a);
    if (rc)
        return rc;
    catalog *cat = load_catalog(cfg);
    if (!cat)
        return EXIT_BAD_INPUT;
    catalog_opts co = { cfg->signature, cfg->optout_line };
    const tpl_def *d = catalog_find(cat, a.template_name);
    rendered r;
    char err[512];
    rc = EXIT_DONE;
    if (!d) {
        rc = svc_die(EXIT_BAD_INPUT, "unknown template '%s'", a.template_name);
    } else if (catalog_render(d, &co, a.vars, a.nvars, &r, err, sizeof err) < 0) {
        rc = svc_die(EXIT_BAD_INPUT, "%s", err);
    } else {
        json_t *forcing = json_array();
        for (int i = 0; i < r.seg.nforcing && i < SEG_MAX_FORCING; i++)
            json_array_append_new(forcing, json_string(r.seg.forcing[i]));
        if (a.json) {
            json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:o}", "text", r.text,
                                  "encoding", seg_encoding_name(r.seg.encoding), "parts", r.seg.parts,
                                  "chars", r.seg.chars, "units", r.seg.units, "forcing_ucs2", forcing);
            svc_print_json(j);
            json_decref(j);
        } else {
            printf("%s\n\nencoding: %s\nparts: %d (max %d)\ncharacters: %d\n", r.text,
                   seg_encoding_name(r.seg.encoding), r.seg.parts, d->max_parts, r.seg.chars);
            if (r.seg.nforcing) {
                printf("forced UCS-2 by:");
                for (int i = 0; i < r.seg.nforcing && i < SEG_MAX_FORCING; i++)
                    printf(" %s", r.seg.forcing[i]);
                printf("%s\n", r.seg.nforcing > SEG_MAX_FORCING ? " ..." : "");
            }
            json_decref(forcing);
        }
        free(r.text);
    }
    catalog_free(cat);
    return rc;
}

static int cmd_templates(gw_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    const char *dir = cfg->templates_dir;
    if (strcmp(sub, "check") == 0 && argc > 2)
        dir = argv[2];
    else if (argc > 2)
        return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[2]);
    char err[512];
    catalog *c = catalog_load_dir(dir, err, sizeof err);
    if (!c)
        return svc_die(EXIT_BAD_INPUT, "%s", err);
    if (strcmp(sub, "check") == 0) {
        printf("%zu templates in %s: ok\n", catalog_count(c), dir);
    } else if (strcmp(sub, "list") == 0) {
        for (size_t i = 0; i < catalog_count(c); i++) {
            const tpl_def *d = catalog_at(c, i);
            printf("%-24s %-14s %-6s required:", d->name, family_name(d->family), lane_name(d->lane));
            for (int k = 0; k < d->nrequired; k++)
                printf("%s%s", k ? "," : " ", d->required[k]);
            printf("  optional:");
            for (int k = 0; k < d->noptional; k++)
                printf("%s%s", k ? "," : " ", d->optional[k]);
            printf("%s\n", d->noptional ? "" : " -");
        }
    } else {
        catalog_free(c);
        return svc_die(EXIT_BAD_INPUT, "templates: unknown subcommand '%s' (list, check)", sub);
    }
    catalog_free(c);
    return EXIT_DONE;
}

static int cmd_status(gw_config *cfg, int argc, char **argv)
{
    if (argc != 2)
        return svc_die(EXIT_BAD_INPUT, "%s", "usage: herald status ID");
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    json_t *j = NULL;
    int rc = queue_get(q, argv[1], &j);
    int code = EXIT_DONE;
    if (rc == QUEUE_ERR_NOTFOUND)
        code = svc_die(EXIT_BAD_INPUT, "no message '%s' (unknown id, or past its retention)", argv[1]);
    else if (rc < 0)
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    else
        svc_print_json(j);
    json_decref(j);
    queue_free(q);
    return code;
}

/* `herald case CASE_NO`: the messages enqueued with that case number (the
 * template variable case_no) within their retention, newest first. */
static int cmd_case(gw_config *cfg, int argc, char **argv)
{
    const char *case_no = NULL;
    int as_json = 0, max = 100;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 10000)
                return svc_die(EXIT_BAD_INPUT, "--max must be a number from 1 to 10000, not '%s'", argv[i]);
            max = (int)v;
        } else if (!case_no && argv[i][0] != '-') {
            case_no = argv[i];
        } else {
            return svc_die(EXIT_BAD_INPUT, "case: unexpected argument '%s' (usage: herald case CASE_NO "
                           "[--max N] [--json])", argv[i]);
        }
    }
    if (!case_no || !*case_no)
        return svc_die(EXIT_BAD_INPUT, "%s", "usage: herald case CASE_NO [--max N] [--json]");
    if (strlen(case_no) > QUEUE_CASE_MAX)
        return svc_die(EXIT_BAD_INPUT, "a case number is at most %d bytes", QUEUE_CASE_MAX);
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    json_t *list = NULL;
    int code = EXIT_DONE;
    if (queue_find_by_case(q, case_no, max, &list) < 0) {
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    } else {
        size_t i;
        json_t *m;
        json_array_foreach(list, i, m) {
            char masked[PHONE_MAX];
            const char *to = json_string_value(json_object_get(m, "to"));
            json_object_set_new(m, "to", json_string(phone_mask(to ? to : "", masked)));
        }
        if (as_json) {
            svc_print_json(list);
        } else if (json_array_size(list) == 0) {
            printf("no messages with case number %s (within the retention)\n", case_no);
        } else {
            printf("%-22s  %-19s  %-14s  %-24s  %-9s  %s\n", "id", "created", "family", "template",
                   "status", "to");
            json_array_foreach(list, i, m) {
                long long ms = (long long)json_integer_value(json_object_get(m, "created"));
                time_t t = (time_t)(ms / 1000);
                struct tm tm;
                char when[32] = "";
                if (localtime_r(&t, &tm))
                    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
                printf("%-22s  %-19s  %-14s  %-24s  %-9s  %s\n",
                       json_string_value(json_object_get(m, "id")), when,
                       json_string_value(json_object_get(m, "family")),
                       json_string_value(json_object_get(m, "template")),
                       json_string_value(json_object_get(m, "status")),
                       json_string_value(json_object_get(m, "to")));
            }
        }
    }
    json_decref(list);
    queue_free(q);
    return code;
}

static int cmd_dead(gw_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    int code = EXIT_DONE;
    if (strcmp(sub, "list") == 0) {
        int max = 100;
        if (argc == 4 && strcmp(argv[2], "--max") == 0)
            max = atoi(argv[3]);
        json_t *j = NULL;
        if (max <= 0)
            code = svc_die(EXIT_BAD_INPUT, "--max must be a positive number, not '%s'", argv[3]);
        else if (queue_dead_list(q, max, &j) < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        else
            svc_print_json(j);
        json_decref(j);
    } else if (strcmp(sub, "retry") == 0 && argc == 3) {
        int rc = queue_dead_retry(q, argv[2], svc_now_ms());
        if (rc == QUEUE_ERR_NOTFOUND)
            code = svc_die(EXIT_BAD_INPUT, "no message '%s'", argv[2]);
        else if (rc == QUEUE_ERR_STATE)
            code = svc_die(EXIT_BAD_INPUT, "message '%s': %s", argv[2], queue_errstr(q));
        else if (rc < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        else
            printf("%s requeued\n", argv[2]);
    } else {
        code = svc_die(EXIT_BAD_INPUT, "%s", "usage: herald dead list [--max N] | herald dead retry ID");
    }
    queue_free(q);
    return code;
}

static int cmd_queue(gw_config *cfg, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "stats") != 0)
        return svc_die(EXIT_BAD_INPUT, "%s", "usage: herald queue stats");
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    json_t *j = NULL;
    int code = EXIT_DONE;
    if (queue_stats(q, svc_now_ms(), &j) < 0)
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    else
        svc_print_json(j);
    json_decref(j);
    queue_free(q);
    return code;
}

/* What every running gateway last published about its routes (its
 * housekeeper refreshes it each second; "updated" says how fresh). */
static int cmd_routes(gw_config *cfg, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return svc_die(EXIT_BAD_INPUT, "%s", "usage: herald routes");
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    json_t *j = NULL;
    int code = EXIT_DONE;
    if (queue_routes_get(q, &j) < 0) {
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    } else {
        /* a gateway that stopped leaves its last view behind: say so */
        const char *k;
        json_t *v;
        long long now = svc_now_ms();
        json_object_foreach(j, k, v) {
            json_t *u = json_object_get(v, "updated");
            if (json_is_object(v))
                json_object_set_new(v, "stale", json_boolean(!json_is_integer(u)
                                    || now - json_integer_value(u) > 10000));
        }
        svc_print_json(j);
    }
    json_decref(j);
    queue_free(q);
    return code;
}

/* `herald modems`: what the running gateways last published of each modem. */
static int cmd_modems(gw_config *cfg, int argc, char **argv)
{
    int as_json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !as_json))
        return svc_die(EXIT_BAD_INPUT, "%s", "usage: herald modems [--json]");
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    json_t *all = NULL;
    int code = EXIT_DONE;
    if (queue_modem_list(q, &all) < 0) {
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    } else if (as_json) {
        svc_print_json(all);
    } else {
        long long now = svc_now_ms();
        const char *id;
        json_t *m;
        printf("%-17s %-12s %-4s %-34s %6s %-20s %6s %6s %8s  %s\n", "id", "route", "up", "state",
               "signal", "operator", "sent", "failed", "received", "last error");
        json_object_foreach(all, id, m) {
            long long age = (now - (long long)json_integer_value(json_object_get(m, "at"))) / 1000;
            char state[80];
            snprintf(state, sizeof state, "%s%s", json_string_value(json_object_get(m, "state")),
                     age > 60 ? " (stale)" : "");
            printf("%-17s %-12s %-4s %-34s %5lld%% %-20s %6lld %6lld %8lld  %s\n", id,
                   json_string_value(json_object_get(m, "route")),
                   json_is_true(json_object_get(m, "up")) ? "yes" : "no", state,
                   (long long)json_integer_value(json_object_get(m, "signal")),
                   json_string_value(json_object_get(m, "operator")),
                   (long long)json_integer_value(json_object_get(m, "sent")),
                   (long long)json_integer_value(json_object_get(m, "failed")),
                   (long long)json_integer_value(json_object_get(m, "received")),
                   json_string_value(json_object_get(m, "last_error")));
        }
    }
    json_decref(all);
    queue_free(q);
    return code;
}

static int cmd_run(gw_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "max-runtime", required_argument, NULL, 'm' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    gw_run_opts ro = { 0 };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "m:c:", opts, NULL)) != -1) {
        if (ch == 'm') {
            ro.max_runtime_s = atoi(optarg);
            if (ro.max_runtime_s <= 0)
                return svc_die(EXIT_BAD_INPUT, "--max-runtime must be a positive number of seconds, not '%s'", optarg);
        } else if (ch != 'c') {
            return EXIT_BAD_INPUT;
        }
    }
    if (optind < argc)
        return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[optind]);
    return gw_daemon_run(cfg, &ro);
}

int main(int argc, char **argv)
{
    /* -c FILE may stand anywhere; the subcommand is the first other word. */
    int cmd_at = 0;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            config_flag = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_flag = argv[i] + 9;
        } else if (!cmd_at && argv[i][0] != '-') {
            cmd_at = i;
        } else if (!cmd_at && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
            usage(stdout);
            return EXIT_DONE;
        }
    }
    if (!cmd_at) {
        usage(stderr);
        return EXIT_BAD_INPUT;
    }
    const char *cmd = argv[cmd_at];
    /* the subcommand sees its own argv: argv[0] = the command */
    int sargc = 0;
    char **sargv = calloc((size_t)argc + 1, sizeof *sargv);
    if (!sargv)
        return EXIT_FAILURE_OTHER;
    for (int i = cmd_at; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0)
            continue;
        sargv[sargc++] = argv[i];
    }

    int code;
    if (strcmp(cmd, "version") == 0) {
        printf("herald %s\n", HERALD_VERSION);
        free(sargv);
        return EXIT_DONE;
    }
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        free(sargv);
        return EXIT_DONE;
    }
    if (strcmp(cmd, "config") == 0 && sargc == 2 && strcmp(sargv[1], "keys") == 0) {
        gw_config_print_keys(stdout);
        free(sargv);
        return EXIT_DONE;
    }
    gw_config cfg;
    code = load_config(&cfg);
    if (code) {
        free(sargv);
        return code;
    }
    /* local days and times (herald case, queue stats' "today") in the
     * configured zone, as the daemon has them; single-threaded here */
    if (strcmp(cmd, "case") == 0 || strcmp(cmd, "queue") == 0)
        pacing_set_timezone(cfg.timezone);
    if (strcmp(cmd, "run") == 0)
        code = cmd_run(&cfg, sargc, sargv);
    else if (strcmp(cmd, "enqueue") == 0)
        code = cmd_enqueue(&cfg, sargc, sargv);
    else if (strcmp(cmd, "render") == 0)
        code = cmd_render(&cfg, sargc, sargv);
    else if (strcmp(cmd, "templates") == 0)
        code = cmd_templates(&cfg, sargc, sargv);
    else if (strcmp(cmd, "status") == 0)
        code = cmd_status(&cfg, sargc, sargv);
    else if (strcmp(cmd, "case") == 0)
        code = cmd_case(&cfg, sargc, sargv);
    else if (strcmp(cmd, "dead") == 0)
        code = cmd_dead(&cfg, sargc, sargv);
    else if (strcmp(cmd, "routes") == 0)
        code = cmd_routes(&cfg, sargc, sargv);
    else if (strcmp(cmd, "queue") == 0)
        code = cmd_queue(&cfg, sargc, sargv);
    else if (strcmp(cmd, "list") == 0)
        code = gw_cmd_list(&cfg, sargc, sargv);
    else if (strcmp(cmd, "bulletin") == 0)
        code = gw_cmd_bulletin(&cfg, sargc, sargv);
    else if (strcmp(cmd, "contacts") == 0 || strcmp(cmd, "survey") == 0 ||
             strcmp(cmd, "report") == 0 || strcmp(cmd, "optout") == 0)
        code = survey_cli(&cfg, sargc, sargv);
    else if (strcmp(cmd, "retention") == 0)
        code = gw_retention_cli(&cfg, sargc, sargv);
    else if (strcmp(cmd, "modems") == 0)
        code = cmd_modems(&cfg, sargc, sargv);
    else if (strcmp(cmd, "config") == 0 && sargc == 2 && strcmp(sargv[1], "check") == 0) {
        printf("%s: ok (%d routes, instance %s)\n", cfg.path, cfg.nroutes, cfg.instance);
        code = EXIT_DONE;
    } else if (strcmp(cmd, "ping") == 0) {
        queue *q = svc_connect(&cfg.queue);
        code = q ? EXIT_DONE : EXIT_FAILURE_OTHER;
        queue_free(q);
    } else {
        fprintf(stderr, "herald: unknown command '%s'\n", cmd);
        usage(stderr);
        code = EXIT_BAD_INPUT;
    }
    gw_config_free(&cfg);
    free(sargv);
    return code;
}
