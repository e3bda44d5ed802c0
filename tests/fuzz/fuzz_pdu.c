/* fuzz_pdu.c -- what a modem's inbox gives the gammu driver, from any
 * bytes. Herald leaves PDU decoding to libgammu (GSM_DecodePDUFrame for
 * the AT driver's +CMGL lines, the smsbackup reader for the dummy phone);
 * what it does itself is the post-processing in providers/gammu.c
 * (gammu_rx.h): UCS-2 text to UTF-8, the sender normalised, the SMSC
 * timestamp to milliseconds, the concatenation part and key from the UDH,
 * the identity of a copy, and for a status report its reference and TP-ST.
 *
 * Byte 0 picks the input: bit 0-1 = 0 a PDU with the SMSC in front, 1 a
 * PDU without it (both through libgammu's decoder, then Herald's), 2-3 a
 * GSM_SMSMessage filled from the bytes directly (any UDH numbers, dates,
 * status and UCS-2 units libgammu's smsbackup reader might hand over).
 * An SMS-DELIVER gives text, a sender, a part within its count and an
 * identity; a status report a verdict and its TP-ST. */
#include "tests/fuzz/fuzz.h"
#include "providers/gammu_rx.h"
#include "templates/mms.h"

static int rd(const uint8_t **p, size_t *n)
{
    if (*n == 0)
        return 0;
    (*n)--;
    return *(*p)++;
}

static int rd32(const uint8_t **p, size_t *n)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v |= (unsigned)rd(p, n) << (8 * i);
    return (int)v;
}

/* Copies up to max UCS-2 units (big-endian pairs, as libgammu keeps them)
 * from the input into dst and terminates them. */
static void rd_units(const uint8_t **p, size_t *n, unsigned char *dst, size_t max)
{
    size_t units = 0;
    while (units < max && *n >= 2) {
        dst[2 * units] = (unsigned char)rd(p, n);
        dst[2 * units + 1] = (unsigned char)rd(p, n);
        if (!dst[2 * units] && !dst[2 * units + 1])
            break;
        units++;
    }
    dst[2 * units] = dst[2 * units + 1] = 0;
}

static void fill(GSM_SMSMessage *s, const uint8_t *p, size_t n)
{
    static const GSM_UDH types[] = { UDH_NoUDH, UDH_ConcatenatedMessages, UDH_ConcatenatedMessages16bit,
                                     UDH_UserUDH };
    static const GSM_Coding_Type codings[] = { SMS_Coding_Default_No_Compression, SMS_Coding_Unicode_No_Compression,
                                               SMS_Coding_8bit, SMS_Coding_Unicode_Compression };
    int sel = rd(&p, &n);
    s->PDU = (sel & 1) ? SMS_Status_Report : SMS_Deliver;
    s->UDH.Type = types[(sel >> 1) & 3];
    s->Coding = codings[(sel >> 3) & 3];
    s->UDH.AllParts = rd(&p, &n);
    s->UDH.PartNumber = rd(&p, &n);
    s->UDH.ID8bit = (sel & 0x20) ? -1 : rd(&p, &n);
    s->UDH.ID16bit = (sel & 0x40) ? rd(&p, &n) | rd(&p, &n) << 8 : -1;
    s->DeliveryStatus = rd(&p, &n);
    s->MessageReference = rd(&p, &n);
    s->DateTime.Year = rd32(&p, &n);
    s->DateTime.Month = rd(&p, &n);
    s->DateTime.Day = rd(&p, &n);
    s->DateTime.Hour = rd(&p, &n);
    s->DateTime.Minute = rd(&p, &n);
    s->DateTime.Second = rd(&p, &n);
    s->DateTime.Timezone = rd32(&p, &n);
    rd_units(&p, &n, s->Number, GSM_MAX_NUMBER_LENGTH);
    rd_units(&p, &n, s->Text, GSM_MAX_SMS_LENGTH);
}

/* libgammu 1.42's GSM_DecodePDUFrame trusts the lengths inside a PDU and
 * smashes its own stack on these (found by this harness): an SMSC address
 * longer than 12 octets; a DELIVER or SUBMIT whose TP-UDL passes 160
 * septets (140 octets when not GSM 7-bit); a STATUS-REPORT whose optional
 * TP-PI announces such a TP-UDL. The bug is in libgammu, where Herald
 * cannot reach (its AT driver decodes +CMGL itself): such PDUs, and
 * addresses longer than 20 digits, are left out so that the fuzzer
 * explores the rest. Returns 1 for one of them. */
