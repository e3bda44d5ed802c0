/* test_catalog.c -- unit tests for templates/catalog.c: header parsing,
 * variable checks, signature and opt-out, max_parts, and the shipped
 * templates in templates/shipped/ (run from the repository root). */
#include "tests/unit/test.h"
#include "templates/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SIG    "【XX市人民检察院】"
#define OPTOUT "回TD退订"

static const catalog_opts opts = { SIG, OPTOUT };

static tpl_def *parse(const char *s, char *err, size_t errlen)
{
    return tpl_def_parse(s, strlen(s), "t.tpl", err, errlen);
}

static void expect_parse_error(const char *s, const char *want)
{
    char err[256] = "";
    tpl_def *d = parse(s, err, sizeof err);
    CHECK(d == NULL);
    CHECK_HAS(err, want);
    tpl_def_free(d);
}

static void test_names(void)
{
    CHECK_STR(family_name(FAMILY_RIGHTS_NOTICE), "rights_notice");
    CHECK_STR(family_name(FAMILY_BULLETIN), "bulletin");
    CHECK_INT(family_parse("case_stage"), FAMILY_CASE_STAGE);
    CHECK_INT(family_parse("survey"), FAMILY_SURVEY);
    CHECK_INT(family_parse("Survey"), -1);
    CHECK_INT(family_parse(NULL), -1);
    CHECK_STR(lane_name(LANE_BULK), "bulk");
    CHECK_INT(lane_parse("urgent"), LANE_URGENT);
    CHECK_INT(lane_parse("fast"), -1);
    CHECK_INT(family_default_lane(FAMILY_RIGHTS_NOTICE), LANE_URGENT);
    CHECK_INT(family_default_lane(FAMILY_CASE_STAGE), LANE_URGENT);
    CHECK_INT(family_default_lane(FAMILY_SURVEY), LANE_BULK);
    CHECK_INT(family_default_lane(FAMILY_BULLETIN), LANE_BULK);
}

static void test_parse_ok(void)
{
    char err[256] = "";
    const char *s =
        "# a comment\n"
        "name: demo\n"
        "family: case_stage\n"
        "\n"
        "required: name , case_no\n"
        "optional: deadline\n"
        "max_parts: 2\n"
        "provider_code: SMS_123456\n"
        "provider_params: n=name, c=case_no\n"
        "description: 演示\n"
        "---\n"
        "{{name}}：{{case_no}}{{#deadline}}，期限{{deadline}}{{/deadline}}。\n\n";
    tpl_def *d = parse(s, err, sizeof err);
    CHECK(d != NULL);
    if (!d) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_STR(d->name, "demo");
    CHECK_INT(d->family, FAMILY_CASE_STAGE);
    CHECK_INT(d->lane, LANE_URGENT);
    CHECK_INT(d->nrequired, 2);
    CHECK_STR(d->required[1], "case_no");
    CHECK_INT(d->noptional, 1);
    CHECK_INT(d->max_parts, 2);
    CHECK_STR(d->provider_code, "SMS_123456");
    CHECK_STR(d->provider_params, "n=name, c=case_no");
    CHECK_STR(d->description, "演示");
    CHECK_STR(d->source, "t.tpl");

    /* The trailing line breaks of the file are not part of the text. */
    tpl_var v[] = { { "name", "张三" }, { "case_no", "123" } };
    rendered r;
    CHECK_INT(catalog_render(d, &opts, v, 2, &r, err, sizeof err), 0);
    CHECK_STR(r.text, SIG "张三：123。");
    CHECK_INT(r.seg.encoding, SEG_UCS2);
    CHECK_INT(r.seg.parts, 1);
    free(r.text);

    /* Optional given: the section shows; an urgent family has no opt-out. */
    tpl_var v2[] = { { "name", "张三" }, { "case_no", "123" }, { "deadline", "6月1日" } };
    CHECK_INT(catalog_render(d, &opts, v2, 3, &r, err, sizeof err), 0);
    CHECK_STR(r.text, SIG "张三：123，期限6月1日。");
    free(r.text);

    /* No options at all: body only. */
    CHECK_INT(catalog_render(d, NULL, v, 2, &r, err, sizeof err), 0);
    CHECK_STR(r.text, "张三：123。");
    free(r.text);
    tpl_def_free(d);
    tpl_def_free(NULL);

    /* Lane may be overridden; CRLF files work. */
    d = parse("name: x\r\nfamily: survey\r\nlane: urgent\r\nmax_parts: 1\r\n---\r\nhi\r\n",
              err, sizeof err);
    CHECK(d != NULL);
    if (d) {
        CHECK_INT(d->lane, LANE_URGENT);
        CHECK(d->provider_code == NULL);
        CHECK(d->description == NULL);
        tpl_def_free(d);
    }
}

