/* test_gateway.c -- phone numbers, masking, send times, the config schema
 * checker, and back-off. No servers. */
#include <stdlib.h>
#include <string.h>
#include <libconfig.h>

#include "gateway/cfgkeys.h"
#include "gateway/phone.h"
#include "gateway/service.h"
#include "tests/unit/test.h"

static void test_phone(void)
{
    static const struct { const char *in; const char *out; } ok[] = {
        { "13800138000", "+8613800138000" },
        { "+8613800138000", "+8613800138000" },
        { "008613800138000", "+8613800138000" },
        { "8613800138000", "+8613800138000" },
        { "+86 138-0013-8000", "+8613800138000" },
        { "138 0013 8000", "+8613800138000" },
        { "(+86) 138.0013.8000", "+8613800138000" },
        { "１３８００１３８０００", "+8613800138000" },          /* full-width digits */
        { "＋８６ １３８－００１３－８０００", "+8613800138000" },
        { "19912345678", "+8619912345678" },
    };
    char out[PHONE_MAX], err[200];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int rc = phone_normalize(ok[i].in, 0, out, err, sizeof err);
        CHECK_INT(rc, 0);
        if (rc == 0)
            CHECK_STR(out, ok[i].out);
        else
            fprintf(stderr, "  input %s: %s\n", ok[i].in, err);
    }
    static const struct { const char *in; const char *why; } bad[] = {
        { "", "empty" },
        { "1380013800", "10 digits" },
        { "138001380001", "12 digits" },
        { "12800138000", "13-19" },
        { "0571-88888888", "not a Chinese mobile number" },
        { "+1 415 555 0100", "international numbers are not allowed" },
        { "138oo138000", "'o'" },
        { "138+00138000", "'+' may only start" },
        { "---", "no digits" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_INT(phone_normalize(bad[i].in, 0, out, err, sizeof err), -1);
        CHECK_HAS(err, bad[i].why);
    }
    CHECK_INT(phone_normalize("+1 415 555 0100", 1, out, err, sizeof err), 0);
    CHECK_STR(out, "+14155550100");
    CHECK_INT(phone_normalize("+86 0571 8888 8888", 1, out, err, sizeof err), -1);
    CHECK_INT(phone_normalize("+0123456", 1, out, err, sizeof err), -1);

    CHECK_STR(phone_mask("+8613812345678", out), "138****5678");
    CHECK_STR(phone_mask("+14155550100", out), "141****0100");
    CHECK_STR(phone_mask("123", out), "****");
    CHECK_STR(phone_mask(NULL, out), "****");
    CHECK_STR(phone_national("+8613812345678"), "13812345678");
}

static void test_times(void)
{
    long long now = 1764230400000LL, t = 0;   /* 2025-11-27T08:00:00Z */
    char err[200];
    CHECK_INT(svc_parse_time("+90s", now, &t, err, sizeof err), 0);
    CHECK_INT(t, now + 90000);
    CHECK_INT(svc_parse_time("+5m", now, &t, err, sizeof err), 0);
    CHECK_INT(t, now + 300000);
    CHECK_INT(svc_parse_time("+2h", now, &t, err, sizeof err), 0);
    CHECK_INT(t, now + 7200000);
    CHECK_INT(svc_parse_time("1764230400", now, &t, err, sizeof err), 0);
    CHECK_INT(t, 1764230400000LL);
    CHECK_INT(svc_parse_time("2026-11-27T10:00:00+08:00", now, &t, err, sizeof err), 0);
    CHECK_INT(t, 1795744800000LL);
    CHECK_INT(svc_parse_time("2026-11-27T02:00:00Z", now, &t, err, sizeof err), 0);
    CHECK_INT(t, 1795744800000LL);
    CHECK_INT(svc_parse_time("2026-11-27T10:00+0800", now, &t, err, sizeof err), 0);
    CHECK_INT(t, 1795744800000LL);
    const char *bad[] = { "", "tomorrow", "+5y", "+-3s", "2026-13-01T00:00:00Z", "2026-11-27T25:00Z",
                          "2026-11-27", "2026-11-27T10:00:00+08:00junk" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_INT(svc_parse_time(bad[i], now, &t, err, sizeof err), -1);
        CHECK_HAS(err, "cannot read time");
    }
    tpl_var v;
    char s1[] = "name=张三=x", s2[] = "=v", s3[] = "novalue";
    CHECK_INT(svc_parse_var(s1, &v, err, sizeof err), 0);
    CHECK_STR(v.name, "name");
    CHECK_STR(v.value, "张三=x");
    CHECK_INT(svc_parse_var(s2, &v, err, sizeof err), -1);
    CHECK_INT(svc_parse_var(s3, &v, err, sizeof err), -1);
    CHECK_HAS(err, "name=value");
}

