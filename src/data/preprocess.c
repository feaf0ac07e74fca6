/*
 * preprocess.c - a picture of one digit to an MNIST sample, made the way
 * MNIST was made (LeCun et al.: "size normalized to fit in a 20x20 pixel box
 * while preserving their aspect ratio ... anti-aliasing ... centered in a
 * 28x28 image by computing the center of mass of the pixels").
 *
 * Steps (docs/preprocessing.md has the reasons):
 *  1. paper: a plane fitted to a border ring (starting from its median,
 *     refitted without outliers) is the paper level, so that light falling
 *     off across a photo goes too; the ring's spread around it (median
 *     absolute deviation) sizes a noise margin;
 *  2. polarity: ink is the extreme farther from the paper level; dark ink
 *     is inverted so that ink is light on black, as in MNIST;
 *  3. ink level d = grey - paper - margin, clamped to 0..255; for dark ink
 *     on light paper as a fraction of the paper's local brightness;
 *  4. strokes: the 3x3 average of d; no digit if its maximum M is below
 *     min_contrast; pixels with average >= M/4 are "strong"; connected
 *     strong parts with under 2% of the largest part's ink are specks and
 *     dropped; the kept parts grow over every pixel with d > 0 that touches
 *     them (so faint anti-aliased edges stay, as in MNIST);
 *  5. the kept ink's bounding box is cropped, its level stretched so that
 *     its 90th percentile becomes full white; pen strokes that would come
 *     out much thinner than MNIST's (a thin pen on a large picture) are
 *     thickened by a grey dilation; the box is resampled to fit 20x20
 *     keeping the aspect ratio: area averaging when shrinking, bilinear
 *     when enlarging, an exact copy at scale 1; if its strongest pixel is
 *     then below white (strokes thinner than an output pixel), the 20x20
 *     picture is stretched so that it is white;
 *  6. the 20x20 picture is placed in 28x28 shifted by whole pixels so that
 *     its centre of mass lands within half a pixel of (14, 14).
 * Memory: three bytes per input pixel plus a stack for the flood fills.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"

nn_preprocess_options nn_preprocess_defaults(void)
{
    return (nn_preprocess_options){.ink = NN_INK_AUTO, .min_contrast = 32};
}

enum { STRONG = 1, SEEN = 2, KEEP = 4 };   /* per-pixel state bits */

typedef struct stack {
    uint32_t *v;
    size_t n, cap;
} stack;

static bool push(stack *s, uint32_t i)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = i;
    return true;
}

/* The k-th smallest value (0-based) counted in a 256-bin histogram. */
static int hist_kth(const size_t *hist, size_t k)
{
    size_t acc = 0;
    for (int v = 0; v < 256; v++) {
        acc += hist[v];
        if (acc > k)
            return v;
    }
    return 255;
}

/* One connected part of the strong mask. */
typedef struct part {
    uint32_t seed;
    uint64_t mass;   /* sum of d */
} part;

typedef struct work {
    int w, h;
    const uint8_t *g;   /* (h, w) input grey */
    uint8_t *d;         /* (h, w) ink level, 0 = paper */
    uint8_t *state;     /* (h, w) 3x3 averages, then state bits */
    stack st;
    part *parts;
    size_t nparts, capparts;
    int x0, y0, x1, y1; /* kept ink box, inclusive */
    double *col;        /* (w) scratch: a plane's column terms */
} work;

/* Paper level as a plane v = a + b x + c y, x and y centred and scaled to
 * about -0.5..0.5. */
typedef struct plane {
    double a, b, c, sx, sy;   /* coefficients; coordinate scale */
} plane;

static double plane_at(const plane *p, int x, int y)
{
    return p->a + p->b * (x * p->sx - 0.5) + p->c * (y * p->sy - 0.5);
}

