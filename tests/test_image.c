/*
 * test_image.c - nn_image_load / nn_image_load_mem on generated files:
 * every accepted format, grey conversion (luminance, 16-bit rounding,
 * palettes, alpha over white or black), and the error paths (not an image,
 * empty, truncated, absurd sizes) ending in a clear status and message.
 * Files live in a mkdtemp folder; PNGs that stb_image_write cannot make
 * (16-bit, palette, huge headers) are assembled here with zlib.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "cli/stb_write.h"
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "nn.h"

static char dir[64];

static const char *path_of(const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* ---- a minimal PNG writer: enough for 16-bit and palette images */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_be32(buf *b, uint32_t v)
{
    unsigned char q[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(b, q, 4);
}

static void chunk(buf *b, const char *type, const void *data, size_t n)
{
    put_be32(b, (uint32_t)n);
    size_t start = b->n;
    put(b, type, 4);
    if (n)
        put(b, data, n);
    put_be32(b, (uint32_t)crc32(0, b->p + start, (uInt)(n + 4)));
}

/* rows: h rows of `rowbytes` raw sample bytes (big-endian for 16 bit). */
static buf make_png(uint32_t w, uint32_t h, int depth, int colour,
                    const unsigned char *rows, size_t rowbytes,
                    const unsigned char *plte, size_t nplte,
                    const unsigned char *trns, size_t ntrns)
{
    buf b = {0};
    put(&b, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13];
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (unsigned char)(w >> (24 - 8 * i));
        ihdr[4 + i] = (unsigned char)(h >> (24 - 8 * i));
    }
    ihdr[8] = (unsigned char)depth;
    ihdr[9] = (unsigned char)colour;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    chunk(&b, "IHDR", ihdr, 13);
    if (plte)
        chunk(&b, "PLTE", plte, nplte);
    if (trns)
        chunk(&b, "tRNS", trns, ntrns);
    if (rows) {
        size_t raw_n = h * (rowbytes + 1);
        unsigned char *raw = calloc(raw_n, 1);
        assert_non_null(raw);
        for (uint32_t y = 0; y < h; y++)  /* filter byte 0, then the row */
            memcpy(raw + y * (rowbytes + 1) + 1, rows + y * rowbytes,
                   rowbytes);
        uLongf zn = compressBound((uLong)raw_n);
        unsigned char *z = malloc(zn);
        assert_non_null(z);
        assert_int_equal(compress(z, &zn, raw, (uLong)raw_n), Z_OK);
        chunk(&b, "IDAT", z, zn);
        free(z);
        free(raw);
    }
    chunk(&b, "IEND", NULL, 0);
    return b;
}

static nn_status load(const char *name, nn_image *img, nn_error *err)
{
    return nn_image_load(path_of(name), img, err);
}

/* ---------------------------------------------------------------- tests */

static void test_grey_png(void **state)
{
    (void)state;
    unsigned char px[3 * 2] = {0, 100, 255, 7, 128, 200};
    assert_true(stbi_write_png(path_of("grey.png"), 3, 2, 1, px, 3));
    nn_image img;
    nn_error err;
    assert_int_equal(load("grey.png", &img, &err), NN_OK);
    assert_int_equal(img.w, 3);
    assert_int_equal(img.h, 2);
    assert_memory_equal(img.pixels, px, 6);
    nn_image_free(&img);
    assert_null(img.pixels);
    nn_image_free(NULL);
}

