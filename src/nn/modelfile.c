/*
 * modelfile.c - save and load models; the format is docs/model-format.md.
 *
 *   header (64 bytes) | layer records (40 bytes each) | params (f32 LE)
 *   | optimizer state (2 x params f32 LE, if flagged) | training position
 *   (if flagged) | input normalisation (2 x f32, if flagged) | crc32
 *
 * All integers are little-endian. The CRC-32 (zlib's) covers every byte
 * before it. Loading checks the size and checksum first, then rebuilds the
 * model through nn_model_add, so a file can describe nothing the API could
 * not build.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "nn/internal.h"
#include "nn/model.h"

#define MAGIC "DIGITSNN"
#define VERSION 1
#define HEADER_SIZE 64
#define LAYER_SIZE 40
#define FLAG_OPT_STATE 1u
#define FLAG_POSITION 2u     /* a training position follows the state */
#define FLAG_NORM 4u         /* input normalisation (8 bytes) before the CRC */
#define NORM_SIZE 8
#define POS_SIZE 128
#define HIST_SIZE 40

static void put_f32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    nn_put_u32(p, u);
}

static float get_f32(const unsigned char *p)
{
    uint32_t u = nn_get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    nn_put_u32(p, (uint32_t)v);
    nn_put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)nn_get_u32(p) | (uint64_t)nn_get_u32(p + 4) << 32;
}

static void put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    put_u64(p, u);
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = get_u64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* The training position (docs/model-format.md, "Training position"):
 *   0 epoch  4 step  8 loss sum (f64)  16 correct (u64)  24 seen (u64)
 *  32 generator state (4 x u32)  48 base learning rate (f32)
 *  52 best epoch (u32, 0xffffffff: none)  56 best loss (f64)  64 wait
 *  68 flags (bit 0: best weights follow)  116 history entries
 *  124 reserved; the run's settings at the offsets NN_FIT_SETTINGS
 *  (model.h) gives: 72 seed (u64)  80 batch size  84 training samples
 *  88 lr decay (f32)  92 patience  96 augment shift, rotate, scale
 *  (3 x f32)  108 validation split (f32)  112 schedule  120 epochs (cosine)
 * then per entry loss, accuracy, val_loss, val_accuracy, seconds (f64). */

/* The settings' field types (NN_FIT_SETTINGS): put and get. */
#define PUT_U64(p, v) put_u64(p, v)
#define PUT_U32(p, v) nn_put_u32(p, (uint32_t)(v))
#define PUT_I32(p, v) nn_put_u32(p, (uint32_t)(v))
#define PUT_F32(p, v) put_f32(p, v)
#define GET_U64(p) get_u64(p)
#define GET_U32(p) nn_get_u32(p)
#define GET_I32(p) (int)(nn_get_u32(p) & 0x7fffffff)
#define GET_F32(p) get_f32(p)

static void encode_settings(const nn_fit_settings *s, unsigned char *b)
{
#define ENC(name, ctype, ftype, off, what, from) PUT_##ftype(b + off, s->name);
    NN_FIT_SETTINGS(ENC)
#undef ENC
}

static void decode_settings(nn_fit_settings *s, const unsigned char *b)
{
#define DEC(name, ctype, ftype, off, what, from) \
    s->name = (ctype)GET_##ftype(b + off);
    NN_FIT_SETTINGS(DEC)
#undef DEC
}

static void encode_position(const nn_fit_pos *p, bool best,
                            unsigned char *b)
{
    memset(b, 0, POS_SIZE);
    nn_put_u32(b, (uint32_t)p->epoch);
    nn_put_u32(b + 4, (uint32_t)p->step);
    put_f64(b + 8, p->loss_sum);
    put_u64(b + 16, p->correct);
    put_u64(b + 24, p->seen);
    for (int i = 0; i < 4; i++)
        nn_put_u32(b + 32 + 4 * i, p->rng.s[i]);
    put_f32(b + 48, p->base_lr);
    nn_put_u32(b + 52, p->best_epoch < 0 ? 0xffffffffu
                                         : (uint32_t)p->best_epoch);
    put_f64(b + 56, p->best);
    nn_put_u32(b + 64, (uint32_t)p->wait);
    nn_put_u32(b + 68, best ? 1u : 0u);
    nn_put_u32(b + 116, (uint32_t)p->n_hist);
    encode_settings(&p->set, b);
}

/* What load accepts of a training position; save checks the same, so that
 * it never writes a checkpoint that load would refuse. */