/* The border ring of width r, visited in the order of a scan of the
 * whole picture (so that sums come out the same) but without the pixels
 * inside it: in row y, x runs over [0, w) in the top and bottom r rows,
 * else over [0, r) and then [w - r, w).
 *   for (int x = 0; x < w; x = ring_next(wk, r, y, x)) */
static int ring_next(const work *wk, int r, int y, int x)
{
    if (x + 1 == r && y >= r && y < wk->h - r && wk->w - r > r)
        return wk->w - r;
    return x + 1;
}

/* Rounds a finite x >= 0 to nearest, halves away from zero: lround(x)
 * for the values that are clamped to 0..255 here, without a libm call. */
static long round_pos(double x)
{
    long t = (long)x;            /* exact: x < 2^31 where it is used */
    return t + (x - (double)t >= 0.5);
}

/* The plane's column terms b (x sx - 0.5), x in [0, w), into wk->col, so
 * that plane_at(p, x, y) is a + col[x] + c (y sy - 0.5), bit for bit. */
static void plane_cols(work *wk, const plane *p)
{
    for (int x = 0; x < wk->w; x++)
        wk->col[x] = p->b * (x * p->sx - 0.5);
}

/* Least-squares plane through the pixels of the border ring that are at
 * most `keep` from the plane `prev` (prev itself if fewer than 3 are). */
static plane fit_plane(const work *wk, int r, const plane *prev,
                       double keep)
{
    double n = 0, X = 0, Y = 0, XX = 0, XY = 0, YY = 0, V = 0, XV = 0,
           YV = 0;
    plane p = {0, 0, 0, 1.0 / wk->w, 1.0 / wk->h};
    for (int y = 0; y < wk->h; y++)
        for (int x = 0; x < wk->w; x = ring_next(wk, r, y, x)) {
            double v = wk->g[(size_t)y * wk->w + x];
            if (fabs(v - plane_at(prev, x, y)) > keep)
                continue;
            double u = x * p.sx - 0.5, t = y * p.sy - 0.5;
            n++, X += u, Y += t, XX += u * u, XY += u * t, YY += t * t;
            V += v, XV += u * v, YV += t * v;
        }
    if (n < 3)
        return *prev;
    /* Normal equations for (a, b, c), slopes lightly held at 0 so that a
     * ring on one line (a picture 1 or 2 pixels high) stays solvable. */
    double ridge = 1e-9 * n;
    double m[3][4] = {{n, X, Y, V}, {X, XX + ridge, XY, XV},
                      {Y, XY, YY + ridge, YV}};
    for (int i = 0; i < 3; i++)
        for (int k = i + 1; k < 3; k++) {
            double f = m[k][i] / m[i][i];
            for (int j = i; j < 4; j++)
                m[k][j] -= f * m[i][j];
        }
    double c = m[2][3] / m[2][2];
    double b = (m[1][3] - m[1][2] * c) / m[1][1];
    p.a = (m[0][3] - m[0][1] * b - m[0][2] * c) / m[0][0];
    p.b = b;
    p.c = c;
    return p;
}

/* Median absolute distance of the ring's pixels from the plane. */
static double ring_mad(const work *wk, int r, const plane *p)
{
    enum { BINS = 8 * 256 };   /* eighths of a grey level */
    uint32_t dev[BINS] = {0};  /* a ring has under 2^32 pixels */
    size_t n = 0;
    for (int y = 0; y < wk->h; y++)
        for (int x = 0; x < wk->w; x = ring_next(wk, r, y, x)) {
            double e = 8 * fabs(wk->g[(size_t)y * wk->w + x] -
                                plane_at(p, x, y));
            dev[e > BINS - 1 ? BINS - 1 : (int)round_pos(e)]++;
            n++;
        }
    size_t acc = 0;
    int k = 0;
    while (k < BINS - 1 && (acc += dev[k]) <= (n - 1) / 2)
        k++;
    return k / 8.0;
}

