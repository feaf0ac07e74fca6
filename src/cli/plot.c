/*
 * plot.c - the pictures of plot.h. A small "pen" draws rectangles, lines,
 * dots and text either into an RGB raster (saved as PNG by
 * stb_image_write; text in a built-in 5x7 bitmap font) or as SVG elements,
 * so each picture's layout is written once for both formats.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/stb_write.h"

#include "cli/cli.h"
#include "cli/plot.h"

/* ------------------------------------------------------------ the font */

/* 5x7 glyphs, one byte per row, bit 4 the leftmost column. Lower case is
 * drawn as upper case; anything else missing as a blank. */
static const struct {
    char c;
    uint8_t row[7];
} glyphs[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
};

static const uint8_t *glyph(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    for (size_t i = 0; i < sizeof glyphs / sizeof *glyphs; i++)
        if (glyphs[i].c == c)
            return glyphs[i].row;
    return NULL;
}

/* -------------------------------------------------------------- the pen */

enum { LEFT, CENTRE, RIGHT };

typedef struct pen {
    int w, h;
    uint8_t *rgb;   /* (h, w, 3) raster, or NULL when writing SVG */
    FILE *svg;
} pen;

static void blend(pen *p, int x, int y, uint32_t c, double a)
{
    if (x < 0 || y < 0 || x >= p->w || y >= p->h || a <= 0)
        return;
    if (a > 1)
        a = 1;
    uint8_t *q = p->rgb + ((size_t)y * p->w + x) * 3;
    for (int k = 0; k < 3; k++) {
        double v = (c >> (16 - 8 * k)) & 255;
        q[k] = (uint8_t)lround(q[k] + (v - q[k]) * a);
    }
}

static void rect(pen *p, double x, double y, double w, double h, uint32_t c)
{
    if (p->svg) {
        fprintf(p->svg, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\" fill=\"#%06x\"/>\n", x, y, w, h, c);
        return;
    }
    for (int yy = (int)lround(y); yy < (int)lround(y + h); yy++)
        for (int xx = (int)lround(x); xx < (int)lround(x + w); xx++)
            blend(p, xx, yy, c, 1);
}

/* An anti-aliased segment of the given width (round ends). */
static void line(pen *p, double x0, double y0, double x1, double y1,
                 double width, uint32_t c)
{
    if (p->svg) {
        fprintf(p->svg, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                "y2=\"%.1f\" stroke=\"#%06x\" stroke-width=\"%.1f\" "
                "stroke-linecap=\"round\"/>\n", x0, y0, x1, y1, c, width);
        return;
    }
    double r = width / 2, dx = x1 - x0, dy = y1 - y0;
    double len2 = dx * dx + dy * dy;
    int xa = (int)floor(fmin(x0, x1) - r - 1), xb = (int)ceil(fmax(x0, x1) + r + 1);
    int ya = (int)floor(fmin(y0, y1) - r - 1), yb = (int)ceil(fmax(y0, y1) + r + 1);
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            double px = x + 0.5 - x0, py = y + 0.5 - y0;
            double t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = px - t * dx, ey = py - t * dy;
            blend(p, x, y, c, r + 0.5 - sqrt(ex * ex + ey * ey));
        }
}

static void dot(pen *p, double x, double y, double r, uint32_t c)
{
    if (p->svg) {
        fprintf(p->svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" "
                "fill=\"#%06x\"/>\n", x, y, r, c);
        return;
    }
    line(p, x, y, x, y, 2 * r, c);
}

