/*
 * user-digits.c - renders MNIST test digits into pictures like the ones
 * users make of their own digits: dark ink on light (slightly tinted,
 * unevenly lit, noisy) paper, enlarged, slightly rotated, off-centre on a
 * larger page, saved as colour JPEG. Used to measure how well `digits
 * predict` reads such pictures (scripts/user-digits-accuracy).
 *
 *   user-digits [--data DIR] [--out DIR] [--first I] [--count N]
 *               [--seed S] [--thin] [--shadow] [--plain]
 *               [--ruled | --squared | --boxed | --nondigit]
 *
 * Writes OUT/IIIII-L.jpg (I: index in the test set, L: its label).
 * --thin draws only the core of each stroke (where the enlarged digit is
 * above 85% ink), as with a thin pen: strokes a third to a half as wide.
 * --shadow lights the page unevenly, up to +-40% across it instead of 8%
 * (a lamp on one side).
 * --plain writes the 28x28 digit unchanged as OUT/IIIII-L.png instead (for
 * round-trip tests). Same seed, same pictures.
 * --ruled prints the lines of ruled notebook paper (pale blue or grey, 1-3
 * pixels, 0.6-0.9 digit heights apart, through the digit), --squared the
 * grid of squared paper (0.3-0.6 digit heights), --boxed a printed box
 * around the digit; all turned with the page.
 * --nondigit writes pictures that are not digits instead, OUT/IIIII-x.jpg,
 * in turn: noise (fine or blotchy), a texture (sums of random waves),
 * a regular pattern (stripes, a checkerboard, a grid of dots) and a single
 * straight line far from upright (35-90 degrees), on the same kinds of
 * paper and lighting.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/stb_write.h"

#include "nn.h"

static int fail(const char *fmt, const char *a, const char *b)
{
    fputs("user-digits: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

/* "dir/name" or "dir/name.gz", whichever exists. */
static void find(const char *dir, const char *name, char *out, size_t n)
{
    struct stat st;
    snprintf(out, n, "%s/%s", dir, name);
    if (stat(out, &st) != 0)
        snprintf(out, n, "%s/%s.gz", dir, name);
}

static double uni(nn_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * nn_rng_uniform(r);
}

/* Bilinear sample of a 28x28 digit at (x, y) in pixel-centre coordinates,
 * 0 outside; 0..1. */
static double sample(const uint8_t *d, double x, double y)
{
    int x0 = (int)floor(x), y0 = (int)floor(y);
    double ax = x - x0, ay = y - y0, v = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            int xx = x0 + i, yy = y0 + j;
            if (xx < 0 || yy < 0 || xx > 27 || yy > 27)
                continue;
            v += (i ? ax : 1 - ax) * (j ? ay : 1 - ay) * d[yy * 28 + xx];
        }
    return v / 255.0;
}

/* One user-like picture of digit d: (h, w, 3) RGB, malloc'd. */
enum { PAPER_PLAIN, PAPER_RULED, PAPER_SQUARED, PAPER_BOXED };

/* Distance in pixels from a to the nearest multiple of `step` (>= 0). */
static double off_grid(double a, double step)
{
    double m = fmod(a, step);
    if (m < 0)
        m += step;
    return m < step - m ? m : step - m;
}

/* Coverage 0..1 of a line of width `t` pixels at distance `dist`. */
static double line_cover(double dist, double t)
{
    double c = t / 2 - dist + 0.5;
    return c < 0 ? 0 : c > 1 ? 1 : c;
}

/* Ink 0..1 of a picture that is not a digit, kind k (0 noise, 1 texture,
 * 2 pattern, 3 line), at page point (x, y) of a w x h page; p: its
 * parameters, drawn once per picture. */
typedef struct nondigit {
    int kind, sub;
    double a[8], f[8], ph[8], angle, period, width, x0, y0;
    uint8_t *blob;   /* (bh, bw) coarse noise for blotchy noise */
    int bw, bh, cell;
} nondigit;

static double nondigit_ink(const nondigit *p, nn_rng *r, double x, double y)
{
    double ca = cos(p->angle), sa = sin(p->angle);
    double u = ca * (x - p->x0) + sa * (y - p->y0);
    double v = -sa * (x - p->x0) + ca * (y - p->y0);
    switch (p->kind) {
    case 0:
        if (p->sub == 0)
            return nn_rng_uniform(r);
        else {
            int bx = (int)(x / p->cell), by = (int)(y / p->cell);
            bx = bx < p->bw ? bx : p->bw - 1;
            by = by < p->bh ? by : p->bh - 1;
            return p->blob[by * p->bw + bx] / 255.0;
        }
    case 1: {
        double t = 0;
        for (int k = 0; k < 4; k++)
            t += p->a[k] * sin(p->f[k] * (k & 1 ? u : v) + p->ph[k] +
                               p->a[k + 4] * sin(p->f[k + 4] * (k & 1 ? v : u)));
        t = 0.5 + 0.5 * t;
        return t < 0 ? 0 : t > 1 ? 1 : t;
    }
    case 2:
        if (p->sub == 0)   /* stripes */
            return line_cover(off_grid(u, p->period), p->width);
        if (p->sub == 1) { /* checkerboard */
            long i = lround(floor(u / p->period)) + lround(floor(v / p->period));
            return (i & 1) ? 1.0 : 0.0;
        } else {           /* grid of dots */
            double du = off_grid(u, p->period), dv = off_grid(v, p->period);
            return line_cover(sqrt(du * du + dv * dv), p->width);
        }
    default:
        return line_cover(fabs(v), p->width);
    }
}

