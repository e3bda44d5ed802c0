/* fuzz.h -- shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput(): it feeds the bytes to one
 * parser of Herald's and checks what the parser promises (no crash, no
 * leak, no undefined behaviour under ASan and UBSan, and the invariants
 * named in each harness). `make fuzz` runs each for FUZZ_SECONDS; `make
 * test` runs each for a few seconds from the seed corpus in
 * tests/fuzz/corpus/<name>/. A new tests/fuzz/fuzz_X.c with its seeds in
 * corpus/X/ is built and run by both without further ado.
 *
 * What each covers (the harness's own comment says what it checks):
 *   tpl        the template engine: compile, variables, render
 *   tpldef     a template file (header + body) through the catalog
 *   segment    the part counter (GSM 7-bit / UCS-2, parts, forcing chars)
 *   phone      phone normalisation and masking
 *   replies    the survey reply parser
 *   config     the config loader (libconfig + every schema check)
 *   request    POST /v1/messages bodies (svc_request_from_json), JSON
 *              depth, the form decoder of callbacks and /cgi-bin/sendsms
 *   contacts   POST /v1/contacts bodies, the contacts CSV import, Base64
 *   bulletin   POST /v1/bulletins bodies, then the MMS composed from them
 *   cloud      Alibaba Cloud and Tencent Cloud SendSms answers
 *   http       the generic HTTP driver: answer classifier with id and
 *              error extraction, request builder, Retry-After
 *   mm7        an MMSC's SubmitRsp / Fault, DeliveryReportReq handling
 *   callback   POST /v1/inbound/{route} bodies: aliyun, tencent (JSON),
 *              generic (JSON, form), MM7 DeliveryReportReq (SOAP)
 *   pdu        a modem's inbox: libgammu's PDU decoder, then Herald's
 *              own post-processing (text, sender, date, UDH parts,
 *              identity, status reports)
 *   mms        image probing (JPEG, PNG, GIF) and the UTF-8 check */
#ifndef HERALD_FUZZ_H
#define HERALD_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated copy of the input (parsers that take C strings). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* An invariant broken: crash, so libFuzzer saves the input. */
#define FUZZ_ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
