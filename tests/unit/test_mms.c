/* test_mms.c -- unit tests for templates/mms.c (image probing, SMIL and
 * multipart composition, size budget) and providers/mm7.c's pure parts
 * (SubmitReq building, SubmitRsp / Fault / RSErrorRsp parsing, status
 * classification, DeliveryReportReq handling). Bytes in, bytes out. */
#include "tests/unit/test.h"
#include "templates/mms.h"
#include "providers/mm7.h"

#include <stdlib.h>

/* A 1x1... JPEG header: SOI, APP0 (skipped), SOF0 with 48 high, 64 wide. */
static const unsigned char jpeg[] = {
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x06, 'J', 'F', 'I', 'F',
    0xFF, 0xC4, 0x00, 0x03, 0x00,                                  /* a DHT: not a SOF */
    0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x30, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00,
    0xFF, 0xD9
};
static const unsigned char png[] = {
    0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
    0, 0, 0x01, 0x40, 0, 0, 0x00, 0xF0, 8, 2, 0, 0, 0
};
static const unsigned char gif[] = { 'G', 'I', 'F', '8', '9', 'a', 0x10, 0x00, 0x08, 0x00, 0, 0, 0 };

static void test_probe(void)
{
    mms_img_type t;
    int w, h;
    char err[200];
    CHECK_INT(mms_image_probe(jpeg, sizeof jpeg, &t, &w, &h, err, sizeof err), 0);
    CHECK_INT(t, MMS_IMG_JPEG);
    CHECK_INT(w, 64);
    CHECK_INT(h, 48);
    CHECK_INT(mms_image_probe(png, sizeof png, &t, &w, &h, err, sizeof err), 0);
    CHECK_INT(t, MMS_IMG_PNG);
    CHECK_INT(w, 320);
    CHECK_INT(h, 240);
    CHECK_INT(mms_image_probe(gif, sizeof gif, &t, &w, &h, err, sizeof err), 0);
    CHECK_INT(t, MMS_IMG_GIF);
    CHECK_INT(w, 16);
    CHECK_INT(h, 8);
    CHECK_STR(mms_img_mime(MMS_IMG_PNG), "image/png");

    const unsigned char bmp[] = { 'B', 'M', 0, 0, 0, 0 };
    CHECK_INT(mms_image_probe(bmp, sizeof bmp, &t, &w, &h, err, sizeof err), -1);
    CHECK_HAS(err, "not a JPEG, PNG or GIF");
    CHECK_INT(mms_image_probe(png, 20, &t, &w, &h, err, sizeof err), -1);
    CHECK_HAS(err, "PNG truncated");
    /* a JPEG whose scan starts before any frame header */
    const unsigned char nosof[] = { 0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x00 };
    CHECK_INT(mms_image_probe(nosof, sizeof nosof, &t, &w, &h, err, sizeof err), -1);
    CHECK_HAS(err, "without a frame header");
    CHECK_INT(mms_image_probe(jpeg, 12, &t, &w, &h, err, sizeof err), -1);
}

static void test_utf8(void)
{
    CHECK(mms_utf8_valid("检察 ok", strlen("检察 ok")));
    CHECK(mms_utf8_valid("😀", 4));
    CHECK(!mms_utf8_valid("\xC0\xAF", 2));          /* overlong '/' */
    CHECK(!mms_utf8_valid("\xED\xA0\x80", 3));      /* a surrogate */
    CHECK(!mms_utf8_valid("\xE6\xA3", 2));          /* truncated */
    CHECK(!mms_utf8_valid("\xB0\xEC", 2));          /* GBK bytes */
}

/* Counts occurrences of needle in [h, h+len). */
static int count(const char *h, size_t len, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = h; (p = memmem(p, len - (size_t)(p - h), needle, nl)); p += nl)
        n++;
    return n;
}