static void test_parse_errors(void)
{
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 1\nhi\n",
                       "t.tpl:4: expected 'key: value'");
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 1\n",
                       "no '---' line");
    expect_parse_error("name: a\nfamily: survey\ncolour: red\nmax_parts: 1\n---\nx\n",
                       "t.tpl:3: unknown header key 'colour'");
    expect_parse_error("name: a\nname: b\nfamily: survey\nmax_parts: 1\n---\nx\n",
                       "t.tpl:2: 'name' given twice (first on line 1)");
    expect_parse_error("family: survey\nmax_parts: 1\n---\nx\n",
                       "t.tpl:3: header has no 'name'");
    expect_parse_error("name: a\nmax_parts: 1\n---\nx\n", "header has no 'family'");
    expect_parse_error("name: a\nfamily: survey\n---\nx\n", "header has no 'max_parts'");
    expect_parse_error("name: a b\nfamily: survey\nmax_parts: 1\n---\nx\n",
                       "t.tpl:1: name 'a b'");
    expect_parse_error("name: a\nfamily: sms\nmax_parts: 1\n---\nx\n",
                       "t.tpl:2: unknown family 'sms'");
    expect_parse_error("name: a\nfamily: survey\nlane: slow\nmax_parts: 1\n---\nx\n",
                       "t.tpl:3: unknown lane 'slow'");
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 0\n---\nx\n",
                       "t.tpl:3: max_parts '0'");
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 51\n---\nx\n", "from 1 to 50");
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 2x\n---\nx\n", "max_parts '2x'");
    expect_parse_error("name: a\nfamily: survey\nrequired: x, 9y\nmax_parts: 1\n---\n{{x}}\n",
                       "t.tpl:3: '9y' is not a variable name");
    expect_parse_error("name: a\nfamily: survey\nrequired: x,\nmax_parts: 1\n---\n{{x}}\n",
                       "'' is not a variable name");
    expect_parse_error("name: a\nfamily: survey\nrequired: x\noptional: x\nmax_parts: 1\n---\n{{x}}\n",
                       "t.tpl:4: variable 'x' declared twice");
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 1\n---\n\n\n",
                       "t.tpl:5: empty body");
    /* Body errors carry the file's line number. */
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 1\n---\nline5\n{{#s}}\n",
                       "t.tpl:6: section '{{#s}}' is never closed");
    expect_parse_error("name: a\nfamily: survey\nrequired: x\nmax_parts: 1\n---\n{{x}}\nand {{nmae}}\n",
                       "t.tpl:7: body uses 'nmae', which is neither required nor optional");
    expect_parse_error("name: a\nfamily: survey\nrequired: x\noptional: y\nmax_parts: 1\n---\n{{x}}\n",
                       "t.tpl:4: optional variable 'y' is never used");
    expect_parse_error("name: a\nfamily: survey\nrequired: x, z\nmax_parts: 1\n---\n{{x}}\n",
                       "t.tpl:3: required variable 'z' is never used");
    expect_parse_error("name: a\nfamily: survey\nrequired: x\nmax_parts: 1\n"
                       "provider_params: p=q\n---\n{{x}}\n",
                       "t.tpl:5: provider_params uses undeclared variable 'q'");
    expect_parse_error("name: a\nfamily: survey\nrequired: x\nmax_parts: 1\n"
                       "provider_params: p\n---\n{{x}}\n",
                       "t.tpl:5: provider_params entry 'p' is not param=var");
    expect_parse_error("name: a\nfamily: survey\nmax_parts: 1\n---\nbad \xFF\n",
                       "t.tpl:5: invalid UTF-8");
}

