/* mkimg.c -- writes small valid images for the bulletin tests.
 *
 *   mkimg png  WIDTH HEIGHT FILE   RGB, 8 bit, zlib "stored" blocks (no
 *                                  compression library needed), CRCs and
 *                                  Adler-32 computed here
 *   mkimg jpeg WIDTH HEIGHT FILE   baseline grayscale, every 8x8 block flat
 *                                  mid-grey: one-symbol Huffman tables
 *                                  (DC category 0, AC end-of-block)
 *   mkimg gif  WIDTH HEIGHT FILE   GIF89a header and an empty image (only
 *                                  the header is read by Herald)
 * A PNG of W x H is about 3*W*H bytes, which the over-budget test uses.
 * JPEG sizes are rounded up to multiples of 8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc(const unsigned char *b, size_t n, uint32_t c)
{
    c ^= 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static void chunk(FILE *f, const char *type, const unsigned char *data, uint32_t len)
{
    unsigned char hdr[8];
    be32(hdr, len);
    memcpy(hdr + 4, type, 4);
    fwrite(hdr, 1, 8, f);
    if (len)
        fwrite(data, 1, len, f);
    uint32_t c = crc((const unsigned char *)type, 4, 0);
    c = crc(data, len, c);
    unsigned char cb[4];
    be32(cb, c);
    fwrite(cb, 1, 4, f);
}

static int png(FILE *f, unsigned w, unsigned h)
{
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A };
    fwrite(sig, 1, 8, f);
    unsigned char ihdr[13];
    be32(ihdr, w);
    be32(ihdr + 4, h);
    ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
    chunk(f, "IHDR", ihdr, 13);
    size_t row = 1 + (size_t)w * 3, raw_len = row * h;
    unsigned char *raw = malloc(raw_len);
    if (!raw)
        return -1;
    for (unsigned y = 0; y < h; y++) {
        raw[y * row] = 0;               /* filter: none */
        for (unsigned x = 0; x < w; x++) {
            unsigned char *p = raw + y * row + 1 + x * 3;
            p[0] = (unsigned char)(x * 7 + y);        /* a pattern that does not repeat soon */
            p[1] = (unsigned char)(y * 13 + x * 3);
            p[2] = (unsigned char)(x ^ y);
        }
    }
    size_t nblocks = raw_len / 65535 + 1;
    size_t zlen = 2 + raw_len + nblocks * 5 + 4;
    unsigned char *z = malloc(zlen), *p = z;
    if (!z) {
        free(raw);
        return -1;
    }
    *p++ = 0x78; *p++ = 0x01;
    uint32_t a = 1, b = 0;
    for (size_t off = 0; off < raw_len || off == 0;) {
        size_t n = raw_len - off > 65535 ? 65535 : raw_len - off;
        *p++ = off + n >= raw_len ? 1 : 0;            /* BFINAL, BTYPE 00 */
        *p++ = (unsigned char)(n & 0xFF); *p++ = (unsigned char)(n >> 8);
        *p++ = (unsigned char)(~n & 0xFF); *p++ = (unsigned char)((~n >> 8) & 0xFF);
        memcpy(p, raw + off, n);
        for (size_t i = 0; i < n; i++) {
            a = (a + raw[off + i]) % 65521;
            b = (b + a) % 65521;
        }
        p += n;
        off += n;
        if (off >= raw_len)
            break;
    }
    be32(p, b << 16 | a);
    p += 4;
    chunk(f, "IDAT", z, (uint32_t)(p - z));
    chunk(f, "IEND", NULL, 0);
    free(z);
    free(raw);
    return 0;
}

static int jpeg(FILE *f, unsigned w, unsigned h)
{
    w = (w + 7) / 8 * 8;
    h = (h + 7) / 8 * 8;
    static const unsigned char soi[] = { 0xFF, 0xD8 };
    fwrite(soi, 1, 2, f);
    unsigned char dqt[69] = { 0xFF, 0xDB, 0x00, 67, 0x00 };
    for (int i = 5; i < 69; i++)
        dqt[i] = 1;
    fwrite(dqt, 1, sizeof dqt, f);
    unsigned char sof[] = { 0xFF, 0xC0, 0x00, 11, 8, (unsigned char)(h >> 8), (unsigned char)h,
                            (unsigned char)(w >> 8), (unsigned char)w, 1, 1, 0x11, 0 };
    fwrite(sof, 1, sizeof sof, f);
    /* one code of length 1 ("0") per table: DC category 0, AC EOB */
    unsigned char dht[] = { 0xFF, 0xC4, 0x00, 20, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00 };
    fwrite(dht, 1, sizeof dht, f);
    dht[4] = 0x10;
    fwrite(dht, 1, sizeof dht, f);
    static const unsigned char sos[] = { 0xFF, 0xDA, 0x00, 8, 1, 1, 0x00, 0, 63, 0 };
    fwrite(sos, 1, sizeof sos, f);
    size_t blocks = (size_t)(w / 8) * (h / 8), bits = blocks * 2;
    size_t bytes = (bits + 7) / 8;
    for (size_t i = 0; i < bytes; i++) {
        size_t left = bits - i * 8;
        unsigned char c = left >= 8 ? 0x00 : (unsigned char)(0xFF >> left);   /* pad with 1s */
        fputc(c, f);
    }
    static const unsigned char eoi[] = { 0xFF, 0xD9 };
    fwrite(eoi, 1, 2, f);
    return 0;
}

static int gif(FILE *f, unsigned w, unsigned h)
{
    unsigned char hdr[] = { 'G', 'I', 'F', '8', '9', 'a', (unsigned char)w, (unsigned char)(w >> 8),
                            (unsigned char)h, (unsigned char)(h >> 8), 0x80, 0, 0,
                            0, 0, 0, 0xFF, 0xFF, 0xFF,                       /* 2-colour table */
                            0x2C, 0, 0, 0, 0, (unsigned char)w, (unsigned char)(w >> 8),
                            (unsigned char)h, (unsigned char)(h >> 8), 0,
                            2, 2, 0x4C, 0x01, 0, 0x3B };
    fwrite(hdr, 1, sizeof hdr, f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: mkimg png|jpeg|gif WIDTH HEIGHT FILE\n");
        return 2;
    }
    long w = atol(argv[2]), h = atol(argv[3]);
    if (w <= 0 || h <= 0 || w > 8192 || h > 8192) {
        fprintf(stderr, "mkimg: size %s x %s out of 1..8192\n", argv[2], argv[3]);
        return 2;
    }
    FILE *f = fopen(argv[4], "wb");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    crc_init();
    int rc = !strcmp(argv[1], "png") ? png(f, (unsigned)w, (unsigned)h)
           : !strcmp(argv[1], "jpeg") ? jpeg(f, (unsigned)w, (unsigned)h)
           : !strcmp(argv[1], "gif") ? gif(f, (unsigned)w, (unsigned)h) : -2;
    if (fclose(f) != 0 || rc == -1) {
        perror(argv[4]);
        return 1;
    }
    if (rc == -2) {
        fprintf(stderr, "mkimg: unknown type '%s'\n", argv[1]);
        return 2;
    }
    return 0;
}
