/* segment.h -- SMS part counting, as libgammu's GSM_EncodeMultiPartSMS
 * splits a text.
 *
 * A text that GSM 03.38 can carry (the default alphabet plus the extension
 * table, whose characters take 2 septets: form feed ^ { } \ [ ~ ] | EURO)
 * goes out in 7-bit: 160 septets in one part, 153 per part when
 * concatenated. Anything else goes out in UCS-2: 70 units, 67 per part;
 * characters outside the BMP take 2 units. An escape sequence or a
 * surrogate pair is never split across parts. */
#ifndef HERALD_SEGMENT_H
#define HERALD_SEGMENT_H

#include <stddef.h>

typedef enum { SEG_GSM7 = 0, SEG_UCS2 = 1 } seg_encoding;

#define SEG_MAX_FORCING 8

typedef struct seg_info {
    seg_encoding encoding;
    int parts;          /* number of SMS parts */
    int units;          /* septets (GSM7) or UCS-2 code units in total */
    int chars;          /* Unicode code points */
    /* The first distinct characters (UTF-8, NUL-terminated) that are not in
     * GSM 03.38 and so forced UCS-2; nforcing counts all distinct ones. */
    char forcing[SEG_MAX_FORCING][5];
    int nforcing;
} seg_info;

/* Counts parts for UTF-8 `text` (len bytes). Returns 0, or -1 if the text
 * is not valid UTF-8 (err says at which byte). */
int seg_count(const char *text, size_t len, seg_info *out, char *err, size_t errlen);

const char *seg_encoding_name(seg_encoding e);   /* "gsm7" / "ucs2" */

#endif
