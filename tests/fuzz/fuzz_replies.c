/* fuzz_replies.c -- the survey reply parser on any bytes (a citizen's SMS
 * can hold anything): a verdict always, ratings within the scale, a
 * suggestion string that is never NULL. */
#include "tests/fuzz/fuzz.h"
#include "gateway/replies.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reply_opts o;
    reply_opts_default(&o);
    reply_verdict v;
    FUZZ_ASSERT(reply_parse((const char *)data, size, &o, &v) == 0);
    FUZZ_ASSERT(v.suggestion != NULL);
    FUZZ_ASSERT(reply_status_name(v.status) != NULL);
    for (int i = 0; i < REPLY_ASPECTS; i++)
        FUZZ_ASSERT(v.ratings[i] >= 0 && v.ratings[i] <= o.nlabels);
    if (v.status == REPLY_PARSED)
        for (int i = 0; i < REPLY_ASPECTS; i++)
            FUZZ_ASSERT(v.ratings[i] >= 1);
    reply_verdict_clear(&v);
    return 0;
}
