/* test_replies.c -- the survey reply parser on a table of real-looking
 * replies: ASCII and full-width digits, separators, words, one rating for
 * all four, ratings with a suggestion, partial answers, sentences, emoji,
 * opt-outs (alone and with ratings), opt-in, empty and garbage. No servers. */
#include <stdlib.h>
#include <string.h>

#include "gateway/replies.h"
#include "tests/unit/test.h"

typedef struct row {
    const char *in;
    const char *status;
    const char *ratings;      /* "1121", "0" for none given */
    const char *suggestion;
} row;

static const row table[] = {
    /* four digits, every way phones write them */
    { "1121", "parsed", "1121", "" },
    { "1111", "parsed", "1111", "" },
    { "3333", "parsed", "3333", "" },
    { "1 1 2 1", "parsed", "1121", "" },
    { "  1 2 3 1  ", "parsed", "1231", "" },
    { "１１２１", "parsed", "1121", "" },
    { "１　１　２　１", "parsed", "1121", "" },
    { "1,1,2,1", "parsed", "1121", "" },
    { "1，1，2，1", "parsed", "1121", "" },
    { "1、1、2、1", "parsed", "1121", "" },
    { "1/1/2/1", "parsed", "1121", "" },
    { "1-1-2-1", "parsed", "1121", "" },
    { "1.1.2.1", "parsed", "1121", "" },
    { "１－２－１－１", "parsed", "1211", "" },
    { "1；1；1；2。", "parsed", "1112", "" },
    { "\"1121\"", "parsed", "1121", "" },
    { "【1121】", "parsed", "1121", "" },
    { "11 21", "parsed", "1121", "" },
    /* words */
    { "满意", "parsed", "1111", "" },
    { "满意！", "parsed", "1111", "" },
    { "非常满意", "parsed", "1111", "" },
    { "很满意。", "parsed", "1111", "" },
    { "基本满意", "parsed", "2222", "" },
    { "一般", "parsed", "2222", "" },
    { "不满意", "parsed", "3333", "" },
    { "满意 满意 基本满意 满意", "parsed", "1121", "" },
    { "满意，满意，不满意，满意", "parsed", "1131", "" },
    { "满意满意基本满意满意", "parsed", "1121", "" },
    { "执法程序满意，执法能力满意，执法文明基本满意，廉洁执法满意", "parsed", "1121", "" },
    { "执法程序：1 执法能力：1 执法文明：2 廉洁执法：1", "parsed", "1121", "" },
    { "程序1能力1文明1廉洁2", "parsed", "1112", "" },
    { "1满意1满意2基本满意1满意", "parsed", "1121", "" },
    /* one rating means all four */
    { "1", "parsed", "1111", "" },
    { "２", "parsed", "2222", "" },
    { " 3 ", "parsed", "3333", "" },
    { "1。", "parsed", "1111", "" },
    /* ratings then a suggestion */
    { "1121 希望提高办案效率", "parsed", "1121", "希望提高办案效率" },
    { "1121，接待人员态度很好。", "parsed", "1121", "接待人员态度很好。" },
    { "1121谢谢", "parsed", "1121", "谢谢" },
    { "１１２１　建议延长接待时间", "parsed", "1121", "建议延长接待时间" },
    { "1 1 1 3 办案人员接电话不耐烦", "parsed", "1113", "办案人员接电话不耐烦" },
    { "满意，谢谢你们的工作", "parsed", "1111", "谢谢你们的工作" },
    { "1，检察官很专业", "parsed", "1111", "检察官很专业" },
    { "不满意。案子拖了半年没人管", "parsed", "3333", "案子拖了半年没人管" },
    { "1121 👍", "parsed", "1121", "👍" },
    { "1121\n请尽快答复我的申诉", "parsed", "1121", "请尽快答复我的申诉" },
    { "1111 good job", "parsed", "1111", "good job" },
    { "1121 don't know the others", "parsed", "1121", "don't know the others" },
    { "I can’t say", "unparsed", "0", "I can’t say" },
    /* partial */
    { "11", "partial", "1100", "" },
    { "1 2 1", "partial", "1210", "" },
    { "满意 基本满意", "partial", "1200", "" },
    { "12 其他不清楚", "partial", "1200", "其他不清楚" },
    /* sentences and garbage: kept whole */
    { "案件什么时候开庭？", "unparsed", "0", "案件什么时候开庭？" },
    { "3个月了还没消息", "unparsed", "0", "3个月了还没消息" },
    { "满意度不高", "unparsed", "0", "满意度不高" },
    { "我对处理结果有异议，请联系我", "unparsed", "0", "我对处理结果有异议，请联系我" },
    { "11211", "unparsed", "0", "11211" },
    { "13800138000", "unparsed", "0", "13800138000" },
    { "0000", "unparsed", "0", "0000" },
    { "1124", "unparsed", "0", "1124" },
    { "5", "unparsed", "0", "5" },
    { "2026年11月", "unparsed", "0", "2026年11月" },
    { "👍👍👍", "unparsed", "0", "👍👍👍" },
    { "?", "unparsed", "0", "?" },
    { "", "unparsed", "0", "" },
    { "   ", "unparsed", "0", "" },
    { "好", "unparsed", "0", "好" },
    { "收到", "unparsed", "0", "收到" },
    { "ok", "unparsed", "0", "ok" },
    { "建议取消收费", "unparsed", "0", "建议取消收费" },
    { "not bad", "unparsed", "0", "not bad" },
    { "\xff\xfe garbage", "unparsed", "0", "\xff\xfe garbage" },
    /* opt-out wins, with or without ratings */
    { "TD", "optout", "0", "" },
    { "td", "optout", "0", "" },
    { "ＴＤ", "optout", "0", "" },
    { " T ", "optout", "0", "" },
    { "N", "optout", "0", "" },
    { "r", "optout", "0", "" },
    { "退订", "optout", "0", "" },
    { "【退订】", "optout", "0", "" },
    { "退订！", "optout", "0", "" },
    { "STOP", "optout", "0", "" },
    { "Stop.", "optout", "0", "" },
    { "取消", "optout", "0", "" },
    { "1121 TD", "optout", "0", "" },
    { "1121TD", "optout", "0", "" },
    { "满意，退订", "optout", "0", "" },
    { "回复TD退订", "optout", "0", "" },
    { "'T'", "optout", "0", "" },
    { "1111，t", "optout", "0", "" },
    /* opt back in */
    { "订阅", "optin", "0", "" },
    { " 订阅。", "optin", "0", "" },
};

