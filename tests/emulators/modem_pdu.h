/* modem_pdu.h -- SMS PDU coding for the modem simulator (header-only, pure:
 * bytes in, structs or strings out, no I/O). Included by modem_sim.c and by
 * tests/unit/test_modem.c, which feeds it bytes.
 *
 * Decodes what a phone submits (SMS-SUBMIT, 3GPP TS 23.040 9.2.2.2): the
 * recipient, TP-SRR, TP-DCS coding and class, the concatenation UDH (8-bit
 * IEI 00 and 16-bit IEI 08 references) and the text, GSM 7-bit (default
 * alphabet and extension table, TS 23.038) or UCS-2/UTF-16 into UTF-8.
 * Builds what a modem hands to a phone: SMS-DELIVER (single or one part of a
 * concatenated message) and SMS-STATUS-REPORT PDUs, both with the SMSC
 * address in front as AT+CMGL/+CMGR/+CDS show them. */
#ifndef HERALD_MODEM_PDU_H
#define HERALD_MODEM_PDU_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PDU_MAX_OCTETS  200
#define PDU_TEXT_MAX    (160 * 4 + 1)

/* GSM 03.38 default alphabet, UTF-8. 0x1B is the escape to the extension
 * table. */
static const char *const pdu_gsm7[128] = {
    "@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å",
    "Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", "\x1b", "Æ", "æ", "ß", "É",
    " ", "!", "\"", "#", "¤", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?",
    "¡", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
    "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "Ä", "Ö", "Ñ", "Ü", "§",
    "¿", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
    "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "ä", "ö", "ñ", "ü", "à",
};

/* The extension table: code after ESC, and its UTF-8. */
static const struct { uint8_t code; const char *utf8; } pdu_gsm7_ext[] = {
    { 0x0A, "\f" }, { 0x14, "^" }, { 0x28, "{" }, { 0x29, "}" }, { 0x2F, "\\" },
    { 0x3C, "[" }, { 0x3D, "~" }, { 0x3E, "]" }, { 0x40, "|" }, { 0x65, "€" },
};

typedef struct pdu_submit {
    int sca_len;              /* octets of the SMSC field, length octet included */
    char smsc[24];            /* "" when the phone left it to the modem */
    int mr;                   /* TP-MR as the phone wrote it */
    int srr;                  /* TP-SRR: status report requested */
    int vpf;                  /* TP-VPF, 0..3 */
    char to[24];              /* "+8613800138000" or national digits */
    int pid;
    int dcs;
    const char *coding;       /* "gsm7", "8bit", "ucs2" */
    int msg_class;            /* -1 none, else 0..3 */
    int concat_ref, concat_total, concat_seq;   /* -1 without concatenation */
    int concat_bits;          /* 8 or 16, 0 without */
    int udl;                  /* TP-UDL as written */
    int tpdu_len;             /* octets after the SMSC field (AT+CMGS=<len>) */
    char text[PDU_TEXT_MAX];  /* UTF-8 */
} pdu_submit;

static int pdu_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Hex text -> octets. Returns the octet count, or -1 on odd length, a bad
 * digit or more than `max` octets. Whitespace is not allowed. */