/* The paper: a plane fitted to a ring along the border (1/16 of the
 * shorter side), so that light falling off across a photo is removed too;
 * refitted without the ring's outliers (ink touching the border). The ring's
 * spread sizes a noise margin. Polarity: the ink is the extreme farther
 * from the paper. Fills wk->d, the ink level of every pixel. */
static void find_paper(work *wk, nn_ink ink, bool *inverted, int *paper)
{
    const int w = wk->w, h = wk->h;
    int r = (w < h ? w : h) / 16;
    if (r < 1)
        r = 1;
    /* Start from the ring's median (a flat paper), then fit a tilted one
     * twice, each time to the ring pixels within 3 sigma of the last. A
     * picture under 16 pixels a side keeps the flat one. */
    size_t ring[256] = {0}, nring = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x = ring_next(wk, r, y, x)) {
            ring[wk->g[(size_t)y * w + x]]++;
            nring++;
        }
    plane p = {hist_kth(ring, (nring - 1) / 2), 0, 0, 1.0 / w, 1.0 / h};
    for (int pass = 0; pass < 2 && w >= 16 && h >= 16; pass++) {
        double sigma = 1.4826 * ring_mad(wk, r, &p);
        p = fit_plane(wk, r, &p, fmax(3 * sigma, 2.0));
    }
    /* Margin: three standard deviations of the paper's noise (from the
     * median absolute deviation), plus 2 levels for rounding and JPEG ripple
     * unless most of the paper is exactly on the plane (a drawing, MNIST). */
    double mad = ring_mad(wk, r, &p);
    int margin = (int)ceil(3.0 * 1.4826 * mad) + (mad > 0 ? 2 : 0);
    if (margin > 96)
        margin = 96;
    double lo = 0, hi = 0;   /* extremes of grey - paper */
    plane_cols(wk, &p);
    for (int y = 0; y < h; y++) {
        const uint8_t *g = wk->g + (size_t)y * w;
        double row = p.c * (y * p.sy - 0.5);
        const double *col = wk->col;
        for (int x = 0; x < w; x++) {
            double e = g[x] - (p.a + col[x] + row);   /* plane_at */
            lo = e < lo ? e : lo;
            hi = e > hi ? e : hi;
        }
    }
    bool inv = ink == NN_INK_DARK || (ink == NN_INK_AUTO && -lo > hi);
    /* Dark ink on lit paper: what the paper reflects is light times ink, so
     * ink is measured as a fraction of the paper's brightness where it is
     * (under a lamp's fall-off a stroke keeps its strength); the gain is
     * held at 4 for dark paper, and 1 when the border is too busy to be
     * paper (margin at its cap). Light ink on dark: a difference. */
    const bool lit = inv && margin < 96;
    const double sign = inv ? -1.0 : 1.0;
    for (int y = 0; y < h; y++) {
        double row = p.c * (y * p.sy - 0.5);
        const uint8_t *g = wk->g + (size_t)y * w;
        const double *col = wk->col;
        uint8_t *d = wk->d + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            double pa = p.a + col[x] + row, e = g[x] - pa;
            double gain = lit ? 255.0 / (pa > 64.0 ? pa : 64.0) : 1.0;
            /* lround, then clamped to 0..255 (sign * e is exactly +-e) */
            double v = (sign * e - margin) * gain;
            int t = (int)(v < 0.5 ? 0 : v >= 254.5 ? 255 : v);
            d[x] = (uint8_t)(t + (v >= 0.5 && v < 254.5 &&
                                  v - (double)t >= 0.5));
        }
    }
    long bg = lround(plane_at(&p, w / 2, h / 2));
    *inverted = inv;
    *paper = (int)(bg < 0 ? 0 : bg > 255 ? 255 : bg);
}

/* wk->state = rounded 3x3 average of d (edges: the pixels that exist);
 * returns its maximum. cs: (w) scratch. */
