/*
 * test_preprocess.c - nn_preprocess_digit on generated pictures: polarity,
 * centring by centre of mass, the 20x20 box, aspect ratio, noise and
 * specks, blank pictures, argument errors; and, when MNIST is in
 * data/mnist (or $MNIST_DIR), round trips of real test digits through PNG
 * and JPEG files against a small model trained here.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/stb_write.h"

#include "nn.h"

enum { S = NN_DIGIT_SIDE };

/* ------------------------------------------------------------ drawing */

/* A picture: grey (h, w), owned. */
static nn_image canvas(int w, int h, uint8_t fill)
{
    nn_image img = {w, h, malloc((size_t)w * h)};
    assert_non_null(img.pixels);
    memset(img.pixels, fill, (size_t)w * h);
    return img;
}

static double seg_dist(double px, double py, double ax, double ay, double bx,
                       double by)
{
    double dx = bx - ax, dy = by - ay;
    double t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return sqrt(ex * ex + ey * ey);
}

/* A "7" with a crossbar, anti-aliased, in the box (x0, y0, size wide,
 * 1.4 * size tall), stroke `pen` pixels wide: ink blends from paper to ink. */
static void draw_seven_pen(nn_image *img, double x0, double y0, double size,
                           double pen, uint8_t paper, uint8_t ink)
{
    static const double seg[3][4] = {
        {0.1, 0.1, 0.9, 0.1}, {0.9, 0.1, 0.4, 1.3}, {0.35, 0.7, 0.8, 0.7}};
    double half = pen / 2;
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++) {
            double px = (x + 0.5 - x0) / size, py = (y + 0.5 - y0) / size;
            double d = 1e9;
            for (int k = 0; k < 3; k++) {
                double e = seg_dist(px, py, seg[k][0], seg[k][1], seg[k][2],
                                    seg[k][3]);
                d = e < d ? e : d;
            }
            double cov = half - d * size + 0.5;  /* pixels of coverage */
            cov = cov < 0 ? 0 : cov > 1 ? 1 : cov;
            if (cov > 0)
                img->pixels[(size_t)y * img->w + x] =
                    (uint8_t)lround(paper + (ink - paper) * cov);
        }
}