static void test_compose(void)
{
    const char *t1 = "本院召开检察开放日活动。";
    const char *t2 = "图为活动现场。";
    mms_issue is = { .subject = "第38期", .nslides = 3 };
    is.slides[0] = (mms_slide){ .text = t1, .text_len = strlen(t1) };
    is.slides[1] = (mms_slide){ .text = t2, .text_len = strlen(t2), .image = jpeg,
                                .image_len = sizeof jpeg, .image_name = "02.jpg", .dur_s = 5 };
    is.slides[2] = (mms_slide){ .image = png, .image_len = sizeof png, .image_name = "03.png" };
    mms_composed c;
    char err[1024];
    CHECK_INT(mms_compose(&is, "t", &c, err, sizeof err), 0);
    CHECK_INT(c.nparts, 5);
    CHECK_STR(c.parts[0].cid, "smil");
    CHECK_STR(c.parts[1].cid, "s1.txt");
    CHECK_STR(c.parts[2].cid, "s2.jpg");
    CHECK_INT(c.parts[2].width, 64);
    CHECK_STR(c.parts[3].cid, "s2.txt");
    CHECK_STR(c.parts[4].cid, "s3.png");
    CHECK_STR(c.parts[4].type, "image/png");
    CHECK_HAS(c.content_type, "multipart/related; type=\"application/smil\"; start=\"<smil>\"; boundary=\"=_herald_mms_t_0\"");
    /* one par per slide, with its duration; image above (region Image), text below */
    CHECK_INT(count(c.smil, strlen(c.smil), "<par dur="), 3);
    CHECK_HAS(c.smil, "<par dur=\"5s\">\r\n<img src=\"cid:s2.jpg\" region=\"Image\"/>\r\n<text src=\"cid:s2.txt\" region=\"Text\"/>");
    CHECK_HAS(c.smil, "<par dur=\"8s\">\r\n<text src=\"cid:s1.txt\"");
    CHECK_HAS(c.smil, "<region id=\"Image\" top=\"0\"");
    CHECK_HAS(c.smil, "<region id=\"Text\" top=\"60%\"");
    /* every cid: in the SMIL names a part and every part is named once */
    for (int i = 1; i < c.nparts; i++) {
        char ref[64], hdr[80];
        snprintf(ref, sizeof ref, "cid:%s\"", c.parts[i].cid);
        snprintf(hdr, sizeof hdr, "Content-ID: <%s>\r\n", c.parts[i].cid);
        CHECK_INT(count(c.smil, strlen(c.smil), ref), 1);
        CHECK_INT(count(c.body, c.len, hdr), 1);
    }
    CHECK_INT(count(c.smil, strlen(c.smil), "cid:"), c.nparts - 1);
    /* parts byte for byte, text as UTF-8 */
    CHECK(memmem(c.body, c.len, jpeg, sizeof jpeg) != NULL);
    CHECK(memmem(c.body, c.len, png, sizeof png) != NULL);
    CHECK_HAS(c.body, "Content-Type: text/plain; charset=utf-8\r\nContent-ID: <s1.txt>");
    CHECK_INT(count(c.body, c.len, "--=_herald_mms_t_0\r\n"), 5);
    CHECK_INT(count(c.body, c.len, "--=_herald_mms_t_0--\r\n"), 1);
    CHECK(c.len > c.parts[0].size + sizeof jpeg + sizeof png + strlen(t1) + strlen(t2));

    /* the budget: fits, and over it every part's size is named */
    CHECK_INT(mms_check_budget(&c, 300 * 1024, err, sizeof err), 0);
    CHECK_INT(mms_check_budget(&c, 100, err, sizeof err), -1);
    CHECK_HAS(err, "over the budget of 100 bytes");
    char want[64];
    snprintf(want, sizeof want, "s2.jpg (02.jpg) %zu bytes", sizeof jpeg);
    CHECK_HAS(err, want);
    snprintf(want, sizeof want, "s1.txt %zu bytes", strlen(t1));
    CHECK_HAS(err, want);
    snprintf(want, sizeof want, "smil (layout.smil) %zu bytes", c.parts[0].size);
    CHECK_HAS(err, want);
    mms_composed_free(&c);
    mms_composed_free(NULL);
}