static bool nondigit_init(nondigit *p, nn_rng *r, int kind, int w, int h)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->sub = (int)nn_rng_below(r, 3);
    p->angle = uni(r, 0, 3.14159265358979);
    p->x0 = uni(r, 0.3, 0.7) * w;
    p->y0 = uni(r, 0.3, 0.7) * h;
    double side = w < h ? w : h;
    p->period = side * uni(r, 0.05, 0.25);
    p->width = p->period * uni(r, 0.2, 0.5);
    for (int k = 0; k < 8; k++) {
        p->a[k] = uni(r, 0.2, 0.6);
        p->f[k] = 2 * 3.14159265358979 / (side * uni(r, 0.03, 0.3));
        p->ph[k] = uni(r, 0, 6.3);
    }
    if (kind == 0) {
        p->sub = (int)nn_rng_below(r, 2);
        p->cell = 1 + (int)(side * uni(r, 0.01, 0.08));
        p->bw = w / p->cell + 1;
        p->bh = h / p->cell + 1;
        p->blob = malloc((size_t)p->bw * p->bh);
        if (!p->blob)
            return false;
        for (int i = 0; i < p->bw * p->bh; i++)
            p->blob[i] = (uint8_t)nn_rng_below(r, 256);
    }
    if (kind == 3) {   /* one line, 35..90 degrees from upright */
        double tilt = uni(r, 35, 90) * 3.14159265358979 / 180;
        p->angle = (nn_rng_below(r, 2) ? 1 : -1) * (3.14159265358979 / 2 - tilt);
        p->width = side * uni(r, 0.02, 0.08);
        p->x0 = w / 2.0;
        p->y0 = h / 2.0;
    }
    return true;
}

static uint8_t *render(const uint8_t *d, nn_rng *r, bool thin, bool shadow,
                       int paper_kind, int nd_kind, int *pw, int *ph)
{
    double scale = uni(r, 2.0, 14.0);            /* 56 .. 392 px digits */
    double side = 28 * scale;
    int w = (int)(side * uni(r, 1.1, 3.0)), h = (int)(side * uni(r, 1.1, 3.0));
    double cx = uni(r, side / 2, w - side / 2), cy = uni(r, side / 2, h - side / 2);
    double angle = uni(r, -5, 5) * 3.14159265358979 / 180, ca = cos(angle), sa = sin(angle);
    double paper = uni(r, 185, 250), ink = uni(r, 0, 70);
    double tint[3] = {uni(r, 0.96, 1.0), uni(r, 0.96, 1.0), uni(r, 0.9, 1.0)};
    double pen[3] = {uni(r, 0.6, 1.4), uni(r, 0.6, 1.4), uni(r, 0.8, 2.0)};
    double g = shadow ? 0.4 : 0.08;
    double gx = uni(r, -g, g) / w, gy = uni(r, -g, g) / h;
    double sigma = uni(r, 1.5, 6.0);
    /* printed lines: pale blue or grey, 1-3 px, turned with the page */
    double lt = uni(r, 1.0, 3.0), lk = uni(r, 0.25, 0.6);
    double lcol[3] = {uni(r, 0.55, 0.8), uni(r, 0.65, 0.85), uni(r, 0.85, 1.0)};
    if (nn_rng_below(r, 2))
        lcol[0] = lcol[1] = lcol[2] = uni(r, 0.6, 0.8);
    double spacing = side * (paper_kind == PAPER_SQUARED ? uni(r, 0.3, 0.6)
                                                         : uni(r, 0.6, 0.9));
    double lphase = uni(r, 0, spacing), lphase2 = uni(r, 0, spacing);
    double boxr = side * uni(r, 0.42, 0.5);
    nondigit nd;
    if (nd_kind >= 0 && !nondigit_init(&nd, r, nd_kind, w, h))
        return NULL;
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px) {
        if (nd_kind >= 0)
            free(nd.blob);
        return NULL;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* page point -> digit coordinates (rotation about its centre) */
            double u = (x + 0.5 - cx), v = (y + 0.5 - cy);
            double dx = (ca * u + sa * v) / scale + 14 - 0.5;
            double dy = (-sa * u + ca * v) / scale + 14 - 0.5;
            double a = nd_kind >= 0 ? nondigit_ink(&nd, r, x + 0.5, y + 0.5)
                                    : sample(d, dx, dy);
            if (thin) {   /* smoothstep over 0.85 .. 0.95 */
                double t = (a - 0.85) / 0.1;
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                a = t * t * (3 - 2 * t);
            }
            double light = 1 + gx * (x - w / 2.0) + gy * (y - h / 2.0);
            double noise = nn_rng_normal(r) * sigma;
            /* page coordinates turned with the digit, in pixels */
            double pu = (dx - 13.5) * scale, pv = (dy - 13.5) * scale;
            double line = 0;
            if (paper_kind == PAPER_RULED)
                line = line_cover(off_grid(pv - lphase, spacing), lt);
            else if (paper_kind == PAPER_SQUARED)
                line = fmax(line_cover(off_grid(pv - lphase, spacing), lt),
                            line_cover(off_grid(pu - lphase2, spacing), lt));
            else if (paper_kind == PAPER_BOXED && fabs(pu) <= boxr + lt &&
                     fabs(pv) <= boxr + lt)
                line = fmax(line_cover(fabs(fabs(pu) - boxr), lt),
                            line_cover(fabs(fabs(pv) - boxr), lt));
            for (int c = 0; c < 3; c++) {
                double p = paper * tint[c] * light;
                p *= 1 - line * lk * (1.2 - lcol[c]);   /* printed line */
                double k = ink * pen[c];
                double val = p + (k - p) * a + noise;
                px[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : lround(val));
            }
        }
    if (nd_kind >= 0)
        free(nd.blob);
    *pw = w;
    *ph = h;
    return px;
}

