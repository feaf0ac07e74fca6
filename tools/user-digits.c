/*
 * user-digits.c - renders MNIST test digits into pictures like the ones
 * users make of their own digits: dark ink on light (slightly tinted,
 * unevenly lit, noisy) paper, enlarged, slightly rotated, off-centre on a
 * larger page, saved as colour JPEG. Used to measure how well `digits
 * predict` reads such pictures (scripts/user-digits-accuracy).
 *
 *   user-digits [--data DIR] [--out DIR] [--first I] [--count N]
 *               [--seed S] [--thin] [--shadow] [--plain]
 *
 * Writes OUT/IIIII-L.jpg (I: index in the test set, L: its label).
 * --thin draws only the core of each stroke (where the enlarged digit is
 * above 85% ink), as with a thin pen: strokes a third to a half as wide.
 * --shadow lights the page unevenly, up to +-40% across it instead of 8%
 * (a lamp on one side).
 * --plain writes the 28x28 digit unchanged as OUT/IIIII-L.png instead (for
 * round-trip tests). Same seed, same pictures.
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
static uint8_t *render(const uint8_t *d, nn_rng *r, bool thin, bool shadow,
                       int *pw, int *ph)
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
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px)
        return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* page point -> digit coordinates (rotation about its centre) */
            double u = (x + 0.5 - cx), v = (y + 0.5 - cy);
            double dx = (ca * u + sa * v) / scale + 14 - 0.5;
            double dy = (-sa * u + ca * v) / scale + 14 - 0.5;
            double a = sample(d, dx, dy);
            if (thin) {   /* smoothstep over 0.85 .. 0.95 */
                double t = (a - 0.85) / 0.1;
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                a = t * t * (3 - 2 * t);
            }
            double light = 1 + gx * (x - w / 2.0) + gy * (y - h / 2.0);
            double noise = nn_rng_normal(r) * sigma;
            for (int c = 0; c < 3; c++) {
                double p = paper * tint[c] * light;
                double k = ink * pen[c];
                double val = p + (k - p) * a + noise;
                px[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : lround(val));
            }
        }
    *pw = w;
    *ph = h;
    return px;
}

int main(int argc, char **argv)
{
    const char *data = "data/mnist", *out = "user-digits";
    long first = 0, count = 1000, seed = 1;
    int plain = 0, thin = 0, shadow = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--plain") || !strcmp(a, "--thin") ||
            !strcmp(a, "--shadow")) {
            *(a[2] == 'p' ? &plain : a[2] == 't' ? &thin : &shadow) = 1;
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
        uint8_t *px = render(d, &r, thin, shadow, &w, &h);
        if (!px) {
            rc = fail("out of memory%s%s", "", "");
            break;
        }
        int quality = 60 + (int)nn_rng_below(&r, 36);
        snprintf(path, sizeof path, "%s/%05ld-%d.jpg", out, i,
                 test.labels[i]);
        if (!stbi_write_jpg(path, w, h, 3, px, quality))
            rc = fail("%s: cannot write%s", path, "");
        free(px);
    }
    nn_dataset_free(&test);
    return rc;
}