static void test_table(void)
{
    reply_opts o;
    reply_opts_default(&o);
    size_t n = sizeof table / sizeof table[0];
    CHECK(n >= 60);
    for (size_t i = 0; i < n; i++) {
        reply_verdict v;
        CHECK_INT(reply_parse(table[i].in, strlen(table[i].in), &o, &v), 0);
        char got[8] = "0";
        if (v.ratings[0]) {
            for (int k = 0; k < REPLY_ASPECTS; k++)
                got[k] = (char)('0' + v.ratings[k]);
            got[REPLY_ASPECTS] = '\0';
        }
        int ok = strcmp(reply_status_name(v.status), table[i].status) == 0 &&
                 strcmp(got, table[i].ratings) == 0 &&
                 strcmp(v.suggestion, table[i].suggestion) == 0;
        if (!ok)
            fprintf(stderr, "row %zu \"%s\": got %s %s \"%s\", expected %s %s \"%s\"\n", i,
                    table[i].in, reply_status_name(v.status), got, v.suggestion,
                    table[i].status, table[i].ratings, table[i].suggestion);
        CHECK(ok);
        reply_verdict_clear(&v);
    }
}

/* A five-point scale from the configuration: digits 1..5 and its labels. */
static void test_custom_scale(void)
{
    reply_opts o;
    memset(&o, 0, sizeof o);
    o.labels[0] = "非常满意"; o.labels[1] = "满意"; o.labels[2] = "一般";
    o.labels[3] = "不满意"; o.labels[4] = "非常不满意";
    o.nlabels = 5;
    o.optin_keyword = "KT";
    reply_verdict v;
    reply_parse("5415", 4, &o, &v);
    CHECK_STR(reply_status_name(v.status), "parsed");
    CHECK_INT(v.ratings[0], 5); CHECK_INT(v.ratings[1], 4); CHECK_INT(v.ratings[3], 5);
    reply_verdict_clear(&v);
    reply_parse("满意", strlen("满意"), &o, &v);      /* label 2 on this scale */
    CHECK_INT(v.ratings[2], 2);
    reply_verdict_clear(&v);
    reply_parse("6", 1, &o, &v);
    CHECK_STR(reply_status_name(v.status), "unparsed");
    reply_verdict_clear(&v);
    reply_parse("kt", 2, &o, &v);
    CHECK_STR(reply_status_name(v.status), "optin");
    reply_verdict_clear(&v);
    reply_parse("订阅", strlen("订阅"), &o, &v);     /* not this scale's keyword */
    CHECK_STR(reply_status_name(v.status), "unparsed");
    reply_verdict_clear(&v);
}

int main(void)
{
    test_table();
    test_custom_scale();
    return TEST_REPORT();
}