/* Text whose top edge is at y; `size` 1 is 7 px tall, 2 is 14 px. */
static void text(pen *p, double x, double y, int size, int align, uint32_t c,
                 const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void text(pen *p, double x, double y, int size, int align, uint32_t c,
                 const char *fmt, ...)
{
    char s[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    double width = (6.0 * strlen(s) - 1) * size;
    if (p->svg) {
        static const char *anchor[] = {"start", "middle", "end"};
        fprintf(p->svg, "<text x=\"%.1f\" y=\"%.1f\" font-family=\"monospace\""
                " font-size=\"%d\" text-anchor=\"%s\" fill=\"#%06x\">", x,
                y + 7.0 * size, 10 * size, anchor[align], c);
        for (const char *q = s; *q; q++) {
            if (*q == '<')
                fputs("&lt;", p->svg);
            else if (*q == '>')
                fputs("&gt;", p->svg);
            else if (*q == '&')
                fputs("&amp;", p->svg);
            else
                fputc(*q, p->svg);
        }
        fputs("</text>\n", p->svg);
        return;
    }
    if (align == CENTRE)
        x -= width / 2;
    else if (align == RIGHT)
        x -= width;
    int x0 = (int)lround(x), y0 = (int)lround(y);
    for (const char *q = s; *q; q++, x0 += 6 * size) {
        const uint8_t *g = glyph(*q);
        if (!g)
            continue;
        for (int r = 0; r < 7; r++)
            for (int col = 0; col < 5; col++)
                if (g[r] >> (4 - col) & 1)
                    for (int k = 0; k < size * size; k++)
                        blend(p, x0 + col * size + k % size,
                              y0 + r * size + k / size, c, 1);
    }
}

/* A picture's bytes, gathered in memory and written atomically at the
 * end (nn_write_file_atomic). */
typedef struct out_file {
    const char *path;
    FILE *f;          /* open_memstream over buf */
    char *buf;
    size_t len;
} out_file;

static bool out_open(out_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    af->path = path;
    af->f = open_memstream(&af->buf, &af->len);
    if (!af->f)
        cli_error("%s: out of memory", path);
    return af->f != NULL;
}

static void out_abort(out_file *af)
{
    if (af->f)
        fclose(af->f);
    free(af->buf);
    memset(af, 0, sizeof *af);
}

static int out_commit(out_file *af)
{
    nn_error err;
    bool ok = fclose(af->f) == 0;
    af->f = NULL;
    nn_status s = ok ? nn_write_file_atomic(af->path, af->buf, af->len, &err)
                     : NN_ERR_NOMEM;
    const char *path = af->path;
    out_abort(af);
    if (!ok)
        return cli_error("%s: out of memory", path);
    return s == NN_OK ? 0 : cli_nn_error(&err);
}

/* Starts a picture of w x h on white. */
static bool pen_open(pen *p, out_file *af, const char *path, int w, int h,
                     bool svg)
{
    memset(p, 0, sizeof *p);
    p->w = w;
    p->h = h;
    if (!out_open(af, path))
        return false;
    if (svg) {
        p->svg = af->f;
        fprintf(p->svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\">\n", w, h, w, h);
        rect(p, 0, 0, w, h, 0xFFFFFF);
        return true;
    }
    p->rgb = malloc((size_t)w * h * 3);
    if (!p->rgb) {
        out_abort(af);
        cli_error("%s: out of memory", path);
        return false;
    }
    memset(p->rgb, 255, (size_t)w * h * 3);
    return true;
}

static void to_file(void *ctx, void *data, int size)
{
    fwrite(data, 1, (size_t)size, ctx);
}

/* Finishes the picture: encodes the raster, renames into place. */
static int pen_close(pen *p, out_file *af)
{
    const char *path = af->path;
    bool ok = true;
    if (p->svg)
        fputs("</svg>\n", p->svg);
    else
        ok = stbi_write_png_to_func(to_file, af->f, p->w, p->h, 3, p->rgb,
                                    p->w * 3) != 0;
    free(p->rgb);
    p->rgb = NULL;
    if (!ok) {
        cli_error("%s: cannot encode the PNG", path);
        out_abort(af);
        return 1;
    }
    return out_commit(af);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n > m && !strcasecmp(s + n - m, tail);
}

bool plot_is_png(const char *path) { return ends_with(path, ".png"); }
bool plot_is_svg(const char *path) { return ends_with(path, ".svg"); }

static int check_ext(const char *path, bool svg_ok, bool *svg)
{
    *svg = plot_is_svg(path);
    if (plot_is_png(path) || (svg_ok && *svg))
        return 0;
    return cli_error("%s: the picture's name must end in .png%s", path,
                     svg_ok ? " or .svg" : "");
}

/* ------------------------------------------------------- errors grid */

int plot_errors(const char *path, const nn_dataset *data, const int *pred_all,
                const float *prob)
{
    bool svg;
    if (check_ext(path, false, &svg))
        return 1;
    int side, ch = 1;
    if (data->shape.rank == 3) {
        side = data->shape.dim[0];
        ch = data->shape.dim[2];
        if (data->shape.dim[1] != side)
            side = 0;
    } else {
        side = (int)lround(sqrt((double)nn_shape_size(data->shape)));
        if ((size_t)side * side != nn_shape_size(data->shape))
            side = 0;
    }
    if (side <= 0 || side > 64 || ch != 1 || !data->labels)
        return cli_error("%s: can only draw square grey images with labels",
                         path);
    enum { MAX = 100, COLS = 10 };
    size_t wrong[MAX], nwrong = 0;
    int pred[MAX];
    for (size_t i = 0; i < data->n; i++) {
        int best = pred_all[i];
        if (best == data->labels[i])
            continue;
        if (nwrong < MAX) {
            wrong[nwrong] = i;
            pred[nwrong] = best;
        }
        nwrong++;
    }
    size_t shown = nwrong < MAX ? nwrong : MAX;
    const int zoom = side <= 32 ? 2 : 1, cell = side * zoom;
    const int tw = cell + 12, th = cell + 20, top = 44;
    int cols = shown < COLS ? (shown ? (int)shown : 1) : COLS;
    int rows = (int)((shown + COLS - 1) / COLS);
    int W = cols * tw + 16, H = top + rows * th + 12;
    if (W < 420)
        W = 420;
    pen p;
    out_file af;
    if (!pen_open(&p, &af, path, W, H, false))
        return 1;
    text(&p, 8, 8, 2, LEFT, 0x202020, "%zu of %zu misclassified", nwrong,
         data->n);
    text(&p, 8, 28, 1, LEFT, 0x606060, "label: true>predicted (probability)"
         "%s", nwrong > shown ? ", first 100 shown" : "");
    for (size_t k = 0; k < shown; k++) {
        int x = 8 + (int)(k % COLS) * tw, y = top + (int)(k / COLS) * th;
        size_t i = wrong[k];
        size_t base = i * (size_t)side * side;
        rect(&p, x + 5, y + 1, cell + 2, cell + 2, 0xB0B0B0);
        for (int r = 0; r < side; r++)
            for (int c = 0; c < side; c++) {
                float v = data->x_u8 ? data->x_u8[base + r * side + c] *
                                           data->scale
                                     : data->x_f32[base + r * side + c];
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                unsigned g = 255 - (unsigned)lroundf(v * 255);  /* dark ink */
                rect(&p, x + 6 + c * zoom, y + 2 + r * zoom, zoom, zoom,
                     g << 16 | g << 8 | g);
            }
        int pc = (int)lroundf(100 * prob[i]);
        text(&p, x + 6 + cell / 2.0, y + cell + 6, 1, CENTRE, 0xB00020,
             "%d>%d %d%%", data->labels[i], pred[k], pc);
    }
    if (!shown)
        text(&p, 8, top, 1, LEFT, 0x008000, "none: every sample is right");
    return pen_close(&p, &af);
}

/* ---------------------------------------------------- confusion matrix */

static uint32_t mix(uint32_t a, uint32_t b, double t)
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    uint32_t out = 0;
    for (int k = 16; k >= 0; k -= 8) {
        double va = (a >> k) & 255, vb = (b >> k) & 255;
        out |= (uint32_t)lround(va + (vb - va) * t) << k;
    }
    return out;
}

static bool is_dark(uint32_t c)
{
    return 0.299 * (c >> 16 & 255) + 0.587 * (c >> 8 & 255) +
               0.114 * (c & 255) < 140;
}

int plot_confusion(const char *path, const uint32_t *cm, int K)
{
    bool svg;
    if (check_ext(path, true, &svg))
        return 1;
    if (K < 1 || K > PLOT_CONFUSION_MAX)
        return cli_error("%s: cannot draw a confusion matrix of %d classes",
                         path, K);
    const int cell = 44, left = 64, top = 64;
    int W = left + K * cell + 72, H = top + K * cell + 16;
    pen p;
    out_file af;
    if (!pen_open(&p, &af, path, W, H, svg))
        return 1;
    uint64_t total = 0, right = 0;
    uint32_t worst = 1;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            uint32_t v = cm[i * K + j];
            total += v;
            if (i == j)
                right += v;
            else if (v > worst)
                worst = v;
        }
    text(&p, 8, 8, 2, LEFT, 0x202020, "Confusion matrix: accuracy %.2f%%",
         total ? 100.0 * right / total : 0.0);
    text(&p, left + K * cell / 2.0, 34, 1, CENTRE, 0x404040, "predicted");
    text(&p, 8, top + K * cell / 2.0 - 3, 1, LEFT, 0x404040, "true");
    text(&p, left + K * cell + 36, top - 14, 1, CENTRE, 0x404040, "right");
    double acc[100];
    nn_confusion_accuracy(cm, K, acc);
    for (int j = 0; j < K; j++)
        text(&p, left + j * cell + cell / 2.0, top - 14, 1, CENTRE, 0x202020,
             "%d", j);
    for (int i = 0; i < K; i++) {
        uint64_t row = 0;
        for (int j = 0; j < K; j++)
            row += cm[i * K + j];
        text(&p, left - 6, top + i * cell + cell / 2.0 - 3, 1, RIGHT,
             0x202020, "%d", i);
        for (int j = 0; j < K; j++) {
            uint32_t v = cm[i * K + j];
            uint32_t c;
            if (i == j)
                c = mix(0xFFFFFF, 0x08306B, row ? (double)v / row : 0);
            else  /* errors: a square-root scale so that few still show */
                c = v ? mix(0xFEE0D2, 0xA50F15, sqrt((double)v / worst))
                      : 0xF7F7F7;
            double x = left + j * cell, y = top + i * cell;
            rect(&p, x, y, cell - 1, cell - 1, c);
            text(&p, x + cell / 2.0, y + cell / 2.0 - 3, 1, CENTRE,
                 is_dark(c) ? 0xFFFFFF : 0x202020, "%u", v);
        }
        if (row)
            text(&p, left + K * cell + 36, top + i * cell + cell / 2.0 - 3, 1,
                 CENTRE, 0x202020, "%.1f%%", 100.0 * acc[i]);
    }
    return pen_close(&p, &af);
}

