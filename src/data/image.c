/*
 * image.c - image files to 8-bit grey, through stb_image (libstb-dev).
 *
 * Order of work, so that a hostile file costs little: read at most
 * NN_MAX_IMAGE_BYTES; recognise the format by its magic bytes (no guessing,
 * so a random file is never taken for a headerless TGA); read the size from
 * the header (our own reading for PNG, GIF, BMP and JPEG, since stb will
 * not report sizes it finds too large; then stbi_info) and check
 * NN_MAX_IMAGE_*; only then decode. Decoding asks stb for grey + alpha
 * (stb expands palettes and tRNS and computes luminance with 8-bit
 * weights); 16-bit files are decoded at 16 bit and rounded once, after the
 * alpha composition. Binary PGM/PPM are read here (load_pnm).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "nn/internal.h"

void nn_image_free(nn_image *img)
{
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* The formats we accept, by magic bytes; NULL if none. */
static const char *format_name(const unsigned char *p, size_t n)
{
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return "PNG";
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return "JPEG";
    if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return "GIF";
    if (n >= 2 && p[0] == 'B' && p[1] == 'M')
        return "BMP";
    if (n >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '6')
        return p[1] == '5' ? "PGM" : p[1] == '6' ? "PPM" : "ASCII PNM";
    return NULL;
}

/* Composes (grey, alpha) pairs over white or black and rounds to 8 bit.
 * px: (count, 2) samples of maxv (255 or 65535). */
static void compose(const void *px, bool sixteen, size_t count, uint8_t *out)
{
    const uint8_t *p8 = px;
    const uint16_t *p16 = px;
    const uint64_t maxv = sixteen ? 65535 : 255;
#define Y(i) (sixteen ? p16[2 * (i)] : p8[2 * (i)])
#define A(i) (sixteen ? p16[2 * (i) + 1] : p8[2 * (i) + 1])
    /* Paper colour: white, unless most pixels are transparent and the
     * visible ones are light on average (light strokes on a clear canvas). */
    size_t clear = 0;
    uint64_t ya = 0, asum = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t a = A(i);
        clear += a * 2 < maxv;
        ya += (uint64_t)Y(i) * a;
        asum += a;
    }
    uint64_t paper = maxv;
    if (clear * 2 > count && asum > 0 && ya * 2 > asum * maxv)
        paper = 0;
    /* v = y a + paper (maxv - a), in units of maxv^2, rounded to 8 bit;
     * one loop per depth so that each divides by a constant (a multiply,
     * not a division per pixel) */
    if (sixteen) {
        const uint64_t den = 65535ull * 65535ull;
        for (size_t i = 0; i < count; i++) {
            uint64_t a = p16[2 * i + 1], y = p16[2 * i];
            uint64_t v = y * a + paper * (65535 - a);
            out[i] = (uint8_t)((v * 255 + den / 2) / den);
        }
    } else {
        const uint32_t den = 255u * 255u;
        for (size_t i = 0; i < count; i++) {
            uint32_t a = p8[2 * i + 1], y = p8[2 * i];
            uint32_t v = y * a + (uint32_t)paper * (255 - a);
            out[i] = (uint8_t)((v * 255 + den / 2) / den);
        }
    }
#undef Y
#undef A
}

/* Width and height as the header states them, read here because stb will
 * not report sizes it finds too large and we want to say how large.
 * False when the header is too short or has no size where we look. */
