/* test_tpl.c -- unit tests for templates/tpl.c, the mustache subset.
 * Bytes in, bytes out: no files. */
#include "tests/unit/test.h"
#include "templates/tpl.h"

#include <stdlib.h>

/* Compiles and renders src with vars; returns the malloc'd output or NULL
 * (with the compile error in err). */
static char *run(const char *src, const tpl_var *vars, size_t nvars,
                 char *err, size_t errlen)
{
    tpl *t = tpl_compile(src, strlen(src), err, errlen);
    if (!t)
        return NULL;
    char *out = tpl_render(t, vars, nvars);
    tpl_free(t);
    return out;
}

static void expect(const char *src, const tpl_var *vars, size_t nvars, const char *want)
{
    char err[256] = "";
    char *out = run(src, vars, nvars, err, sizeof err);
    if (!out)
        fprintf(stderr, "compile error for '%s': %s\n", src, err);
    CHECK_STR(out, want);
    free(out);
}

static void expect_error(const char *src, const char *want)
{
    char err[256] = "";
    tpl *t = tpl_compile(src, strlen(src), err, sizeof err);
    CHECK(t == NULL);
    CHECK_HAS(err, want);
    tpl_free(t);
}

static void test_basics(void)
{
    tpl_var v[] = { { "name", "张三" }, { "case_no", "X检刑诉〔2024〕12号" },
                    { "empty", "" }, { "zero", "0" }, { "no", "false" } };
    size_t n = sizeof v / sizeof v[0];

    expect("", v, n, "");
    expect("plain text", v, n, "plain text");
    expect("{{name}}：您好", v, n, "张三：您好");
    expect("{{ name }}/{{case_no}}", v, n, "张三/X检刑诉〔2024〕12号");
    expect("[{{missing}}]", v, n, "[]");
    expect("a{{! a comment, with {braces} }}b", v, n, "ab");
    expect("a{{!\nmulti\nline}}b", v, n, "ab");
    /* No HTML escaping. */
    tpl_var h[] = { { "x", "<b>&\"'</b>" } };
    expect("{{x}}", h, 1, "<b>&\"'</b>");
    /* A lone brace or closing braces are text. */
    expect("a { b } }} c", v, n, "a { b } }} c");
    /* Values are inserted, never re-parsed. */
    tpl_var inj[] = { { "x", "{{name}}" }, { "name", "N" } };
    expect("{{x}}", inj, 2, "{{name}}");
    /* First entry wins when a name is given twice; NULL value is empty. */
    tpl_var dup[] = { { "x", "1" }, { "x", "2" }, { "y", NULL } };
    expect("{{x}}{{y}}", dup, 3, "1");
    /* Newlines are kept as written. */
    expect("a\n{{#name}}\nb\n{{/name}}\n", v, n, "a\n\nb\n\n");
}

static void test_sections(void)
{
    tpl_var v[] = { { "a", "1" }, { "b", "yes" }, { "empty", "" },
                    { "zero", "0" }, { "no", "false" }, { "deadline", "2024年6月30日" } };
    size_t n = sizeof v / sizeof v[0];

    expect("{{#a}}A{{/a}}", v, n, "A");
    expect("{{#empty}}E{{/empty}}", v, n, "");
    expect("{{#zero}}Z{{/zero}}", v, n, "");
    expect("{{#no}}N{{/no}}", v, n, "");
    expect("{{#absent}}X{{/absent}}", v, n, "");
    expect("{{^empty}}none{{/empty}}", v, n, "none");
    expect("{{^zero}}none{{/zero}}", v, n, "none");
    expect("{{^absent}}none{{/absent}}", v, n, "none");
    expect("{{^a}}none{{/a}}", v, n, "");
    expect("{{#deadline}}期限至{{deadline}}。{{/deadline}}", v, n, "期限至2024年6月30日。");
    expect("{{#deadline}}x{{/deadline}}{{^deadline}}y{{/deadline}}", v, n, "x");
    /* Nested, same name nested, inverted inside normal. */
    expect("{{#a}}1{{#b}}2{{^empty}}3{{/empty}}{{/b}}4{{/a}}", v, n, "1234");
    expect("{{#a}}1{{#empty}}2{{/empty}}3{{/a}}", v, n, "13");
    expect("{{#a}}{{#a}}in{{/a}}{{/a}}", v, n, "in");
    expect("{{^empty}}{{#zero}}x{{/zero}}{{^zero}}y{{/zero}}{{/empty}}", v, n, "y");
    expect("{{# a }}sp{{/ a }}", v, n, "sp");
}