static const cfg_key inner_keys[] = {
    { "path", CFG_STR, NULL, 0, 0, NULL, "required string" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};
static const cfg_key test_keys[] = {
    { "count", CFG_INT, "4", 1, 10, NULL, "an int" },
    { "name", CFG_STR, "x", 0, 0, NULL, "a string" },
    { "on", CFG_BOOL, "true", 0, 0, NULL, "a bool" },
    { "tags", CFG_STRLIST, "", 0, 0, NULL, "strings" },
    { "inner", CFG_GROUP, "", 0, 0, inner_keys, "a group" },
    { "items", CFG_LIST, "", 0, 0, inner_keys, "a list" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static int check_text(const char *text, char *err, size_t errlen, config_t *cfg)
{
    config_init(cfg);
    if (config_read_string(cfg, text) != CONFIG_TRUE) {
        snprintf(err, errlen, "syntax: %s", config_error_text(cfg));
        return -2;
    }
    return cfg_check_group(config_root_setting(cfg), "", test_keys, err, errlen);
}

static void test_schema(void)
{
    config_t cfg;
    char err[512];
    CHECK_INT(check_text("count = 3; name = \"y\"; on = false; tags = [\"a\", \"b\"];\n"
                         "inner = { path = \"/p\"; }; items = ( { path = \"a\"; } );", err, sizeof err, &cfg), 0);
    const config_setting_t *root = config_root_setting(&cfg);
    CHECK_INT(cfg_int(root, test_keys, "count"), 3);
    CHECK_STR(cfg_str(root, test_keys, "name"), "y");
    CHECK_INT(cfg_bool(root, test_keys, "on"), 0);
    config_destroy(&cfg);

    CHECK_INT(check_text("", err, sizeof err, &cfg), 0);
    root = config_root_setting(&cfg);
    CHECK_INT(cfg_int(root, test_keys, "count"), 4);   /* defaults */
    CHECK_STR(cfg_str(root, test_keys, "name"), "x");
    CHECK_INT(cfg_bool(root, test_keys, "on"), 1);
    CHECK_INT(cfg_int(NULL, test_keys, "count"), 4);
    config_destroy(&cfg);

    static const struct { const char *text; const char *msg; } bad[] = {
        { "cuont = 3;", "cuont: unknown key (known here: count name on tags inner items)" },
        { "count = \"3\";", "count: must be an integer" },
        { "count = 11;", "count: 11 is out of range [1, 10]" },
        { "count = 0;", "out of range" },
        { "on = 1;", "on: must be true or false" },
        { "tags = [1, 2];", "tags: must be an array of strings" },
        { "inner = { };", "inner.path: required key is missing" },
        { "inner = { path = \"a\"; pth = 1; };", "inner.pth: unknown key" },
        { "items = ( { path = \"a\"; }, { } );", "items.[1].path: required key is missing" },
        { "\n\ncount = 3.5;", ":3: count: must be an integer" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_INT(check_text(bad[i].text, err, sizeof err, &cfg), -1);
        CHECK_HAS(err, bad[i].msg);
        config_destroy(&cfg);
    }
}

int main(void)
{
    test_phone();
    test_times();
    test_schema();
    return TEST_REPORT();
}