static int average3(work *wk, uint32_t *cs)
{
    const int w = wk->w, h = wk->h;
    int best = 0;
    for (int y = 0; y < h; y++) {
        int ny = 0;
        memset(cs, 0, (size_t)w * sizeof *cs);
        for (int yy = y - 1; yy <= y + 1; yy++) {
            if (yy < 0 || yy >= h)
                continue;
            ny++;
            const uint8_t *row = wk->d + (size_t)yy * w;
            for (int x = 0; x < w; x++)
                cs[x] += row[x];
        }
        uint8_t *out = wk->state + (size_t)y * w;
        if (ny == 3 && w >= 3) {
            /* inside: 9 pixels, a division by a constant */
            int rb = 0;
#pragma omp simd reduction(max : rb)
            for (int x = 1; x < w - 1; x++) {
                int a = (int)((cs[x - 1] + cs[x] + cs[x + 1] + 4) / 9);
                out[x] = (uint8_t)a;
                rb = a > rb ? a : rb;
            }
            best = rb > best ? rb : best;
        }
        for (int x = 0; x < w; x++) {
            if (ny == 3 && w >= 3 && x == 1)
                x = w - 1;            /* done above */
            uint32_t sum = cs[x];
            int nx = 1;
            if (x > 0) {
                sum += cs[x - 1];
                nx++;
            }
            if (x + 1 < w) {
                sum += cs[x + 1];
                nx++;
            }
            uint32_t cnt = (uint32_t)(nx * ny);
            int a = (int)((sum + cnt / 2) / cnt);
            out[x] = (uint8_t)a;
            if (a > best)
                best = a;
        }
    }
    return best;
}

/* Flood fill from `seed` over 8-neighbours. Mode SEEN: over STRONG pixels,
 * summing the part's mass. Mode KEEP: over STRONG pixels and pixels with
 * d > 0, growing the ink box over the latter. */
static bool flood(work *wk, uint32_t seed, int mode, uint64_t *mass)
{
    const int w = wk->w, h = wk->h;
    uint8_t *s = wk->state;
    wk->st.n = 0;
    s[seed] |= (uint8_t)mode;
    if (!push(&wk->st, seed))
        return false;
    uint64_t m = 0;
    while (wk->st.n) {
        uint32_t i = wk->st.v[--wk->st.n];
        int y = (int)(i / (uint32_t)w), x = (int)(i - (uint32_t)y * (uint32_t)w);
        int d = wk->d[i];
        m += (uint64_t)d;
        if (mode == KEEP && d > 0) {
            if (x < wk->x0) wk->x0 = x;
            if (x > wk->x1) wk->x1 = x;
            if (y < wk->y0) wk->y0 = y;
            if (y > wk->y1) wk->y1 = y;
        }
        if (x > 0 && x < w - 1 && y > 0 && y < h - 1) {
            /* inside: the 8 neighbours exist, in the order below */
            const uint32_t up = i - (uint32_t)w, down = i + (uint32_t)w;
            const uint32_t nb[8] = {up - 1, up, up + 1, i - 1, i + 1,
                                    down - 1, down, down + 1};
            for (int k = 0; k < 8; k++) {
                uint32_t j = nb[k];
                uint8_t sj = s[j];
                if ((sj & mode) ||
                    !((sj & STRONG) || (mode == KEEP && wk->d[j] > 0)))
                    continue;
                s[j] = (uint8_t)(sj | mode);
                if (wk->st.n < wk->st.cap)
                    wk->st.v[wk->st.n++] = j;
                else if (!push(&wk->st, j))
                    return false;
            }
            continue;
        }
        for (int dy = -1; dy <= 1; dy++) {
            int yy = y + dy;
            if (yy < 0 || yy >= h)
                continue;
            for (int dx = -1; dx <= 1; dx++) {
                int xx = x + dx;
                if (xx < 0 || xx >= w || (!dx && !dy))
                    continue;
                uint32_t j = (uint32_t)yy * (uint32_t)w + (uint32_t)xx;
                if (s[j] & mode)
                    continue;
                bool go = (s[j] & STRONG) ||
                          (mode == KEEP && wk->d[j] > 0);
                if (!go)
                    continue;
                s[j] |= (uint8_t)mode;
                if (!push(&wk->st, j))
                    return false;
            }
        }
    }
    if (mass)
        *mass = m;
    return true;
}