static void test_compose_errors(void)
{
    mms_composed c;
    char err[512];
    mms_issue is = { .nslides = 0 };
    CHECK_INT(mms_compose(&is, "t", &c, err, sizeof err), -1);
    CHECK_HAS(err, "no slides");
    is.nslides = 1;
    is.slides[0] = (mms_slide){ 0 };
    CHECK_INT(mms_compose(&is, "t", &c, err, sizeof err), -1);
    CHECK_HAS(err, "slide 1 has neither text nor an image");
    is.slides[0] = (mms_slide){ .text = "\xB0\xEC", .text_len = 2 };
    CHECK_INT(mms_compose(&is, "t", &c, err, sizeof err), -1);
    CHECK_HAS(err, "not valid UTF-8");
    const unsigned char junk[] = "not an image";
    is.slides[0] = (mms_slide){ .image = junk, .image_len = sizeof junk, .image_name = "01.jpg" };
    CHECK_INT(mms_compose(&is, "t", &c, err, sizeof err), -1);
    CHECK_HAS(err, "slide 1: 01.jpg: not a JPEG");
    /* a text that contains the first boundary makes the composer pick another */
    const char *sly = "--=_herald_mms_t_0 inside";
    is.slides[0] = (mms_slide){ .text = sly, .text_len = strlen(sly) };
    CHECK_INT(mms_compose(&is, "t", &c, err, sizeof err), 0);
    CHECK_HAS(c.content_type, "boundary=\"=_herald_mms_t_1\"");
    mms_composed_free(&c);
}

/* ---- MM7 ---- */

static void test_submit(void)
{
    const char *to[] = { "13800000001", "13800000002" };
    const char content[] = "--inner\r\nContent-Type: application/smil\r\n\r\n<smil/>\r\n--inner--\r\n";
    mm7_submit s = {
        .transaction_id = "tx-1", .ns = MM7_DEFAULT_NS, .version = "6.8.0", .vaspid = "901234",
        .vasid = "1065", .service_code = "BUL", .sender = "1065012345", .to = to, .nto = 2,
        .subject = "《检察》第1期 <&>", .delivery_report = 1,
        .content_type = "multipart/related; type=\"application/smil\"; start=\"<smil>\"; boundary=\"inner\"",
        .content = content, .content_len = strlen(content),
    };
    char *body, ctype[300], err[256];
    size_t len;
    CHECK_INT(mm7_build_submit(&s, &body, &len, ctype, sizeof ctype, err, sizeof err), 0);
    CHECK_HAS(ctype, "multipart/related; boundary=\"=_herald_mm7_0_tx-1\"; type=\"text/xml\"; start=\"<mm7-envelope>\"");
    CHECK_HAS(body, "--=_herald_mm7_0_tx-1\r\nContent-Type: text/xml; charset=utf-8\r\nContent-ID: <mm7-envelope>\r\n\r\n<?xml");
    CHECK_HAS(body, "env:mustUnderstand=\"1\">tx-1</mm7:TransactionID>");
    CHECK_HAS(body, "<SubmitReq xmlns=\"" MM7_DEFAULT_NS "\">");
    CHECK_HAS(body, "<MM7Version>6.8.0</MM7Version>");
    CHECK_HAS(body, "<VASPID>901234</VASPID>\r\n<VASID>1065</VASID>");
    CHECK_HAS(body, "<SenderAddress><ShortCode>1065012345</ShortCode></SenderAddress>");
    CHECK_HAS(body, "<To>\r\n<Number>13800000001</Number>\r\n<Number>13800000002</Number>\r\n</To>");
    CHECK_HAS(body, "<ServiceCode>BUL</ServiceCode>");
    CHECK_HAS(body, "<DeliveryReport>true</DeliveryReport>");
    CHECK_HAS(body, "<Subject>《检察》第1期 &lt;&amp;&gt;</Subject>");
    CHECK_HAS(body, "<Content href=\"cid:mm7-content\"");
    CHECK_HAS(body, "Content-ID: <mm7-content>\r\n\r\n--inner\r\n");
    CHECK(memmem(body, len, content, strlen(content)) != NULL);
    CHECK_HAS(body, "--=_herald_mm7_0_tx-1--\r\n");
    free(body);
    s.nto = 0;
    CHECK_INT(mm7_build_submit(&s, &body, &len, ctype, sizeof ctype, err, sizeof err), -1);
    CHECK_HAS(err, "without recipients");
}

