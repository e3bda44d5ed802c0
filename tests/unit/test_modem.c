/* test_modem.c -- unit tests for the modem simulator's PDU coder
 * (tests/emulators/modem_pdu.h): bytes in, fields out, no modem. The
 * expected PDUs are published examples or were captured from libgammu 1.42
 * writing to the simulator. */
#include "tests/unit/test.h"
#include "tests/emulators/modem_pdu.h"

static int decode_hex(const char *hex, pdu_submit *s, char *err)
{
    uint8_t b[PDU_MAX_OCTETS];
    int n = pdu_from_hex(hex, strlen(hex), b, (int)sizeof b);
    if (n < 0)
        return -2;
    return pdu_decode_submit(b, n, s, err, 128);
}

static void test_submit_gsm7(void)
{
    /* the classic "hellohello" SMS-SUBMIT: no SMSC, relative validity */
    pdu_submit s;
    char err[128] = "";
    CHECK_INT(decode_hex("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", &s, err), 0);
    CHECK_STR(s.to, "+46708251358");
    CHECK_STR(s.coding, "gsm7");
    CHECK_STR(s.text, "hellohello");
    CHECK_INT(s.srr, 0);
    CHECK_INT(s.vpf, 2);
    CHECK_INT(s.concat_total, -1);
    CHECK_INT(s.tpdu_len, 23);
}

static void test_submit_ucs2_concat(void)
{
    /* part 2 of 2 as libgammu wrote it: SMSC, TP-SRR, 8-bit UDH ref 0x0F */
    pdu_submit s;
    char err[128] = "";
    CHECK_INT(decode_hex("0891683108100005F071000D91683109000000F1000800220500030F02028BBC"
                         "67435229548C4E4952A1FF0C8BF760A88BA4771F96058BFB3002", &s, err), 0);
    CHECK_STR(s.smsc, "+8613800100500");
    CHECK_STR(s.to, "+8613900000001");
    CHECK_STR(s.coding, "ucs2");
    CHECK_INT(s.srr, 1);
    CHECK_INT(s.concat_bits, 8);
    CHECK_INT(s.concat_ref, 15);
    CHECK_INT(s.concat_total, 2);
    CHECK_INT(s.concat_seq, 2);
    CHECK_STR(s.text, "讼权利和义务，请您认真阅读。");
    CHECK_INT(s.tpdu_len, 49);
}

static void test_submit_errors(void)
{
    pdu_submit s;
    char err[128] = "";
    CHECK_INT(decode_hex("0011000B916407281553F80000AA0AE8329BFD4697D9EC3", &s, err), -2);
    /* a DELIVER is not a SUBMIT */
    CHECK_INT(decode_hex("0004000B916407281553F80000AA0AE8329BFD4697D9EC37", &s, err), -1);
    CHECK_HAS(err, "not an SMS-SUBMIT");
    /* cut inside the address */
    CHECK_INT(decode_hex("0011000B9164", &s, err), -1);
    CHECK_HAS(err, "TP-DA");
    /* UDL claims more septets than there are octets */
    CHECK_INT(decode_hex("0011000B916407281553F80000AA1EE8329BFD4697D9EC37", &s, err), -1);
    CHECK_HAS(err, "TP-UDL");
}

static void test_gsm7_roundtrip(void)
{
    uint8_t sept[200], packed[200];
    char out[400];
    const char *t = "Price: 5€ {ok} [x] ~^|\\ @£$";
    int n = pdu_gsm7_septets(t, sept, 200);
    CHECK_INT(n, 27 + 9);                   /* 9 extension characters take 2 each */
    int o = pdu_gsm7_pack(sept, n, 0, packed);
    CHECK_INT(o, (n * 7 + 7) / 8);
    pdu_gsm7_decode(packed, o, 0, n, out, sizeof out);
    CHECK_STR(out, t);
    /* after a 6-octet UDH the septets start at bit 49 */
    o = pdu_gsm7_pack(sept, n, 49, packed);
    pdu_gsm7_decode(packed, o, 49, n, out, sizeof out);
    CHECK_STR(out, t);
    CHECK_INT(pdu_gsm7_septets("检", sept, 200), -1);
}

static void test_build_deliver(void)
{
    uint8_t b[PDU_MAX_OCTETS];
    char hex[2 * PDU_MAX_OCTETS + 1];
    int tl = 0;
    int n = pdu_build_deliver("+8613800100500", "+8613900000006", "你好", 1, 0, 1, 1, b, &tl);
    pdu_to_hex(b, n, hex);
    CHECK_STR(hex, "0891683108100005F0040D91683109000000F60008621172401110230"
                   "44F60597D");
    CHECK_INT(tl, n - 9);
    /* part 2 of 3, GSM 7-bit: UDH 050003 ref total seq, then fill bit */
    n = pdu_build_deliver("+8613800100500", "10086", "abc", 0, 0x42, 3, 2, b, &tl);
    CHECK(n > 0);
    pdu_to_hex(b, n, hex);
    CHECK_HAS(hex, "0891683108100005F04405810180F60000");
    CHECK_HAS(hex, "0A050003420302C2E231");
    /* 71 Chinese characters do not fit one part */
    char big[71 * 3 + 1] = "";
    for (int i = 0; i < 71; i++)
        strcat(big, "检");
    CHECK_INT(pdu_build_deliver("+8613800100500", "10086", big, 1, 0, 1, 1, b, &tl), -1);
}

static void test_status_report(void)
{
    uint8_t b[PDU_MAX_OCTETS];
    char hex[2 * PDU_MAX_OCTETS + 1];
    int tl = 0;
    int n = pdu_build_status_report("+8613800100500", 2, "+8613900000001", 0x46, b, &tl);
    pdu_to_hex(b, n, hex);
    CHECK_STR(hex, "0891683108100005F006020D91683109000000F1"
                   "62117240111023" "62117240115023" "46");
    CHECK_INT(tl, 26);
}

static void test_json_escape(void)
{
    char out[64];
    pdu_json_escape("a\"b\\c\n检", out, sizeof out);
    CHECK_STR(out, "a\\\"b\\\\c\\u000a检");
}

int main(void)
{
    test_submit_gsm7();
    test_submit_ucs2_concat();
    test_submit_errors();
    test_gsm7_roundtrip();
    test_build_deliver();
    test_status_report();
    test_json_escape();
    return TEST_REPORT();
}