/* Strong mask, its parts, and the kept ink (KEEP bits, ink box). */
static bool find_ink(work *wk, int threshold)
{
    const size_t n = (size_t)wk->w * (size_t)wk->h;
    uint8_t *s = wk->state;
    for (size_t i = 0; i < n; i++)
        s[i] = s[i] >= threshold ? STRONG : 0;
    uint64_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] & (STRONG | SEEN)) != STRONG)
            continue;
        uint64_t mass;
        if (!flood(wk, (uint32_t)i, SEEN, &mass))
            return false;
        if (wk->nparts == wk->capparts) {
            size_t cap = wk->capparts ? wk->capparts * 2 : 64;
            part *p = realloc(wk->parts, cap * sizeof *p);
            if (!p)
                return false;
            wk->parts = p;
            wk->capparts = cap;
        }
        wk->parts[wk->nparts++] = (part){(uint32_t)i, mass};
        if (mass > best)
            best = mass;
    }
    wk->x0 = wk->w;
    wk->y0 = wk->h;
    wk->x1 = wk->y1 = -1;
    for (size_t k = 0; k < wk->nparts; k++) {
        const part *p = &wk->parts[k];
        if (p->mass * 50 < best || (s[p->seed] & KEEP))
            continue;
        if (!flood(wk, p->seed, KEEP, NULL))
            return false;
    }
    return true;
}

/* Resampling taps for L source pixels onto n: output j takes
 * sum_k wt[j*T+k] * src[idx[j*T+k]] for k < cnt[j]. Area averaging when
 * L >= n (exact copy when L == n), bilinear (pixel centres aligned) when
 * L < n. */
typedef struct taps {
    int T;
    int *idx, *cnt;
    float *wt;
} taps;

static bool make_taps(int L, int n, taps *t)
{
    double r = (double)L / n;
    t->T = L >= n ? (int)ceil(r) + 2 : 2;
    t->idx = calloc((size_t)n * t->T, sizeof *t->idx);
    t->wt = calloc((size_t)n * t->T, sizeof *t->wt);
    t->cnt = calloc((size_t)n, sizeof *t->cnt);
    if (!t->idx || !t->wt || !t->cnt)
        return false;
    for (int j = 0; j < n; j++) {
        int *idx = t->idx + (size_t)j * t->T;
        float *wt = t->wt + (size_t)j * t->T;
        int c = 0;
        if (L >= n) {
            double a = j * r, b = (j + 1) * r;
            for (int i = (int)floor(a); i < L && i < b && c < t->T; i++) {
                double lo = a > i ? a : i, hi = b < i + 1 ? b : i + 1;
                if (hi > lo) {
                    idx[c] = i;
                    wt[c++] = (float)((hi - lo) / r);
                }
            }
        } else {
            double x = (j + 0.5) * r - 0.5;
            int i0 = (int)floor(x);
            double f = x - i0;
            int a = i0 < 0 ? 0 : i0, b = i0 + 1 >= L ? L - 1 : i0 + 1;
            idx[c] = a;
            wt[c++] = (float)(1.0 - f);
            if (b == a) {
                wt[0] = 1.0f;
            } else {
                idx[c] = b;
                wt[c++] = (float)f;
            }
        }
        t->cnt[j] = c;
    }
    return true;
}

static void free_taps(taps *t)
{
    free(t->idx);
    free(t->wt);
    free(t->cnt);
}

/* Grey dilation (a running maximum over 2r+1 samples) of n values spaced
 * `step` apart, in place; van Herk / Gil-Werman, O(1) per sample.
 * ext, g, h: scratch of n + 2r + 2r+1 each. */