int main(int argc, char **argv)
{
    const char *data = "data/mnist", *out = "user-digits";
    long first = 0, count = 1000, seed = 1;
    int plain = 0, thin = 0, shadow = 0, paper_kind = PAPER_PLAIN,
        nondigits = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--plain") || !strcmp(a, "--thin") ||
            !strcmp(a, "--shadow")) {
            *(a[2] == 'p' ? &plain : a[2] == 't' ? &thin : &shadow) = 1;
            continue;
        }
        if (!strcmp(a, "--ruled") || !strcmp(a, "--squared") ||
            !strcmp(a, "--boxed")) {
            paper_kind = a[2] == 'r' ? PAPER_RULED : a[3] == 'q'
                                                         ? PAPER_SQUARED
                                                         : PAPER_BOXED;
            continue;
        }
        if (!strcmp(a, "--nondigit")) {
            nondigits = 1;
            continue;
        }
        if (!v)
            return fail("%s needs a value%s", a, "");
        i++;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--first")) first = strtol(v, NULL, 10);
        else if (!strcmp(a, "--count")) count = strtol(v, NULL, 10);
        else if (!strcmp(a, "--seed")) seed = strtol(v, NULL, 10);
        else return fail("unknown option '%s'%s", a, "");
    }
    char img[4096], lab[4096];
    find(data, "t10k-images-idx3-ubyte", img, sizeof img);
    find(data, "t10k-labels-idx1-ubyte", lab, sizeof lab);
    nn_dataset test;
    nn_error err;
    if (nn_idx_load_pair(img, lab, 10, &test, &err) != NN_OK)
        return fail("%s%s", err.msg, "");
    if (nn_shape_size(test.shape) != 784 || !test.x_u8) {
        nn_dataset_free(&test);
        return fail("%s: not 28x28 digits%s", img, "");
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return fail("%s: cannot create: %s", out, strerror(errno));
    if (first < 0 || (size_t)first >= test.n)
        first = 0;
    if (count < 0 || (size_t)(first + count) > test.n)
        count = (long)(test.n - (size_t)first);
    int rc = 0;
    for (long i = first; i < first + count && !rc; i++) {
        const uint8_t *d = test.x_u8 + (size_t)i * 784;
        char path[4200];
        nn_rng r;
        nn_rng_seed(&r, (uint64_t)seed * 1000003u + (uint64_t)i);
        if (plain) {
            snprintf(path, sizeof path, "%s/%05ld-%d.png", out, i,
                     test.labels[i]);
            if (!stbi_write_png(path, 28, 28, 1, d, 28))
                rc = fail("%s: cannot write%s", path, "");
            continue;
        }
        int w, h;
        uint8_t *px = render(d, &r, thin, shadow, paper_kind,
                             nondigits ? (int)(i % 4) : -1, &w, &h);
        if (!px) {
            rc = fail("out of memory%s%s", "", "");
            break;
        }
        int quality = 60 + (int)nn_rng_below(&r, 36);
        if (nondigits)
            snprintf(path, sizeof path, "%s/%05ld-x.jpg", out, i);
        else
            snprintf(path, sizeof path, "%s/%05ld-%d.jpg", out, i,
                     test.labels[i]);
        if (!stbi_write_jpg(path, w, h, 3, px, quality))
            rc = fail("%s: cannot write%s", path, "");
        free(px);
    }
    nn_dataset_free(&test);
    return rc;
}