static int pdu_from_hex(const char *hex, size_t hexlen, uint8_t *out, int max)
{
    if (hexlen % 2)
        return -1;
    int n = (int)(hexlen / 2);
    if (n > max)
        return -1;
    for (int i = 0; i < n; i++) {
        int h = pdu_hexval((unsigned char)hex[2 * i]), l = pdu_hexval((unsigned char)hex[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return n;
}

/* Octets -> upper-case hex; `out` holds 2n+1. */
static void pdu_to_hex(const uint8_t *in, int n, char *out)
{
    static const char d[] = "0123456789ABCDEF";
    for (int i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Appends one code point as UTF-8 to out (room checked against end). */
static char *pdu_put_utf8(char *o, char *end, uint32_t cp)
{
    char b[4];
    int n;
    if (cp < 0x80) { b[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    if (end - o <= n)
        return o;
    memcpy(o, b, (size_t)n);
    return o + n;
}

/* Next code point of UTF-8 text; advances *s. Bad bytes give U+FFFD. */
static uint32_t pdu_get_utf8(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    uint32_t cp;
    int n;
    if (p[0] < 0x80) { cp = p[0]; n = 1; }
    else if ((p[0] & 0xE0) == 0xC0) { cp = p[0] & 0x1F; n = 2; }
    else if ((p[0] & 0xF0) == 0xE0) { cp = p[0] & 0x0F; n = 3; }
    else if ((p[0] & 0xF8) == 0xF0) { cp = p[0] & 0x07; n = 4; }
    else { *s += 1; return 0xFFFD; }
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) { *s += i; return 0xFFFD; }
        cp = cp << 6 | (p[i] & 0x3F);
    }
    *s += n;
    return cp;
}

/* Semi-octet (BCD) digits of an address; `ndigits` digits from `in`. */
static void pdu_bcd_digits(const uint8_t *in, int ndigits, char *out)
{
    static const char d[] = "0123456789*#abc";
    for (int i = 0; i < ndigits; i++) {
        int v = (i % 2) ? in[i / 2] >> 4 : in[i / 2] & 15;
        *out++ = v == 15 ? '\0' : d[v];
    }
    *out = '\0';
}

/* Unpacks `nsept` septets starting `skip_bits` into `in` and decodes them
 * from the GSM default alphabet to UTF-8. */
static void pdu_gsm7_decode(const uint8_t *in, int inlen, int skip_bits, int nsept,
                            char *out, size_t outsz)
{
    char *o = out, *end = out + outsz;
    int esc = 0;
    for (int i = 0; i < nsept; i++) {
        int bit = skip_bits + i * 7, byte = bit / 8, sh = bit % 8;
        if (byte >= inlen)
            break;
        unsigned v = in[byte] >> sh;
        if (sh > 1 && byte + 1 < inlen)
            v |= (unsigned)in[byte + 1] << (8 - sh);
        v &= 0x7F;
        if (esc) {
            esc = 0;
            const char *u = NULL;
            for (size_t k = 0; k < sizeof pdu_gsm7_ext / sizeof pdu_gsm7_ext[0]; k++)
                if (pdu_gsm7_ext[k].code == v)
                    u = pdu_gsm7_ext[k].utf8;
            if (!u)
                u = pdu_gsm7[v];       /* unknown extension: the base character */
            size_t l = strlen(u);
            if ((size_t)(end - o) > l) { memcpy(o, u, l); o += l; }
        } else if (v == 0x1B) {
            esc = 1;
        } else {
            size_t l = strlen(pdu_gsm7[v]);
            if ((size_t)(end - o) > l) { memcpy(o, pdu_gsm7[v], l); o += l; }
        }
    }
    *o = '\0';
}

/* UTF-8 -> GSM 7-bit septet values (ESC pairs for the extension table).
 * Returns the septet count, or -1 when a character is not in the alphabet
 * or more than `max` septets are needed. */
static int pdu_gsm7_septets(const char *text, uint8_t *sept, int max)
{
    int n = 0;
    while (*text) {
        const char *start = text;
        pdu_get_utf8(&text);
        size_t l = (size_t)(text - start);
        int found = -1, ext = -1;
        for (int k = 0; k < 128 && found < 0; k++)
            if (k != 0x1B && strlen(pdu_gsm7[k]) == l && memcmp(pdu_gsm7[k], start, l) == 0)
                found = k;
        for (size_t k = 0; found < 0 && ext < 0 && k < sizeof pdu_gsm7_ext / sizeof pdu_gsm7_ext[0]; k++)
            if (strlen(pdu_gsm7_ext[k].utf8) == l && memcmp(pdu_gsm7_ext[k].utf8, start, l) == 0)
                ext = pdu_gsm7_ext[k].code;
        if (found < 0 && ext < 0)
            return -1;
        if (n + (ext >= 0 ? 2 : 1) > max)
            return -1;
        if (ext >= 0) {
            sept[n++] = 0x1B;
            sept[n++] = (uint8_t)ext;
        } else {
            sept[n++] = (uint8_t)found;
        }
    }
    return n;
}

/* Packs septets into `out` after `skip_bits` fill bits; returns octets. */
static int pdu_gsm7_pack(const uint8_t *sept, int n, int skip_bits, uint8_t *out)
{
    int total_bits = skip_bits + n * 7, octets = (total_bits + 7) / 8;
    memset(out, 0, (size_t)octets);
    for (int i = 0; i < n; i++) {
        int bit = skip_bits + i * 7, byte = bit / 8, sh = bit % 8;
        out[byte] |= (uint8_t)(sept[i] << sh);
        if (sh > 1)
            out[byte + 1] |= (uint8_t)(sept[i] >> (8 - sh));
    }
    return octets;
}

/* UTF-16BE -> UTF-8 (surrogate pairs joined; a lone one gives U+FFFD). */
static void pdu_ucs2_decode(const uint8_t *in, int len, char *out, size_t outsz)
{
    char *o = out, *end = out + outsz;
    for (int i = 0; i + 1 < len; i += 2) {
        uint32_t u = (uint32_t)in[i] << 8 | in[i + 1];
        if (u >= 0xD800 && u < 0xDC00 && i + 3 < len) {
            uint32_t l = (uint32_t)in[i + 2] << 8 | in[i + 3];
            if (l >= 0xDC00 && l < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
                i += 2;
            } else {
                u = 0xFFFD;
            }
        } else if (u >= 0xD800 && u < 0xE000) {
            u = 0xFFFD;
        }
        o = pdu_put_utf8(o, end, u);
    }
    *o = '\0';
}

/* UTF-8 -> UTF-16BE; returns octets, or -1 beyond `max`. */
static int pdu_ucs2_encode(const char *text, uint8_t *out, int max)
{
    int n = 0;
    while (*text) {
        uint32_t cp = pdu_get_utf8(&text);
        if (cp >= 0x10000) {
            if (n + 4 > max)
                return -1;
            cp -= 0x10000;
            uint32_t hi = 0xD800 + (cp >> 10), lo = 0xDC00 + (cp & 0x3FF);
            out[n++] = (uint8_t)(hi >> 8); out[n++] = (uint8_t)hi;
            out[n++] = (uint8_t)(lo >> 8); out[n++] = (uint8_t)lo;
        } else {
            if (n + 2 > max)
                return -1;
            out[n++] = (uint8_t)(cp >> 8); out[n++] = (uint8_t)cp;
        }
    }
    return n;
}

/* Address field (length in digits or, for the SMSC, in octets). Returns
 * octets consumed or -1. */
static int pdu_read_addr(const uint8_t *p, int avail, int is_smsc, char *out, size_t outsz)
{
    if (avail < 1)
        return -1;
    int len = p[0];
    int octets = is_smsc ? len : (len + 1) / 2 + 1;     /* + type octet */
    if (is_smsc && len == 0) {
        out[0] = '\0';
        return 1;
    }
    if (octets < 1 || 1 + octets > avail || octets > 12 || outsz < 24)
        return -1;
    int type = p[1];
    int digits = is_smsc ? (octets - 1) * 2 : len;
    char *o = out;
    if ((type & 0x70) == 0x50) {          /* alphanumeric: packed GSM 7-bit */
        pdu_gsm7_decode(p + 2, octets - 1, 0, (octets - 1) * 8 / 7, out, outsz);
        return 1 + octets;
    }
    if ((type & 0x70) == 0x10)
        *o++ = '+';
    pdu_bcd_digits(p + 2, digits, o);
    return 1 + octets;
}

/* Writes an address: "+86..." international (type 0x91), else national
 * digits (0x81). is_smsc gives the length in octets. Returns octets. */
static int pdu_write_addr(const char *number, int is_smsc, uint8_t *out)
{
    int intl = number[0] == '+';
    const char *d = number + intl;
    int n = (int)strlen(d);
    if (n > 20)
        n = 20;
    int oct = (n + 1) / 2;
    out[0] = (uint8_t)(is_smsc ? oct + 1 : n);
    out[1] = intl ? 0x91 : 0x81;
    for (int i = 0; i < oct; i++) {
        int lo = d[2 * i] - '0', hi = 2 * i + 1 < n ? d[2 * i + 1] - '0' : 15;
        out[2 + i] = (uint8_t)((hi & 15) << 4 | (lo & 15));
    }
    return 2 + oct;
}

/* Decodes an SMS-SUBMIT with its SMSC field in front (as a phone writes it
 * after AT+CMGS). Returns 0, or -1 with a reason in err. */
static int pdu_decode_submit(const uint8_t *p, int n, pdu_submit *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->msg_class = -1;
    s->concat_ref = s->concat_total = s->concat_seq = -1;
    s->coding = "gsm7";
    int i = pdu_read_addr(p, n, 1, s->smsc, sizeof s->smsc);
    if (i < 0) { snprintf(err, errlen, "bad SMSC field"); return -1; }
    s->sca_len = i;
    s->tpdu_len = n - i;
    if (i + 2 > n) { snprintf(err, errlen, "truncated before TP-MR"); return -1; }
    int fo = p[i++];
    if ((fo & 3) != 1) { snprintf(err, errlen, "not an SMS-SUBMIT (TP-MTI %d)", fo & 3); return -1; }
    s->srr = (fo >> 5) & 1;
    s->vpf = (fo >> 3) & 3;
    int udhi = (fo >> 6) & 1;
    s->mr = p[i++];
    int a = pdu_read_addr(p + i, n - i, 0, s->to, sizeof s->to);
    if (a < 0) { snprintf(err, errlen, "bad TP-DA"); return -1; }
    i += a;
    if (i + 2 > n) { snprintf(err, errlen, "truncated before TP-DCS"); return -1; }
    s->pid = p[i++];
    s->dcs = p[i++];
    i += s->vpf == 2 ? 1 : s->vpf ? 7 : 0;
    if (i + 1 > n) { snprintf(err, errlen, "truncated before TP-UDL"); return -1; }
    s->udl = p[i++];
    int dcs = s->dcs;
    if ((dcs & 0xC0) == 0x00 || (dcs & 0xC0) == 0x40) {   /* general data coding */
        int alpha = (dcs >> 2) & 3;
        s->coding = alpha == 2 ? "ucs2" : alpha == 1 ? "8bit" : "gsm7";
        if (dcs & 0x10)
            s->msg_class = dcs & 3;
        if (dcs & 0x20) { snprintf(err, errlen, "compressed text not supported"); return -1; }
    } else if ((dcs & 0xF0) == 0xF0) {
        s->coding = (dcs & 4) ? "8bit" : "gsm7";
        s->msg_class = dcs & 3;
    } else if ((dcs & 0xF0) == 0xE0) {
        s->coding = "ucs2";
    }
    const uint8_t *ud = p + i;
    int udlen = n - i, udh = 0;
    if (udhi) {
        if (udlen < 1 || ud[0] + 1 > udlen) { snprintf(err, errlen, "bad UDH length"); return -1; }
        udh = ud[0] + 1;
        for (int k = 1; k + 1 < udh; ) {
            int iei = ud[k], iel = ud[k + 1];
            if (k + 2 + iel > udh) { snprintf(err, errlen, "bad UDH element"); return -1; }
            const uint8_t *v = ud + k + 2;
            if (iei == 0x00 && iel == 3) {
                s->concat_bits = 8;
                s->concat_ref = v[0]; s->concat_total = v[1]; s->concat_seq = v[2];
            } else if (iei == 0x08 && iel == 4) {
                s->concat_bits = 16;
                s->concat_ref = v[0] << 8 | v[1]; s->concat_total = v[2]; s->concat_seq = v[3];
            }
            k += 2 + iel;
        }
    }
    if (strcmp(s->coding, "gsm7") == 0) {
        int udh_sept = (udh * 8 + 6) / 7;
        int nsept = s->udl - udh_sept;
        if (nsept < 0 || (s->udl * 7 + 7) / 8 > udlen) {
            snprintf(err, errlen, "TP-UDL %d septets does not match %d octets", s->udl, udlen);
            return -1;
        }
        pdu_gsm7_decode(ud, udlen, udh_sept * 7, nsept, s->text, sizeof s->text);
    } else {
        if (s->udl > udlen || s->udl < udh) {
            snprintf(err, errlen, "TP-UDL %d octets does not match %d", s->udl, udlen);
            return -1;
        }
        if (strcmp(s->coding, "ucs2") == 0)
            pdu_ucs2_decode(ud + udh, s->udl - udh, s->text, sizeof s->text);
        else
            pdu_to_hex(ud + udh, (s->udl - udh) > (int)(sizeof s->text / 2) - 1
                       ? (int)(sizeof s->text / 2) - 1 : s->udl - udh, s->text);
    }
    return 0;
}

/* 7 octets of TP-SCTS for a fixed, recent time (timezone +08). */
static int pdu_write_scts(uint8_t *out, int sec)
{
    static const int v[7] = { 26, 11, 27, 4, 11, 0, 32 };  /* yy mm dd hh mm ss tz(quarters) */
    for (int k = 0; k < 7; k++) {
        int x = k == 5 ? sec % 60 : v[k];
        out[k] = (uint8_t)((x % 10) << 4 | x / 10);
    }
    return 7;
}

/* Builds an SMS-DELIVER (SMSC field in front) into `out`; `ucs2` selects
 * the coding, `total` > 1 adds an 8-bit concatenation UDH (ref, total, seq).
 * Returns the total octets and sets *tpdu_len (octets after the SMSC
 * field), or -1 when the text does not fit or is not GSM 7-bit. */
static int pdu_build_deliver(const char *smsc, const char *from, const char *text, int ucs2,
                             int ref, int total, int seq, uint8_t *out, int *tpdu_len)
{
    uint8_t ud[PDU_MAX_OCTETS];
    int i = pdu_write_addr(smsc, 1, out), sca = i;
    int udh = total > 1 ? 6 : 0;
    out[i++] = (uint8_t)(0x04 | (udh ? 0x40 : 0));   /* DELIVER, no more messages */
    i += pdu_write_addr(from, 0, out + i);
    out[i++] = 0x00;
    out[i++] = ucs2 ? 0x08 : 0x00;
    i += pdu_write_scts(out + i, seq);
    if (udh) {
        ud[0] = 5; ud[1] = 0; ud[2] = 3;
        ud[3] = (uint8_t)ref; ud[4] = (uint8_t)total; ud[5] = (uint8_t)seq;
    }
    int udl, len;
    if (ucs2) {
        int t = pdu_ucs2_encode(text, ud + udh, 140 - udh);
        if (t < 0)
            return -1;
        udl = len = udh + t;
    } else {
        uint8_t sept[170];
        int ns = pdu_gsm7_septets(text, sept, udh ? 153 : 160);
        if (ns < 0)
            return -1;
        int udh_sept = (udh * 8 + 6) / 7;
        uint8_t packed[PDU_MAX_OCTETS];
        int po = pdu_gsm7_pack(sept, ns, udh_sept * 7, packed);
        memcpy(ud + udh, packed + udh, (size_t)(po - udh));
        udl = udh_sept + ns;
        len = po;
    }
    out[i++] = (uint8_t)udl;
    memcpy(out + i, ud, (size_t)len);
    i += len;
    *tpdu_len = i - sca;
    return i;
}

/* Builds an SMS-STATUS-REPORT for reference `mr` to `recipient` with TP-ST
 * `st` (0x00 delivered, 0x40+ failed, 0x20+ pending). */
static int pdu_build_status_report(const char *smsc, int mr, const char *recipient, int st,
                                   uint8_t *out, int *tpdu_len)
{
    int i = pdu_write_addr(smsc, 1, out), sca = i;
    out[i++] = 0x06;                     /* STATUS-REPORT, TP-MMS */
    out[i++] = (uint8_t)mr;
    i += pdu_write_addr(recipient, 0, out + i);
    i += pdu_write_scts(out + i, 1);     /* TP-SCTS */
    i += pdu_write_scts(out + i, 5);     /* TP-DT */
    out[i++] = (uint8_t)st;
    *tpdu_len = i - sca;
    return i;
}

/* JSON string body of UTF-8 text (quotes not included). */
static void pdu_json_escape(const char *s, char *out, size_t outsz)
{
    char *o = out, *end = out + outsz - 1;
    for (; *s && o < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            if (end - o < 2) break;
            *o++ = '\\'; *o++ = (char)c;
        } else if (c < 0x20) {
            if (end - o < 6) break;
            o += snprintf(o, 7, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
}

#endif