static bool header_size(const char *fmt, const unsigned char *p, size_t n,
                        uint64_t *w, uint64_t *h)
{
    if (!strcmp(fmt, "PNG")) {
        if (n < 24 || memcmp(p + 12, "IHDR", 4) != 0)
            return false;
        *w = nn_get_u32_be(p + 16);
        *h = nn_get_u32_be(p + 20);
        return true;
    }
    if (!strcmp(fmt, "GIF")) {
        if (n < 10)
            return false;
        *w = (uint64_t)p[6] | (uint64_t)p[7] << 8;
        *h = (uint64_t)p[8] | (uint64_t)p[9] << 8;
        return true;
    }
    if (!strcmp(fmt, "BMP")) {
        if (n < 26 || nn_get_u32(p + 14) < 40)
            return false;     /* old OS/2 headers: left to stb */
        int32_t bw = (int32_t)nn_get_u32(p + 18);
        int32_t bh = (int32_t)nn_get_u32(p + 22);
        *w = bw < 0 ? (uint64_t)0 - (uint64_t)(int64_t)bw : (uint64_t)bw;
        *h = bh < 0 ? (uint64_t)0 - (uint64_t)(int64_t)bh : (uint64_t)bh;
        return true;
    }
    if (!strcmp(fmt, "JPEG")) {  /* walk the segments to the frame header */
        size_t i = 2;
        while (i + 9 <= n && p[i] == 0xFF) {
            unsigned m = p[i + 1];
            if (m == 0xFF) {             /* fill byte */
                i++;
                continue;
            }
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 &&
                m != 0xCC) {
                *h = (uint64_t)p[i + 5] << 8 | p[i + 6];
                *w = (uint64_t)p[i + 7] << 8 | p[i + 8];
                return true;
            }
            i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
        }
        return false;
    }
    return false;
}

/* Checks a PNG's compressed image data (the IDAT chunks, one zlib stream)
 * with zlib before stb_image sees it: stb's own inflater, given invalid
 * Huffman codes, reads memory it never wrote (found by valgrind on damaged
 * files), so a stream zlib finds invalid is refused here. Only errors in
 * the coding are refused: a stream cut short, or a wrong Adler-32 (which
 * stb does not check), is left to stb as before. The output goes to a
 * small scratch buffer and is dropped. Returns zlib's message for an
 * invalid stream, NULL otherwise. */
static const char *png_deflate_error(const unsigned char *p, size_t n)
{
    static const char *const errs[] = {"out of memory", "invalid data"};
    z_stream z;
    memset(&z, 0, sizeof z);
    bool started = false, raw = false;
    const char *bad = NULL;
    unsigned char scratch[1 << 15];
    for (size_t i = 8; i + 8 <= n && !bad;) {
        size_t len = nn_get_u32_be(p + i);
        const unsigned char *type = p + i + 4;
        if (len > n - i - 8)
            break;   /* a truncated chunk: stb reports it */
        if (!memcmp(type, "CgBI", 4))
            raw = true;   /* Apple's PNG: raw deflate, no zlib header */
        if (!memcmp(type, "IEND", 4))
            break;
        if (!memcmp(type, "IDAT", 4) && len > 0) {
            if (!started) {
                if (inflateInit2(&z, raw ? -15 : 15) != Z_OK)
                    return errs[0];
                started = true;
            }
            z.next_in = (Bytef *)(uintptr_t)(p + i + 8);
            z.avail_in = (uInt)len;
            while (z.avail_in > 0 && !bad) {
                z.next_out = scratch;
                z.avail_out = sizeof scratch;
                int rc = inflate(&z, Z_NO_FLUSH);
                if (rc == Z_STREAM_END)
                    break;   /* anything after the stream is stb's call */
                if (rc == Z_NEED_DICT || rc == Z_MEM_ERROR ||
                    (rc == Z_DATA_ERROR &&
                     !(z.msg && !strcmp(z.msg, "incorrect data check"))))
                    bad = z.msg ? z.msg : errs[1];
                else if (rc != Z_OK)
                    break;   /* Z_BUF_ERROR: no progress possible */
            }
        }
        i += 12 + len;
    }
    if (started)
        inflateEnd(&z);
    return bad;
}

