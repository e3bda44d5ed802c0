/* mms.h -- composing an MMS bulletin issue: SMIL layout and MIME parts.
 *
 * Pure: buffers in, buffers out, no files, no I/O. The caller (the CLI)
 * reads the slide files; the MM7 driver wraps the result in its SOAP
 * envelope.
 *
 * An issue is a subject and 1..MMS_MAX_SLIDES slides; a slide has UTF-8
 * text and/or one image (JPEG, PNG or GIF, recognised by its magic bytes,
 * its size read from its header). mms_compose() produces the MMS content:
 *
 *   multipart/related; type="application/smil"; start="<smil>"; boundary=B
 *     <smil>          application/smil   one <par dur="Ns"> per slide:
 *                                        <img region="Image"> above,
 *                                        <text region="Text"> below
 *     <sN.txt>        text/plain; charset=utf-8
 *     <sN.jpg|png|gif> image/jpeg|png|gif
 *
 * Parts are sent as they are (Content-Transfer-Encoding: binary): the
 * bytes an MMSC receives are the files' bytes. Every cid: in the SMIL
 * names a part, and every part but the SMIL is named by the SMIL. */
#ifndef HERALD_MMS_H
#define HERALD_MMS_H

#include <stddef.h>

#define MMS_MAX_SLIDES 20
#define MMS_MAX_PARTS  (1 + 2 * MMS_MAX_SLIDES)
#define MMS_DEFAULT_DUR_S 8

typedef enum { MMS_IMG_NONE = 0, MMS_IMG_JPEG, MMS_IMG_PNG, MMS_IMG_GIF } mms_img_type;

/* "image/jpeg", "image/png", "image/gif" ("" for none). */
const char *mms_img_mime(mms_img_type t);
/* "jpg", "png", "gif". */
const char *mms_img_ext(mms_img_type t);

/* Recognises an image by its magic bytes and reads its width and height
 * from its header (JPEG: the SOFn segment; PNG: IHDR; GIF: the logical
 * screen). Returns 0, or -1 with the reason in err ("not a JPEG, PNG or
 * GIF image", "JPEG without a frame header", "PNG truncated"...). */
int mms_image_probe(const unsigned char *buf, size_t len, mms_img_type *type,
                    int *width, int *height, char *err, size_t errlen);

/* 1 when buf is valid UTF-8 (no overlongs, no surrogates). */
int mms_utf8_valid(const char *buf, size_t len);

typedef struct mms_slide {
    const char *text;             /* UTF-8, NULL for none; not copied */
    size_t text_len;
    const unsigned char *image;   /* NULL for none; not copied */
    size_t image_len;
    const char *image_name;       /* the file it came from, for reports */
    int dur_s;                    /* 0 = MMS_DEFAULT_DUR_S */
} mms_slide;

typedef struct mms_issue {
    const char *subject;          /* checked as UTF-8 only: the subject travels in the
                                   * MM7 envelope, not in the content */
    mms_slide slides[MMS_MAX_SLIDES];
    int nslides;
} mms_issue;

typedef struct mms_part {
    char cid[32];                 /* without the angle brackets: "s1.txt" */
    char type[48];                /* "text/plain; charset=utf-8", "image/png"... */
    char name[128];               /* file name, or "layout.smil" */
    size_t size;                  /* bytes of the part's body */
    int width, height;            /* images */
} mms_part;

typedef struct mms_composed {
    char *body;                   /* the multipart body (malloc'd) */
    size_t len;
    char content_type[160];       /* its Content-Type header value */
    char *smil;                   /* the SMIL document (malloc'd, NUL-terminated) */
    mms_part parts[MMS_MAX_PARTS];
    int nparts;                   /* parts[0] is the SMIL */
} mms_composed;

/* Composes the issue. `boundary_seed` makes the boundary (any text; the
 * boundary is checked against every part and changed if a part contains
 * it). Returns 0, or -1 with the reason in err (no slides, empty slide,
 * text not UTF-8, image not recognised, ...). Free with mms_composed_free. */
int mms_compose(const mms_issue *is, const char *boundary_seed, mms_composed *out,
                char *err, size_t errlen);
void mms_composed_free(mms_composed *c);   /* accepts NULL */

/* Checks the composed size against `budget` bytes. Returns 0 when it fits,
 * or -1 with a report naming the total, the budget and the size of every
 * part: "issue is 412345 bytes, over the budget of 307200: smil 612,
 * s1.txt (01.txt) 210, s2.jpg (02.jpg) 398000 ...". */
int mms_check_budget(const mms_composed *c, size_t budget, char *err, size_t errlen);

#endif