static tpl_def *must_parse(const char *s)
{
    char err[256] = "";
    tpl_def *d = parse(s, err, sizeof err);
    if (!d)
        fprintf(stderr, "unexpected parse error: %s\n", err);
    CHECK(d != NULL);
    return d;
}

static void test_render_checks(void)
{
    char err[256] = "";
    rendered r;
    tpl_def *d = must_parse("name: n\nfamily: rights_notice\nrequired: name, case_no\n"
                            "optional: note\nmax_parts: 1\n---\n{{name}} {{case_no}}{{note}}\n");
    if (!d)
        return;
    tpl_var unknown[] = { { "name", "a" }, { "case_no", "1" }, { "nmae", "b" } };
    CHECK_INT(catalog_render(d, &opts, unknown, 3, &r, err, sizeof err), -1);
    CHECK_HAS(err, "unknown variable 'nmae'");
    CHECK(r.text == NULL);

    tpl_var missing[] = { { "name", "a" } };
    CHECK_INT(catalog_render(d, &opts, missing, 1, &r, err, sizeof err), -1);
    CHECK_HAS(err, "missing required variable 'case_no'");

    tpl_var empty[] = { { "name", "a" }, { "case_no", "" } };
    CHECK_INT(catalog_render(d, &opts, empty, 2, &r, err, sizeof err), -1);
    CHECK_HAS(err, "required variable 'case_no' is empty");

    tpl_var blank[] = { { "name", " \t" }, { "case_no", "1" } };
    CHECK_INT(catalog_render(d, &opts, blank, 2, &r, err, sizeof err), -1);
    CHECK_HAS(err, "required variable 'name' is empty");

    tpl_var nullv[] = { { "name", NULL }, { "case_no", "1" } };
    CHECK_INT(catalog_render(d, &opts, nullv, 2, &r, err, sizeof err), -1);
    CHECK_HAS(err, "required variable 'name' is empty");

    tpl_var twice[] = { { "name", "a" }, { "case_no", "1" }, { "name", "b" } };
    CHECK_INT(catalog_render(d, &opts, twice, 3, &r, err, sizeof err), -1);
    CHECK_HAS(err, "variable 'name' given twice");

    tpl_var badutf[] = { { "name", "a\xC3" }, { "case_no", "1" } };
    CHECK_INT(catalog_render(d, &opts, badutf, 2, &r, err, sizeof err), -1);
    CHECK_HAS(err, "variable 'name': invalid UTF-8");

    /* An empty optional variable is fine. */
    tpl_var ok[] = { { "name", "a" }, { "case_no", "1" }, { "note", "" } };
    CHECK_INT(catalog_render(d, &opts, ok, 3, &r, err, sizeof err), 0);
    CHECK_STR(r.text, SIG "a 1");
    free(r.text);

    /* max_parts: 1 part is 70 UCS-2 units; the signature counts. */
    char longv[400] = "";
    for (int i = 0; i < 58; i++)
        strcat(longv, "检");
    tpl_var fits[] = { { "name", longv }, { "case_no", "1" } };   /* 10+58+2 = 70 */
    CHECK_INT(catalog_render(d, &opts, fits, 2, &r, err, sizeof err), 0);
    CHECK_INT(r.seg.parts, 1);
    CHECK_INT(r.seg.units, 70);
    free(r.text);
    strcat(longv, "检");
    CHECK_INT(catalog_render(d, &opts, fits, 2, &r, err, sizeof err), -1);
    CHECK_HAS(err, "text needs 2 parts, template allows 1");
    CHECK(r.text == NULL);
    tpl_def_free(d);
}