/* The PNG fast path: 8-bit grey, grey + alpha, RGB or RGBA, not
 * interlaced, with only IHDR, IDAT, IEND and ancillary chunks (no PLTE,
 * tRNS or Apple's CgBI), decoded here with zlib, which must find the
 * compressed data valid to the end of its last block (so the stream is
 * inflated once, not once by zlib to check it and again by stb; like stb,
 * the Adler-32 is not checked). The result is what stb gives for the same
 * file (its luminance weights, grey + alpha composed over the paper as
 * compose() does); anything else, or any irregularity (a bad zlib header,
 * a stream cut short, a bad filter type, too little data), returns
 * false with *out untouched, and the file goes the usual way (zlib's
 * check, then stb), which reports the error as before. The buffer for the
 * inflated rows is sized by the header (already within NN_MAX_IMAGE_*) and
 * only when the compressed data could fill it (deflate expands at most
 * 1032 times). */
static bool png_fast(const unsigned char *p, size_t n, nn_image *out)
{
    if (n < 33 || nn_get_u32_be(p + 8) != 13 || memcmp(p + 12, "IHDR", 4))
        return false;
    const uint32_t w = nn_get_u32_be(p + 16), h = nn_get_u32_be(p + 20);
    const unsigned depth = p[24], color = p[25];
    static const unsigned char channels[7] = {1, 0, 3, 0, 2, 0, 4};
    if (depth != 8 || color > 6 || !channels[color] || p[26] || p[27] ||
        p[28] || w == 0 || h == 0 || w > NN_MAX_IMAGE_SIDE ||
        h > NN_MAX_IMAGE_SIDE || (uint64_t)w * h > NN_MAX_IMAGE_PIXELS)
        return false;
    const size_t ch = channels[color], stride = (size_t)w * ch + 1;
    const size_t need = stride * h;
    /* the chunks: only the kinds above, whole, up to IEND */
    size_t idat = 0;
    bool end = false;
    for (size_t i = 8; i + 12 <= n;) {
        size_t len = nn_get_u32_be(p + i);
        const unsigned char *type = p + i + 4;
        if (len > n - i - 12)
            return false;
        if (!memcmp(type, "IEND", 4)) {
            end = true;
            break;
        }
        if (!memcmp(type, "IDAT", 4))
            idat += len;
        else if (i != 8 && (!(type[0] & 0x20) || !memcmp(type, "tRNS", 4)))
            return false;   /* PLTE, another IHDR, unknown critical, tRNS */
        i += 12 + len;
    }
    if (!end || !idat || need / 1032 > idat)
        return false;
    unsigned char *raw = malloc(need);
    if (!raw)
        return false;
    /* the zlib header (RFC 1950) read here, then raw deflate: the
     * Adler-32 at the end is not computed, as stb does not check it */
    size_t first = 8;
    while (memcmp(p + first + 4, "IDAT", 4))
        first += 12 + nn_get_u32_be(p + first);
    const unsigned char *zh = p + first + 8;
    if (nn_get_u32_be(p + first) < 2 || (zh[0] & 15) != 8 || zh[0] >> 4 > 7 ||
        (zh[0] * 256 + zh[1]) % 31 || (zh[1] & 0x20)) {
        free(raw);
        return false;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) {
        free(raw);
        return false;
    }
    unsigned char scratch[256];
    z.next_out = raw;
    z.avail_out = (uInt)need;   /* need < 2^32: 64 Mpx x 4 + 16384 */
    int rc = Z_OK;
    for (size_t i = 8; rc == Z_OK;) {
        size_t len = nn_get_u32_be(p + i);
        if (!memcmp(p + i + 4, "IEND", 4))
            break;
        if (!memcmp(p + i + 4, "IDAT", 4) && len > 0) {
            size_t skip = i == first ? 2 : 0;   /* the zlib header */
            z.next_in = (Bytef *)(uintptr_t)(p + i + 8 + skip);
            z.avail_in = (uInt)(len - skip);
            while (rc == Z_OK && z.avail_in > 0) {
                if (z.avail_out == 0) {   /* more than the rows: stb drops it */
                    z.next_out = scratch;
                    z.avail_out = sizeof scratch;
                }
                rc = inflate(&z, Z_NO_FLUSH);
            }
        }
        i += 12 + len;
    }
    size_t got = z.next_out == scratch || z.avail_out == 0
                     ? need : need - z.avail_out;
    inflateEnd(&z);
    uint8_t *px = rc == Z_STREAM_END && got == need ? malloc((size_t)w * h) : NULL;
    uint8_t *ga = px && ch != 1 ? malloc(2 * (size_t)w * h) : NULL;
    bool ok = px && (ch == 1 || ga);
    /* unfilter in place (the row above: zeros for the first), then to
     * grey (stb: (77 r + 150 g + 29 b) >> 8) with alpha */
    const size_t nb = stride - 1;
    unsigned char *zero = ok ? calloc(nb, 1) : NULL;
    ok = ok && zero;
    for (uint32_t y = 0; ok && y < h; y++) {
        unsigned char *row = raw + y * stride + 1;
        const unsigned char *up = y ? row - stride : zero;
        switch (row[-1]) {
        case 0:
            break;
        case 1:
            for (size_t k = ch; k < nb; k++)
                row[k] = (unsigned char)(row[k] + row[k - ch]);
            break;
        case 2:
            for (size_t k = 0; k < nb; k++)
                row[k] = (unsigned char)(row[k] + up[k]);
            break;
        case 3:
            for (size_t k = 0; k < ch; k++)
                row[k] = (unsigned char)(row[k] + (up[k] >> 1));
            for (size_t k = ch; k < nb; k++)
                row[k] = (unsigned char)(row[k] +
                                         ((row[k - ch] + up[k]) >> 1));
            break;
        case 4:
            for (size_t k = 0; k < ch; k++)   /* a = c = 0: b */
                row[k] = (unsigned char)(row[k] + up[k]);
            if (ch == 1) {   /* a and c kept in registers */
                int a = row[0], c = up[0];
                for (size_t k = 1; k < nb; k++) {
                    /* Paper: where the row above is level (b == c, so
                     * pa = 0 and the prediction is a) and nothing is
                     * added, the pixels repeat a; tested 8 at a time */
                    uint64_t add, b8, c8;
                    if (k + 8 <= nb) {
                        memcpy(&add, row + k, 8);
                        memcpy(&b8, up + k, 8);
                        memcpy(&c8, up + k - 1, 8);
                        if (add == 0 && b8 == c8) {
                            memset(row + k, a, 8);
                            k += 7;
                            c = up[k];
                            continue;
                        }
                    }
                    int b = up[k];
                    int pa = abs(b - c), pb = abs(a - c),
                        pc = abs(a + b - 2 * c);
                    int pr = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                    a = row[k] = (unsigned char)(row[k] + pr);
                    c = b;
                }
                break;
            }
            for (size_t k = ch; k < nb; k++) {
                int a = row[k - ch], b = up[k], c = up[k - ch];
                int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
                int pr = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                row[k] = (unsigned char)(row[k] + pr);
            }
            break;
        default:
            ok = false;   /* stb: "invalid filter" */
            break;
        }
        if (!ok)
            break;
        if (ch == 1) {
            memcpy(px + (size_t)y * w, row, w);
            continue;
        }
        uint8_t *o = ga + 2 * (size_t)y * w;
        if (ch == 2)
            memcpy(o, row, 2 * (size_t)w);
        else
            for (uint32_t x = 0; x < w; x++) {
                const unsigned char *q = row + (size_t)x * ch;
                o[2 * x] = (uint8_t)((q[0] * 77 + q[1] * 150 + q[2] * 29) >> 8);
                o[2 * x + 1] = ch == 4 ? q[3] : 255;
            }
    }
    free(zero);
    free(raw);
    if (ok && ch != 1)
        compose(ga, false, (size_t)w * h, px);
    free(ga);
    if (!ok) {
        free(px);
        return false;
    }
    out->pixels = px;
    out->w = (int)w;
    out->h = (int)h;
    return true;
}

