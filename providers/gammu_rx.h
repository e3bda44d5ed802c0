/* gammu_rx.h -- what the gammu driver makes of one SMS read from a modem
 * (libgammu decoded the PDU or the dummy phone's smsbackup file into a
 * GSM_SMSMessage): the text joined as UTF-8, the number normalised, the
 * timestamp, the concatenation part and key, the identity that spots a
 * second copy; for a status report, the reference and TP-ST.
 *
 * Internal to providers/gammu.c, declared here so that
 * tests/fuzz/fuzz_pdu.c can feed it what libgammu decodes from any bytes.
 * libgammu's text helpers are not thread-safe: the driver calls these
 * under its gammu_lock. */
#ifndef HERALD_GAMMU_RX_H
#define HERALD_GAMMU_RX_H

#include <gammu.h>

/* One thing received, decoded on the modem thread. Owns its strings and the
 * copies of its parts (kept for GSM_DeleteSMS, Location as returned). */
typedef struct inbound_item {
    int is_report;
    char *from;                /* UTF-8, normalised when possible */
    char *text;                /* UTF-8, parts joined */
    char *identity;            /* the same for every copy of this SMS */
    char *concat_key;          /* the same for every part of one message */
    int part, nparts_msg;      /* 1-based part of how many; 1 of 1: a whole SMS */
    long long at_ms;
    int ref, delivered, last_chance;
    long long first_ms, next_ms;   /* unsolicited (pending): monotonic, first
                                      offered / next offer */
    int offers;
    char *to;                  /* a report's recipient */
    char detail[32];
    int stored;                /* the gateway has it: delete from the modem */
    int nparts;                /* every copy of every part, for deletion */
    GSM_SMSMessage *parts;
} inbound_item;

/* Fills a received SMS (one part of a concatenated message, or a whole
 * one) from s: from, text, at_ms, part, nparts_msg, identity, concat_key
 * (at_ms = now_ms when the SMS carries no usable date). Returns 0, or -1
 * out of memory (what was filled is freed by gammu_rx_clear). */
int gammu_rx_message(inbound_item *it, const GSM_SMSMessage *s, long long now_ms);

/* Fills a status report from s: is_report, ref, delivered (1, 0 failed
 * for good, -1 still trying), detail ("TP-ST 0x.."), at_ms, to. Not
 * last_chance (the driver counts polls). Returns 0, or -1 out of memory. */
int gammu_rx_report(inbound_item *it, const GSM_SMSMessage *s, long long now_ms);

/* Frees what an item owns and zeroes it. */
void gammu_rx_clear(inbound_item *it);

#endif