static void test_rsp(void)
{
    mm7_rsp r;
    char err[256];
    const char ok[] =
        "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">"
        "<soap:Header><mm7:TransactionID xmlns:mm7=\"x\" soap:mustUnderstand=\"1\">tx-1</mm7:TransactionID>"
        "</soap:Header><soap:Body><mm7:SubmitRsp xmlns:mm7=\"x\"><mm7:MM7Version>6.8.0</mm7:MM7Version>"
        "<mm7:Status><mm7:StatusCode>1000</mm7:StatusCode><mm7:StatusText>Success</mm7:StatusText>"
        "</mm7:Status><mm7:MessageID>041502073667&amp;1</mm7:MessageID></mm7:SubmitRsp></soap:Body></soap:Envelope>";
    CHECK_INT(mm7_parse_submit_rsp(ok, strlen(ok), &r, err, sizeof err), 0);
    CHECK_INT(r.status_code, 1000);
    CHECK_STR(r.message_id, "041502073667&1");
    CHECK_STR(r.transaction_id, "tx-1");
    CHECK_INT(r.fault, 0);
    CHECK_INT(mm7_classify(r.status_code), PROV_OK);

    /* unprefixed, default namespace */
    const char ok2[] = "<Envelope><Body><SubmitRsp xmlns=\"x\"><Status><StatusCode> 1000 </StatusCode>"
                       "</Status><MessageID>m2</MessageID></SubmitRsp></Body></Envelope>";
    CHECK_INT(mm7_parse_submit_rsp(ok2, strlen(ok2), &r, err, sizeof err), 0);
    CHECK_STR(r.message_id, "m2");

    const char fault[] =
        "<env:Envelope xmlns:env=\"e\"><env:Body><env:Fault><faultcode>env:Client</faultcode>"
        "<faultstring>Client error</faultstring><detail><RSErrorRsp xmlns=\"x\"><MM7Version>6.8.0</MM7Version>"
        "<Status><StatusCode>2002</StatusCode><StatusText>Address Error</StatusText></Status>"
        "</RSErrorRsp></detail></env:Fault></env:Body></env:Envelope>";
    CHECK_INT(mm7_parse_submit_rsp(fault, strlen(fault), &r, err, sizeof err), 0);
    CHECK_INT(r.fault, 1);
    CHECK_INT(r.status_code, 2002);
    CHECK_STR(r.status_text, "Address Error");
    CHECK_STR(r.fault_string, "Client error");
    CHECK_INT(mm7_classify(r.status_code), PROV_PERMANENT);

    const char bare_fault[] = "<Envelope><Body><Fault><faultcode>Server</faultcode>"
                              "<faultstring>down</faultstring></Fault></Body></Envelope>";
    CHECK_INT(mm7_parse_submit_rsp(bare_fault, strlen(bare_fault), &r, err, sizeof err), 0);
    CHECK_INT(r.status_code, 3000);
    CHECK_INT(mm7_classify(r.status_code), PROV_TRANSIENT);

    const char rserr[] = "<Envelope><Body><RSErrorRsp><Status><StatusCode>4006</StatusCode>"
                         "<StatusText>Service Unavailable</StatusText></Status></RSErrorRsp></Body></Envelope>";
    CHECK_INT(mm7_parse_submit_rsp(rserr, strlen(rserr), &r, err, sizeof err), 0);
    CHECK_INT(r.status_code, 4006);
    CHECK_INT(mm7_classify(r.status_code), PROV_THROTTLED);

    CHECK_INT(mm7_parse_submit_rsp("<html>502</html>", 16, &r, err, sizeof err), -1);
    CHECK_HAS(err, "no SubmitRsp Status");
    const char nomid[] = "<SubmitRsp><Status><StatusCode>1000</StatusCode></Status></SubmitRsp>";
    CHECK_INT(mm7_parse_submit_rsp(nomid, strlen(nomid), &r, err, sizeof err), -1);
    CHECK_HAS(err, "no MessageID");

    CHECK_INT(mm7_classify(1100), PROV_OK);
    CHECK_INT(mm7_classify(2004), PROV_PERMANENT);
    CHECK_INT(mm7_classify(3001), PROV_PERMANENT);
    CHECK_INT(mm7_classify(4000), PROV_TRANSIENT);
    CHECK_INT(mm7_classify(4005), PROV_TRANSIENT);
    CHECK_INT(mm7_classify(4001), PROV_PERMANENT);
    CHECK_INT(mm7_classify(4004), PROV_PERMANENT);
    CHECK_INT(mm7_classify(9999), PROV_TRANSIENT);
}