static void max_filter(uint8_t *v, size_t n, size_t step, int r, uint8_t *ext,
                       uint8_t *g, uint8_t *h)
{
    const size_t k = 2 * (size_t)r + 1, m = n + 2 * (size_t)r;
    size_t len = (m + k - 1) / k * k;          /* whole blocks */
    memset(ext, 0, len);
    for (size_t i = 0; i < n; i++)
        ext[r + i] = v[i * step];
    for (size_t b = 0; b < len; b += k) {
        g[b] = ext[b];
        for (size_t i = 1; i < k; i++)
            g[b + i] = ext[b + i] > g[b + i - 1] ? ext[b + i] : g[b + i - 1];
        h[b + k - 1] = ext[b + k - 1];
        for (size_t i = k - 1; i-- > 0;)
            h[b + i] = ext[b + i] > h[b + i + 1] ? ext[b + i] : h[b + i + 1];
    }
    for (size_t i = 0; i < n; i++)             /* window ext[i .. i+2r] */
        v[i * step] = h[i] > g[i + k - 1] ? h[i] : g[i + k - 1];
}

/* Mean stroke width of the kept ink in source pixels: twice the ink area
 * over the length of its outline (ink: level >= 1/2), 0 if none. */
static double stroke_width(const work *wk, const float *level)
{
    uint64_t area = 0, edges = 0;
    for (int y = wk->y0; y <= wk->y1; y++)
        for (int x = wk->x0; x <= wk->x1; x++) {
            size_t i = (size_t)y * wk->w + x;
            if (!(wk->state[i] & KEEP) || level[wk->d[i]] < 0.5f)
                continue;
            area++;
            static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
            for (int k = 0; k < 4; k++) {
                int xx = x + dx[k], yy = y + dy[k];
                size_t j = (size_t)yy * wk->w + xx;
                edges += xx < wk->x0 || xx > wk->x1 || yy < wk->y0 ||
                         yy > wk->y1 || !(wk->state[j] & KEEP) ||
                         level[wk->d[j]] < 0.5f;
            }
        }
    return edges ? 2.0 * (double)area / (double)edges : 0;
}

/* Crops the kept ink, stretches its level, thickens pen strokes that would
 * come out thinner than MNIST's, and resamples it to fit 20x20:
 * out20 (*nh, *nw) floats in [0, 1]. */