/* A JPEG whose scans use quantization or Huffman tables the file never
 * defines: stb_image decodes it anyway, from table memory it never wrote,
 * so the picture would hold leftover heap bytes (found by valgrind on a
 * fuzzed file, fuzz/regress/image/jpeg-no-dqt-stb-uninit). Returns what
 * is missing, or NULL; anything else unusual (truncation, bad lengths) is
 * left to stb. Tables must be defined before the scan that uses them; in
 * progressive files quantization tables anywhere (they are applied at
 * the end). */
static const char *jpeg_missing_table(const unsigned char *p, size_t n)
{
    unsigned qt = 0, dc = 0, ac = 0;   /* bit t: table t defined */
    unsigned char cq[4];               /* each component's quant table */
    int ncomp = -1;
    bool progressive = false;
    size_t i = 2;
    while (i + 4 <= n) {
        if (p[i] != 0xFF) {   /* junk between segments: stb scans on too */
            i++;
            continue;
        }
        unsigned m = p[i + 1];
        if (m == 0xFF || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
            i += m == 0xFF ? 1 : 2;
            continue;
        }
        if (m == 0xD9)
            break;
        size_t len = (size_t)p[i + 2] << 8 | p[i + 3];
        if (len < 2 || len > n - i - 2)
            return NULL;
        const unsigned char *s = p + i + 4;
        size_t sl = len - 2;
        if (m == 0xDB) {                       /* DQT: (Pq Tq) + 64|128 */
            for (size_t k = 0; k < sl; k += 1 + (s[k] >> 4 ? 128 : 64))
                qt |= (s[k] & 15) < 4 ? 1u << (s[k] & 15) : 0;
        } else if (m == 0xC4) {                /* DHT: (Tc Th) counts values */
            for (size_t k = 0; k + 17 <= sl;) {
                size_t cnt = 0;
                for (int b = 1; b <= 16; b++)
                    cnt += s[k + b];
                unsigned th = s[k] & 15;
                if (th < 4)
                    *(s[k] >> 4 ? &ac : &dc) |= 1u << th;
                k += 17 + cnt;
            }
        } else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 &&
                   m != 0xCC) {                /* SOF */
            if (sl < 6 || s[5] > 4 || sl < 6 + 3 * (size_t)s[5])
                return NULL;
            progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
            ncomp = s[5];
            for (int c = 0; c < ncomp; c++)
                cq[c] = s[8 + 3 * c] & 15;
        } else if (m == 0xDA) {                /* SOS, then entropy data */
            if (ncomp < 0 || sl < 1 || sl < 1 + 2 * (size_t)s[0] + 3)
                return NULL;
            for (int c = 0; c < ncomp && !progressive; c++)
                if (cq[c] > 3 || !(qt >> cq[c] & 1))
                    return "quantization table";
            int ns = s[0];
            unsigned ss = s[1 + 2 * ns], ah = s[3 + 2 * ns] >> 4;
            bool need_dc = ss == 0 && (!progressive || ah == 0);
            bool need_ac = !progressive || ss > 0;
            for (int j = 0; j < ns; j++) {
                unsigned td = s[2 + 2 * j] >> 4, ta = s[2 + 2 * j] & 15;
                if ((need_dc && (td > 3 || !(dc >> td & 1))) ||
                    (need_ac && (ta > 3 || !(ac >> ta & 1))))
                    return "Huffman table";
            }
            i += 2 + len;
            while (i + 1 < n && !(p[i] == 0xFF && p[i + 1] != 0 &&
                                  !(p[i + 1] >= 0xD0 && p[i + 1] <= 0xD7)))
                i++;
            continue;
        }
        i += 2 + len;
    }
    for (int c = 0; c < ncomp && progressive; c++)
        if (cq[c] > 3 || !(qt >> cq[c] & 1))
            return "quantization table";
    return NULL;
}