static void test_dlr(void)
{
    const char req[] =
        "--b\r\nContent-Type: text/xml\r\n\r\n"
        "<env:Envelope xmlns:env=\"e\"><env:Header><mm7:TransactionID xmlns:mm7=\"x\" env:mustUnderstand=\"1\">"
        "dr-7</mm7:TransactionID></env:Header><env:Body><DeliveryReportReq xmlns=\"x\">"
        "<MM7Version>6.8.0</MM7Version><MMSRelayServerID>r</MMSRelayServerID><MessageID>mid-1</MessageID>"
        "<Recipient><Number>+8613800000001</Number></Recipient><Sender><ShortCode>1065</ShortCode></Sender>"
        "<Date>2026-12-01T08:00:00+08:00</Date><MMStatus>Retrieved</MMStatus><StatusText>ok</StatusText>"
        "</DeliveryReportReq></env:Body></env:Envelope>\r\n--b--\r\n";
    mm7_dlr d;
    char *rsp = NULL, err[256];
    size_t rl;
    int http;
    CHECK_INT(mm7_handle_delivery_report(req, strlen(req), NULL, NULL, &d, &rsp, &rl, &http, err, sizeof err), 0);
    CHECK_INT(http, 200);
    CHECK_STR(d.transaction_id, "dr-7");
    CHECK_STR(d.message_id, "mid-1");
    CHECK_STR(d.recipient, "+8613800000001");
    CHECK_STR(d.sender, "1065");
    CHECK_STR(d.mm_status, "Retrieved");
    CHECK_STR(d.date, "2026-12-01T08:00:00+08:00");
    CHECK_HAS(rsp, "mustUnderstand=\"1\">dr-7</mm7:TransactionID>");
    CHECK_HAS(rsp, "<DeliveryReportRsp xmlns=\"" MM7_DEFAULT_NS "\">");
    CHECK_HAS(rsp, "<StatusCode>1000</StatusCode>");
    CHECK_INT(rl, strlen(rsp));
    free(rsp);

    int final, ok;
    CHECK_STR(mm7_status_name("Retrieved", &final, &ok), "retrieved");
    CHECK(final && ok);
    CHECK_STR(mm7_status_name("Expired", &final, &ok), "expired");
    CHECK(final && !ok);
    CHECK_STR(mm7_status_name("Deferred", &final, &ok), "deferred");
    CHECK(!final);
    CHECK(mm7_status_name("Lost", &final, &ok) == NULL);

    const char nostatus[] = "<DeliveryReportReq><MessageID>m</MessageID><Recipient><Number>1</Number>"
                            "</Recipient></DeliveryReportReq>";
    rsp = NULL;
    CHECK_INT(mm7_handle_delivery_report(nostatus, strlen(nostatus), NULL, NULL, &d, &rsp, &rl, &http, err, sizeof err), -1);
    CHECK_INT(http, 400);
    CHECK_HAS(err, "without MMStatus");
    CHECK_HAS(rsp, "<StatusCode>4004</StatusCode>");
    free(rsp);
    const char badstatus[] = "<DeliveryReportReq><MessageID>m</MessageID><Recipient><Number>1</Number>"
                             "</Recipient><MMStatus>Lost</MMStatus></DeliveryReportReq>";
    rsp = NULL;
    CHECK_INT(mm7_handle_delivery_report(badstatus, strlen(badstatus), NULL, NULL, &d, &rsp, &rl, &http, err, sizeof err), -1);
    CHECK_HAS(err, "unknown MMStatus 'Lost'");
    free(rsp);
}

int main(void)
{
    test_probe();
    test_utf8();
    test_compose();
    test_compose_errors();
    test_submit();
    test_rsp();
    test_dlr();
    return TEST_REPORT();
}