static bool resample(work *wk, float *out20, int *pnw, int *pnh)
{
    enum { B = NN_DIGIT_BOX };
    const int bw = wk->x1 - wk->x0 + 1, bh = wk->y1 - wk->y0 + 1;
    const int big = bw > bh ? bw : bh;
    /* Ink level whose 90th percentile becomes 1 (full white). */
    size_t hist[256] = {0}, cnt = 0;
    for (int y = wk->y0; y <= wk->y1; y++)
        for (int x = wk->x0; x <= wk->x1; x++) {
            size_t i = (size_t)y * wk->w + x;
            int d = wk->d[i];
            if ((wk->state[i] & KEEP) && d > 0) {
                hist[d]++;
                cnt++;
            }
        }
    int peak = cnt ? hist_kth(hist, (cnt - 1) * 9 / 10) : 255;
    if (peak < 1)
        peak = 1;
    float level[256];
    for (int v = 0; v < 256; v++)
        level[v] = v >= peak ? 1.0f : (float)v / (float)peak;

    /* Pen strokes: MNIST's are about 2 output pixels wide (median of the
     * test set; 10% are under 1.45). A picture shrunk at least twice whose
     * strokes would come out under 1.4 is dilated by r source pixels (the
     * box grows by r on each side) so that they come out 2 wide:
     * w + 2r = 2 (big + 2r) / 20. */
    int r = 0;
    if (big >= 2 * B) {
        double w = stroke_width(wk, level);
        if (w > 0 && w * B / big < 1.4)
            r = (int)lround((2.0 * big / B - w) / (2 - 4.0 / B));
        if (r < 0)
            r = 0;
    }
    const int pw = bw + 2 * r, ph = bh + 2 * r, pbig = big + 2 * r;
    int nw = (int)lround((double)pw * B / pbig);
    int nh = (int)lround((double)ph * B / pbig);
    nw = nw < 1 ? 1 : nw;
    nh = nh < 1 ? 1 : nh;
    *pnw = nw;
    *pnh = nh;

    taps tx = {0}, ty = {0};
    size_t line = (size_t)(pw > ph ? pw : ph) + 4 * (size_t)r + 1;
    uint8_t *box = calloc((size_t)pw * ph, 1);                /* (ph, pw) */
    uint8_t *scratch = r ? malloc(3 * line) : NULL;
    float *tmp = malloc((size_t)ph * nw * sizeof *tmp);       /* (ph, nw) */
    bool ok = box && tmp && (!r || scratch) && make_taps(pw, nw, &tx) &&
              make_taps(ph, nh, &ty);
    if (ok) {
        for (int y = 0; y < bh; y++) {
            size_t base = (size_t)(wk->y0 + y) * wk->w + wk->x0;
            uint8_t *dst = box + (size_t)(y + r) * pw + r;
            for (int x = 0; x < bw; x++) {
                size_t i = base + x;
                dst[x] = (wk->state[i] & KEEP)
                             ? (uint8_t)lrintf(level[wk->d[i]] * 255)
                             : 0;
            }
        }
        if (r) {
            uint8_t *e = scratch, *g = e + line, *h = g + line;
            for (int y = 0; y < ph; y++)
                max_filter(box + (size_t)y * pw, (size_t)pw, 1, r, e, g, h);
            for (int x = 0; x < pw; x++)
                max_filter(box + x, (size_t)ph, (size_t)pw, r, e, g, h);
        }
        for (int y = 0; y < ph; y++) {
            const uint8_t *row = box + (size_t)y * pw;
            for (int j = 0; j < nw; j++) {
                float acc = 0;
                for (int k = 0; k < tx.cnt[j]; k++)
                    acc += tx.wt[j * tx.T + k] * row[tx.idx[j * tx.T + k]];
                tmp[(size_t)y * nw + j] = acc / 255.0f;
            }
        }
        for (int i = 0; i < nh; i++)
            for (int j = 0; j < nw; j++) {
                float acc = 0;
                for (int k = 0; k < ty.cnt[i]; k++)
                    acc += ty.wt[i * ty.T + k] *
                           tmp[(size_t)ty.idx[i * ty.T + k] * nw + j];
                out20[i * nw + j] = acc > 1.0f ? 1.0f : acc;
            }
        /* Strokes thinner than an output pixel come out grey; bring the
         * strongest back to full white, as in MNIST. */
        float top = 0;
        for (int i = 0; i < nw * nh; i++)
            top = out20[i] > top ? out20[i] : top;
        if (top > 0 && top < 1)
            for (int i = 0; i < nw * nh; i++)
                out20[i] /= top;
    }
    free_taps(&tx);
    free_taps(&ty);
    free(box);
    free(scratch);
    free(tmp);
    return ok;
}

/* Centre of mass (x, y) of a (h, w) float picture; false if it is empty. */
static bool centre_of_mass(const float *p, int w, int h, double *cx,
                           double *cy)
{
    double m = 0, sx = 0, sy = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = p[y * w + x];
            m += v;
            sx += v * x;
            sy += v * y;
        }
    if (!(m > 0))
        return false;
    *cx = sx / m;
    *cy = sy / m;
    return true;
}