/* The Exif orientation (1..8) of a JPEG, 1 if it has none: phones store
 * the sensor's pixels and a tag saying how to turn them for viewing. */
static int jpeg_orientation(const unsigned char *p, size_t n)
{
    size_t i = 2;
    while (i + 4 <= n && p[i] == 0xFF) {
        unsigned m = p[i + 1];
        size_t len = (size_t)p[i + 2] << 8 | p[i + 3];
        if (m == 0xDA || m == 0xD9 || len < 2 || len > n - i - 2)
            break;                          /* image data: no more tags */
        const unsigned char *e = p + i + 4;
        size_t en = len - 2;
        if (m == 0xE1 && en >= 14 && !memcmp(e, "Exif\0\0", 6)) {
            const unsigned char *t = e + 6;     /* TIFF header */
            size_t tn = en - 6;
            bool le = t[0] == 'I' && t[1] == 'I';
            if (!le && !(t[0] == 'M' && t[1] == 'M'))
                return 1;
#define U16(q) (le ? (unsigned)(q)[0] | (unsigned)(q)[1] << 8 \
                   : (unsigned)(q)[0] << 8 | (unsigned)(q)[1])
            uint32_t ifd = le ? nn_get_u32(t + 4) : nn_get_u32_be(t + 4);
            if (ifd > tn || tn - ifd < 2)
                return 1;
            unsigned count = U16(t + ifd);
            for (unsigned k = 0; k < count; k++) {
                size_t at = ifd + 2 + 12 * (size_t)k;
                if (at + 12 > tn)
                    break;
                if (U16(t + at) == 0x0112) {    /* Orientation, SHORT */
                    unsigned v = U16(t + at + 8);
                    return v >= 1 && v <= 8 ? (int)v : 1;
                }
            }
#undef U16
            return 1;
        }
        i += 2 + len;
    }
    return 1;
}