static void test_rgb_luminance(void **state)
{
    (void)state;
    unsigned char px[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    assert_true(stbi_write_png(path_of("rgb.png"), 4, 1, 3, px, 12));
    nn_image img;
    nn_error err;
    assert_int_equal(load("rgb.png", &img, &err), NN_OK);
    /* 0.299, 0.587, 0.114 of 255: 76.2, 149.7, 29.1 (stb: 8-bit weights) */
    assert_in_range(img.pixels[0], 75, 77);
    assert_in_range(img.pixels[1], 148, 150);
    assert_in_range(img.pixels[2], 28, 30);
    assert_int_equal(img.pixels[3], 255);
    nn_image_free(&img);
}

static void test_rgba_over_white(void **state)
{
    (void)state;
    /* A canvas export: transparent background, a dark opaque stroke and
     * a half-transparent anti-aliased edge. */
    enum { W = 8, H = 8 };
    unsigned char px[W * H * 4] = {0};   /* transparent black */
    for (int y = 0; y < H; y++) {
        unsigned char *p = px + (y * W + 3) * 4;
        p[0] = p[1] = p[2] = 20;
        p[3] = 255;
        p[4] = p[5] = p[6] = 20;
        p[7] = 128;
    }
    assert_true(stbi_write_png(path_of("rgba.png"), W, H, 4, px, W * 4));
    nn_image img;
    nn_error err;
    assert_int_equal(load("rgba.png", &img, &err), NN_OK);
    assert_int_equal(img.pixels[0], 255);               /* clear -> paper */
    assert_int_equal(img.pixels[3], 20);                /* stroke */
    assert_in_range(img.pixels[4], 136, 138);           /* 20*.5 + 255*.5 */
    nn_image_free(&img);

    /* Light strokes on a clear canvas are composed over black. */
    for (int y = 0; y < H; y++) {
        unsigned char *p = px + (y * W + 3) * 4;
        p[0] = p[1] = p[2] = 240;
        p[4] = p[5] = p[6] = 240;
    }
    assert_true(stbi_write_png(path_of("rgba2.png"), W, H, 4, px, W * 4));
    assert_int_equal(load("rgba2.png", &img, &err), NN_OK);
    assert_int_equal(img.pixels[0], 0);
    assert_int_equal(img.pixels[3], 240);
    nn_image_free(&img);
}

static void test_png16(void **state)
{
    (void)state;
    /* 16-bit grey: v * 255 / 65535 rounded, not v >> 8 (which gives 0 for
     * 0x00c8 and 255 for 0xff00). */
    const uint16_t v[5] = {0x0000, 0x00c8, 0xffff, 0x1234, 0xff00};
    const uint8_t want[5] = {0, 1, 255, 18, 254};
    unsigned char rows[10];
    for (int i = 0; i < 5; i++) {
        rows[2 * i] = (unsigned char)(v[i] >> 8);
        rows[2 * i + 1] = (unsigned char)v[i];
    }
    buf b = make_png(5, 1, 16, 0, rows, 10, NULL, 0, NULL, 0);
    write_bytes(path_of("g16.png"), b.p, b.n);
    nn_image img;
    nn_error err;
    assert_int_equal(load("g16.png", &img, &err), NN_OK);
    assert_int_equal(img.w, 5);
    assert_memory_equal(img.pixels, want, 5);
    nn_image_free(&img);
    free(b.p);

    /* 16-bit RGBA: half-transparent black over white is mid grey. */
    unsigned char rgba[8] = {0, 0, 0, 0, 0, 0, 0x80, 0x00};
    b = make_png(1, 1, 16, 6, rgba, 8, NULL, 0, NULL, 0);
    assert_int_equal(nn_image_load_mem(b.p, b.n, "rgba16", &img, &err),
                     NN_OK);
    assert_in_range(img.pixels[0], 127, 128);
    nn_image_free(&img);
    free(b.p);
}

static void test_palette_png(void **state)
{
    (void)state;
    /* 4-entry palette, 8-bit indices; index 3 transparent via tRNS. */
    const unsigned char plte[12] = {0, 0, 0, 255, 0, 0, 255, 255, 255,
                                    10, 20, 30};
    const unsigned char trns[4] = {255, 255, 255, 0};
    unsigned char rows[4] = {0, 1, 2, 3};
    buf b = make_png(4, 1, 8, 3, rows, 4, plte, 12, trns, 4);
    write_bytes(path_of("pal.png"), b.p, b.n);
    nn_image img;
    nn_error err;
    assert_int_equal(load("pal.png", &img, &err), NN_OK);
    assert_int_equal(img.pixels[0], 0);
    assert_in_range(img.pixels[1], 75, 77);     /* red */
    assert_int_equal(img.pixels[2], 255);
    assert_int_equal(img.pixels[3], 255);       /* transparent -> white */
    nn_image_free(&img);
    free(b.p);

    /* 2-bit palette indices, no transparency. */
    unsigned char packed[1] = {0x1B};           /* 0 1 2 3 */
    b = make_png(4, 1, 2, 3, packed, 1, plte, 12, NULL, 0);
    assert_int_equal(nn_image_load_mem(b.p, b.n, NULL, &img, &err), NN_OK);
    assert_int_equal(img.pixels[0], 0);
    assert_int_equal(img.pixels[2], 255);
    assert_in_range(img.pixels[3], 17, 19);     /* (10, 20, 30) */
    nn_image_free(&img);
    free(b.p);
}

static void test_one_pixel(void **state)
{
    (void)state;
    unsigned char px[1] = {42};
    assert_true(stbi_write_png(path_of("one.png"), 1, 1, 1, px, 1));
    nn_image img;
    nn_error err;
    assert_int_equal(load("one.png", &img, &err), NN_OK);
    assert_int_equal(img.w, 1);
    assert_int_equal(img.h, 1);
    assert_int_equal(img.pixels[0], 42);
    nn_image_free(&img);
}

static void test_other_formats(void **state)
{
    (void)state;
    enum { W = 16, H = 12 };
    unsigned char rgb[W * H * 3];
    for (int i = 0; i < W * H; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] =
            (unsigned char)(i % W < W / 2 ? 30 : 220);
    nn_image img;
    nn_error err;

    assert_true(stbi_write_jpg(path_of("a.jpg"), W, H, 3, rgb, 95));
    assert_int_equal(load("a.jpg", &img, &err), NN_OK);
    assert_int_equal(img.w, W);
    assert_int_equal(img.h, H);
    assert_in_range(img.pixels[0], 20, 40);
    assert_in_range(img.pixels[W - 1], 210, 230);
    nn_image_free(&img);

    assert_true(stbi_write_bmp(path_of("a.bmp"), W, H, 3, rgb));
    assert_int_equal(load("a.bmp", &img, &err), NN_OK);
    assert_int_equal(img.pixels[0], 30);
    assert_int_equal(img.pixels[W - 1], 220);
    nn_image_free(&img);

    /* Binary PGM, 8 and 16 bit, and PPM. */
    const unsigned char pgm[] = "P5\n3 1\n255\n\x00\x80\xff";
    write_bytes(path_of("a.pgm"), pgm, sizeof pgm - 1);
    assert_int_equal(load("a.pgm", &img, &err), NN_OK);
    assert_int_equal(img.w, 3);
    assert_int_equal(img.pixels[1], 128);
    nn_image_free(&img);
    const unsigned char pgm16[] = "P5 3 1 # comment\n65535 "
                                  "\xff\x00\x00\xc8\xff\xff";
    write_bytes(path_of("b.pgm"), pgm16, sizeof pgm16 - 1);
    assert_int_equal(load("b.pgm", &img, &err), NN_OK);
    assert_int_equal(img.w, 3);
    assert_int_equal(img.pixels[0], 254);   /* big-endian, rounded */
    assert_int_equal(img.pixels[1], 1);
    assert_int_equal(img.pixels[2], 255);
    nn_image_free(&img);
    const unsigned char pgm15[] = "P5\n2 1\n15\n\x0f\x07";
    write_bytes(path_of("c.pgm"), pgm15, sizeof pgm15 - 1);
    assert_int_equal(load("c.pgm", &img, &err), NN_OK);
    assert_int_equal(img.pixels[0], 255);   /* scaled by maxval */
    assert_int_equal(img.pixels[1], 119);
    nn_image_free(&img);
    write_bytes(path_of("short.pgm"), "P5\n4 4\n255\n\x01\x02", 14);
    assert_int_equal(load("short.pgm", &img, &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
    const unsigned char ppm[] = "P6\n1 1\n255\n\xff\x00\x00";
    assert_int_equal(nn_image_load_mem(ppm, sizeof ppm - 1, "a.ppm", &img,
                                       &err), NN_OK);
    assert_in_range(img.pixels[0], 75, 77);
    nn_image_free(&img);

    /* GIF: 2x1, palette (black, white), pixels 1 0, LZW min code size 2. */
    const unsigned char gif[] = {
        'G', 'I', 'F', '8', '9', 'a', 2, 0, 1, 0, 0x80, 0, 0,
        0, 0, 0, 255, 255, 255,                       /* palette */
        0x2C, 0, 0, 0, 0, 2, 0, 1, 0, 0,              /* image descriptor */
        2, 2, 0x0C, 0x0A, 0, 0x3B};                   /* clear 1 0 end */
    assert_int_equal(nn_image_load_mem(gif, sizeof gif, "a.gif", &img, &err),
                     NN_OK);
    assert_int_equal(img.w, 2);
    assert_int_equal(img.pixels[0], 255);
    assert_int_equal(img.pixels[1], 0);
    nn_image_free(&img);
}

static void to_buf(void *ctx, void *data, int size)
{
    put(ctx, data, (size_t)size);
}

/* A JPEG with an Exif APP1 segment holding Orientation = o, in Intel
 * (little-endian) or Motorola byte order. */
static buf jpeg_with_orientation(const unsigned char *px, int w, int h,
                                 int o, bool intel)
{
    buf j = {0}, b = {0};
    assert_true(stbi_write_jpg_to_func(to_buf, &j, w, h, 1, px, 95));
    const unsigned char tiff_le[26] = {
        'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
        0x12, 0x01, 3, 0, 1, 0, 0, 0, (unsigned char)o, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char tiff_be[26] = {
        'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
        0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (unsigned char)o, 0, 0, 0, 0, 0, 0};
    const unsigned char app1[4] = {0xFF, 0xE1, 0, 2 + 6 + 26};
    put(&b, j.p, 2);                                    /* SOI */
    put(&b, app1, 4);
    put(&b, "Exif\0\0", 6);
    put(&b, intel ? tiff_le : tiff_be, 26);
    put(&b, j.p + 2, j.n - 2);
    free(j.p);
    return b;
}

static void test_jpeg_orientation(void **state)
{
    (void)state;
    /* 32x16, the top-left 16x8 quarter dark: where it shows after each
     * turn tells the turn. */
    enum { W = 32, H = 16 };
    unsigned char px[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            px[y * W + x] = (unsigned char)(x < 16 && y < 8 ? 20 : 230);
    static const struct {
        int o, w, h, dark_x, dark_y;   /* a pixel inside the dark quarter */
    } cases[] = {
        {1, W, H, 4, 4},   {2, W, H, 28, 4},  {3, W, H, 28, 12},
        {4, W, H, 4, 12},  {5, H, W, 4, 4},   {6, H, W, 12, 4},
        {7, H, W, 12, 28}, {8, H, W, 4, 28},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (int intel = 0; intel < 2; intel++) {
            buf b = jpeg_with_orientation(px, W, H, cases[k].o, intel);
            nn_image img;
            nn_error err;
            assert_int_equal(nn_image_load_mem(b.p, b.n, "exif.jpg", &img,
                                               &err), NN_OK);
            free(b.p);
            assert_int_equal(img.w, cases[k].w);
            assert_int_equal(img.h, cases[k].h);
            int dx = cases[k].dark_x, dy = cases[k].dark_y;
            assert_true(img.pixels[dy * img.w + dx] < 60);
            /* the opposite corner is light */
            assert_true(img.pixels[(img.h - 1 - dy) * img.w +
                                   (img.w - 1 - dx)] > 190);
            nn_image_free(&img);
        }
}

/* Every failure: the status, the file's name in the message, *out zeroed. */
static void expect_fail(const char *name, nn_status want, const char *text)
{
    nn_image img = {7, 7, (uint8_t *)&img};
    nn_error err;
    assert_int_equal(load(name, &img, &err), want);
    assert_int_equal(err.code, want);
    assert_null(img.pixels);
    assert_int_equal(img.w, 0);
    if (!strstr(err.msg, name) || !strstr(err.msg, text))
        fail_msg("message '%s' lacks '%s' or '%s'", err.msg, name, text);
}

static void test_errors(void **state)
{
    (void)state;
    write_bytes(path_of("text.png"), "hello, I am not a picture\n", 26);
    expect_fail("text.png", NN_ERR_FORMAT, "not an image");
    write_bytes(path_of("empty.png"), "", 0);
    expect_fail("empty.png", NN_ERR_FORMAT, "empty");
    expect_fail("missing.png", NN_ERR_IO, "cannot open");
    assert_int_equal(mkdir(path_of("folder.png"), 0700), 0);
    expect_fail("folder.png", NN_ERR_IO, "folder");
    write_bytes(path_of("plain.pgm"), "P2\n1 1\n255\n0\n", 13);
    expect_fail("plain.pgm", NN_ERR_FORMAT, "ASCII");

    /* A valid PNG cut short: header only, then half its data. */
    enum { W = 64, H = 64 };
    unsigned char px[W * H];
    for (int i = 0; i < W * H; i++)
        px[i] = (unsigned char)(i * 7919 % 251);
    assert_true(stbi_write_png(path_of("full.png"), W, H, 1, px, W));
    size_t n;
    unsigned char *p = read_bytes(path_of("full.png"), &n);
    write_bytes(path_of("trunc.png"), p, n / 2);
    expect_fail("trunc.png", NN_ERR_FORMAT, "PNG");
    write_bytes(path_of("trunc2.png"), p, 30);
    expect_fail("trunc2.png", NN_ERR_FORMAT, "PNG");
    free(p);

    /* Headers claiming absurd sizes: refused from the header, fast. */
    clock_t t0 = clock();
    buf b = make_png(100000, 100000, 8, 0, NULL, 0, NULL, 0, NULL, 0);
    write_bytes(path_of("huge.png"), b.p, b.n);
    free(b.p);
    expect_fail("huge.png", NN_ERR_LIMIT, "100000x100000");
    b = make_png(20000, 2, 8, 0, NULL, 0, NULL, 0, NULL, 0);
    write_bytes(path_of("wide.png"), b.p, b.n);
    free(b.p);
    expect_fail("wide.png", NN_ERR_LIMIT, "limit");
    b = make_png(0xffffffffu, 1, 8, 0, NULL, 0, NULL, 0, NULL, 0);
    write_bytes(path_of("max.png"), b.p, b.n);
    free(b.p);
    expect_fail("max.png", NN_ERR_LIMIT, "limit");
    /* 10000x10000 = 100 Mpx: each side allowed, the area not. */
    b = make_png(10000, 10000, 8, 0, NULL, 0, NULL, 0, NULL, 0);
    write_bytes(path_of("area.png"), b.p, b.n);
    free(b.p);
    expect_fail("area.png", NN_ERR_LIMIT, "10000x10000");
    /* A JPEG start-of-frame claiming 60000x60000. */
    const unsigned char jpg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8,
                                 0xEA, 0x60, 0xEA, 0x60, 3, 1, 0x11, 0,
                                 2, 0x11, 0, 3, 0x11, 0, 0xFF, 0xD9};
    write_bytes(path_of("huge.jpg"), jpg, sizeof jpg);
    expect_fail("huge.jpg", NN_ERR_LIMIT, "60000x60000");
    /* A BMP header claiming 50000x50000. */
    unsigned char bmp[54] = {'B', 'M'};
    bmp[10] = 54;
    bmp[14] = 40;
    bmp[18] = 0x50, bmp[19] = 0xC3;   /* 50000 */
    bmp[22] = 0x50, bmp[23] = 0xC3;
    bmp[26] = 1;
    bmp[28] = 24;
    write_bytes(path_of("huge.bmp"), bmp, sizeof bmp);
    expect_fail("huge.bmp", NN_ERR_LIMIT, "");
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 1.0);

    /* Memory: same checks, name in the message, NULL name allowed. */
    nn_image img;
    nn_error err;
    assert_int_equal(nn_image_load_mem("", 0, "stdin", &img, &err),
                     NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "stdin"));
    assert_int_equal(nn_image_load_mem("xyz", 3, NULL, &img, &err),
                     NN_ERR_FORMAT);
    assert_int_equal(nn_image_load_mem(NULL, 10, NULL, &img, &err),
                     NN_ERR_ARG);
    assert_int_equal(nn_image_load_mem("xyz", 3, NULL, NULL, &err),
                     NN_ERR_ARG);
    assert_int_equal(nn_image_load(NULL, &img, NULL), NN_ERR_ARG);
}

/* Damaged files of every kind: whatever the outcome, no crash, and a
 * failure always comes with a message (run under ASan by make sanitize). */
static void test_damaged_no_crash(void **state)
{
    (void)state;
    enum { W = 23, H = 17 };
    unsigned char rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (unsigned char)(i * 31 % 256);
    const char *names[] = {"d.png", "d.jpg", "d.bmp"};
    assert_true(stbi_write_png(path_of(names[0]), W, H, 3, rgb, W * 3));
    assert_true(stbi_write_jpg(path_of(names[1]), W, H, 3, rgb, 80));
    assert_true(stbi_write_bmp(path_of(names[2]), W, H, 3, rgb));
    uint32_t seed = 12345;
    for (int f = 0; f < 3; f++) {
        size_t n;
        unsigned char *orig = read_bytes(path_of(names[f]), &n);
        unsigned char *p = malloc(n);
        assert_non_null(p);
        for (int trial = 0; trial < 300; trial++) {
            memcpy(p, orig, n);
            size_t len = n;
            if (trial % 3 == 0) {
                len = (size_t)trial * n / 300;
            } else {
                for (int k = 0; k < 1 + trial % 8; k++) {
                    seed = seed * 1664525u + 1013904223u;
                    p[(seed >> 8) % n] = (unsigned char)(seed >> 24);
                }
            }
            nn_image img;
            nn_error err;
            nn_status s = nn_image_load_mem(p, len, names[f], &img, &err);
            if (s == NN_OK) {   /* a damaged header may give another size */
                assert_true(img.w > 0 && img.w <= NN_MAX_IMAGE_SIDE);
                assert_true(img.h > 0 && img.h <= NN_MAX_IMAGE_SIDE);
                assert_non_null(img.pixels);
                nn_image_free(&img);
            } else {
                assert_non_null(strstr(err.msg, names[f]));
                assert_null(img.pixels);
            }
        }
        free(p);
        free(orig);
    }
}

/* A PNG whose compressed data is invalid is refused before stb_image
 * decodes it (stb's inflater reads memory it never wrote on such data:
 * fuzz/regress/image/png-bad-huffman-stb-uninit, found by valgrind). A
 * stream that is only cut short still goes to stb and fails there. */
static void test_png_corrupt_deflate(void **state)
{
    (void)state;
    unsigned char grey[8 * 8];
    for (int i = 0; i < 64; i++)
        grey[i] = (unsigned char)(i * 4);
    assert_true(stbi_write_png(path_of("z.png"), 8, 8, 1, grey, 8));
    size_t n;
    unsigned char *p = read_bytes(path_of("z.png"), &n);
    unsigned char *idat = NULL;
    for (size_t i = 8; i + 4 <= n && !idat; i++)
        if (!memcmp(p + i, "IDAT", 4))
            idat = p + i;
    assert_non_null(idat);
    idat[4 + 2] = 0x07;   /* first deflate block: BFINAL=1, BTYPE=11 */
    nn_image img;
    nn_error err;
    assert_int_equal(nn_image_load_mem(p, n, "z.png", &img, &err),
                     NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "z.png: cannot decode PNG: corrupt "
                                    "compressed data (invalid block type)"));
    assert_null(img.pixels);
    free(p);
}

/* A JPEG whose scan uses a quantization or Huffman table the file never
 * defines is refused: stb would decode it from memory it never wrote
 * (fuzz/regress/image/jpeg-no-dqt-stb-uninit, found by valgrind). */
static void test_jpeg_missing_tables(void **state)
{
    (void)state;
    unsigned char grey[8 * 8];
    for (int i = 0; i < 64; i++)
        grey[i] = (unsigned char)(i * 4);
    assert_true(stbi_write_jpg(path_of("t.jpg"), 8, 8, 1, grey, 90));
    size_t n;
    unsigned char *p = read_bytes(path_of("t.jpg"), &n);
    const unsigned char markers[2] = {0xDB, 0xC4};   /* DQT, DHT */
    const char *what[2] = {"quantization table", "Huffman table"};
    for (int k = 0; k < 2; k++) {
        nn_image img;
        nn_error err;
        assert_int_equal(nn_image_load_mem(p, n, "t.jpg", &img, &err), NN_OK);
        nn_image_free(&img);
        size_t at = 0;
        for (size_t i = 2; i + 1 < n && !at; i++)
            if (p[i] == 0xFF && p[i + 1] == markers[k])
                at = i + 1;
        assert_true(at > 0);
        p[at] = 0xEF;   /* the table segment becomes an APP15: skipped */
        assert_int_equal(nn_image_load_mem(p, n, "t.jpg", &img, &err),
                         NN_ERR_FORMAT);
        assert_non_null(strstr(err.msg, what[k]));
        assert_null(img.pixels);
        p[at] = markers[k];
    }
    free(p);
}

/* A top-down BMP (negative height, rows stored first to last) decodes the
 * right way up; stb_image's header reader reports the height negative. */
static void test_bmp_top_down(void **state)
{
    (void)state;
    enum { W = 4, H = 3 };
    unsigned char bmp[54 + H * W * 3] = {'B', 'M'};
    bmp[2] = sizeof bmp;
    bmp[10] = 54;
    bmp[14] = 40;
    bmp[18] = W;
    int32_t h = -H;
    uint32_t uh = (uint32_t)h;
    for (int i = 0; i < 4; i++)
        bmp[22 + i] = (unsigned char)(uh >> (8 * i));
    bmp[26] = 1;
    bmp[28] = 24;
    for (int y = 0; y < H; y++)       /* stored row y is picture row y */
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                bmp[54 + (y * W + x) * 3 + c] = (unsigned char)(y * 100 + x);
    nn_image img;
    nn_error err;
    assert_int_equal(nn_image_load_mem(bmp, sizeof bmp, "td.bmp", &img, &err),
                     NN_OK);
    assert_int_equal(img.w, W);
    assert_int_equal(img.h, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            assert_int_equal(img.pixels[y * W + x], y * 100 + x);
    nn_image_free(&img);
    /* the same rows bottom-up (positive height) come out flipped */
    bmp[22] = H, bmp[23] = bmp[24] = bmp[25] = 0;
    assert_int_equal(nn_image_load_mem(bmp, sizeof bmp, "bu.bmp", &img, &err),
                     NN_OK);
    assert_int_equal(img.pixels[0], (H - 1) * 100);
    nn_image_free(&img);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_image.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* 8-bit PNGs are decoded by our own path (image.c, png_fast) with zlib;
 * it must give what stb gives (luminance 77/150/29 >> 8, alpha composed
 * over white) for every filter type and channel count, and a 28x28 image
 * too. Reference: stb_image itself, composed here by the formula. */
static void test_png_fast_matches_stb(void **state)
{
    (void)state;
    enum { W = 37, H = 23 };
    unsigned char px[W * H * 4];
    uint32_t r = 12345;
    for (int pattern = 0; pattern < 2; pattern++) {
    for (int i = 0; i < W * H * 4; i++) {
        r = r * 1103515245u + 12345u;
        int x = (i / 4) % W, y = (i / 4) / W;
        /* 0: smooth ramps and noise, alpha mostly opaque; 1: level paper
         * with a noisy disc of ink off-centre (runs of paper of every
         * length, ending anywhere in a row: png_fast's paper runs) */
        bool ink = (x - 14) * (x - 14) + (y - 9) * (y - 9) < 40;
        if (pattern == 0)
            px[i] = (unsigned char)((i % 4 == 3) ? 255 - (r >> 28) * 5
                                                 : x * 5 + y * 3 + (r >> 29));
        else
            px[i] = (unsigned char)(ink ? 40 + (r >> 27) : 250);
    }
    for (int ch = 1; ch <= 4; ch++)
        for (int filter = -1; filter <= 5; filter++) {
            stbi_write_force_png_filter = filter;
            buf b = {0};
            assert_true(stbi_write_png_to_func(to_buf, &b, W, H, ch, px,
                                               W * ch));
            const unsigned char *png = b.p;
            int len = (int)b.n;
            nn_image img;
            nn_error err;
            assert_int_equal(nn_image_load_mem(png, (size_t)len, "f.png",
                                               &img, &err), NN_OK);
            int w, h, c;
            unsigned char *ref = stbi_load_from_memory(png, len, &w, &h, &c,
                                                       2);
            assert_non_null(ref);
            assert_int_equal(img.w, W);
            assert_int_equal(img.h, H);
            for (int i = 0; i < W * H; i++) {
                unsigned y = ref[2 * i], a = ref[2 * i + 1];
                unsigned v = y * a + 255 * (255 - a);
                assert_int_equal(img.pixels[i],
                                 (v * 255 + 255 * 255 / 2) / (255 * 255));
            }
            stbi_image_free(ref);
            nn_image_free(&img);
            free(b.p);
        }
    }
    stbi_write_force_png_filter = -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grey_png),
        cmocka_unit_test(test_rgb_luminance),
        cmocka_unit_test(test_rgba_over_white),
        cmocka_unit_test(test_png16),
        cmocka_unit_test(test_palette_png),
        cmocka_unit_test(test_one_pixel),
        cmocka_unit_test(test_other_formats),
        cmocka_unit_test(test_jpeg_orientation),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_damaged_no_crash),
        cmocka_unit_test(test_png_corrupt_deflate),
        cmocka_unit_test(test_jpeg_missing_tables),
        cmocka_unit_test(test_bmp_top_down),
        cmocka_unit_test(test_png_fast_matches_stb),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