static bool position_ok(const nn_fit_pos *p, bool best)
{
    return p->epoch == p->n_hist && p->epoch <= NN_MAX_EPOCHS &&
           p->seen <= p->set.n_train && p->correct <= p->seen &&
           best == (p->best_epoch >= 0) && p->best_epoch < p->epoch &&
           isfinite(p->loss_sum) && p->base_lr > 0.0f &&
           isfinite(p->base_lr) && p->set.lr_schedule <= NN_LR_COSINE &&
           p->set.epochs <= NN_MAX_EPOCHS;
}

/* True when all n values are finite. */
static bool all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

static void encode_hist(const nn_epoch_stats *h, unsigned char *b)
{
    put_f64(b, h->loss);
    put_f64(b + 8, h->accuracy);
    put_f64(b + 16, h->val_loss);
    put_f64(b + 24, h->val_accuracy);
    put_f64(b + 32, h->seconds);
}

/* Header layout (offsets):
 *  0 magic[8]  8 version  12 flags  16 input rank  20..28 input dims[3]
 * 32 layer count  36 loss  40 optimizer kind  44 nesterov
 * 48 param count (u64)  56 optimizer step (u64) */
static void encode_header(const nn_model *m, uint32_t flags,
                          unsigned char *h)
{
    memset(h, 0, HEADER_SIZE);
    memcpy(h, MAGIC, 8);
    nn_put_u32(h + 8, VERSION);
    nn_put_u32(h + 12, flags);
    nn_put_u32(h + 16, (uint32_t)m->input.rank);
    for (int i = 0; i < 3; i++)
        nn_put_u32(h + 20 + 4 * i, (uint32_t)m->input.dim[i]);
    nn_put_u32(h + 32, (uint32_t)m->n_layers);
    nn_put_u32(h + 36, (uint32_t)m->loss);
    nn_put_u32(h + 40, (uint32_t)m->opt.kind);
    nn_put_u32(h + 44, m->opt.nesterov);
    put_u64(h + 48, m->n_params);
    put_u64(h + 56, m->opt_step);
}

/* Layer record: kind, activation, units, kernel, stride, padding, rate,
 * reserved, param count (u64). Optimizer hyper-parameters follow the
 * layers as 6 f32: lr, momentum, rho, beta1, beta2, epsilon. */
static void encode_layer(const nn_layer *l, unsigned char *r)
{
    memset(r, 0, LAYER_SIZE);
    nn_put_u32(r, (uint32_t)l->spec.kind);
    nn_put_u32(r + 4, (uint32_t)l->spec.activation);
    nn_put_u32(r + 8, (uint32_t)l->spec.units);
    nn_put_u32(r + 12, (uint32_t)l->spec.kernel);
    nn_put_u32(r + 16, (uint32_t)l->spec.stride);
    nn_put_u32(r + 20, (uint32_t)l->spec.padding);
    put_f32(r + 24, l->spec.rate);
    put_u64(r + 32, l->n_params);
}

#define OPT_SIZE 24

/* Writes n floats little-endian through a small buffer, updating crc. */
static bool write_floats(FILE *f, const float *v, size_t n, uLong *crc)
{
    unsigned char buf[4096];
    while (n) {
        size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
        for (size_t i = 0; i < k; i++)
            put_f32(buf + 4 * i, v[i]);
        *crc = crc32(*crc, buf, (uInt)(4 * k));
        if (fwrite(buf, 4, k, f) != k)
            return false;
        v += k;
        n -= k;
    }
    return true;
}

static bool write_bytes(FILE *f, const unsigned char *p, size_t n, uLong *crc)
{
    *crc = crc32(*crc, p, (uInt)n);
    return fwrite(p, 1, n, f) == n;
}