/* Turns img as Exif orientation `o` says (2..8), so that it shows upright.
 * False when out of memory (img unchanged). */
static bool reorient(nn_image *img, int o)
{
    const int W = img->w, H = img->h;
    const bool swap = o >= 5;
    const int w2 = swap ? H : W, h2 = swap ? W : H;
    uint8_t *q = malloc((size_t)W * H);
    if (!q)
        return false;
    for (int y = 0; y < h2; y++)
        for (int x = 0; x < w2; x++) {
            int sx, sy;   /* the source pixel shown at (x, y) */
            switch (o) {
            case 2: sx = W - 1 - x; sy = y; break;           /* mirrored */
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;   /* 180 */
            case 4: sx = x; sy = H - 1 - y; break;           /* flipped */
            case 5: sx = y; sy = x; break;                   /* transposed */
            case 6: sx = y; sy = H - 1 - x; break;           /* 90 cw */
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;   /* transverse */
            default: sx = W - 1 - y; sy = x; break;          /* 8: 90 ccw */
            }
            q[(size_t)y * w2 + x] = img->pixels[(size_t)sy * W + sx];
        }
    free(img->pixels);
    img->pixels = q;
    img->w = w2;
    img->h = h2;
    return true;
}

static nn_status check_size(uint64_t w, uint64_t h, const char *name,
                            const char *fmt, nn_error *err)
{
    if (w == 0 || h == 0)
        return nn_fail(err, NN_ERR_FORMAT, "%s: %s header gives an empty "
                       "image (%llux%llu)", name, fmt,
                       (unsigned long long)w, (unsigned long long)h);
    if (w > NN_MAX_IMAGE_SIDE || h > NN_MAX_IMAGE_SIDE ||
        w * h > NN_MAX_IMAGE_PIXELS)
        return nn_fail(err, NN_ERR_LIMIT, "%s: %s image of %llux%llu pixels "
                       "exceeds the limit (%d pixels a side, %u Mpx; "
                       "docs/limits.md)", name, fmt, (unsigned long long)w,
                       (unsigned long long)h, NN_MAX_IMAGE_SIDE,
                       NN_MAX_IMAGE_PIXELS >> 20);
    return NN_OK;
}

/* Binary PGM/PPM (P5/P6), read here: stb_image 2.27 reads 16-bit PNM
 * samples in the wrong byte order and converts their channels with its
 * 8-bit routine, and ignores maxval for 8-bit files. Samples are scaled by
 * 255/maxval with rounding; PPM goes to grey by luminance. */