static void test_unicode(void)
{
    tpl_var v[] = { { "name", "李四😀" }, { "e", "é" } };
    expect("【检察】{{name}}，您好！《告知书》", v, 2, "【检察】李四😀，您好！《告知书》");
    expect("{{e}}\xCC\x81", v, 2, "é\xCC\x81");
    /* Multibyte text right before a tag. */
    expect("检{{e}}察", v, 2, "检é察");
}

static void test_errors(void)
{
    expect_error("abc {{name", "line 1: unclosed tag");
    expect_error("a\nb\n{{#s}}x", "line 3: section '{{#s}}' is never closed");
    expect_error("{{^s}}x", "line 1: section '{{^s}}' is never closed");
    expect_error("{{#a}}\n{{#b}}\n{{/a}}{{/b}}", "line 3: '{{/a}}' does not match '{{#b}}' opened on line 2");
    expect_error("x\n{{/a}}", "line 2: '{{/a}}' closes no open section");
    expect_error("{{}}", "line 1: empty tag");
    expect_error("{{  }}", "empty tag");
    expect_error("{{#}}", "has no name");
    expect_error("{{/ }}", "has no name");
    expect_error("{{a b}}", "malformed tag");
    expect_error("{{1abc}}", "malformed tag");
    expect_error("{{na-me}}", "malformed tag");
    expect_error("{{{x}}}", "unsupported tag '{{{'");
    expect_error("{{&x}}", "unsupported tag");
    expect_error("{{>partial}}", "unsupported tag");
    expect_error("{{=<% %>=}}", "unsupported tag");
    expect_error("ok\n\xE6\xA3", "line 2: invalid UTF-8 at byte 3");
    expect_error("\xC0\x80", "invalid UTF-8");
    expect_error("\xED\xA0\x80", "invalid UTF-8");
    /* A tag spanning lines reports the line it starts on; later lines count on. */
    expect_error("{{!\n\n}}\n{{#x}}", "line 4:");

    char deep[2000] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "{{#a}}");
    expect_error(deep, "nested deeper");

    /* A NUL inside the given length is refused. */
    char err[128] = "";
    tpl *t = tpl_compile("a\0b", 3, err, sizeof err);
    CHECK(t == NULL);
    CHECK_HAS(err, "NUL");
    /* A tiny error buffer is safe. */
    char small[8];
    CHECK(tpl_compile("{{", 2, small, sizeof small) == NULL);
    CHECK_INT(strlen(small), 7);
    CHECK(tpl_compile("{{", 2, NULL, 0) == NULL);
}

static void collect(const char *name, void *ud)
{
    char *buf = ud;
    strcat(buf, name);
    strcat(buf, ",");
}

static void test_vars(void)
{
    char err[128] = "", names[256] = "";
    const char *src = "{{a}}\n{{#b}}{{c}}{{a}}{{/b}}{{! d }}\n{{^e}}{{b}}{{/e}}";
    tpl *t = tpl_compile(src, strlen(src), err, sizeof err);
    CHECK(t != NULL);
    tpl_each_var(t, collect, names);
    CHECK_STR(names, "a,b,c,e,");
    CHECK_INT(tpl_var_line(t, "a"), 1);
    CHECK_INT(tpl_var_line(t, "c"), 2);
    CHECK_INT(tpl_var_line(t, "e"), 3);
    CHECK_INT(tpl_var_line(t, "d"), 0);
    /* Rendering twice gives the same text (the tree is not consumed). */
    tpl_var v[] = { { "a", "A" }, { "b", "1" }, { "c", "C" } };
    char *r1 = tpl_render(t, v, 3), *r2 = tpl_render(t, v, 3);
    CHECK_STR(r1, "A\nCA\n1");
    CHECK_STR(r2, r1);
    free(r1);
    free(r2);
    tpl_free(t);
    tpl_free(NULL);
    tpl_each_var(NULL, collect, names);

    /* Length is honoured: the source need not be NUL-terminated. */
    t = tpl_compile("{{a}}XYZ", 6, err, sizeof err);
    CHECK(t != NULL);
    char *r = tpl_render(t, v, 3);
    CHECK_STR(r, "AX");
    free(r);
    tpl_free(t);
}

static void test_long(void)
{
    /* Output longer than the first buffer. */
    char src[4096] = "";
    for (int i = 0; i < 300; i++)
        strcat(src, "{{x}}");
    tpl_var v[] = { { "x", "检察院" } };
    char err[64];
    tpl *t = tpl_compile(src, strlen(src), err, sizeof err);
    char *out = tpl_render(t, v, 1);
    CHECK(out != NULL);
    CHECK_INT(strlen(out), 300 * strlen("检察院"));
    free(out);
    tpl_free(t);
}

int main(void)
{
    test_basics();
    test_sections();
    test_unicode();
    test_errors();
    test_vars();
    test_long();
    return TEST_REPORT();
}