static void test_optout(void)
{
    char err[256] = "";
    rendered r;
    tpl_def *survey = must_parse("name: s\nfamily: survey\nrequired: x\nmax_parts: 2\n---\n请评议{{x}}\n");
    tpl_def *bull = must_parse("name: b\nfamily: bulletin\nrequired: link\nmax_parts: 2\n---\n"
                               "阅读：{{link}}\n");
    tpl_def *stage = must_parse("name: c\nfamily: case_stage\nrequired: x\nmax_parts: 2\n---\n{{x}}\n");
    if (!survey || !bull || !stage)
        goto out;

    /* After Chinese text the opt-out follows directly. */
    tpl_var x[] = { { "x", "。" } };
    CHECK_INT(catalog_render(survey, &opts, x, 1, &r, err, sizeof err), 0);
    CHECK_STR(r.text, SIG "请评议。" OPTOUT);
    free(r.text);

    /* After ASCII (a link) a space keeps the link intact. */
    tpl_var l[] = { { "link", "https://example.cn/b/38" } };
    CHECK_INT(catalog_render(bull, &opts, l, 1, &r, err, sizeof err), 0);
    CHECK_STR(r.text, SIG "阅读：https://example.cn/b/38 " OPTOUT);
    free(r.text);

    /* Urgent families never carry it. */
    CHECK_INT(catalog_render(stage, &opts, x, 1, &r, err, sizeof err), 0);
    CHECK_STR(r.text, SIG "。");
    free(r.text);

    /* No opt-out configured: nothing appended. */
    catalog_opts noopt = { SIG, NULL };
    CHECK_INT(catalog_render(survey, &noopt, x, 1, &r, err, sizeof err), 0);
    CHECK_STR(r.text, SIG "请评议。");
    free(r.text);

    /* GSM text stays GSM with no signature. */
    catalog_opts bare = { NULL, "STOP" };
    tpl_var a[] = { { "x", "abc" } };
    CHECK_INT(catalog_render(stage, &bare, a, 1, &r, err, sizeof err), 0);
    CHECK_STR(r.text, "abc");
    CHECK_INT(r.seg.encoding, SEG_GSM7);
    free(r.text);
out:
    tpl_def_free(survey);
    tpl_def_free(bull);
    tpl_def_free(stage);
}

static void test_catalog_basic(void)
{
    char err[256] = "";
    catalog *c = catalog_new();
    const char *names[] = { "m", "b", "z", "a" };
    for (int i = 0; i < 4; i++) {
        char src[128];
        snprintf(src, sizeof src, "name: %s\nfamily: survey\nmax_parts: 1\n---\nx\n", names[i]);
        tpl_def *d = tpl_def_parse(src, strlen(src), names[i], err, sizeof err);
        CHECK_INT(catalog_add(c, d, err, sizeof err), 0);
    }
    CHECK_INT(catalog_count(c), 4);
    CHECK_STR(catalog_at(c, 0)->name, "a");
    CHECK_STR(catalog_at(c, 1)->name, "b");
    CHECK_STR(catalog_at(c, 3)->name, "z");
    CHECK(catalog_at(c, 4) == NULL);
    CHECK(catalog_find(c, "m") != NULL);
    CHECK(catalog_find(c, "q") == NULL);
    const char *dsrc = "name: b\nfamily: survey\nmax_parts: 1\n---\ny\n";
    tpl_def *dup = tpl_def_parse(dsrc, strlen(dsrc), "other.tpl", err, sizeof err);
    CHECK(dup != NULL);
    CHECK_INT(catalog_add(c, dup, err, sizeof err), -1);
    CHECK_HAS(err, "other.tpl: template 'b' is already defined in b");
    tpl_def_free(dup);
    catalog_free(c);
    catalog_free(NULL);
    CHECK_INT(catalog_count(NULL), 0);
    CHECK(catalog_find(NULL, "a") == NULL);
}

/* Writes files into a fresh temporary directory. */
static void write_file(const char *dir, const char *name, const char *body)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(body, f);
        fclose(f);
    }
}