nn_status nn_model_save(const nn_model *m, const char *path, bool with_state,
                        nn_error *err)
{
    if (!m || !path)
        return nn_fail(err, NN_ERR_ARG, "nn_model_save: %s is NULL",
                       m ? "path" : "model");
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE, "%s: model is not initialised",
                       path);
    /* Never write what nn_model_load would refuse. */
    if (with_state && (!m->compiled || !m->opt_state))
        return nn_fail(err, NN_ERR_STATE, "%s: model is not compiled, so it "
                       "has no optimizer state to save", path);
    if (!all_finite(m->params, m->n_params))
        return nn_fail(err, NN_ERR_STATE, "%s: not saved: the parameters "
                       "contain NaN or infinity (training diverged?)", path);
    bool pos = with_state && m->pos.valid;
    bool best = pos && m->pos.best_epoch >= 0 && m->best;
    if (pos && (!position_ok(&m->pos, best) ||
                (best && !all_finite(m->best, m->n_params))))
        return nn_fail(err, NN_ERR_STATE, "%s: not saved: the training "
                       "position is invalid (loss or weights not finite?)",
                       path);
    nn_afile af;
    nn_status s = nn_afile_open(&af, path, err);
    if (s != NN_OK)
        return s;
    unsigned char h[HEADER_SIZE], r[LAYER_SIZE], o[OPT_SIZE];
    uLong crc = crc32(0L, Z_NULL, 0);
    encode_header(m, (with_state ? FLAG_OPT_STATE : 0) |
                     (pos ? FLAG_POSITION : 0) | (m->norm ? FLAG_NORM : 0),
                  h);
    bool ok = write_bytes(af.f, h, sizeof h, &crc);
    for (int i = 0; ok && i < m->n_layers; i++) {
        encode_layer(&m->layers[i], r);
        ok = write_bytes(af.f, r, sizeof r, &crc);
    }
    const float hp[6] = {m->opt.lr, m->opt.momentum, m->opt.rho,
                         m->opt.beta1, m->opt.beta2, m->opt.epsilon};
    for (int i = 0; i < 6; i++)
        put_f32(o + 4 * i, hp[i]);
    ok = ok && write_bytes(af.f, o, sizeof o, &crc);
    ok = ok && write_floats(af.f, m->params, m->n_params, &crc);
    if (with_state)
        ok = ok && write_floats(af.f, m->opt_state, 2 * m->n_params, &crc);
    if (pos) {
        unsigned char pb[POS_SIZE], hb[HIST_SIZE];
        encode_position(&m->pos, best, pb);
        ok = ok && write_bytes(af.f, pb, sizeof pb, &crc);
        for (int i = 0; ok && i < m->pos.n_hist; i++) {
            encode_hist(&m->pos.hist[i], hb);
            ok = ok && write_bytes(af.f, hb, sizeof hb, &crc);
        }
        if (best)
            ok = ok && write_floats(af.f, m->best, m->n_params, &crc);
    }
    if (m->norm) {
        unsigned char nb[NORM_SIZE];
        put_f32(nb, m->norm_mean);
        put_f32(nb + 4, m->norm_std);
        ok = ok && write_bytes(af.f, nb, sizeof nb, &crc);
    }
    unsigned char c[4];
    nn_put_u32(c, (uint32_t)crc);
    ok = ok && fwrite(c, 1, 4, af.f) == 4;
    if (!ok) {
        int e = errno;
        nn_afile_abort(&af);
        return nn_fail(err, NN_ERR_IO, "%s: cannot write: %s", path,
                       strerror(e));
    }
    return nn_afile_commit(&af, err);
}

/* ------------------------------------------------------------- loading */

/* Reads the training position at b (sizes already checked); false if its
 * values are out of range or memory runs out. */
static bool decode_position(nn_model *m, const unsigned char *b,
                            uint32_t n_hist, bool best)
{
    nn_fit_pos *p = &m->pos;
    uint32_t be = nn_get_u32(b + 52);
    *p = (nn_fit_pos){
        .valid = true,
        .epoch = (int)(nn_get_u32(b) & 0x7fffffff),
        .step = (int)(nn_get_u32(b + 4) & 0x7fffffff),
        .loss_sum = get_f64(b + 8),
        .correct = get_u64(b + 16),
        .seen = get_u64(b + 24),
        .base_lr = get_f32(b + 48),
        .best_epoch = be == 0xffffffffu ? -1 : (int)(be & 0x7fffffff),
        .best = get_f64(b + 56),
        .wait = (int)(nn_get_u32(b + 64) & 0x7fffffff),
        .n_hist = (int)n_hist,
    };
    decode_settings(&p->set, b);
    for (int i = 0; i < 4; i++)
        p->rng.s[i] = nn_get_u32(b + 32 + 4 * i);
    if ((uint32_t)p->epoch != n_hist || !position_ok(p, best))
        return false;
    /* The compiled rate is the one the run started from: files written
     * before the schedule left it alone recorded the last epoch's rate. */
    m->opt.lr = p->base_lr;
    const unsigned char *h = b + POS_SIZE;
    if (n_hist) {
        if (!(p->hist = malloc(sizeof *p->hist * n_hist)))
            return false;
        for (uint32_t i = 0; i < n_hist; i++, h += HIST_SIZE)
            p->hist[i] = (nn_epoch_stats){get_f64(h), get_f64(h + 8),
                                          get_f64(h + 16), get_f64(h + 24),
                                          get_f64(h + 32)};
    }
    if (best) {
        if (!(m->best = malloc(sizeof(float) * m->n_params)))
            return false;
        for (size_t i = 0; i < m->n_params; i++, h += 4)
            m->best[i] = get_f32(h);
    }
    return true;
}