/* The same with a stroke of size/8, about MNIST's. */
static void draw_seven(nn_image *img, double x0, double y0, double size,
                       uint8_t paper, uint8_t ink)
{
    draw_seven_pen(img, x0, y0, size, size / 8, paper, ink);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Gaussian-ish noise of about `sigma` levels (sum of uniforms). */
static void add_noise(nn_image *img, double sigma, uint32_t seed)
{
    for (size_t i = 0; i < (size_t)img->w * img->h; i++) {
        double u = 0;
        for (int k = 0; k < 4; k++)
            u += lcg(&seed) / 16777216.0 - 0.5;
        double v = img->pixels[i] + u * sigma * sqrt(3.0);
        img->pixels[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
    }
}

/* ---------------------------------------------------------- checking */

static nn_preprocess_info run(const nn_image *img, uint8_t *out)
{
    nn_preprocess_info info;
    nn_error err;
    assert_int_equal(nn_preprocess_digit(img, NULL, out, &info, &err),
                     NN_OK);
    return info;
}

typedef struct stats {
    double cx, cy;        /* centre of mass */
    int x0, y0, x1, y1;   /* bounding box of ink, inclusive */
    int max;
} stats;

static stats measure(const uint8_t *p)
{
    stats s = {0, 0, S, S, -1, -1, 0};
    double m = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int v = p[y * S + x];
            if (!v)
                continue;
            m += v;
            s.cx += (double)v * x;
            s.cy += (double)v * y;
            s.x0 = x < s.x0 ? x : s.x0;
            s.x1 = x > s.x1 ? x : s.x1;
            s.y0 = y < s.y0 ? y : s.y0;
            s.y1 = y > s.y1 ? y : s.y1;
            s.max = v > s.max ? v : s.max;
        }
    assert_true(m > 0);
    s.cx /= m;
    s.cy /= m;
    return s;
}

/* Centred within half a pixel, fits 20x20 with the long side filling it. */
static void expect_mnist_like(const uint8_t *out)
{
    stats s = measure(out);
    assert_true(fabs(s.cx - 14) <= 0.5);
    assert_true(fabs(s.cy - 14) <= 0.5);
    int bw = s.x1 - s.x0 + 1, bh = s.y1 - s.y0 + 1;
    assert_true(bw <= NN_DIGIT_BOX && bh <= NN_DIGIT_BOX);
    assert_true(bw >= NN_DIGIT_BOX - 1 || bh >= NN_DIGIT_BOX - 1);
    assert_int_equal(s.max, 255);
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b)
{
    double d = 0;
    for (int i = 0; i < S * S; i++)
        d += abs(a[i] - b[i]);
    return d / (S * S);
}

/* ---------------------------------------------------------------- tests */

static void test_polarity_same_result(void **state)
{
    (void)state;
    nn_image light = canvas(140, 180, 0), dark = canvas(140, 180, 0);
    draw_seven(&light, 30, 25, 90, 0, 255);
    for (size_t i = 0; i < 140 * 180; i++)
        dark.pixels[i] = (uint8_t)(255 - light.pixels[i]);
    uint8_t a[S * S], b[S * S];
    nn_preprocess_info ia = run(&light, a), ib = run(&dark, b);
    assert_true(ia.found && ib.found);
    assert_false(ia.inverted);
    assert_true(ib.inverted);
    assert_int_equal(ia.background, 0);
    assert_int_equal(ib.background, 255);
    assert_memory_equal(a, b, sizeof a);
    expect_mnist_like(a);

    /* Forcing the polarity gives the same; grey paper and grey ink (pencil
     * on grey paper) nearly the same after the level is stretched. */
    nn_preprocess_options o = nn_preprocess_defaults();
    o.ink = NN_INK_DARK;
    uint8_t c[S * S];
    nn_preprocess_info ic;
    assert_int_equal(nn_preprocess_digit(&dark, &o, c, &ic, NULL), NN_OK);
    assert_memory_equal(a, c, sizeof a);
    nn_image pencil = canvas(140, 180, 200);
    draw_seven(&pencil, 30, 25, 90, 200, 90);
    nn_preprocess_info ip = run(&pencil, c);
    assert_true(ip.inverted);
    assert_int_equal(ip.background, 200);
    assert_true(mean_abs_diff(a, c) < 2.0);
    nn_image_free(&light);
    nn_image_free(&dark);
    nn_image_free(&pencil);
}

static void test_off_centre_large_canvas(void **state)
{
    (void)state;
    /* A small digit near the top-right corner of a large page. */
    nn_image img = canvas(1200, 900, 235);
    draw_seven(&img, 950, 60, 150, 235, 25);
    uint8_t out[S * S];
    nn_preprocess_info info = run(&img, out);
    assert_true(info.found && info.inverted);
    /* the stroke's edge: 0.1 - 1/16 of the size from the drawing's corner */
    assert_in_range(info.box_x, 950 + 4, 950 + 7);
    assert_in_range(info.box_y, 60 + 4, 60 + 7);
    assert_in_range(info.box_h, 195, 202);
    assert_true(fabs(info.cx - 14) <= 0.5 && fabs(info.cy - 14) <= 0.5);
    expect_mnist_like(out);

    /* The same digit drawn small in the middle of a 60x60 picture gives
     * nearly the same 28x28: position and size are normalised away. */
    nn_image small = canvas(60, 60, 235);
    draw_seven(&small, 12, 6, 30, 235, 25);
    uint8_t out2[S * S];
    assert_true(run(&small, out2).found);
    expect_mnist_like(out2);
    assert_true(mean_abs_diff(out, out2) < 12.0);
    nn_image_free(&img);
    nn_image_free(&small);
}

static void test_centre_of_mass_many(void **state)
{
    (void)state;
    uint32_t seed = 7;
    for (int k = 0; k < 40; k++) {
        int w = 40 + (int)(lcg(&seed) % 400), h = 40 + (int)(lcg(&seed) % 400);
        double size = 8 + (double)(lcg(&seed) % 1000) / 1000.0 *
                          ((w < h / 1.4 ? w : h / 1.4) * 0.7 - 8);
        double x0 = (double)(lcg(&seed) % 1000) / 1000.0 * (w - size);
        double y0 = (double)(lcg(&seed) % 1000) / 1000.0 * (h - size * 1.4);
        bool darkink = k % 2;
        nn_image img = canvas(w, h, darkink ? 250 : 5);
        draw_seven(&img, x0, y0, size, darkink ? 250 : 5, darkink ? 10 : 245);
        uint8_t out[S * S];
        nn_preprocess_info info = run(&img, out);
        assert_true(info.found);
        assert_int_equal(info.inverted, darkink);
        expect_mnist_like(out);
        nn_image_free(&img);
    }
}

static void test_aspect_ratio(void **state)
{
    (void)state;
    /* A "1": a bar 12 wide, 200 tall: 20 tall, about 1 wide after. */
    nn_image img = canvas(300, 300, 255);
    for (int y = 50; y < 250; y++)
        memset(img.pixels + y * 300 + 140, 0, 12);
    uint8_t out[S * S];
    nn_preprocess_info info = run(&img, out);
    assert_true(info.found);
    assert_int_equal(info.box_w, 12);
    assert_int_equal(info.box_h, 200);
    stats s = measure(out);
    assert_int_equal(s.y1 - s.y0 + 1, 20);
    assert_in_range(s.x1 - s.x0 + 1, 1, 2);
    /* A "-": wide and flat. */
    memset(img.pixels, 255, 300 * 300);
    for (int y = 140; y < 160; y++)
        memset(img.pixels + y * 300 + 50, 0, 200);
    info = run(&img, out);
    s = measure(out);
    assert_int_equal(s.x1 - s.x0 + 1, 20);
    assert_int_equal(s.y1 - s.y0 + 1, 2);
    nn_image_free(&img);
}

static void test_upscale_tiny_digit(void **state)
{
    (void)state;
    /* A digit 7 pixels wide is enlarged (bilinear) to fill the box. */
    nn_image img = canvas(32, 32, 255);
    draw_seven(&img, 10, 8, 7, 255, 0);
    uint8_t out[S * S];
    nn_preprocess_info info = run(&img, out);
    assert_true(info.found);
    assert_true(info.box_h <= 12);
    expect_mnist_like(out);
    nn_image_free(&img);
}

static void test_identity_on_mnist_like(void **state)
{
    (void)state;
    /* A clean 28x28 picture whose ink already fills 20 rows, centred
     * (centre of mass at 14.5, 14.5: half-way rounds up), with the
     * strongest ink at 255, comes back unchanged. */
    nn_image img = canvas(28, 28, 0);
    for (int y = 5; y < 25; y++)
        for (int x = 13; x < 17; x++)
            img.pixels[y * 28 + x] = (uint8_t)(x == 13 || x == 16 ? 128 : 255);
    uint8_t out[S * S];
    assert_true(run(&img, out).found);
    assert_memory_equal(out, img.pixels, S * S);
    nn_image_free(&img);
}

static void test_noise_and_specks(void **state)
{
    (void)state;
    nn_image clean = canvas(400, 400, 220);
    draw_seven(&clean, 120, 80, 140, 220, 40);
    uint8_t want[S * S], out[S * S];
    nn_preprocess_info ci = run(&clean, want);
    assert_true(ci.found);

    /* Paper noise: same box within a few pixels, nearly the same result. */
    nn_image noisy = canvas(400, 400, 0);
    memcpy(noisy.pixels, clean.pixels, 400 * 400);
    add_noise(&noisy, 8, 99);
    nn_preprocess_info ni = run(&noisy, out);
    assert_true(ni.found && ni.inverted);
    assert_true(abs(ni.box_x - ci.box_x) <= 3 && abs(ni.box_y - ci.box_y) <= 3);
    assert_true(abs(ni.box_w - ci.box_w) <= 6 && abs(ni.box_h - ci.box_h) <= 6);
    assert_true(mean_abs_diff(want, out) < 6.0);
    expect_mnist_like(out);

    /* Dust: small dark specks far from the digit are not ink. */
    memcpy(noisy.pixels, clean.pixels, 400 * 400);
    for (int k = 0; k < 6; k++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                noisy.pixels[(20 + y + k * 60) * 400 + 15 + x + k * 7] = 30;
    ni = run(&noisy, out);
    assert_int_equal(ni.box_x, ci.box_x);
    assert_int_equal(ni.box_y, ci.box_y);
    assert_int_equal(ni.box_w, ci.box_w);
    assert_int_equal(ni.box_h, ci.box_h);
    assert_memory_equal(want, out, sizeof out);
    nn_image_free(&clean);
    nn_image_free(&noisy);
}

static void test_uneven_light(void **state)
{
    (void)state;
    /* A photo whose paper falls from 250 on the left to 110 on the right
     * (a lamp on one side): the paper is a plane, not one level. */
    nn_image clean = canvas(500, 400, 250), lit = canvas(500, 400, 0);
    draw_seven(&clean, 150, 60, 180, 250, 30);
    for (int y = 0; y < 400; y++)
        for (int x = 0; x < 500; x++) {
            double light = 1.0 - 0.56 * x / 499.0;
            lit.pixels[y * 500 + x] =
                (uint8_t)lround(clean.pixels[y * 500 + x] * light);
        }
    add_noise(&lit, 3, 17);
    uint8_t want[S * S], out[S * S];
    nn_preprocess_info ci = run(&clean, want), li = run(&lit, out);
    assert_true(li.found && li.inverted);
    assert_true(abs(li.box_x - ci.box_x) <= 3 && abs(li.box_y - ci.box_y) <= 3);
    assert_true(abs(li.box_w - ci.box_w) <= 6 && abs(li.box_h - ci.box_h) <= 6);
    assert_true(mean_abs_diff(want, out) < 8.0);
    expect_mnist_like(out);
    nn_image_free(&clean);
    nn_image_free(&lit);
}

static int count_at_least(const uint8_t *p, int v)
{
    int n = 0;
    for (int i = 0; i < S * S; i++)
        n += p[i] >= v;
    return n;
}

static void test_thin_pen(void **state)
{
    (void)state;
    /* A 2-pixel pen on a 420-pixel digit would shrink to a tenth of a
     * pixel; it is thickened to about MNIST's stroke instead. */
    nn_image thin = canvas(500, 650, 240), thick = canvas(500, 650, 240);
    draw_seven_pen(&thin, 40, 40, 420, 2, 240, 20);
    draw_seven(&thick, 40, 40, 420, 240, 20);
    uint8_t a[S * S], b[S * S];
    assert_true(run(&thin, a).found);
    assert_true(run(&thick, b).found);
    expect_mnist_like(a);
    int na = count_at_least(a, 128), nb = count_at_least(b, 128);
    assert_true(na >= nb * 6 / 10);
    assert_true(mean_abs_diff(a, b) < 10.0);   /* 17 without thickening */
    /* A normal pen is left alone: the result does not depend on whether
     * thickening is possible, since its strokes are already MNIST's. */
    draw_seven_pen(&thin, 40, 40, 420, 420 / 8.0, 240, 20);
    assert_true(run(&thin, a).found);
    assert_memory_equal(a, b, sizeof a);
    nn_image_free(&thin);
    nn_image_free(&thick);
}

static void expect_blank(nn_image *img)
{
    uint8_t out[S * S], zero[S * S] = {0};
    memset(out, 9, sizeof out);
    nn_preprocess_info info = run(img, out);
    assert_false(info.found);
    assert_memory_equal(out, zero, sizeof out);
    nn_image_free(img);
}

static void test_no_digit(void **state)
{
    (void)state;
    nn_image img = canvas(200, 150, 255);
    expect_blank(&img);                         /* all white */
    img = canvas(200, 150, 0);
    expect_blank(&img);                         /* all black */
    img = canvas(200, 150, 128);
    expect_blank(&img);                         /* uniform grey */
    img = canvas(1, 1, 255);
    expect_blank(&img);                         /* 1x1 */
    img = canvas(1, 1, 0);
    expect_blank(&img);
    img = canvas(300, 300, 200);
    add_noise(&img, 6, 5);
    expect_blank(&img);                         /* paper noise only */
    img = canvas(300, 300, 0);                  /* uniform noise */
    uint32_t seed = 3;
    for (int i = 0; i < 300 * 300; i++)
        img.pixels[i] = (uint8_t)(lcg(&seed) >> 16);
    expect_blank(&img);
    img = canvas(300, 300, 240);                /* a faint smudge */
    draw_seven(&img, 100, 80, 90, 240, 225);
    expect_blank(&img);
}

static void test_small_pictures(void **state)
{
    (void)state;
    /* Tiny and degenerate pictures: no crash, sensible answers. */
    uint8_t out[S * S];
    nn_image img = canvas(2, 2, 255);
    img.pixels[3] = 0;
    nn_preprocess_info info = run(&img, out);
    assert_true(info.found);
    expect_mnist_like(out);
    nn_image_free(&img);
    for (int w = 1; w <= 3; w++)
        for (int h = 1; h <= 3; h++) {
            img = canvas(w, h, 0);
            img.pixels[0] = 255;
            run(&img, out);
            nn_image_free(&img);
        }
    img = canvas(1000, 1, 255);                 /* one row */
    memset(img.pixels + 300, 0, 100);
    info = run(&img, out);
    assert_true(info.found);
    assert_int_equal(info.box_w, 100);
    nn_image_free(&img);
}

static void test_errors(void **state)
{
    (void)state;
    uint8_t out[S * S];
    nn_error err;
    nn_image img = canvas(4, 4, 0);
    assert_int_equal(nn_preprocess_digit(NULL, NULL, out, NULL, &err),
                     NN_ERR_ARG);
    assert_int_equal(nn_preprocess_digit(&img, NULL, NULL, NULL, &err),
                     NN_ERR_ARG);
    nn_image bad = {0, 4, img.pixels};
    assert_int_equal(nn_preprocess_digit(&bad, NULL, out, NULL, &err),
                     NN_ERR_ARG);
    bad = (nn_image){4, 4, NULL};
    assert_int_equal(nn_preprocess_digit(&bad, NULL, out, NULL, &err),
                     NN_ERR_ARG);
    bad = (nn_image){NN_MAX_IMAGE_SIDE + 1, 1, img.pixels};
    assert_int_equal(nn_preprocess_digit(&bad, NULL, out, NULL, &err),
                     NN_ERR_ARG);
    nn_preprocess_options o = nn_preprocess_defaults();
    o.min_contrast = 0;
    assert_int_equal(nn_preprocess_digit(&img, &o, out, NULL, &err),
                     NN_ERR_ARG);
    assert_non_null(strstr(err.msg, "min_contrast"));
    o = nn_preprocess_defaults();
    o.ink = (nn_ink)7;
    assert_int_equal(nn_preprocess_digit(&img, &o, out, NULL, &err),
                     NN_ERR_ARG);
    nn_image_free(&img);
}

/* ------------------------------------------- MNIST round trips (optional) */

typedef struct mnist {
    uint8_t *x, *y;  /* (n, 784), (n) */
    size_t n;
} mnist;

static bool read_idx(const char *dir, const char *name, size_t hdr,
                     size_t each, size_t want, uint8_t **out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    *out = malloc(want * each);
    bool ok = *out && fseek(f, (long)hdr, SEEK_SET) == 0 &&
              fread(*out, each, want, f) == want;
    fclose(f);
    return ok;
}

static bool load_mnist(const char *split, size_t n, mnist *m)
{
    const char *dir = getenv("MNIST_DIR");
    if (!dir || !*dir)
        dir = "data/mnist";
    char img[64], lab[64];
    snprintf(img, sizeof img, "%s-images-idx3-ubyte", split);
    snprintf(lab, sizeof lab, "%s-labels-idx1-ubyte", split);
    m->n = n;
    return read_idx(dir, img, 16, 784, n, &m->x) &&
           read_idx(dir, lab, 8, 1, n, &m->y);
}

typedef struct membuf {
    unsigned char *p;
    size_t n;
} membuf;

static void to_mem(void *ctx, void *data, int size)
{
    membuf *b = ctx;
    b->p = realloc(b->p, b->n + (size_t)size);
    assert_non_null(b->p);
    memcpy(b->p + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

static int argmax(const float *p, int k)
{
    return (int)nn_argmax(p, (size_t)k);
}

/* A picture a user might make of MNIST test digit `d`: enlarged `scale`
 * times (bilinear), dark ink on light grey paper, off-centre on a larger
 * page, with paper noise. (w, h) returned in *img. */
static nn_image user_picture(const uint8_t *d, int scale, uint32_t *seed)
{
    int side = 28 * scale;
    int w = side + 40 + (int)(lcg(seed) % 200), h = side + 40 +
                                                  (int)(lcg(seed) % 200);
    int ox = (int)(lcg(seed) % (unsigned)(w - side)),
        oy = (int)(lcg(seed) % (unsigned)(h - side));
    int paper = 200 + (int)(lcg(seed) % 50), ink = (int)(lcg(seed) % 60);
    nn_image img = canvas(w, h, (uint8_t)paper);
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            double fx = (x + 0.5) / scale - 0.5, fy = (y + 0.5) / scale - 0.5;
            int x0 = (int)floor(fx), y0 = (int)floor(fy);
            double ax = fx - x0, ay = fy - y0, v = 0;
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < 2; i++) {
                    int xx = x0 + i, yy = y0 + j;
                    if (xx < 0 || yy < 0 || xx > 27 || yy > 27)
                        continue;
                    v += (i ? ax : 1 - ax) * (j ? ay : 1 - ay) *
                         d[yy * 28 + xx];
                }
            img.pixels[(size_t)(oy + y) * w + ox + x] =
                (uint8_t)lround(paper + (ink - paper) * v / 255.0);
        }
    add_noise(&img, 4, lcg(seed));
    return img;
}

/* Printed lines on the paper: dark by `k` levels, `t` pixels wide, turned
 * by `deg` degrees about the picture's centre. Kind 0: ruled (horizontal
 * lines `step` apart), 1: squared (both ways), 2: a box of half-size
 * `step` around the centre (cx, cy). */
static void draw_lines(nn_image *img, int kind, double step, double t,
                       int k, double deg, double cx, double cy)
{
    double a = deg * 3.14159265358979 / 180, ca = cos(a), sa = sin(a);
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++) {
            double u = ca * (x + 0.5 - cx) + sa * (y + 0.5 - cy);
            double v = -sa * (x + 0.5 - cx) + ca * (y + 0.5 - cy);
            double dist;
            if (kind == 2) {
                if (fabs(u) > step + t || fabs(v) > step + t)
                    continue;
                dist = fmin(fabs(fabs(u) - step), fabs(fabs(v) - step));
            } else {
                double mv = fabs(v - step * floor(v / step + 0.5));
                double mu = fabs(u - step * floor(u / step + 0.5));
                dist = kind == 1 ? fmin(mu, mv) : mv;
            }
            double cov = t / 2 - dist + 0.5;
            cov = cov < 0 ? 0 : cov > 1 ? 1 : cov;
            uint8_t *p = &img->pixels[(size_t)y * img->w + x];
            *p = (uint8_t)lround(*p - k * cov);
        }
}

/* Ruled and squared notebook paper and a printed box around the digit are
 * paper, not ink: the 28x28 comes out (nearly) as without them. */
static void test_ruled_squared_boxed(void **state)
{
    (void)state;
    const int W = 420, H = 480;
    nn_image clean = canvas(W, H, 235);
    draw_seven(&clean, 140, 140, 150, 235, 25);
    uint8_t ref[S * S];
    nn_preprocess_info ir = run(&clean, ref);
    assert_true(ir.found && ir.inverted);
    static const struct {
        int kind;
        double step, t;
        int k;
        double deg;
    } cases[] = {
        {0, 70, 2, 60, 0},  {0, 55, 3, 40, 3},   {0, 90, 1.5, 90, -4},
        {1, 45, 2, 50, 0},  {1, 60, 1.5, 70, 2}, {2, 150, 2, 120, 0},
        {2, 160, 3, 180, -3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        /* lines under the ink: paper lines first, then the digit on top */
        nn_image img = canvas(W, H, 235);
        draw_lines(&img, cases[c].kind, cases[c].step, cases[c].t,
                   cases[c].k, cases[c].deg, 140 + 75, 140 + 105);
        draw_seven(&img, 140, 140, 150, 235, 25);
        add_noise(&img, 2, (uint32_t)c + 1);
        uint8_t out[S * S];
        nn_preprocess_info info = run(&img, out);
        assert_true(info.found && info.inverted);
        /* the box is the digit's, not the page's or the printed box's */
        assert_true(abs(info.box_x - ir.box_x) <= 3);
        assert_true(abs(info.box_y - ir.box_y) <= 3);
        assert_true(abs(info.box_w - ir.box_w) <= 6);
        assert_true(abs(info.box_h - ir.box_h) <= 6);
        double diff = mean_abs_diff(out, ref);
        if (diff >= 8)
            print_message("lines case %zu: mean difference %.2f\n", c, diff);
        assert_true(diff < 8);
        expect_mnist_like(out);
        nn_image_free(&img);
    }
    /* a digit's own straight strokes are not printed lines: a thick bar
     * across most of a tight picture (a 7's top) stays */
    nn_image tight = canvas(200, 260, 235);
    draw_seven(&tight, 15, 10, 170, 235, 25);
    uint8_t out[S * S];
    nn_preprocess_info it = run(&tight, out);
    assert_true(it.found);
    assert_true(it.box_w >= 130 && it.box_h >= 200);
    nn_image_free(&tight);
    nn_image_free(&clean);
}

/* A 0 that touches all four edges of its picture (a tight crop that cuts
 * into its sides, so that most of the border ring is ink) keeps its
 * polarity: dark ink on light paper is still inverted, light on dark not,
 * and the hole stays a hole. */
static void test_zero_touching_edges(void **state)
{
    (void)state;
    const int W = 120, H = 160;
    for (int dark = 0; dark < 2; dark++) {
        uint8_t paper = dark ? 240 : 10, ink = dark ? 20 : 235;
        nn_image img = canvas(W, H, paper);
        /* an elliptic ring, 22 pixels wide, its outer edge 10% beyond the
         * picture's sides */
        double rx = W / 2.0, ry = H / 2.0, pen = 22, out_r = 1.1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double u = (x + 0.5 - rx) / rx, v = (y + 0.5 - ry) / ry;
                double r = sqrt(u * u + v * v), m = fmin(rx, ry);
                double dist = fabs(r - (out_r - pen / 2 / m)) * m;
                double cov = pen / 2 - dist + 0.5;
                cov = cov < 0 ? 0 : cov > 1 ? 1 : cov;
                img.pixels[(size_t)y * W + x] =
                    (uint8_t)lround(paper + (ink - paper) * cov);
            }
        add_noise(&img, 2, 7);
        uint8_t out[S * S];
        nn_preprocess_info info = run(&img, out);
        assert_true(info.found);
        assert_int_equal(info.inverted, dark);
        assert_int_equal(info.background, paper);
        /* a ring: ink around, none in the middle */
        assert_int_equal(out[14 * S + 14], 0);
        int left = 0;
        for (int x = 0; x < 10; x++)
            left = out[14 * S + x] > left ? out[14 * S + x] : left;
        assert_true(left > 200);
        nn_image_free(&img);
    }
}

/* Pictures that are not digits are told apart by their ink statistics
 * (nn_preprocess_not_digit), while digits are not flagged. */
static void test_not_a_digit(void **state)
{
    (void)state;
    const int W = 240, H = 240;
    uint8_t out[S * S];
    nn_preprocess_info info;
    /* a digit, clean and noisy, and a bar like a 1: may be a digit */
    nn_image img = canvas(W, H, 235);
    draw_seven(&img, 60, 30, 120, 235, 25);
    add_noise(&img, 3, 1);
    info = run(&img, out);
    assert_true(info.found);
    assert_null(nn_preprocess_not_digit(&info));
    assert_true(info.parts >= 1 && info.parts <= 2);
    assert_true(info.holes <= 2);
    nn_image_free(&img);
    img = canvas(W, H, 235);
    for (int y = 40; y < 200; y++)
        for (int x = 110; x < 126; x++)
            img.pixels[y * W + x] = 30;
    info = run(&img, out);
    assert_null(nn_preprocess_not_digit(&info));
    assert_true(info.elongation > 10 && info.tilt < 5);
    nn_image_free(&img);
    /* no ink, or no info: nothing to say */
    assert_null(nn_preprocess_not_digit(NULL));
    nn_preprocess_info none = {0};
    assert_null(nn_preprocess_not_digit(&none));

    /* blotchy noise: dark and light cells of 6 pixels at random */
    img = canvas(W, H, 235);
    uint32_t seed = 9;
    for (int cy = 0; cy < H / 6; cy++)
        for (int cx = 0; cx < W / 6; cx++) {
            uint8_t v = (lcg(&seed) >> 7) & 1 ? 30 : 235;
            for (int y = cy * 6; y < cy * 6 + 6; y++)
                memset(img.pixels + y * W + cx * 6, v, 6);
        }
    info = run(&img, out);
    assert_true(info.found);
    assert_non_null(nn_preprocess_not_digit(&info));
    nn_image_free(&img);
    /* a checkerboard of 24-pixel squares inside a paper margin */
    img = canvas(W, H, 235);
    for (int y = 24; y < H - 24; y++)
        for (int x = 24; x < W - 24; x++)
            if (((x / 24) + (y / 24)) & 1)
                img.pixels[y * W + x] = 30;
    info = run(&img, out);
    assert_true(info.found);
    assert_non_null(nn_preprocess_not_digit(&info));
    nn_image_free(&img);
    /* stripes: dark bands 10 wide every 20 pixels */
    img = canvas(W, H, 235);
    for (int y = 20; y < H - 20; y++)
        for (int x = 20; x < W - 20; x++)
            if ((y / 10) & 1)
                img.pixels[y * W + x] = 30;
    info = run(&img, out);
    assert_true(info.found);
    assert_non_null(nn_preprocess_not_digit(&info));
    nn_image_free(&img);
    /* a single straight line, 70 degrees from upright */
    img = canvas(W, H, 235);
    double a = 20 * 3.14159265358979 / 180;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double u = x + 0.5 - W / 2.0, v = y + 0.5 - H / 2.0;
            double dist = fabs(-sin(a) * u + cos(a) * v);
            if (dist < 3 && fabs(cos(a) * u + sin(a) * v) < 100)
                img.pixels[y * W + x] = 30;
        }
    info = run(&img, out);
    assert_true(info.found);
    assert_true(info.tilt > 60);
    assert_non_null(nn_preprocess_not_digit(&info));
    nn_image_free(&img);
}