static void remove_dir(const char *dir, const char *const *names, int n)
{
    char path[512];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_load_dir_errors(void)
{
    char err[512] = "";
    char dir[] = "/tmp/herald_tpl_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);

    CHECK(catalog_load_dir(dir, err, sizeof err) == NULL);
    CHECK_HAS(err, "no *.tpl template files");

    write_file(dir, "a.tpl", "name: one\nfamily: survey\nmax_parts: 1\n---\nok\n");
    write_file(dir, "notes.txt", "not a template");
    catalog *c = catalog_load_dir(dir, err, sizeof err);
    CHECK(c != NULL);
    CHECK_INT(catalog_count(c), 1);
    catalog_free(c);

    write_file(dir, "b.tpl", "name: two\nfamily: survey\nmax_parts: 1\n---\n{{#x}}\n");
    CHECK(catalog_load_dir(dir, err, sizeof err) == NULL);
    CHECK_HAS(err, "/b.tpl:5: section '{{#x}}' is never closed");

    write_file(dir, "b.tpl", "name: one\nfamily: survey\nmax_parts: 1\n---\nagain\n");
    CHECK(catalog_load_dir(dir, err, sizeof err) == NULL);
    CHECK_HAS(err, "b.tpl: template 'one' is already defined in");
    CHECK_HAS(err, "a.tpl");

    const char *names[] = { "a.tpl", "b.tpl", "notes.txt" };
    remove_dir(dir, names, 3);
    CHECK(catalog_load_dir(dir, err, sizeof err) == NULL);
    CHECK_HAS(err, "No such file");
}

/* Sample values for the shipped templates. */
static const tpl_var sample[] = {
    { "name", "张三" },
    { "client_name", "李四" },
    { "case_no", "X检刑诉受〔2024〕123" },
    { "accepted_on", "2024年5月20日" },
    { "office", "XX市人民检察院" },
    { "office_phone", "0571-12345678" },
    { "stage", "审查起诉" },
    { "stage_date", "2024年6月3日" },
    { "deadline", "2024年7月3日" },
    { "period", "2024年5月" },
    { "title", "检察之窗" },
    { "issue_no", "38" },
    { "link", "https://jcy.example.gov.cn/m/38" },
};

/* Renders d with the sample values it declares, minus `skip`. */
static int render_sample(const tpl_def *d, const char *skip, rendered *r,
                         char *err, size_t errlen)
{
    tpl_var vars[TPL_MAX_VARS];
    size_t n = 0;
    for (size_t i = 0; i < sizeof sample / sizeof sample[0]; i++) {
        int want = 0;
        for (int k = 0; k < d->nrequired; k++)
            want |= strcmp(d->required[k], sample[i].name) == 0;
        for (int k = 0; k < d->noptional; k++)
            want |= strcmp(d->optional[k], sample[i].name) == 0;
        if (want && !(skip && strcmp(skip, sample[i].name) == 0))
            vars[n++] = sample[i];
    }
    return catalog_render(d, &opts, vars, n, r, err, errlen);
}

static void test_shipped(void)
{
    char err[512] = "";
    catalog *c = catalog_load_dir("templates/shipped", err, sizeof err);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    static const struct {
        const char *name;
        tpl_family family;
        tpl_lane lane;
        const char *required;
        const char *optional;
        int parts;          /* with all sample values */
        int parts_min;      /* without the optional ones */
    } want[] = {
        { "bulletin_fallback", FAMILY_BULLETIN, LANE_BULK, "title,issue_no,link,", "", 2, 0 },
        { "case_stage_update", FAMILY_CASE_STAGE, LANE_URGENT,
          "name,case_no,stage,stage_date,office_phone,", "deadline,", 2, 2 },
        { "evaluation_survey", FAMILY_SURVEY, LANE_BULK, "period,", "name,", 2, 2 },
        { "rights_notice_agent", FAMILY_RIGHTS_NOTICE, LANE_URGENT,
          "name,client_name,case_no,accepted_on,office,office_phone,", "", 3, 0 },
        { "rights_notice_suspect", FAMILY_RIGHTS_NOTICE, LANE_URGENT,
          "name,case_no,accepted_on,office,office_phone,", "", 3, 0 },
        { "rights_notice_victim", FAMILY_RIGHTS_NOTICE, LANE_URGENT,
          "name,case_no,accepted_on,office,office_phone,", "", 3, 0 },
    };
    CHECK_INT(catalog_count(c), 6);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const tpl_def *d = catalog_at(c, i);
        CHECK(d != NULL);
        if (!d)
            continue;
        CHECK_STR(d->name, want[i].name);
        CHECK(catalog_find(c, want[i].name) == d);
        CHECK_INT(d->family, want[i].family);
        CHECK_INT(d->lane, want[i].lane);
        char req[256] = "", opt[256] = "";
        for (int k = 0; k < d->nrequired; k++)
            strcat(strcat(req, d->required[k]), ",");
        for (int k = 0; k < d->noptional; k++)
            strcat(strcat(opt, d->optional[k]), ",");
        CHECK_STR(req, want[i].required);
        CHECK_STR(opt, want[i].optional);
        CHECK(d->description != NULL);

        rendered r;
        CHECK_INT(render_sample(d, NULL, &r, err, sizeof err), 0);
        CHECK_INT(r.seg.parts, want[i].parts);
        CHECK_INT(r.seg.encoding, SEG_UCS2);
        CHECK(r.seg.parts <= d->max_parts);
        CHECK(strncmp(r.text, SIG, strlen(SIG)) == 0);
        /* Bodies carry no signature of their own. */
        CHECK(strstr(r.text + strlen(SIG), "【") == NULL);
        CHECK(strstr(r.text, "{{") == NULL);
        int bulk = d->family == FAMILY_SURVEY || d->family == FAMILY_BULLETIN;
        CHECK_INT(strstr(r.text, OPTOUT) != NULL, bulk);
        free(r.text);

        if (d->noptional) {
            CHECK_INT(render_sample(d, d->optional[0], &r, err, sizeof err), 0);
            CHECK_INT(r.seg.parts, want[i].parts_min);
            free(r.text);
        }
        /* Every required variable is enforced. */
        for (int k = 0; k < d->nrequired; k++) {
            char needle[128];
            CHECK_INT(render_sample(d, d->required[k], &r, err, sizeof err), -1);
            snprintf(needle, sizeof needle, "missing required variable '%s'", d->required[k]);
            CHECK_HAS(err, needle);
        }
    }

    /* Long but realistic values: still 3 parts, one to spare. */
    static const tpl_var longer[] = {
        { "name", "欧阳明远" }, { "client_name", "司马晓东" },
        { "case_no", "浙杭西检刑诉受〔2024〕10086" },
        { "accepted_on", "2024年12月20日" }, { "office", "杭州市西湖区人民检察院" },
        { "office_phone", "0571-87654321" },
    };
    static const char *const notices[] = {
        "rights_notice_suspect", "rights_notice_victim", "rights_notice_agent" };
    for (int i = 0; i < 3; i++) {
        const tpl_def *d = catalog_find(c, notices[i]);
        rendered r;
        CHECK(d != NULL);
        if (!d)
            continue;
        size_t n = d->nrequired == 6 ? 6 : 5;
        tpl_var v[6];
        for (size_t k = 0, j = 0; k < 6; k++)
            if (n == 6 || strcmp(longer[k].name, "client_name") != 0)
                v[j++] = longer[k];
        CHECK_INT(catalog_render(d, &opts, v, n, &r, err, sizeof err), 0);
        CHECK_INT(r.seg.parts, 3);
        free(r.text);
    }

    /* The survey without a name starts with the greeting alone. */
    const tpl_def *s = catalog_find(c, "evaluation_survey");
    if (s) {
        rendered r;
        CHECK_INT(render_sample(s, "name", &r, err, sizeof err), 0);
        CHECK(strncmp(r.text, SIG "您好！", strlen(SIG "您好！")) == 0);
        CHECK_HAS(r.text, "执法程序、执法能力、执法文明、廉洁执法");
        free(r.text);
    }
    catalog_free(c);
}

int main(void)
{
    test_names();
    test_parse_ok();
    test_parse_errors();
    test_render_checks();
    test_optout();
    test_catalog_basic();
    test_load_dir_errors();
    test_shipped();
    return TEST_REPORT();
}