static nn_model *load_fail(nn_model *m, nn_error *err, nn_status code,
                           const char *what)
{
    nn_model_free(m);
    nn_fail(err, code, "%s", what);
    return NULL;
}

nn_model *nn_model_load_mem(const void *data, size_t size, nn_error *err)
{
    const unsigned char *p = data;
    if (!data)
        return load_fail(NULL, err, NN_ERR_ARG, "nn_model_load_mem: data is "
                         "NULL");
    if (size < HEADER_SIZE + OPT_SIZE + 4 || memcmp(p, MAGIC, 8) != 0)
        return load_fail(NULL, err, NN_ERR_FORMAT,
                         "not a digits model file (bad magic or too short)");
    uint32_t version = nn_get_u32(p + 8), flags = nn_get_u32(p + 12);
    if (version != VERSION)
        return load_fail(NULL, err, NN_ERR_FORMAT,
                         "unsupported model file version");
    uint32_t crc_stored = nn_get_u32(p + size - 4);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), p, (uInt)0);
    for (size_t off = 0; off < size - 4;) {   /* crc32 takes uInt lengths */
        size_t k = size - 4 - off > (1u << 30) ? (1u << 30) : size - 4 - off;
        crc = crc32(crc, p + off, (uInt)k);
        off += k;
    }
    if ((uint32_t)crc != crc_stored)
        return load_fail(NULL, err, NN_ERR_FORMAT,
                         "checksum mismatch (file is damaged or truncated)");
    if ((flags & ~(FLAG_OPT_STATE | FLAG_POSITION | FLAG_NORM)) ||
        ((flags & FLAG_POSITION) && !(flags & FLAG_OPT_STATE)))
        return load_fail(NULL, err, NN_ERR_FORMAT, "unknown flags");
    uint32_t rank = nn_get_u32(p + 16), nl = nn_get_u32(p + 32);
    uint64_t np = get_u64(p + 48);
    if (nl < 1 || nl > NN_MAX_LAYERS || np > NN_MAX_PARAMS)
        return load_fail(NULL, err, NN_ERR_FORMAT,
                         "layer or parameter count out of range");
    uint64_t nfloat = np * ((flags & FLAG_OPT_STATE) ? 3 : 1);
    uint64_t expect = HEADER_SIZE + (uint64_t)nl * LAYER_SIZE + OPT_SIZE +
                      4 * nfloat + 4;
    const unsigned char *pb = NULL;   /* the training position, if any */
    uint32_t n_hist = 0;
    bool best = false;
    if (flags & FLAG_POSITION) {
        if (size < expect + POS_SIZE)
            return load_fail(NULL, err, NN_ERR_FORMAT,
                             "file size does not match its header");
        pb = p + expect - 4;
        n_hist = nn_get_u32(pb + 116);
        best = nn_get_u32(pb + 68) & 1u;
        if (n_hist > NN_MAX_EPOCHS || (nn_get_u32(pb + 68) & ~1u))
            return load_fail(NULL, err, NN_ERR_FORMAT,
                             "invalid training position");
        expect += POS_SIZE + (uint64_t)n_hist * HIST_SIZE +
                  (best ? 4 * np : 0);
    }
    if (flags & FLAG_NORM)
        expect += NORM_SIZE;
    if (expect != size)
        return load_fail(NULL, err, NN_ERR_FORMAT,
                         "file size does not match its header");
    nn_shape in = {.rank = (int)(rank <= 3 ? rank : 0)};
    for (int i = 0; i < 3; i++) {
        uint32_t d = nn_get_u32(p + 20 + 4 * i);
        in.dim[i] = d <= NN_MAX_DIM ? (int)d : 0;
    }
    nn_model *m = nn_model_new(in);
    if (!m)
        return load_fail(NULL, err, NN_ERR_FORMAT, "invalid input shape");
    const unsigned char *r = p + HEADER_SIZE;
    for (uint32_t i = 0; i < nl; i++, r += LAYER_SIZE) {
        nn_layer_spec ls = {
            .kind = (nn_layer_kind)nn_get_u32(r),
            .activation = (nn_activation)nn_get_u32(r + 4),
            .units = (int)(nn_get_u32(r + 8) & 0x7fffffff),
            .kernel = (int)(nn_get_u32(r + 12) & 0x7fffffff),
            .stride = (int)(nn_get_u32(r + 16) & 0x7fffffff),
            .padding = (nn_padding)nn_get_u32(r + 20),
            .rate = get_f32(r + 24),
        };
        if (ls.activation > NN_ACT_SOFTMAX || ls.padding > NN_PAD_SAME ||
            !(ls.rate >= 0.0f && ls.rate < 1.0f))
            return load_fail(m, err, NN_ERR_FORMAT, "invalid layer record");
        nn_error e2;
        if (nn_model_add(m, ls, &e2) != NN_OK) {
            nn_fail(err, NN_ERR_FORMAT, "layer %u: %s", i + 1, e2.msg);
            nn_model_free(m);
            return NULL;
        }
        if (m->layers[i].n_params != get_u64(r + 32))
            return load_fail(m, err, NN_ERR_FORMAT,
                             "layer parameter count does not match");
    }
    if (m->n_params != np)
        return load_fail(m, err, NN_ERR_FORMAT,
                         "parameter count does not match the layers");
    nn_rng rng;
    nn_rng_seed(&rng, 0);
    if (nn_model_init(m, &rng, err) != NN_OK) {
        nn_model_free(m);
        return NULL;
    }
    const unsigned char *o = r;
    nn_optimizer opt = {
        .kind = (nn_optimizer_kind)nn_get_u32(p + 40),
        .nesterov = nn_get_u32(p + 44) != 0,
        .lr = get_f32(o), .momentum = get_f32(o + 4), .rho = get_f32(o + 8),
        .beta1 = get_f32(o + 12), .beta2 = get_f32(o + 16),
        .epsilon = get_f32(o + 20),
    };
    if (nn_model_compile(m, (nn_loss)nn_get_u32(p + 36), opt, err) != NN_OK) {
        nn_model_free(m);
        return NULL;
    }
    const unsigned char *f = o + OPT_SIZE;
    for (size_t i = 0; i < np; i++, f += 4) {
        m->params[i] = get_f32(f);
        if (!isfinite(m->params[i]))
            return load_fail(m, err, NN_ERR_FORMAT,
                             "parameters contain NaN or infinity");
    }
    if (flags & FLAG_OPT_STATE) {
        for (size_t i = 0; i < 2 * np; i++, f += 4)
            m->opt_state[i] = get_f32(f);
        m->opt_step = get_u64(p + 56);
    }
    if ((flags & FLAG_POSITION) && !decode_position(m, pb, n_hist, best)) {
        return load_fail(m, err, NN_ERR_FORMAT, "invalid training position");
    }
    if (flags & FLAG_NORM) {
        const unsigned char *nb = p + size - 4 - NORM_SIZE;
        float mean = get_f32(nb), sd = get_f32(nb + 4);
        if (nn_model_set_input_norm(m, mean, sd, NULL) != NN_OK ||
            !m->norm)
            return load_fail(m, err, NN_ERR_FORMAT,
                             "invalid input normalisation");
    }
    return m;
}

nn_model *nn_model_load(const char *path, nn_error *err)
{
    if (!path) {
        nn_fail(err, NN_ERR_ARG, "nn_model_load: path is NULL");
        return NULL;
    }
    uint64_t max = HEADER_SIZE + (uint64_t)NN_MAX_LAYERS * LAYER_SIZE +
                   OPT_SIZE + 16 * (uint64_t)NN_MAX_PARAMS + POS_SIZE +
                   (uint64_t)NN_MAX_EPOCHS * HIST_SIZE + NORM_SIZE + 4;
    void *buf;
    size_t size;
    if (nn_read_file(path, max < SIZE_MAX ? (size_t)max : SIZE_MAX, &buf,
                     &size, err) != NN_OK)
        return NULL;
    nn_error e2;
    nn_model *m = nn_model_load_mem(buf, size, &e2);
    free(buf);
    if (!m)
        nn_fail(err, e2.code, "%s: %s", path, e2.msg);
    return m;
}

bool nn_model_fit_position(const nn_model *m, int *epoch, float *base_lr)
{
    if (!m || !m->pos.valid)
        return false;
    if (epoch)
        *epoch = m->pos.epoch;
    if (base_lr)
        *base_lr = m->pos.base_lr;
    return true;
}