static void test_mnist_round_trip(void **state)
{
    (void)state;
    mnist train = {0}, test = {0};
    if (!load_mnist("train", 10000, &train) ||
        !load_mnist("t10k", 1000, &test)) {
        free(train.x), free(train.y), free(test.x), free(test.y);
        skip();   /* MNIST absent: scripts/fetch-mnist data/mnist */
    }
    /* A small model, quickly trained on 10,000 digits. */
    nn_error err;
    nn_model *m = nn_model_new(nn_shape3(28, 28, 1));
    assert_non_null(m);
    assert_int_equal(nn_model_add(m, nn_dense(64, NN_ACT_RELU), &err), NN_OK);
    assert_int_equal(nn_model_add(m, nn_dense(10, NN_ACT_SOFTMAX), &err),
                     NN_OK);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    assert_int_equal(nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY,
                                      nn_rmsprop(), &err), NN_OK);
    nn_dataset tr = {.n = train.n, .shape = nn_shape3(28, 28, 1),
                     .x_u8 = train.x, .scale = 1.0f / 255, .labels = train.y,
                     .num_classes = 10};
    nn_fit_options fo = nn_fit_defaults();
    fo.epochs = 2;
    fo.batch_size = 64;
    fo.seed = 3;
    assert_int_equal(nn_model_fit(m, &tr, &fo, NULL, &err), NN_OK);
    nn_dataset te = tr;
    te.n = test.n;
    te.x_u8 = test.x;
    te.labels = test.y;
    float *ref = malloc(test.n * 10 * sizeof *ref);
    assert_non_null(ref);
    assert_int_equal(nn_model_predict_dataset(m, &te, ref, &err), NN_OK);

    size_t same_png = 0, same_user = 0, right_ref = 0, right_user = 0;
    uint32_t seed = 11;
    for (size_t i = 0; i < test.n; i++) {
        const uint8_t *d = test.x + i * 784;
        int want = argmax(ref + i * 10, 10);
        right_ref += want == test.y[i];
        float x[784], p[10];
        uint8_t out[784];
        nn_image img;
        nn_preprocess_info info;

        /* 1. the digit as a 28x28 PNG file, as it is */
        membuf b = {0};
        assert_true(stbi_write_png_to_func(to_mem, &b, 28, 28, 1, d, 28));
        assert_int_equal(nn_image_load_mem(b.p, b.n, "png", &img, &err),
                         NN_OK);
        free(b.p);
        assert_int_equal(nn_preprocess_digit(&img, NULL, out, &info, &err),
                         NN_OK);
        nn_image_free(&img);
        assert_true(info.found);
        for (int k = 0; k < 784; k++)
            x[k] = out[k] / 255.0f;
        assert_int_equal(nn_model_predict(m, x, 1, p, &err), NN_OK);
        same_png += argmax(p, 10) == want;

        /* 2. as a user's picture: large, dark on grey paper, off-centre,
         * noisy, saved as JPEG */
        if (i % 4)
            continue;
        nn_image pic = user_picture(d, 3 + (int)(i % 7), &seed);
        b = (membuf){0};
        assert_true(stbi_write_jpg_to_func(to_mem, &b, pic.w, pic.h, 1,
                                           pic.pixels, 85));
        nn_image_free(&pic);
        assert_int_equal(nn_image_load_mem(b.p, b.n, "jpg", &img, &err),
                         NN_OK);
        free(b.p);
        assert_int_equal(nn_preprocess_digit(&img, NULL, out, &info, &err),
                         NN_OK);
        nn_image_free(&img);
        assert_true(info.found && info.inverted);
        for (int k = 0; k < 784; k++)
            x[k] = out[k] / 255.0f;
        assert_int_equal(nn_model_predict(m, x, 1, p, &err), NN_OK);
        same_user += argmax(p, 10) == want;
        right_user += argmax(p, 10) == test.y[i];
    }
    size_t nu = (test.n + 3) / 4;
    print_message("MNIST round trip: PNG agrees with the data set on "
                  "%zu/%zu; user pictures (JPEG) agree on %zu/%zu; "
                  "accuracy %.3f (data set) %.3f (user pictures)\n",
                  same_png, test.n, same_user, nu,
                  (double)right_ref / test.n, (double)right_user / nu);
    assert_true(same_png >= test.n * 99 / 100);
    assert_true(same_user >= nu * 93 / 100);
    free(ref);
    nn_model_free(m);
    free(train.x), free(train.y), free(test.x), free(test.y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_polarity_same_result),
        cmocka_unit_test(test_off_centre_large_canvas),
        cmocka_unit_test(test_centre_of_mass_many),
        cmocka_unit_test(test_aspect_ratio),
        cmocka_unit_test(test_upscale_tiny_digit),
        cmocka_unit_test(test_identity_on_mnist_like),
        cmocka_unit_test(test_noise_and_specks),
        cmocka_unit_test(test_thin_pen),
        cmocka_unit_test(test_uneven_light),
        cmocka_unit_test(test_no_digit),
        cmocka_unit_test(test_small_pictures),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ruled_squared_boxed),
        cmocka_unit_test(test_zero_touching_edges),
        cmocka_unit_test(test_not_a_digit),
        cmocka_unit_test(test_mnist_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
