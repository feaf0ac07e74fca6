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
 *     absolute deviation) sizes a noise margin; clean paper (most of the
 *     ring exactly at its median, under 1% just off it) is that level, flat;
 *  2. polarity: ink is the extreme farther from the paper level; dark ink
 *     is inverted so that ink is light on black, as in MNIST;
 *  3. ink level d = grey - paper - margin, clamped to 0..255; for dark ink
 *     on light paper as a fraction of the paper's local brightness;
 *  3b. printed lines (ruled or squared paper, a box around the digit):
 *     straight thin runs across the picture, or four meeting as a box,
 *     cleared from d where they are thin (strokes crossing them stay);
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
    uint8_t *d;         /* (h, w) ink level, 0 = paper; in the kept ink
                         * box, after find_ink, the kept ink's only */
    uint8_t *state;     /* (h, w) 3x3 averages, then state bits */
    stack st;
    part *parts;
    size_t nparts, capparts;
    int ix0, iy0, ix1, iy1; /* rows and columns with ink, inclusive */
    int ex0, ey0, ex1, ey1; /* the same grown by a pixel: 3x3 averages */
    int x0, y0, x1, y1; /* kept ink box, inclusive */
    double *col;        /* (w) scratch: a plane's column terms */
    int kept;           /* stroke parts kept */
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

/* The border ring of width r in row y as at most two runs of x, [x0, x1)
 * and [x2, x3): x runs over [0, w) in the top and bottom r rows, else over
 * [0, r) and then [w - r, w). Visited row by row, the runs give the ring's
 * pixels in the order of a scan of the whole picture (so that sums come
 * out the same). Returns the count. */
static int ring_runs(const work *wk, int r, int y, int *x)
{
    x[0] = 0;
    if (y >= r && y < wk->h - r && wk->w - r > r) {
        x[1] = r;
        x[2] = wk->w - r;
        x[3] = wk->w;
        return 2;
    }
    x[1] = wk->w;
    return 1;
}

/* Rounds a finite x >= 0 to nearest, halves away from zero: lround(x)
 * for the values that are clamped to 0..255 here, without a libm call. */
static long round_pos(double x)
{
    long t = (long)x;            /* exact: x < 2^31 where it is used */
    return t + (x - (double)t >= 0.5);
}

/* lround(x) for a finite x of modest size (|x| < 2^31), without the libm
 * call: x - trunc(x) is exact, so halves go away from zero as lround's. */