static int beyond_libgammu(const uint8_t *p, size_t n, int smsc)
{
    size_t i = 0;
    if (smsc) {
        if (n < 1)
            return 0;
        if (p[0] > 12)
            return 1;                          /* SMSC address longer than 12 octets */
        i = 1 + (size_t)p[0];
    }
    if (i >= n)
        return 0;
    int mti = p[i] & 3, fo = p[i];
    i++;
    if (mti == 2) {                            /* a status report: optional user data */
        if (i + 1 >= n)
            return 0;
        if (p[i + 1] > 20)
            return 1;                          /* TP-RA longer than 20 digits */
        i += 1 + 2 + ((size_t)p[i + 1] + 1) / 2 + 7 + 7 + 1;   /* MR, RA, SCTS, DT, ST */
        if (i >= n)
            return 0;
        int pi = p[i++], dcs = 0;
        if (pi & 1)
            i++;                               /* TP-PID */
        if (pi & 2) {
            if (i >= n)
                return 0;
            dcs = p[i++];
        }
        return (pi & 4) && i < n && p[i] > (dcs == 0 ? 160 : 140);
    }
    if (mti == 1)
        i++;                                   /* TP-MR */
    else if (mti != 0)
        return 0;
    if (i + 1 >= n)
        return 0;
    if (p[i] > 20)
        return 1;                              /* TP-OA / TP-DA longer than 20 digits */
    i += 2 + ((size_t)p[i] + 1) / 2;           /* TP-OA / TP-DA */
    if (i + 1 >= n)
        return 0;
    int dcs = p[i + 1];
    i += 2;                                    /* TP-PID, TP-DCS */
    if (mti == 0)
        i += 7;                                /* TP-SCTS */
    else if (((fo >> 3) & 3) == 2)
        i += 1;                                /* TP-VP relative */
    else if (((fo >> 3) & 3) != 0)
        i += 7;                                /* TP-VP enhanced or absolute */
    if (i >= n)
        return 0;
    return p[i] > (dcs == 0 ? 160 : 140);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    GSM_SMSMessage *s = calloc(1, sizeof *s);
    FUZZ_ASSERT(s != NULL);
    int mode = data[0] & 3;
    if (mode < 2) {
        /* libgammu (1.42) reads a byte or more past a PDU cut short (a
         * status report without its TP-ST: final_pos = length + 1): its
         * problem, not Herald's, so the copy it reads has zeros after it */
        if (beyond_libgammu(data + 1, size - 1, mode == 0)) {
            free(s);
            return 0;
        }
        size_t pos = 0;
        unsigned char *pdu = calloc(1, size - 1 + 512);
        FUZZ_ASSERT(pdu != NULL);
        memcpy(pdu, data + 1, size - 1);
        GSM_Error e = GSM_DecodePDUFrame(GSM_GetGlobalDebug(), s, pdu, size - 1, &pos, mode == 0);
        free(pdu);
        if (e != ERR_NONE) {
            free(s);
            return 0;
        }
    } else {
        fill(s, data + 1, size - 1);
    }
    const long long now = 1796100000000LL;
    inbound_item it;
    memset(&it, 0, sizeof it);
    if (s->PDU == SMS_Status_Report) {
        if (gammu_rx_report(&it, s, now) == 0) {
            FUZZ_ASSERT(it.is_report && it.to != NULL);
            FUZZ_ASSERT(it.delivered >= -1 && it.delivered <= 1);
            FUZZ_ASSERT(strncmp(it.detail, "TP-ST 0x", 8) == 0);
            FUZZ_ASSERT(mms_utf8_valid(it.to, strlen(it.to)));
        }
    } else if (s->PDU == SMS_Deliver) {
        if (gammu_rx_message(&it, s, now) == 0) {
            FUZZ_ASSERT(it.text && it.from && it.identity && it.concat_key);
            FUZZ_ASSERT(it.part >= 1 && it.part <= it.nparts_msg);
            /* the identity is whole: sender first, the text last */
            size_t il = strlen(it.identity), tl = strlen(it.text);
            FUZZ_ASSERT(strncmp(it.identity, it.from, strlen(it.from)) == 0);
            FUZZ_ASSERT(il >= tl && strcmp(it.identity + il - tl, it.text) == 0);
            FUZZ_ASSERT(mms_utf8_valid(it.text, strlen(it.text)));
            FUZZ_ASSERT(mms_utf8_valid(it.from, strlen(it.from)));
        }
    }
    gammu_rx_clear(&it);
    free(s);
    return 0;
}
