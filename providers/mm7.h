/* mm7.h -- the MM7 (3GPP TS 23.140) pieces the driver is made of, pure
 * functions with byte-level tests, and the delivery-report handler.
 *
 * mm7.c's prov_mm7 table is the driver; the functions below are what it
 * builds and parses with, exported so the unit tests, the CLI (`herald
 * bulletin dlr`) and, later, the HTTP API can use them. None does I/O. */
#ifndef HERALD_MM7_H
#define HERALD_MM7_H

#include <stddef.h>
#include "providers/provider.h"

#define MM7_DEFAULT_NS "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
#define MM7_DEFAULT_VERSION "6.8.0"
#define MM7_FIELD_MAX 128

typedef struct mm7_submit {
    const char *transaction_id;
    const char *ns;               /* MM7 namespace (REL-6-MM7-1-4 by default) */
    const char *version;          /* MM7Version */
    const char *vaspid, *vasid, *service_code, *sender;
    const char *const *to;        /* recipients, canonical numbers */
    int nto;
    const char *subject;
    int delivery_report;          /* 1: DeliveryReport true */
    const char *content_type;     /* of the MMS content (multipart/related) */
    const char *content;
    size_t content_len;
} mm7_submit;

/* Builds a SubmitReq as SOAP 1.1 with attachments: a multipart/related
 * body whose first part is the envelope (Content-ID <mm7-envelope>) and
 * whose second is the content (Content-ID <mm7-content>, referenced by
 * <Content href="cid:mm7-content"/>). *body is malloc'd; ctype gets the
 * HTTP Content-Type (multipart/related; boundary; type="text/xml";
 * start="<mm7-envelope>"). Returns 0 or -1 with err. */
int mm7_build_submit(const mm7_submit *s, char **body, size_t *len,
                     char *ctype, size_t ctlen, char *err, size_t errlen);

typedef struct mm7_rsp {
    int status_code;              /* 1000 success; 0 when none was found */
    char status_text[MM7_FIELD_MAX];
    char message_id[MM7_FIELD_MAX];
    char transaction_id[MM7_FIELD_MAX];
    int fault;                    /* 1: a SOAP Fault */
    char fault_string[MM7_FIELD_MAX];
} mm7_rsp;

/* Parses a SubmitRsp, a SOAP Fault (with RSErrorRsp or a Status in its
 * detail) or a bare RSErrorRsp. The body may be text/xml or a
 * multipart/related with the envelope inside. Returns 0 when a status or
 * a fault was found, -1 with err otherwise. */
int mm7_parse_submit_rsp(const char *body, size_t len, mm7_rsp *out, char *err, size_t errlen);

/* What a status code means (docs/providers.md has the table):
 * 1000/1100 PROV_OK; 2000-2999 PROV_PERMANENT; 3000 PROV_TRANSIENT, the
 * rest of 3001-3999 PROV_PERMANENT; 4000, 4005, 4006 transient (4006
 * PROV_THROTTLED), the rest of 4001-4999 PROV_PERMANENT; any other code
 * PROV_TRANSIENT. */
prov_status mm7_classify(int status_code);

typedef struct mm7_dlr {
    char transaction_id[MM7_FIELD_MAX];
    char message_id[MM7_FIELD_MAX];
    char recipient[MM7_FIELD_MAX];
    char sender[MM7_FIELD_MAX];
    char date[MM7_FIELD_MAX];
    char mm_status[32];           /* Retrieved, Expired, Rejected, ... */
    char status_text[MM7_FIELD_MAX];
} mm7_dlr;

/* Parses a DeliveryReportReq (text/xml or multipart). Returns 0, or -1
 * with err naming the missing element. */
int mm7_parse_delivery_report(const char *body, size_t len, mm7_dlr *out, char *err, size_t errlen);

/* The lower-case recipient status Herald keeps for an MMStatus
 * ("retrieved", "expired", "rejected", "forwarded", "deferred",
 * "indeterminate", "notsupported", "unrecognized", "unreachable"), or NULL
 * for an unknown one. *final is 1 when no later report is expected, *ok 1
 * when the recipient got the message (Retrieved, Forwarded). */
const char *mm7_status_name(const char *mm_status, int *final, int *ok);

/* Builds a DeliveryReportRsp (StatusCode 1000, or `code` with text) with
 * the given TransactionID. *out is malloc'd (text/xml). */
int mm7_build_dlr_rsp(const char *ns, const char *version, const char *transaction_id,
                      int code, const char *text, char **out, size_t *len);

/* The handler the inbound HTTP endpoint calls with a POST body: parses
 * the DeliveryReportReq into *dlr and builds the answer (*rsp, malloc'd,
 * text/xml; *http_status 200, or 400 with a Fault-free RSErrorRsp-style
 * DeliveryReportRsp carrying 4004 when the request cannot be parsed).
 * Returns 0 when *dlr is usable; -1 (with err) when it is not, in which
 * case *rsp still holds an answer to send. The caller updates the
 * recipient's status (gateway/bulletin.c: bulletin_apply_dlr). */
int mm7_handle_delivery_report(const char *body, size_t len, const char *ns, const char *version,
                               mm7_dlr *dlr, char **rsp, size_t *rsplen, int *http_status,
                               char *err, size_t errlen);

#endif