static int round_half_away(double x)
{
    int t = (int)x;
    double f = x - (double)t;
    return t + (f >= 0.5) - (f <= -0.5);
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
static plane fit_plane(work *wk, int r, const plane *prev, double keep)
{
    double n = 0, X = 0, Y = 0, XX = 0, XY = 0, YY = 0, V = 0, XV = 0,
           YV = 0;
    plane p = {0, 0, 0, 1.0 / wk->w, 1.0 / wk->h};
    plane_cols(wk, prev);   /* plane_at(prev, x, y), bit for bit */
    for (int y = 0; y < wk->h; y++) {
        const uint8_t *g = wk->g + (size_t)y * wk->w;
        const double row = prev->c * (y * prev->sy - 0.5);
        const double t = y * p.sy - 0.5;
        int run[4], nr = ring_runs(wk, r, y, run);
        for (int k = 0; k < nr; k++)
            for (int x = run[2 * k]; x < run[2 * k + 1]; x++) {
                double v = g[x];
                if (fabs(v - (prev->a + wk->col[x] + row)) > keep)
                    continue;
                double u = x * p.sx - 0.5;
                n++, X += u, Y += t, XX += u * u, XY += u * t, YY += t * t;
                V += v, XV += u * v, YV += t * v;
            }
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

/* Median absolute distance from the plane of the ring's pixels that are
 * within `keep` of it. */
static double ring_mad(work *wk, int r, const plane *p, double keep)
{
    enum { BINS = 8 * 256 };   /* eighths of a grey level */
    uint32_t dev[BINS] = {0};  /* a ring has under 2^32 pixels */
    size_t n = 0;
    plane_cols(wk, p);         /* plane_at(p, x, y), bit for bit */
    for (int y = 0; y < wk->h; y++) {
        const uint8_t *g = wk->g + (size_t)y * wk->w;
        const double row = p->c * (y * p->sy - 0.5);
        int run[4], nr = ring_runs(wk, r, y, run);
        for (int k = 0; k < nr; k++)
            for (int x = run[2 * k]; x < run[2 * k + 1]; x++) {
                double e = 8 * fabs(g[x] - (p->a + wk->col[x] + row));
                if (e > 8 * keep)
                    continue;
                dev[e > BINS - 1 ? BINS - 1 : (int)round_pos(e)]++;
                n++;
            }
    }
    size_t acc = 0;
    int k = 0;
    while (n && k < BINS - 1 && (acc += dev[k]) <= (n - 1) / 2)
        k++;
    return k / 8.0;
}

/* ring_mad for a level plane at the whole level m (b = c = 0, so that
 * every plane_at is m exactly), from the ring's histogram: the same
 * eighths, 8 |g - m|, counted per grey instead of per pixel. */
static double ring_mad_level(const size_t *ring, int m, double keep)
{
    size_t dev[256] = {0}, n = 0;   /* by |g - m| */
    for (int v = 0; v < 256; v++) {
        int e = v > m ? v - m : m - v;
        if (8.0 * e > 8 * keep)
            continue;
        dev[e] += ring[v];
        n += ring[v];
    }
    size_t acc = 0;
    int k = 0;   /* in eighths, as ring_mad: only multiples of 8 occur */
    while (n && k < 8 * 256 - 1) {
        if (k % 8 == 0 && (acc += dev[k / 8]) > (n - 1) / 2)
            break;
        k++;
    }
    return k / 8.0;
}

/* The first, flat paper level from the ring's histogram: its median;
 * but when the ring is two clear levels (32 apart or more, each narrow)
 * each covering at least 30% of it (a digit cropped so tight that it runs along the border, as a 0 that
 * touches all four edges), the level of the class that holds more of the
 * picture's four corners (r x r each), which a digit leaves as paper.
 * Then *keep becomes half the distance between the two levels: only ring
 * pixels that close to the paper are paper in the fits that follow. */
static double ring_paper(const work *wk, int r, const size_t *ring,
                         size_t nring, double *keep)
{
    double median = hist_kth(ring, (nring - 1) / 2);
    /* Otsu's split of the ring's histogram */
    double sum = 0;
    for (int v = 0; v < 256; v++)
        sum += (double)v * ring[v];
    double s0 = 0, best = -1;
    size_t n0 = 0;
    int split = -1;
    for (int t = 0; t < 255; t++) {
        n0 += ring[t];
        s0 += (double)t * ring[t];
        size_t n1 = nring - n0;
        if (!n0 || !n1)
            continue;
        double m0 = s0 / n0, m1 = (sum - s0) / n1;
        double between = (double)n0 * n1 * (m1 - m0) * (m1 - m0);
        if (between > best) {
            best = between;
            split = t;
        }
    }
    if (split < 0)
        return median;
    size_t lo_n = 0, hi_n = 0;
    for (int v = 0; v < 256; v++)
        *(v <= split ? &lo_n : &hi_n) += ring[v];
    if (lo_n * 10 < nring * 3 || hi_n * 10 < nring * 3)
        return median;
    size_t lo_hist[256] = {0}, hi_hist[256] = {0};
    for (int v = 0; v < 256; v++)
        (v <= split ? lo_hist : hi_hist)[v] = ring[v];
    double lo = hist_kth(lo_hist, (lo_n - 1) / 2);
    double hi = hist_kth(hi_hist, (hi_n - 1) / 2);
    /* two levels, each narrow (interquartile range under half the gap):
     * not the spread of a noisy or busy border */
    double lo_iqr = hist_kth(lo_hist, (lo_n - 1) * 3 / 4) -
                    hist_kth(lo_hist, (lo_n - 1) / 4);
    double hi_iqr = hist_kth(hi_hist, (hi_n - 1) * 3 / 4) -
                    hist_kth(hi_hist, (hi_n - 1) / 4);
    if (hi - lo < 32 || lo_iqr >= (hi - lo) / 2 || hi_iqr >= (hi - lo) / 2)
        return median;
    size_t corner_lo = 0, corner_hi = 0;
    for (int y = 0; y < wk->h; y++)
        for (int x = 0; x < wk->w; x++)
            if ((y < r || y >= wk->h - r) && (x < r || x >= wk->w - r))
                *(wk->g[(size_t)y * wk->w + x] <= split ? &corner_lo
                                                       : &corner_hi) += 1;
    *keep = (hi - lo) / 2;
    return corner_lo > corner_hi ? lo : hi;
}

/* The darkest and lightest of n greys. Sixteen running extremes, one per
 * byte of a 16-byte stride, are taken first: a loop the compiler turns
 * into vector min and max (a reduction into one uint8_t it leaves scalar). */
static void grey_range(const uint8_t *g, size_t n, uint8_t *gmin,
                       uint8_t *gmax)
{
    uint8_t mn[16], mx[16], a = 255, b = 0;
    memset(mn, 255, sizeof mn);
    memset(mx, 0, sizeof mx);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) {
            uint8_t v = g[i + k];
            mn[k] = v < mn[k] ? v : mn[k];
            mx[k] = v > mx[k] ? v : mx[k];
        }
    for (; i < n; i++) {
        a = g[i] < a ? g[i] : a;
        b = g[i] > b ? g[i] : b;
    }
    for (int k = 0; k < 16; k++) {
        a = mn[k] < a ? mn[k] : a;
        b = mx[k] > b ? mx[k] : b;
    }
    *gmin = a;
    *gmax = b;
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
    {
        /* four histograms, summed after: most of a ring is one grey, and
         * four counters in turn do not wait on each other's last add */
        uint32_t four[4][256] = {{0}};   /* a ring has under 2^32 pixels */
        for (int y = 0; y < h; y++) {
            const uint8_t *g = wk->g + (size_t)y * w;
            int run[4], nr = ring_runs(wk, r, y, run);
            for (int k = 0; k < nr; k++) {
                int x = run[2 * k], end = run[2 * k + 1];
                for (; x + 4 <= end; x += 4) {
                    four[0][g[x]]++;
                    four[1][g[x + 1]]++;
                    four[2][g[x + 2]]++;
                    four[3][g[x + 3]]++;
                }
                for (; x < end; x++)
                    four[0][g[x]]++;
                nring += (size_t)(end - run[2 * k]);
            }
        }
        for (int v = 0; v < 256; v++)
            ring[v] = (size_t)four[0][v] + four[1][v] + four[2][v] + four[3][v];
    }
    double keep = 1e9;   /* ring pixels that may be paper: all */
    plane p = {ring_paper(wk, r, ring, nring, &keep), 0, 0, 1.0 / w, 1.0 / h};
    /* When most of the ring is exactly at that level and under 1% of it
     * is within 2 levels of it without being on it (a drawing, a clean
     * rendering, MNIST: no light falling off into the paper, and what is
     * off the level is ink), the paper is that flat level, with no
     * spread: the fits are skipped. */
    double mad0 = ring_mad_level(ring, (int)p.a, keep);
    const int m0 = (int)p.a;
    size_t near = 0;
    for (int v = m0 - 2; v <= m0 + 2; v++)
        near += v >= 0 && v < 256 && v != m0 ? ring[v] : 0;
    const bool flat = mad0 == 0 && near * 100 < nring;
    for (int pass = 0; pass < 2 && w >= 16 && h >= 16 && !flat; pass++) {
        double sigma = 1.4826 * (pass ? ring_mad(wk, r, &p, keep) : mad0);
        p = fit_plane(wk, r, &p, fmin(fmax(3 * sigma, 2.0), keep));
    }
    /* Margin: three standard deviations of the paper's noise (from the
     * median absolute deviation), plus 2 levels for rounding and JPEG ripple
     * unless most of the paper is exactly on the plane (a drawing, MNIST). */
    double mad = flat ? 0 : ring_mad(wk, r, &p, keep);
    int margin = (int)ceil(3.0 * 1.4826 * mad) + (mad > 0 ? 2 : 0);
    if (margin > 96)
        margin = 96;
    double lo = 0, hi = 0;   /* extremes of grey - paper */
    plane_cols(wk, &p);
    /* A level plane (b = c = 0: every plane_at is a exactly): grey - paper
     * depends on the grey alone, so the extremes come from the grey's and
     * the ink level from a table of the 256 greys. */
    const bool level = p.b == 0 && p.c == 0;
    if (level) {
        uint8_t gmin, gmax;
        grey_range(wk->g, (size_t)w * h, &gmin, &gmax);
        lo = fmin(0, gmin - p.a);
        hi = fmax(0, gmax - p.a);
    }
    for (int y = 0; y < h && !level; y++) {
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
    if (level) {
        uint8_t lut[256];
        for (int gv = 0; gv < 256; gv++) {
            double pa = p.a, e = gv - pa;
            double v = (sign * e - margin) *
                       (lit ? 255.0 / (pa > 64.0 ? pa : 64.0) : 1.0);
            double vc = v > 0 ? (v < 255.0 ? v : 255.0) : 0;
            int t = (int)vc;
            lut[gv] = (uint8_t)(t + (vc - (double)t >= 0.5));
        }
        /* Most pixels are paper: [zlo, zlo + span] is the run of greys
         * around the paper's whose level in the table is 0, and 16 pixels
         * whose greys are all in it are 16 zeros, found by a test the
         * compiler vectorises (g - zlo, wrapped to 0..255, is at most span
         * only for them); other strides look each grey up. */
        int zlo = (int)p.a < 0 ? 0 : (int)p.a > 255 ? 255 : (int)p.a, zhi = zlo;
        if (lut[zlo] == 0) {
            while (zlo > 0 && lut[zlo - 1] == 0)
                zlo--;
            while (zhi < 255 && lut[zhi + 1] == 0)
                zhi++;
        } else {
            zhi = zlo - 1;   /* no run: every test fails */
        }
        const int span = zhi - zlo;
        const uint8_t *g = wk->g, lo8 = (uint8_t)zlo;
        uint8_t *d = wk->d;
        const size_t n = (size_t)w * h;
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            uint8_t far = 0;   /* the largest g - zlo (wrapped) of the 16 */
            for (int k = 0; k < 16; k++) {
                uint8_t t = (uint8_t)(g[i + k] - lo8);
                far = t > far ? t : far;
            }
            if (far <= span)
                memset(d + i, 0, 16);
            else
                for (int k = 0; k < 16; k++)
                    d[i + k] = lut[g[i + k]];
        }
        for (; i < n; i++)
            d[i] = lut[g[i]];
    }
    for (int y = 0; y < h && !level; y++) {
        double row = p.c * (y * p.sy - 0.5);
        const uint8_t *g = wk->g + (size_t)y * w;
        const double *col = wk->col;
        uint8_t *d = wk->d + (size_t)y * w;
        /* v = (sign e - margin) gain, rounded (lround) and clamped to
         * 0..255 (sign * e is exactly +-e): vc = v held to [0, 255], then
         * its whole part, plus one when the rest is a half or more */
        if (lit) {
            for (int x = 0; x < w; x++) {
                double pa = p.a + col[x] + row, e = g[x] - pa;
                double q = sign * e - margin;
                if (q < 0.125) {   /* the gain is at most 255/64: v < 0.5 */
                    d[x] = 0;
                    continue;
                }
                double v = q * (255.0 / (pa > 64.0 ? pa : 64.0));
                double vc = v > 0 ? (v < 255.0 ? v : 255.0) : 0;
                int t = (int)vc;
                d[x] = (uint8_t)(t + (vc - (double)t >= 0.5));
            }
        } else {
#pragma omp simd
            for (int x = 0; x < w; x++) {
                double pa = p.a + col[x] + row, e = g[x] - pa;
                double v = (sign * e - margin) * 1.0;
                double vc = v > 0 ? (v < 255.0 ? v : 255.0) : 0;
                int t = (int)vc;
                d[x] = (uint8_t)(t + (vc - (double)t >= 0.5));
            }
        }
    }
    long bg = lround(plane_at(&p, w / 2, h / 2));
    *inverted = inv;
    *paper = (int)(bg < 0 ? 0 : bg > 255 ? 255 : bg);
}

/* ---- step 3b: ruled and squared paper, printed boxes
 *
 * Lines printed on the paper are ink to step 3 but not part of the digit.
 * They are found on a coarse mask (cells of f x f pixels, at most 256 a
 * side, a cell lit when at least f/2 of its pixels have d >= 16) as
 * straight runs of lit cells, near-horizontal or near-vertical (within
 * 8 degrees, in half-degree steps): a run that crosses the whole picture
 * (from within 5% of one edge to within 5% of the other, lit over 85% of
 * the way) is a ruled or squared-paper line; four runs that each cover at
 * least a quarter of the picture and meet as a rectangle (two horizontal,
 * two vertical, corners within 10% of the box's size) are a printed box.
 * A line is removed only where it is thin: at each point along it the run
 * of ink across it (d > 0) is cleared when it is at most twice the line's
 * median thickness plus 2 pixels; where a stroke crosses or lies along the
 * line the run is longer and the stroke stays. A run whose median
 * thickness exceeds 2% of the picture's shorter side (at least 3 pixels)
 * is a stroke, not a printed line, and stays. */

enum { LINE_CELLS = 256, LINE_ANGLES = 33 };   /* -8 .. 8 degrees */
#define DEG (3.14159265358979323846 / 180)

typedef struct seg {
    bool vertical;
    double slope;       /* cells across per cell along */
    double at;          /* position across at along = 0, in cells */
    int from, to;       /* covered extent along, in cells */
    int lit;            /* cells lit along the way */
} seg;

typedef struct cells {
    int f, cw, ch;
    uint8_t *lit;       /* (ch, cw) */
} cells;

static bool cell_lit(const cells *c, bool vertical, int along, int across)
{
    int x = vertical ? across : along, y = vertical ? along : across;
    if (x < 0 || y < 0 || x >= c->cw || y >= c->ch)
        return false;
    return c->lit[(size_t)y * c->cw + x] != 0;
}

/* Follows the line (slope, at) along its direction; fills the longest
 * covered stretch (gaps up to 3 cells bridged) and the lit count. */
static void trace(const cells *c, seg *s)
{
    int n = s->vertical ? c->ch : c->cw;
    int best_from = 0, best_to = -1, from = -1, last = -10, lit = 0,
        best_lit = 0;
    /* the cells across the line, v - 1 .. v + 1, read directly when all
     * three are on the grid (lit is 0 or 1), else through cell_lit */
    const int across = s->vertical ? c->cw : c->ch;
    const size_t sa = s->vertical ? (size_t)c->cw : 1;   /* steps in lit: */
    const size_t sb = s->vertical ? 1 : (size_t)c->cw;   /* along, across */
    for (int u = 0; u < n; u++) {
        int v = round_half_away(s->at + s->slope * u);
        bool on;
        if (v >= 1 && v + 1 < across) {
            const uint8_t *p = c->lit + (size_t)u * sa + (size_t)v * sb;
            on = (p[-(ptrdiff_t)sb] | p[0] | p[sb]) != 0;
        } else {
            on = cell_lit(c, s->vertical, u, v) ||
                 cell_lit(c, s->vertical, u, v - 1) ||
                 cell_lit(c, s->vertical, u, v + 1);
        }
        if (!on)
            continue;
        if (u - last > 4) {
            from = u;
            lit = 0;
        }
        last = u;
        lit++;
        if (u - from > best_to - best_from) {
            best_from = from;
            best_to = u;
            best_lit = lit;
        }
    }
    s->from = best_from;
    s->to = best_to;
    s->lit = best_lit;
}

/* floor(z) for a finite |z| < 2^31, without the libm call: truncation,
 * less one where it went up (z negative and not whole). */
static double floor_small(double z)
{
    double t = (double)(int)z;
    return t - (t > z);
}

/* The 24 neighbours (angle, offset) of a Hough bin within 2 steps, the
 * nearest first: a bin that is not a peak most often has a larger one next
 * to it, and the test below (all must pass) ends at the first that fails,
 * whatever the order. */
static const signed char near5[24][2] = {
    {0, -1}, {0, 1}, {-1, 0}, {1, 0}, {-1, -1}, {-1, 1}, {1, -1}, {1, 1},
    {0, -2}, {0, 2}, {-2, 0}, {2, 0}, {-1, -2}, {-1, 2}, {1, -2}, {1, 2},
    {-2, -1}, {-2, 1}, {2, -1}, {2, 1}, {-2, -2}, {-2, 2}, {2, -2}, {2, 2}};

/* Candidate lines of one orientation: Hough peaks over the lit cells. */
static size_t find_segs(const cells *c, bool vertical, seg *out, size_t cap)
{
    int along = vertical ? c->ch : c->cw, across = vertical ? c->cw : c->ch;
    int pad = (int)ceil(along * tan(8.5 * DEG)) + 2;
    int bins = across + 2 * pad;
    /* votes: one at most per cell along a line, and there are at most
     * LINE_CELLS (256) of those, so 16 bits hold them */
    uint16_t *acc = calloc((size_t)LINE_ANGLES * bins, sizeof *acc);
    if (!acc)
        return 0;
    double slope[LINE_ANGLES];
    for (int a = 0; a < LINE_ANGLES; a++)
        slope[a] = tan((a - LINE_ANGLES / 2) * 0.5 * DEG);
    /* pre: (along + 1, across) counts of lit cells, pre[u][v] over the
     * lines along before u, so that a run of lines along that vote with
     * the same shift is added at once */
    uint16_t *pre = calloc((size_t)(along + 1) * across, sizeof *pre);
    if (!pre) {
        free(acc);
        return 0;
    }
    for (int u = 0; u < along; u++) {
        const uint16_t *p0 = pre + (size_t)u * across;
        uint16_t *p1 = pre + (size_t)(u + 1) * across;
        if (vertical) {
            const uint8_t *l = c->lit + (size_t)u * c->cw;
#pragma omp simd
            for (int v = 0; v < across; v++)
                p1[v] = (uint16_t)(p0[v] + (l[v] != 0));
        } else {
            const uint8_t *l = c->lit + u;
            for (int v = 0; v < across; v++)
                p1[v] = (uint16_t)(p0[v] + (l[(size_t)v * c->cw] != 0));
        }
    }
    /* Cell (u, v) votes in bin (int)(v - slope[a] u + pad + 0.5) (>= 0):
     * that is v + K with K = floor(pad + 0.5 - slope[a] u), unless
     * pad + 0.5 - slope[a] u is within 1e-9 of a whole number, where the
     * three roundings (each under 2^-43 here, |values| < 2^10) could tip
     * it; there each bin is computed as written. */
    for (int a = 0; a < LINE_ANGLES; a++) {
        uint16_t *row = acc + (size_t)a * bins;
        int u = 0;
        while (u < along) {
            double z = pad + 0.5 - slope[a] * u, fz = floor_small(z);
            if (!(z - fz > 1e-9 && z - fz < 1 - 1e-9)) {
                const double su = slope[a] * u;
                const uint16_t *p0 = pre + (size_t)u * across,
                               *p1 = p0 + across;
                for (int v = 0; v < across; v++)
                    if (p1[v] != p0[v]) {
                        int b = (int)(v - su + pad + 0.5);
                        if (b < bins)
                            row[b]++;
                    }
                u++;
                continue;
            }
            const int K = (int)fz;
            int u1 = u + 1;
            for (; u1 < along; u1++) {
                double z1 = pad + 0.5 - slope[a] * u1, f1 = floor_small(z1);
                if (f1 != fz || !(z1 - f1 > 1e-9 && z1 - f1 < 1 - 1e-9))
                    break;
            }
            const uint16_t *p0 = pre + (size_t)u * across,
                           *p1 = pre + (size_t)u1 * across;
            const int lim = across < bins - K ? across : bins - K;
#pragma omp simd
            for (int v = 0; v < lim; v++)
                row[K + v] = (uint16_t)(row[K + v] + (p1[v] - p0[v]));
            u = u1;
        }
    }
    free(pre);
    size_t n = 0;
    uint16_t need = (uint16_t)(along / 4 > 3 ? along / 4 : 3);
    /* A peak has at least `need` votes, more than each of its nearest 8
     * neighbours that come before it in scan order and no fewer than each
     * that comes after (the ties rule below): these tests, made for a row
     * of bins at once without branches, leave few bins for the full test
     * of 24 neighbours. (The first and last bins of a row are left to
     * the full test.) */
    uint8_t *cand = malloc((size_t)bins);
    uint16_t *none = calloc((size_t)bins, sizeof *none);   /* no votes */
    if (!cand || !none) {
        free(cand);
        free(none);
        free(acc);
        return 0;
    }
    for (int a = 0; a < LINE_ANGLES && n < cap; a++) {
        const uint16_t *r = acc + (size_t)a * bins;
        /* the angles either side; past the first or last, a row of 0s,
         * which a bin with `need` (3 or more) votes passes */
        const uint16_t *up = a > 0 ? r - bins : none;
        const uint16_t *dn = a + 1 < LINE_ANGLES ? r + bins : none;
        cand[0] = r[0] >= need;
        cand[bins - 1] = r[bins - 1] >= need;
#pragma omp simd
        for (int b = 1; b < bins - 1; b++) {
            const uint16_t v = r[b];
            cand[b] = (uint8_t)((v >= need) & (v > r[b - 1]) & (v >= r[b + 1]) &
                                (v > up[b - 1]) & (v > up[b]) & (v > up[b + 1]) &
                                (v >= dn[b - 1]) & (v >= dn[b]) &
                                (v >= dn[b + 1]));
        }
        for (int b = 0; b < bins && n < cap; b++) {
            uint16_t v = r[b];
            if (!cand[b])
                continue;
            bool peak = true;   /* a local maximum over angle and offset */
            for (int k = 0; k < 24 && peak; k++) {
                int da = near5[k][0], db = near5[k][1];
                int aa = a + da, bb = b + db;
                if (aa < 0 || bb < 0 || aa >= LINE_ANGLES || bb >= bins)
                    continue;
                uint16_t w = acc[(size_t)aa * bins + bb];
                /* ties: the first in scan order wins */
                if (w > v || (w == v && (da < 0 || (!da && db < 0))))
                    peak = false;
            }
            if (!peak)
                continue;
            seg s = {vertical, slope[a], b - pad, 0, -1, 0};
            trace(c, &s);
            if (s.to - s.from + 1 >= along / 4)
                out[n++] = s;
        }
    }
    free(cand);
    free(none);
    free(acc);
    return n;
}

static bool crosses(const cells *c, const seg *s)
{
    int n = s->vertical ? c->ch : c->cw;
    return s->from <= n / 20 && s->to >= n - 1 - n / 20 &&
           s->lit * 100 >= 85 * n;
}

/* Where segment s is across at position `along` (cells). */
static double seg_at(const seg *s, double along)
{
    return s->at + s->slope * along;
}

/* Do two horizontal (h0 above h1) and two vertical (v0 left of v1)
 * segments meet as a rectangle: each corner where a horizontal and a
 * vertical cross lies near the ends of both (within 10% of the box's size
 * plus 2 cells)? */
static bool rectangle(const seg *h0, const seg *h1, const seg *v0,
                      const seg *v1)
{
    double size = fmin(h0->to - h0->from, v0->to - v0->from);
    double tol = 0.1 * size + 2;
    const seg *hs[2] = {h0, h1}, *vs[2] = {v0, v1};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            const seg *h = hs[i], *v = vs[j];
            /* h: y = h.at + h.slope x; v: x = v.at + v.slope y */
            double y = (h->at + h->slope * v->at) / (1 - h->slope * v->slope);
            double x = v->at + v->slope * y;
            if (fabs(x - (j == 0 ? h->from : h->to)) > tol ||
                fabs(y - (i == 0 ? v->from : v->to)) > tol)
                return false;
        }
    return true;
}

/* Could two parallel segments be opposite sides of a box: similar
 * extents (ends within 15% of the length plus 2 cells) and apart by at
 * least a third of their length? */
static bool pair(const seg *a, const seg *b)
{
    double len = fmax(a->to - a->from, b->to - b->from), tol = 0.15 * len + 2;
    double mid = (a->from + a->to) / 2.0;
    return abs(a->from - b->from) <= tol && abs(a->to - b->to) <= tol &&
           fabs(seg_at(a, mid) - seg_at(b, mid)) >= len / 3;
}

/* Is there ink inside the rectangle, away from its sides (by 10% of its
 * size plus 2 cells), as a digit in a printed box? (A square-looking 0
 * is a rectangle with nothing inside.) */
static bool ink_inside(const cells *c, const seg *h0, const seg *h1,
                       const seg *v0, const seg *v1)
{
    double size = fmin(h0->to - h0->from, v0->to - v0->from);
    int m = (int)(0.1 * size) + 2, lit = 0;
    for (int y = (int)ceil(seg_at(h0, h0->from)) + m;
         y <= (int)floor(seg_at(h1, h1->from)) - m; y++)
        for (int x = (int)ceil(seg_at(v0, y)) + m;
             x <= (int)floor(seg_at(v1, y)) - m; x++)
            lit += cell_lit(c, false, x, y);
    return lit >= (int)(size / 2);
}

/* Clears the thin parts of the line s (in cells) from wk->d; returns
 * whether it was thin enough to be a printed line. */
static bool clear_line(work *wk, const cells *c, const seg *s)
{
    const int f = c->f, W = wk->w, H = wk->h;
    const int along = s->vertical ? H : W, across = s->vertical ? W : H;
    const int lo = s->from * f, hi = (s->to + 1) * f < along ? (s->to + 1) * f
                                                             : along;
    const int reach = f + 2;
    int *run0 = malloc((size_t)(hi - lo) * sizeof *run0);
    int *run1 = malloc((size_t)(hi - lo) * sizeof *run1);
    size_t hist_n = (size_t)across + 1;
    uint32_t *hist = calloc(hist_n, sizeof *hist);
    bool thin = false;
    if (!run0 || !run1 || !hist)
        goto out;
    uint32_t found = 0;
    for (int u = lo; u < hi; u++) {
        double centre = (seg_at(s, (u + 0.5) / f) + 0.5) * f - 0.5;
        int best = -1;
        double bestd = 1e9;
        for (int v = (int)floor(centre) - reach; v <= centre + reach; v++) {
            if (v < 0 || v >= across)
                continue;
            size_t i = s->vertical ? (size_t)u * W + v : (size_t)v * W + u;
            if (wk->d[i] > 0 && fabs(v - centre) < bestd) {
                bestd = fabs(v - centre);
                best = v;
            }
        }
        run0[u - lo] = run1[u - lo] = -1;
        if (best < 0)
            continue;
        int a = best, b = best;
#define D_AT(v) wk->d[s->vertical ? (size_t)u * W + (v) : (size_t)(v) * W + u]
        while (a > 0 && D_AT(a - 1) > 0)
            a--;
        while (b + 1 < across && D_AT(b + 1) > 0)
            b++;
        run0[u - lo] = a;
        run1[u - lo] = b;
        hist[b - a + 1]++;
        found++;
    }
    if (!found)
        goto out;
    uint32_t acc = 0;
    int median = 0;
    while (median < (int)across && (acc += hist[median]) <= found / 2)
        median++;
    int limit = (int)(0.02 * (W < H ? W : H));
    thin = median <= (limit > 3 ? limit : 3);
    if (!thin)
        goto out;
    for (int u = lo; u < hi; u++) {
        int a = run0[u - lo], b = run1[u - lo];
        if (a < 0 || b - a + 1 > 2 * median + 2)
            continue;
        for (int v = a; v <= b; v++)
            D_AT(v) = 0;
    }
#undef D_AT
out:
    free(run0);
    free(run1);
    free(hist);
    return thin;
}

/* Step 3b: finds ruled or squared paper lines and printed boxes and clears
 * their thin parts from wk->d. Returns the number of lines removed, or -1
 * when out of memory. */
static int remove_lines(work *wk)
{
    const int W = wk->w, H = wk->h, big = W > H ? W : H;
    if (W < 64 || H < 64)   /* no room for printed lines and a digit */
        return 0;
    cells c;
    c.f = (big + LINE_CELLS - 1) / LINE_CELLS;
    c.cw = (W + c.f - 1) / c.f;
    c.ch = (H + c.f - 1) / c.f;
    c.lit = calloc((size_t)c.cw * c.ch, 1);
    enum { CAP = 512 };
    seg *hs = malloc(2 * CAP * sizeof *hs), *vs = hs ? hs + CAP : NULL;
    int removed = -1;
    if (!c.lit || !hs)
        goto out;
    int need = c.f / 2 > 1 ? c.f / 2 : 1;
    if (c.f == 2) {
        /* The usual cell, 2 x 2, for pictures to 512: need is 1, so a cell
         * is lit when any of its pixels has ink, when the OR of their
         * levels is not 0 (a row or column past the edge: the last again). */
        for (int cy = 0; cy < c.ch; cy++) {
            const uint8_t *r0 = wk->d + (size_t)(2 * cy) * W;
            const uint8_t *r1 = 2 * cy + 1 < H ? r0 + W : r0;
            uint8_t *lit = c.lit + (size_t)cy * c.cw;
#pragma omp simd
            for (int cx = 0; cx < W / 2; cx++)
                lit[cx] = (r0[2 * cx] | r0[2 * cx + 1] | r1[2 * cx] |
                           r1[2 * cx + 1]) != 0;
            if (W % 2)
                lit[c.cw - 1] = (r0[W - 1] | r1[W - 1]) != 0;
        }
    } else {
        /* ink pixels per cell, a row of cells at a time, then lit or not */
        int *cnt = malloc((size_t)c.cw * sizeof *cnt);
        if (!cnt)
            goto out;
        for (int cy = 0; cy < c.ch; cy++) {
            memset(cnt, 0, (size_t)c.cw * sizeof *cnt);
            for (int y = cy * c.f; y < (cy + 1) * c.f && y < H; y++) {
                const uint8_t *dr = wk->d + (size_t)y * W;
                for (int cx = 0, x = 0; cx < c.cw; cx++) {
                    int k = 0, end = x + c.f < W ? x + c.f : W;
                    for (; x < end; x++)
                        k += dr[x] > 0;
                    cnt[cx] += k;
                }
            }
            for (int cx = 0; cx < c.cw; cx++)
                c.lit[(size_t)cy * c.cw + cx] = cnt[cx] >= need;
        }
        free(cnt);
    }
    size_t nh = find_segs(&c, false, hs, CAP);
    size_t nv = find_segs(&c, true, vs, CAP);
    removed = 0;
    bool *hit = calloc(nh + nv + 1, sizeof *hit);
    if (!hit) {
        removed = -1;
        goto out;
    }
    /* more than 64 crossing lines one way is a texture, not paper */
    size_t ch_n = 0, cv_n = 0;
    for (size_t i = 0; i < nh; i++)
        ch_n += hit[i] = crosses(&c, &hs[i]);
    for (size_t i = 0; i < nv; i++)
        cv_n += hit[nh + i] = crosses(&c, &vs[i]);
    for (size_t i = 0; i < nh && ch_n > 64; i++)
        hit[i] = false;
    for (size_t i = 0; i < nv && cv_n > 64; i++)
        hit[nh + i] = false;
    /* printed boxes: four segments that do not cross the picture and meet
     * as a rectangle (the first 48 candidates of each orientation) */
    size_t bh = nh < 48 ? nh : 48, bv = nv < 48 ? nv : 48;
    for (size_t a = 0; a < bh; a++)
        for (size_t b = a + 1; b < bh; b++) {
            const seg *h0 = &hs[a], *h1 = &hs[b];
            if (hit[a] || hit[b] || !pair(h0, h1))
                continue;
            if (seg_at(h0, h0->from) > seg_at(h1, h1->from)) {
                const seg *t = h0;
                h0 = h1;
                h1 = t;
            }
            for (size_t p = 0; p < bv; p++)
                for (size_t q = p + 1; q < bv; q++) {
                    const seg *v0 = &vs[p], *v1 = &vs[q];
                    if (hit[nh + p] || hit[nh + q] || !pair(v0, v1))
                        continue;
                    if (seg_at(v0, v0->from) > seg_at(v1, v1->from)) {
                        const seg *t = v0;
                        v0 = v1;
                        v1 = t;
                    }
                    if (rectangle(h0, h1, v0, v1) &&
                        ink_inside(&c, h0, h1, v0, v1))
                        hit[a] = hit[b] = hit[nh + p] = hit[nh + q] = true;
                }
        }
    for (size_t i = 0; i < nh + nv; i++)
        if (hit[i] && clear_line(wk, &c, i < nh ? &hs[i] : &vs[i - nh]))
            removed++;
    free(hit);
out:
    free(c.lit);
    free(hs);
    return removed;
}

/* The rows and columns that hold ink (d > 0) into wk->ix0..ix1 and
 * wk->iy0..iy1, inclusive (ix1 = iy1 = -1 when there is none): the
 * passes that follow leave everything outside them alone, for there a
 * picture is paper. colink: (w) scratch, the OR of each column's levels. */
static void ink_bounds(work *wk, uint8_t *colink)
{
    const int w = wk->w, h = wk->h;
    memset(colink, 0, (size_t)w);
    wk->iy0 = h;
    wk->iy1 = -1;
    for (int y = 0; y < h; y++) {
        const uint8_t *d = wk->d + (size_t)y * w;
        uint8_t any = 0;
#pragma omp simd reduction(| : any)
        for (int x = 0; x < w; x++) {
            colink[x] |= d[x];
            any |= d[x];
        }
        if (any) {
            wk->iy0 = y < wk->iy0 ? y : wk->iy0;
            wk->iy1 = y;
        }
    }
    wk->ix0 = 0;
    wk->ix1 = w - 1;
    while (wk->ix0 < w && !colink[wk->ix0])
        wk->ix0++;
    while (wk->ix1 >= 0 && !colink[wk->ix1])
        wk->ix1--;
    if (wk->iy1 < 0)
        wk->ix0 = w, wk->ix1 = -1;
}

/* The 3x3 average at x of one row, from the column sums vs of the rows
 * y-1 .. y+1 that exist (ny of them): the pixels that exist, rounded. */
static uint8_t average_at(const uint16_t *vs, int x, int w, int ny)
{
    uint32_t sum = vs[x];
    int nx = 1;
    if (x > 0) {
        sum += vs[x - 1];
        nx++;
    }
    if (x + 1 < w) {
        sum += vs[x + 1];
        nx++;
    }
    uint32_t cnt = (uint32_t)(nx * ny);
    return (uint8_t)((sum + cnt / 2) / cnt);
}

/* wk->state = rounded 3x3 average of d (edges: the pixels that exist);
 * returns its maximum. A window that holds no ink averages 0: so only the
 * ink's rows and columns grown by one pixel (wk->ex0..ex1, wk->ey0..ey1,
 * set here) are summed, the rest is set to 0. vs: (w) scratch. */
static int average3(work *wk, uint16_t *vs)
{
    const int w = wk->w, h = wk->h;
    memset(wk->state, 0, (size_t)w * h);
    if (wk->ix1 < 0) {
        wk->ex0 = wk->ey0 = 0;
        wk->ex1 = wk->ey1 = -1;
        return 0;
    }
    const int x0 = wk->ix0 > 0 ? wk->ix0 - 1 : 0;
    const int x1 = wk->ix1 + 1 < w ? wk->ix1 + 1 : w - 1;
    const int y0 = wk->iy0 > 0 ? wk->iy0 - 1 : 0;
    const int y1 = wk->iy1 + 1 < h ? wk->iy1 + 1 : h - 1;
    wk->ex0 = x0, wk->ex1 = x1, wk->ey0 = y0, wk->ey1 = y1;
    /* column sums over [v0, v1]: the columns the windows reach */
    const int v0 = x0 > 0 ? x0 - 1 : 0, v1 = x1 + 1 < w ? x1 + 1 : w - 1;
    /* windows of 9 pixels: in x, those not on the picture's edge */
    const int i0 = x0 > 1 ? x0 : 1, i1 = x1 < w - 2 ? x1 : w - 2;
    int best = 0;
    for (int y = y0; y <= y1; y++) {
        const uint8_t *mid = wk->d + (size_t)y * w;
        const uint8_t *up = y > 0 ? mid - w : NULL;
        const uint8_t *down = y + 1 < h ? mid + w : NULL;
        const int ny = 1 + (up != NULL) + (down != NULL);
#pragma omp simd
        for (int x = v0; x <= v1; x++)
            vs[x] = mid[x];
        if (up)
#pragma omp simd
            for (int x = v0; x <= v1; x++)
                vs[x] = (uint16_t)(vs[x] + up[x]);
        if (down)
#pragma omp simd
            for (int x = v0; x <= v1; x++)
                vs[x] = (uint16_t)(vs[x] + down[x]);
        uint8_t *out = wk->state + (size_t)y * w;
        int x = x0;
        if (ny == 3) {
            for (; x < i0; x++)
                out[x] = average_at(vs, x, w, ny);
            /* inside: 9 pixels, a division by a constant (sums to 2299
             * fit 16 bits) */
#pragma omp simd
            for (int k = i0; k <= i1; k++)
                out[k] = (uint8_t)((uint16_t)(vs[k - 1] + vs[k] + vs[k + 1] + 4) /
                                   9);
            x = i1 + 1 > x ? i1 + 1 : x;
        }
        for (; x <= x1; x++)
            out[x] = average_at(vs, x, w, ny);
        uint8_t lo, hi;
        grey_range(out + x0, (size_t)(x1 - x0 + 1), &lo, &hi);
        best = hi > best ? hi : best;
    }
    return best;
}

/* Flood fills run over the state bytes: OPEN marks the pixels a fill may
 * enter, DONE those it has reached (a byte is 0, OPEN or OPEN | DONE). The
 * first fills run over the strong pixels, the second over the strong
 * pixels and those with ink; after them DONE marks the kept ink (KEEP). */
enum { OPEN = 1, DONE = 2, KEEP = DONE };

/* The first x in [x, end) where row[x] is not OPEN (so: past a run of
 * OPEN pixels), or end; eight bytes at a time while they all are. */
static int open_end(const uint8_t *row, int x, int end)
{
    for (; x + 8 <= end; x += 8) {
        uint64_t t;
        memcpy(&t, row + x, 8);
        if (t != 0x0101010101010101ull * OPEN)
            break;
    }
    while (x < end && row[x] == OPEN)
        x++;
    return x;
}

/* The start of the run of OPEN pixels that ends at x - 1 (x itself when
 * row[x - 1] is not OPEN), not before begin; eight bytes at a time. */
static int open_start(const uint8_t *row, int x, int begin)
{
    for (; x - 8 >= begin; x -= 8) {
        uint64_t t;
        memcpy(&t, row + x - 8, 8);
        if (t != 0x0101010101010101ull * OPEN)
            break;
    }
    while (x > begin && row[x - 1] == OPEN)
        x--;
    return x;
}

/* The first x in [x, end) where row[x] is OPEN, or end. Eight bytes at a
 * time while none is: bytes are 0, OPEN (bit 0) or OPEN | DONE (bits 0
 * and 1), and t & ~(t >> 1) keeps bit 0 of a byte only where its bit 1 is
 * clear (the bit shifted in from the next byte lands on bit 7, masked). */
static int open_next(const uint8_t *row, int x, int end)
{
    for (; x + 8 <= end; x += 8) {
        uint64_t t;
        memcpy(&t, row + x, 8);
        if (t & ~(t >> 1) & 0x0101010101010101ull)
            break;
    }
    while (x < end && row[x] != OPEN)
        x++;
    return x;
}

/* Flood fill from `seed` over 8-neighbours, over the OPEN pixels, marking
 * them DONE; *mass (if not NULL) gets the sum of their d, and with `box`
 * the ink box grows over those with d > 0. By runs: each popped pixel
 * grows into the run of OPEN pixels of its row, which is marked; the runs
 * in the rows above and below that touch it (8-neighbours: one pixel
 * further on each side) are pushed by their first pixel. The pixels
 * reached are the connected part of the seed, in any order. */
static bool flood(work *wk, uint32_t seed, uint64_t *mass, bool box)
{
    const int w = wk->w, h = wk->h;
    uint8_t *s = wk->state;
    const uint8_t *d = wk->d;
    wk->st.n = 0;
    if (!push(&wk->st, seed))
        return false;
    uint64_t m = 0;
    while (wk->st.n) {
        uint32_t i = wk->st.v[--wk->st.n];
        if (s[i] != OPEN)
            continue;               /* pushed twice, marked since */
        int y = (int)(i / (uint32_t)w);
        uint8_t *row = s + (size_t)y * w;
        const uint8_t *drow = d + (size_t)y * w;
        int x = (int)(i - (size_t)y * w);
        int x0 = open_start(row, x, 0), x1 = open_end(row, x, w) - 1;
        memset(row + x0, OPEN | DONE, (size_t)(x1 - x0 + 1));
        if (mass) {
            uint32_t sum = 0;       /* a row has under 2^24 pixels */
            for (int k = x0; k <= x1; k++)
                sum += drow[k];
            m += sum;
        }
        if (box) {   /* the ink box over the run's pixels with d > 0 */
            int xa = x0, xb = x1;
            while (xa <= x1 && !drow[xa])
                xa++;
            while (xb >= xa && !drow[xb])
                xb--;
            if (xa <= xb) {
                wk->x0 = xa < wk->x0 ? xa : wk->x0;
                wk->x1 = xb > wk->x1 ? xb : wk->x1;
                wk->y0 = y < wk->y0 ? y : wk->y0;
                wk->y1 = y > wk->y1 ? y : wk->y1;
            }
        }
        const int a = x0 > 0 ? x0 - 1 : 0, b = x1 + 1 < w ? x1 + 1 : w - 1;
        for (int yy = y - 1; yy <= y + 1; yy += 2) {
            if (yy < 0 || yy >= h)
                continue;
            const uint8_t *r2 = s + (size_t)yy * w;
            for (int xx = open_next(r2, a, b + 1); xx <= b;
                 xx = open_next(r2, open_end(r2, xx, b + 1), b + 1))
                if (!push(&wk->st, (uint32_t)((size_t)yy * w + xx)))
                    return false;
        }
    }
    if (mass)
        *mass = m;
    return true;
}

/* Strong mask, its parts, and the kept ink: the ink box, and d inside it
 * becomes the kept ink's level (0 elsewhere in the box; KEEP in state).
 * Only the grown ink box (wk->ex0.., from average3) is looked at: outside
 * it the averages are 0, below any threshold, and d is 0. */
static bool find_ink(work *wk, int threshold)
{
    const int w = wk->w, x0 = wk->ex0, x1 = wk->ex1;
    const uint8_t thr = (uint8_t)threshold;   /* 1..63 */
    uint8_t *s = wk->state;
    for (int y = wk->ey0; y <= wk->ey1; y++) {
        uint8_t *r = s + (size_t)y * w;
#pragma omp simd
        for (int x = x0; x <= x1; x++)
            r[x] = r[x] >= thr ? OPEN : 0;
    }
    uint64_t best = 0;
    for (int y = wk->ey0; y <= wk->ey1; y++) {
        const uint8_t *r = s + (size_t)y * w;
        for (int x = open_next(r, x0, x1 + 1); x <= x1;
             x = open_next(r, x, x1 + 1)) {
            uint64_t mass;
            uint32_t i = (uint32_t)((size_t)y * w + x);
            if (!flood(wk, i, &mass, false))
                return false;
            if (wk->nparts == wk->capparts) {
                size_t cap = wk->capparts ? wk->capparts * 2 : 64;
                part *p = realloc(wk->parts, cap * sizeof *p);
                if (!p)
                    return false;
                wk->parts = p;
                wk->capparts = cap;
            }
            wk->parts[wk->nparts++] = (part){i, mass};
            if (mass > best)
                best = mass;
        }
    }
    /* the second fills: open over the strong pixels (all reached by now:
     * OPEN | DONE) and those with ink */
    for (int y = wk->ey0; y <= wk->ey1; y++) {
        uint8_t *r = s + (size_t)y * w;
        const uint8_t *d = wk->d + (size_t)y * w;
#pragma omp simd
        for (int x = x0; x <= x1; x++)
            r[x] = (r[x] | d[x]) ? OPEN : 0;
    }
    wk->x0 = wk->w;
    wk->y0 = wk->h;
    wk->x1 = wk->y1 = -1;
    wk->kept = 0;
    for (size_t k = 0; k < wk->nparts; k++) {
        const part *p = &wk->parts[k];
        if (p->mass * 50 < best || (s[p->seed] & KEEP))
            continue;   /* a speck, or joined by the growth of another */
        wk->kept++;
        if (!flood(wk, p->seed, NULL, true))
            return false;
    }
    /* the kept ink's level in the box: d where KEEP, else 0 */
    for (int y = wk->y0; y <= wk->y1; y++) {
        const uint8_t *r = s + (size_t)y * w;
        uint8_t *d = wk->d + (size_t)y * w;
#pragma omp simd
        for (int x = wk->x0; x <= wk->x1; x++)
            d[x] = (r[x] & KEEP) ? d[x] : 0;
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
 * over the length of its outline (ink: level >= 1/2), 0 if none. The
 * outline is counted as 4 sides per ink pixel less 2 for each pair of
 * ink pixels side by side (the side they share): whole numbers, so the
 * same as counting each pixel's sides that face no ink, but without a
 * branch. (No ink lies outside the box, where d is not the kept ink's.) */
static double stroke_width(const work *wk, const float *level)
{
    uint64_t area = 0, pairs = 0;
    /* level[] rises with d: ink is d >= lo */
    int lo = 0;
    while (lo < 256 && level[lo] < 0.5f)
        lo++;
    if (lo > 255)
        return 0;
    const uint8_t lo8 = (uint8_t)lo;
    const size_t w = (size_t)wk->w;
    const int x0 = wk->x0, x1 = wk->x1;
    for (int y = wk->y0; y <= wk->y1; y++) {
        const uint8_t *d = wk->d + (size_t)y * w;
        const uint8_t *up = y > wk->y0 ? d - w : d;   /* the row above */
        uint32_t a = 0, p = 0;   /* a row has under 2^24 pixels */
#pragma omp simd reduction(+ : a)
        for (int x = x0; x <= x1; x++)
            a += d[x] >= lo8;
#pragma omp simd reduction(+ : p)
        for (int x = x0; x < x1; x++)        /* side by side in the row */
            p += (d[x] >= lo8) & (d[x + 1] >= lo8);
        if (y > wk->y0)
#pragma omp simd reduction(+ : p)
            for (int x = x0; x <= x1; x++)   /* above one another */
                p += (d[x] >= lo8) & (up[x] >= lo8);
        area += a;
        pairs += p;
    }
    uint64_t edges = 4 * area - 2 * pairs;
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
    {
        /* of the kept ink with d > 0 (d in the box is the kept ink's):
         * four histograms of the whole box, summed after, since much of a
         * stroke is one level and four counters in turn do not wait on
         * each other's last add; level 0 is then left out */
        uint32_t four[4][256] = {{0}};   /* a box has under 2^32 pixels */
        for (int y = wk->y0; y <= wk->y1; y++) {
            const uint8_t *d = wk->d + (size_t)y * wk->w;
            int x = wk->x0;
            for (; x + 4 <= wk->x1 + 1; x += 4) {
                four[0][d[x]]++;
                four[1][d[x + 1]]++;
                four[2][d[x + 2]]++;
                four[3][d[x + 3]]++;
            }
            for (; x <= wk->x1; x++)
                four[0][d[x]]++;
        }
        for (int v = 1; v < 256; v++) {
            hist[v] = (size_t)four[0][v] + four[1][v] + four[2][v] + four[3][v];
            cnt += hist[v];
        }
    }
    int peak = cnt ? hist_kth(hist, (cnt - 1) * 9 / 10) : 255;
    if (peak < 1)
        peak = 1;
    float level[256];
    uint8_t level8[256];   /* the level as a grey, 0..255 */
    for (int v = 0; v < 256; v++) {
        level[v] = v >= peak ? 1.0f : (float)v / (float)peak;
        level8[v] = (uint8_t)lrintf(level[v] * 255);
    }

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
        for (int y = 0; y < bh; y++) {   /* level8[0] is 0: not kept */
            const uint8_t *src = wk->d + (size_t)(wk->y0 + y) * wk->w + wk->x0;
            uint8_t *dst = box + (size_t)(y + r) * pw + r;
            for (int x = 0; x < bw; x++)
                dst[x] = level8[src[x]];
        }
        if (r) {
            uint8_t *e = scratch, *g = e + line, *h = g + line;
            for (int y = 0; y < ph; y++)
                max_filter(box + (size_t)y * pw, (size_t)pw, 1, r, e, g, h);
            for (int x = 0; x < pw; x++)
                max_filter(box + x, (size_t)ph, (size_t)pw, r, e, g, h);
        }
        /* Each output sums its taps in order, k = 0, 1, ..., so that the
         * float roundings are always the same; four rows at a time here
         * (four sums that do not wait on each other), and in the columns
         * pass below a whole output row at a time. */
        int y = 0;
        for (; y + 4 <= ph; y += 4) {
            const uint8_t *row = box + (size_t)y * pw;
            for (int j = 0; j < nw; j++) {
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int k = 0; k < tx.cnt[j]; k++) {
                    const float wt = tx.wt[j * tx.T + k];
                    const uint8_t *src = row + tx.idx[j * tx.T + k];
                    a0 += wt * src[0];
                    a1 += wt * src[pw];
                    a2 += wt * src[2 * (size_t)pw];
                    a3 += wt * src[3 * (size_t)pw];
                }
                tmp[(size_t)y * nw + j] = a0 / 255.0f;
                tmp[(size_t)(y + 1) * nw + j] = a1 / 255.0f;
                tmp[(size_t)(y + 2) * nw + j] = a2 / 255.0f;
                tmp[(size_t)(y + 3) * nw + j] = a3 / 255.0f;
            }
        }
        for (; y < ph; y++) {
            const uint8_t *row = box + (size_t)y * pw;
            for (int j = 0; j < nw; j++) {
                float acc = 0;
                for (int k = 0; k < tx.cnt[j]; k++)
                    acc += tx.wt[j * tx.T + k] * row[tx.idx[j * tx.T + k]];
                tmp[(size_t)y * nw + j] = acc / 255.0f;
            }
        }
        for (int i = 0; i < nh; i++) {
            float acc[B] = {0};   /* nw <= B */
            for (int k = 0; k < ty.cnt[i]; k++) {
                const float wt = ty.wt[i * ty.T + k];
                const float *src = tmp + (size_t)ty.idx[i * ty.T + k] * nw;
                for (int j = 0; j < nw; j++)
                    acc[j] += wt * src[j];
            }
            for (int j = 0; j < nw; j++)
                out20[i * nw + j] = acc[j] > 1.0f ? 1.0f : acc[j];
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

/* The output's ink statistics: fill, holes, elongation and tilt. */
static void ink_stats(const uint8_t *out, nn_preprocess_info *inf)
{
    enum { S = NN_DIGIT_SIDE };
    int bright = 0, ink = 0, x0 = S, y0 = S, x1 = -1, y1 = -1;
    double m = 0, sx = 0, sy = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int v = out[y * S + x];
            bright += v >= 128;
            if (v >= 64) {
                ink++;
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
            m += v;
            sx += (double)v * x;
            sy += (double)v * y;
        }
    inf->fill = (float)bright / (S * S);
    inf->solidity = ink ? (float)ink / ((x1 - x0 + 1) * (y1 - y0 + 1)) : 0;
    /* holes: 4-connected regions of pixels under 64 that do not touch the
     * field's edge */
    uint8_t seen[S * S];
    uint16_t stk[S * S];
    for (int i = 0; i < S * S; i++)
        seen[i] = out[i] >= 64;
    int holes = 0;
    for (int i = 0; i < S * S; i++) {
        if (seen[i])
            continue;
        int sp = 0;
        bool edge = false;
        stk[sp++] = (uint16_t)i;
        seen[i] = 1;
        while (sp) {
            int j = stk[--sp], x = j % S, y = j / S;
            edge |= x == 0 || y == 0 || x == S - 1 || y == S - 1;
            int nb[4] = {x > 0 ? j - 1 : -1, x < S - 1 ? j + 1 : -1,
                         y > 0 ? j - S : -1, y < S - 1 ? j + S : -1};
            for (int k = 0; k < 4; k++)
                if (nb[k] >= 0 && !seen[nb[k]]) {
                    seen[nb[k]] = 1;
                    stk[sp++] = (uint16_t)nb[k];
                }
        }
        holes += !edge;
    }
    inf->holes = holes;
    /* principal second moments of the ink */
    double cx = sx / m, cy = sy / m, xx = 0, yy = 0, xy = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double v = out[y * S + x] / m;
            xx += v * (x - cx) * (x - cx);
            yy += v * (y - cy) * (y - cy);
            xy += v * (x - cx) * (y - cy);
        }
    double tr = xx + yy, det = xx * yy - xy * xy;
    double d = sqrt(fmax(tr * tr / 4 - det, 0));
    double l1 = tr / 2 + d, l2 = tr / 2 - d;
    inf->elongation = (float)(l1 / fmax(l2, 1e-6));
    double axis = 0.5 * atan2(2 * xy, xx - yy) / DEG;   /* from x, -90..90 */
    inf->tilt = (float)(90 - fabs(axis));
}

const char *nn_preprocess_not_digit(const nn_preprocess_info *info)
{
    if (!info || !info->found)
        return NULL;
    if (info->parts >= 25)
        return "ink in many separate parts, like noise or a texture";
    if (info->holes >= 6)
        return "many enclosed holes, like a pattern";
    if (info->fill > 0.36f)
        return "ink fills too much of the picture";
    if (info->solidity >= 0.95f && info->fill > 0.2f)
        return "a solid block of ink, like a texture or a pattern";
    if ((info->elongation > 10 && info->tilt > 50) ||
        (info->elongation > 50 && info->tilt > 30))
        return "a straight line far from upright";
    return NULL;
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
    uint16_t *vs = malloc((size_t)wk.w * sizeof *vs);
    uint8_t *colink = malloc((size_t)wk.w);
    wk.col = malloc((size_t)wk.w * sizeof *wk.col);
    if (!wk.state || !wk.d || !vs || !colink || !wk.col) {
        st = nn_fail(err, NN_ERR_NOMEM, "nn_preprocess_digit: out of memory");
        goto done;
    }
    find_paper(&wk, o.ink, &inf.inverted, &inf.background);
    if (remove_lines(&wk) < 0) {
        st = nn_fail(err, NN_ERR_NOMEM, "nn_preprocess_digit: out of memory");
        goto done;
    }
    ink_bounds(&wk, colink);
    int best = average3(&wk, vs);
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
        inf.parts = wk.kept;
        ink_stats(out, &inf);
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
    free(vs);
    free(colink);
    free(wk.col);
    free(wk.st.v);
    free(wk.parts);
    return st;
}