/* ------------------------------------------------------ training curves */

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks. */
static double nice_step(double range, int n)
{
    double raw = range / n, mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* One panel: x = epochs 1..n, two series (train, validation; NaN points
 * are skipped). */
static void panel(pen *p, double x0, double y0, double w, double h,
                  const char *title, const nn_history *hist, bool accuracy)
{
    const int n = hist->epochs;
    double lo = INFINITY, hi = -INFINITY;
    for (int e = 0; e < n; e++) {
        const nn_epoch_stats *s = &hist->epoch[e];
        double v[2] = {accuracy ? s->accuracy : s->loss,
                       accuracy ? s->val_accuracy : s->val_loss};
        for (int k = 0; k < 2; k++)
            if (isfinite(v[k])) {
                lo = fmin(lo, v[k]);
                hi = fmax(hi, v[k]);
            }
    }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    if (accuracy) {
        hi = fmin(1.0, hi + 0.01);
        lo = fmax(0.0, lo - 0.01);
    } else {
        lo = 0;
        hi = hi > 0 ? hi * 1.08 : 1;
    }
    if (hi - lo < 1e-6)
        hi = lo + 1e-3;
    double step = nice_step(hi - lo, 5);
    lo = floor(lo / step) * step;
    hi = ceil(hi / step - 1e-9) * step;
    const double pl = 52, pr = 12, pt = 28, pb = 34;   /* padding */
    double ax = x0 + pl, ay = y0 + pt, aw = w - pl - pr, ah = h - pt - pb;
    int xmax = n > 1 ? n : 2;
#define PX(e) (ax + aw * ((e) - 1) / (double)(xmax - 1))
#define PY(v) (ay + ah * (1 - ((v) - lo) / (hi - lo)))
    text(p, x0 + w / 2, y0 + 6, 2, CENTRE, 0x202020, "%s", title);
    rect(p, ax, ay, aw, ah, 0xF4F4F4);
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    for (double t = lo; t <= hi + step / 2; t += step) {
        line(p, ax, PY(t), ax + aw, PY(t), 1, 0xDDDDDD);
        text(p, ax - 6, PY(t) - 3, 1, RIGHT, 0x404040, "%.*f", decimals, t);
    }
    int estep = (int)ceil(nice_step(xmax - 1, 8));
    if (estep < 1)
        estep = 1;
    for (int e = 1; e <= xmax; e += estep) {
        line(p, PX(e), ay + ah, PX(e), ay + ah + 4, 1, 0x404040);
        text(p, PX(e), ay + ah + 8, 1, CENTRE, 0x404040, "%d", e);
    }
    text(p, ax + aw / 2, ay + ah + 22, 1, CENTRE, 0x404040, "epoch");
    line(p, ax, ay, ax, ay + ah, 1, 0x404040);
    line(p, ax, ay + ah, ax + aw, ay + ah, 1, 0x404040);
    static const uint32_t colour[2] = {0x1F77B4, 0xFF7F0E};
    for (int k = 0; k < 2; k++) {
        double px = NAN, py = NAN;
        for (int e = 0; e < n; e++) {
            const nn_epoch_stats *s = &hist->epoch[e];
            double v = k == 0 ? (accuracy ? s->accuracy : s->loss)
                              : (accuracy ? s->val_accuracy : s->val_loss);
            if (!isfinite(v))
                continue;
            double x = PX(e + 1), y = PY(v);
            if (!isnan(px))
                line(p, px, py, x, y, 2.5, colour[k]);
            dot(p, x, y, 3, colour[k]);
            px = x;
            py = y;
        }
    }
#undef PX
#undef PY
}

int plot_history(const char *path, const nn_history *h)
{
    bool svg;
    if (check_ext(path, true, &svg))
        return 1;
    if (!h || h->epochs < 1)
        return cli_error("%s: no epochs to plot", path);
    const int W = 860, H = 380;
    pen p;
    out_file af;
    if (!pen_open(&p, &af, path, W, H, svg))
        return 1;
    panel(&p, 0, 30, W / 2.0, H - 30, "loss", h, false);
    panel(&p, W / 2.0, 30, W / 2.0, H - 30, "accuracy", h, true);
    bool val = false;
    for (int e = 0; e < h->epochs; e++)
        val |= isfinite(h->epoch[e].val_loss);
    /* legend */
    line(&p, 20, 16, 44, 16, 2.5, 0x1F77B4);
    text(&p, 50, 12, 1, LEFT, 0x202020, "training");
    if (val) {
        line(&p, 120, 16, 144, 16, 2.5, 0xFF7F0E);
        text(&p, 150, 12, 1, LEFT, 0x202020, "validation");
    } else {
        text(&p, 120, 12, 1, LEFT, 0x808080,
             "(no validation: train with --validation-split)");
    }
    return pen_close(&p, &af);
}
