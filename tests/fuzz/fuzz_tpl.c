/* fuzz_tpl.c -- the template engine: compile any bytes; when they compile,
 * render with variables that are sections, inverted sections and plain
 * values, and check the result is a NUL-terminated string. */
#include "tests/fuzz/fuzz.h"
#include "templates/tpl.h"

static void count_var(const char *name, void *ud)
{
    FUZZ_ASSERT(name && *name);
    (*(int *)ud)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    tpl *t = tpl_compile((const char *)data, size, err, sizeof err);
    if (!t) {
        FUZZ_ASSERT(err[0] != '\0');          /* a refusal says why */
        return 0;
    }
    int n = 0;
    tpl_each_var(t, count_var, &n);
    const tpl_var vars[] = {
        { "name", "张三" }, { "case_no", "某检刑诉〔2026〕88号" }, { "deadline", "" },
        { "a", "x" }, { "b", "{{a}}" }, { "x", "1" },
    };
    for (size_t nv = 0; nv <= sizeof vars / sizeof vars[0]; nv += 3) {
        char *out = tpl_render(t, vars, nv);
        FUZZ_ASSERT(out != NULL);
        (void)strlen(out);
        free(out);
    }
    tpl_free(t);
    return 0;
}