nn_status nn_preprocess_digit(const nn_image *img,
                              const nn_preprocess_options *opts,
                              uint8_t *out, nn_preprocess_info *info,
                              nn_error *err)
{
    enum { S = NN_DIGIT_SIDE, B = NN_DIGIT_BOX };
    nn_preprocess_options o = opts ? *opts : nn_preprocess_defaults();
    nn_preprocess_info inf = {0};
    if (info)
        *info = inf;
    if (!img || !out)
        return nn_fail(err, NN_ERR_ARG, "nn_preprocess_digit: NULL argument");
    memset(out, 0, (size_t)S * S);
    if (!img->pixels || img->w < 1 || img->h < 1 ||
        img->w > NN_MAX_IMAGE_SIDE || img->h > NN_MAX_IMAGE_SIDE ||
        (size_t)img->w * (size_t)img->h > NN_MAX_IMAGE_PIXELS)
        return nn_fail(err, NN_ERR_ARG, "nn_preprocess_digit: image of "
                       "%dx%d is empty or over the limits", img->w, img->h);
    if (o.ink != NN_INK_AUTO && o.ink != NN_INK_DARK && o.ink != NN_INK_LIGHT)
        return nn_fail(err, NN_ERR_ARG, "nn_preprocess_digit: bad ink mode");
    if (o.min_contrast < 1 || o.min_contrast > 255)
        return nn_fail(err, NN_ERR_ARG, "nn_preprocess_digit: min_contrast "
                       "%d is not in 1..255", o.min_contrast);

    work wk = {.w = img->w, .h = img->h, .g = img->pixels};
    nn_status st = NN_OK;
    size_t n = (size_t)wk.w * (size_t)wk.h;
    wk.state = malloc(n);
    wk.d = malloc(n);
    uint32_t *cs = malloc((size_t)wk.w * sizeof *cs);
    wk.col = malloc((size_t)wk.w * sizeof *wk.col);
    if (!wk.state || !wk.d || !cs || !wk.col) {
        st = nn_fail(err, NN_ERR_NOMEM, "nn_preprocess_digit: out of memory");
        goto done;
    }
    find_paper(&wk, o.ink, &inf.inverted, &inf.background);
    int best = average3(&wk, cs);
    if (best < o.min_contrast)
        goto done;                      /* blank: no digit */
    if (!find_ink(&wk, best / 4 > 1 ? best / 4 : 1)) {
        st = nn_fail(err, NN_ERR_NOMEM, "nn_preprocess_digit: out of memory");
        goto done;
    }
    if (wk.x1 < 0)
        goto done;
    int bw = wk.x1 - wk.x0 + 1, bh = wk.y1 - wk.y0 + 1, nw, nh;
    float out20[B * B];
    if (!resample(&wk, out20, &nw, &nh)) {
        st = nn_fail(err, NN_ERR_NOMEM, "nn_preprocess_digit: out of memory");
        goto done;
    }
    double cx, cy;
    if (!centre_of_mass(out20, nw, nh, &cx, &cy))
        goto done;
    int ox = (int)floor(S / 2 - cx + 0.5), oy = (int)floor(S / 2 - cy + 0.5);
    double m = 0, sx = 0, sy = 0;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            int X = x + ox, Y = y + oy;
            if (X < 0 || X >= S || Y < 0 || Y >= S)
                continue;
            int v = (int)lrintf(out20[y * nw + x] * 255.0f);
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            out[Y * S + X] = (uint8_t)v;
            m += v;
            sx += (double)v * X;
            sy += (double)v * Y;
        }
    if (m > 0) {
        inf.found = true;
        inf.box_x = wk.x0;
        inf.box_y = wk.y0;
        inf.box_w = bw;
        inf.box_h = bh;
        inf.cx = (float)(sx / m);
        inf.cy = (float)(sy / m);
    }
done:
    if (st != NN_OK || !inf.found)
        memset(out, 0, (size_t)S * S);
    if (st == NN_OK)
        nn_ok(err);
    if (info)
        *info = inf;
    free(wk.state);
    free(wk.d);
    free(cs);
    free(wk.col);
    free(wk.st.v);
    free(wk.parts);
    return st;
}
