/* fuzz_tpldef.c -- a template file (header + body) from any bytes; when it
 * parses, render it through the catalog with its own declared variables,
 * so the checks, the signature, the opt-out line and part counting run. */
#include "tests/fuzz/fuzz.h"
#include "templates/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    tpl_def *d = tpl_def_parse((const char *)data, size, "fuzz.tpl", err, sizeof err);
    if (!d) {
        FUZZ_ASSERT(strncmp(err, "fuzz.tpl", 8) == 0);   /* names the file */
        return 0;
    }
    catalog *c = catalog_new();
    FUZZ_ASSERT(c != NULL);
    if (catalog_add(c, d, err, sizeof err) != 0) {
        tpl_def_free(d);
        catalog_free(c);
        return 0;
    }
    const tpl_var vars[] = {
        { "name", "张三" }, { "case_no", "案1" }, { "accepted_on", "2026年11月27日" },
        { "office", "某市人民检察院" }, { "office_phone", "0571-88888888" }, { "period", "2026年11月" },
    };
    catalog_opts o = { "【XX市人民检察院】", "回TD退订" };
    rendered r;
    if (catalog_render(catalog_at(c, 0), &o, vars, sizeof vars / sizeof vars[0], &r, err, sizeof err) == 0) {
        FUZZ_ASSERT(r.text != NULL && r.seg.parts >= 1);
        free(r.text);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    catalog_free(c);
    return 0;
}