static bool pnm_number(const unsigned char *p, size_t n, size_t *i,
                       uint32_t *v)
{
    for (;;) {          /* whitespace and comments */
        while (*i < n && (p[*i] == ' ' || (p[*i] >= '\t' && p[*i] <= '\r')))
            (*i)++;
        if (*i < n && p[*i] == '#') {
            while (*i < n && p[*i] != '\n' && p[*i] != '\r')
                (*i)++;
            continue;
        }
        break;
    }
    if (*i >= n || p[*i] < '0' || p[*i] > '9')
        return false;
    uint64_t x = 0;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9') {
        x = x * 10 + (uint64_t)(p[*i] - '0');
        if (x > 0xffffffffu)
            return false;
        (*i)++;
    }
    *v = (uint32_t)x;
    return true;
}

static nn_status load_pnm(const unsigned char *p, size_t n, const char *name,
                          const char *fmt, nn_image *out, nn_error *err)
{
    size_t i = 2;
    uint32_t w, h, maxv;
    if (!pnm_number(p, n, &i, &w) || !pnm_number(p, n, &i, &h) ||
        !pnm_number(p, n, &i, &maxv) || i >= n ||
        !(p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        return nn_fail(err, NN_ERR_FORMAT, "%s: damaged %s header", name,
                       fmt);
    i++;                /* exactly one whitespace before the samples */
    nn_status st = check_size(w, h, name, fmt, err);
    if (st != NN_OK)
        return st;
    if (maxv < 1 || maxv > 65535)
        return nn_fail(err, NN_ERR_FORMAT, "%s: %s maxval %u is not in "
                       "1..65535", name, fmt, maxv);
    const size_t ch = p[1] == '6' ? 3 : 1, bps = maxv > 255 ? 2 : 1;
    const size_t count = (size_t)w * h;
    if ((n - i) / (ch * bps) < count)
        return nn_fail(err, NN_ERR_FORMAT, "%s: truncated %s: %zu bytes of "
                       "pixels, expected %zu", name, fmt, n - i,
                       count * ch * bps);
    out->pixels = malloc(count);
    if (!out->pixels)
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", name);
    const unsigned char *s = p + i;
    const uint64_t den = 1000 * (uint64_t)maxv;
    for (size_t k = 0; k < count; k++) {
        uint64_t c[3];
        for (size_t j = 0; j < ch; j++, s += bps) {
            c[j] = bps == 2 ? (uint64_t)s[0] << 8 | s[1] : s[0];
            if (c[j] > maxv)
                c[j] = maxv;
        }
        uint64_t y = ch == 3 ? 299 * c[0] + 587 * c[1] + 114 * c[2]
                             : 1000 * c[0];
        out->pixels[k] = (uint8_t)((y * 255 + den / 2) / den);
    }
    out->w = (int)w;
    out->h = (int)h;
    nn_ok(err);
    return NN_OK;
}

nn_status nn_image_load_mem(const void *data, size_t size, const char *name,
                            nn_image *out, nn_error *err)
{
    if (!out)
        return nn_fail(err, NN_ERR_ARG, "nn_image_load_mem: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name)
        name = "image";
    if (!data && size)
        return nn_fail(err, NN_ERR_ARG, "%s: data is NULL", name);
    if (size == 0)
        return nn_fail(err, NN_ERR_FORMAT, "%s: empty file, not an image",
                       name);
    if (size > NN_MAX_IMAGE_BYTES)
        return nn_fail(err, NN_ERR_LIMIT, "%s: %zu bytes exceeds the image "
                       "file limit of %u MiB", name, size,
                       NN_MAX_IMAGE_BYTES >> 20);
    const unsigned char *p = data;
    const char *fmt = format_name(p, size);
    if (!fmt)
        return nn_fail(err, NN_ERR_FORMAT, "%s: not an image (expected PNG, "
                       "JPEG, BMP, GIF or PGM/PPM)", name);
    if (!strcmp(fmt, "ASCII PNM"))
        return nn_fail(err, NN_ERR_FORMAT, "%s: plain (ASCII) PBM/PGM/PPM "
                       "is not supported; save it as binary PGM/PPM (P5/P6) "
                       "or PNG", name);
    if (!strcmp(fmt, "PGM") || !strcmp(fmt, "PPM"))
        return load_pnm(p, size, name, fmt, out, err);
    int len = (int)size, w = 0, h = 0, comp = 0;
    uint64_t hw, hh;
    nn_status st;
    if (header_size(fmt, p, size, &hw, &hh) &&
        (st = check_size(hw, hh, name, fmt, err)) != NN_OK)
        return st;
    if (!stbi_info_from_memory(p, len, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        if (why && strstr(why, "large"))
            return nn_fail(err, NN_ERR_LIMIT, "%s: %s image too large to "
                           "decode (%s)", name, fmt, why);
        return nn_fail(err, NN_ERR_FORMAT, "%s: damaged %s header (%s)", name,
                       fmt, why ? why : "unknown reason");
    }
    /* stb's BMP header reader reports a top-down BMP's height as stored,
     * negative; its decoder flips it. header_size checked |h| above. */
    if (!strcmp(fmt, "BMP") && h < 0 && h > -NN_MAX_IMAGE_SIDE - 1)
        h = -h;
    if ((st = check_size((uint64_t)(int64_t)w, (uint64_t)(int64_t)h, name,
                         fmt, err)) != NN_OK)
        return st;

    if (!strcmp(fmt, "PNG") && png_fast(p, size, out)) {
        nn_ok(err);
        return NN_OK;
    }
    const char *zerr = strcmp(fmt, "PNG") ? NULL : png_deflate_error(p, size);
    if (zerr)
        return nn_fail(err, NN_ERR_FORMAT, "%s: cannot decode PNG: corrupt "
                       "compressed data (%s)", name, zerr);

    const char *miss = strcmp(fmt, "JPEG") ? NULL : jpeg_missing_table(p, size);
    if (miss)
        return nn_fail(err, NN_ERR_FORMAT, "%s: cannot decode JPEG: a scan "
                       "uses a %s the file does not define", name, miss);

    bool sixteen = stbi_is_16_bit_from_memory(p, len) != 0;
    void *px;
    int dw = 0, dh = 0, dc = 0;
    if (sixteen)
        px = stbi_load_16_from_memory(p, len, &dw, &dh, &dc, 2);
    else
        px = stbi_load_from_memory(p, len, &dw, &dh, &dc, 2);
    if (!px) {
        const char *why = stbi_failure_reason();
        if (why && !strcmp(why, "outofmem"))
            return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory decoding "
                           "%dx%d %s", name, w, h, fmt);
        return nn_fail(err, NN_ERR_FORMAT, "%s: cannot decode %s: %s", name,
                       fmt, why ? why : "unknown reason");
    }
    if (dw != w || dh != h) {  /* never expected; do not trust either */
        stbi_image_free(px);
        return nn_fail(err, NN_ERR_FORMAT, "%s: %s header and data disagree "
                       "on the size", name, fmt);
    }
    size_t count = (size_t)w * (size_t)h;
    out->pixels = malloc(count);
    if (!out->pixels) {
        stbi_image_free(px);
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", name);
    }
    compose(px, sixteen, count, out->pixels);
    stbi_image_free(px);
    out->w = w;
    out->h = h;
    int orient = strcmp(fmt, "JPEG") ? 1 : jpeg_orientation(p, size);
    if (orient != 1 && !reorient(out, orient)) {
        nn_image_free(out);
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", name);
    }
    nn_ok(err);
    return NN_OK;
}

nn_status nn_image_load(const char *path, nn_image *out, nn_error *err)
{
    if (!out || !path)
        return nn_fail(err, NN_ERR_ARG, "nn_image_load: NULL argument");
    memset(out, 0, sizeof *out);
    void *buf;
    size_t n;
    nn_status st = nn_read_file(path, NN_MAX_IMAGE_BYTES, &buf, &n, err);
    if (st == NN_OK)
        st = nn_image_load_mem(buf, n, path, out, err);
    free(buf);
    return st;
}
