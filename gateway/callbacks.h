/* callbacks.h -- what providers post to POST /v1/inbound/{route}, read
 * without I/O: bytes in, items out. gateway/api.c authenticates the
 * request, calls one of these, then stores the replies (Redis), counts the
 * reports and answers in the provider's own format;
 * tests/fuzz/fuzz_callback.c feeds them any bytes.
 *
 * Formats (docs/api.md, "Provider callbacks"):
 *   aliyun   Alibaba Cloud message push, HTTP batch mode: a JSON array of
 *            SmsUp items {phone_number, content, ...} (replies) or SmsReport
 *            items {phone_number, success, err_code, biz_id, ...} (reports).
 *   tencent  Tencent Cloud SMS: a JSON array of status reports {mobile,
 *            nationcode, report_status SUCCESS|FAIL, errmsg, sid, ...}, or
 *            one reply object {mobile, nationcode, text, ...}.
 *   generic  {"from": ..., "text": ..., "to": ...} as JSON, or the same
 *            fields form-encoded.
 *   mm7      an MM7 DeliveryReportReq (SOAP).
 */
#ifndef HERALD_CALLBACKS_H
#define HERALD_CALLBACKS_H

#include <stddef.h>
#include "gateway/phone.h"

typedef enum { API_CB_REPLY, API_CB_REPORT, API_CB_SKIP } api_cb_kind;

/* One element of a callback body. Strings are malloc'd copies (NULL when
 * the provider left the field out or sent a non-string); owned by the
 * api_cb_parsed that holds the item. */
typedef struct api_cb_item {
    api_cb_kind kind;
    size_t index;                 /* position in the provider's array */
    char *phone;                  /* REPLY: the sender as sent; REPORT: the recipient */
    char *text;                   /* REPLY: the message */
    char *ref;                    /* REPORT: the provider's message id */
    char *code;                   /* REPORT: the provider's status or error text */
    int delivered;                /* REPORT: 1 delivered, 0 failed */
    char why[120];                /* SKIP: why the item is left out */
} api_cb_item;

typedef struct api_cb_parsed {
    int status;                   /* 0 read; else the HTTP status refusing the body */
    const char *code;             /* a refusal's error code: bad_request, bad_json, invalid */
    char *field;                  /* a refusal's field (malloc'd), or NULL */
    char err[300];                /* a refusal's reason, one line */
    int single;                   /* tencent: one reply object, not a report array */
    size_t n;
    api_cb_item *items;
} api_cb_parsed;

/* Each reads body[0..len) (any bytes; JSON nested deeper than max_depth is
 * refused before parsing) into *out, which the caller frees with
 * api_cb_parsed_free() whatever the result. Returns 0 (out->status 0), or
 * -1 with out->status, out->code and out->err saying why the whole body is
 * refused; -2 out of memory. */
int api_cb_parse_aliyun(const char *body, size_t len, int max_depth, api_cb_parsed *out);
int api_cb_parse_tencent(const char *body, size_t len, int max_depth, api_cb_parsed *out);
int api_cb_parse_generic(const char *body, size_t len, int is_form, int max_depth, api_cb_parsed *out);
void api_cb_parsed_free(api_cb_parsed *p);

/* The checks a received message passes before it is stored: a sender that
 * normalises (international numbers allowed) and UTF-8 text. Returns 0
 * with the canonical number in num, or 1 with the field ("from", "text")
 * and the reason in why. */
int api_cb_check_inbound(const char *from, const char *text, char num[PHONE_MAX],
                         const char **field, char *why, size_t whylen);

/* An MM7 DeliveryReportReq as the callback reads it (flat XML, any
 * namespace prefix; body is NUL-terminated). */
typedef struct api_cb_mm7 {
    char tid[128];                /* TransactionID, with < > & " made '_' (echoed into XML) */
    char message_id[128];
    char status[64];              /* MMStatus */
    char number[64];              /* the Recipient's Number */
} api_cb_mm7;

/* Returns 0 a report; -1 not a DeliveryReportReq; -2 a DeliveryReportReq
 * without MessageID or MMStatus. out->tid is filled in every case. */
int api_cb_parse_mm7(const char *body, api_cb_mm7 *out);

/* The text of the first element `name` (any namespace prefix) at or after
 * `from`, cut to outlen - 1 bytes; a pointer just past that text, or NULL
 * (out "") when absent. */
const char *api_cb_xml_text(const char *from, const char *name, char *out, size_t outlen);

#endif
