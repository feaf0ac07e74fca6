/*
 * model.c - the sequential model: building, parameters, workspace, forward
 * pass and summary. Training lives in train.c, files in modelfile.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/model.h"

static bool shape_valid(nn_shape s)
{
    if (s.rank != 1 && s.rank != 3)
        return false;
    for (int i = 0; i < s.rank; i++)
        if (s.dim[i] < 1 || s.dim[i] > NN_MAX_DIM)
            return false;
    return nn_shape_size(s) <= NN_MAX_SAMPLE_SIZE;
}

nn_model *nn_model_create(nn_shape input, nn_error *err)
{
    if (!shape_valid(input)) {
        nn_fail(err, NN_ERR_SHAPE, "invalid input shape: rank 1 or 3, each "
                "dimension 1..%d, at most %u values", NN_MAX_DIM,
                NN_MAX_SAMPLE_SIZE);
        return NULL;
    }
    nn_model *m = calloc(1, sizeof *m);
    if (!m) {
        nn_fail(err, NN_ERR_NOMEM, "out of memory for a model");
        return NULL;
    }
    m->input = input;
    m->in_size = nn_shape_size(input);
    m->opt = nn_rmsprop();
    nn_rng_seed(&m->rng, 0);
    return m;
}

nn_model *nn_model_new(nn_shape input)
{
    return nn_model_create(input, NULL);
}

void nn_model_free(nn_model *m)
{
    if (!m)
        return;
    if (!m->params_bound)
        free(m->params);
    if (!m->grads_bound)
        free(m->grads);
    free(m->opt_state);
    free(m->ws);
    free(m->pos.hist);
    free(m->best);
    free(m);
}

nn_status nn_model_add(nn_model *m, nn_layer_spec spec, nn_error *err)
{
    if (!m)
        return nn_fail(err, NN_ERR_ARG, "nn_model_add: model is NULL");
    if (m->params)
        return nn_fail(err, NN_ERR_STATE,
                       "cannot add a layer after the model is initialised");
    if (m->n_layers >= NN_MAX_LAYERS)
        return nn_fail(err, NN_ERR_LIMIT, "a model has at most %d layers",
                       NN_MAX_LAYERS);
    const nn_layer_ops *ops = nn_layer_ops_for(spec.kind);
    if (!ops)   /* an unknown kind has no name: give its number */
        return nn_fail(err, NN_ERR_ARG, "layer kind %d is not supported",
                       (int)spec.kind);
    nn_layer *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    l->spec = spec;
    l->ops = ops;
    l->in = m->n_layers ? m->layers[m->n_layers - 1].out : m->input;
    l->in_size = nn_shape_size(l->in);
    l->rng = &m->rng;
    nn_status s = ops->build(l, err);
    if (s != NN_OK)
        return s;
    if (!shape_valid(l->out))
        return nn_fail(err, NN_ERR_SHAPE, "layer %d (%s): output shape out "
                       "of range", m->n_layers + 1,
                       nn_layer_kind_name(spec.kind));
    l->out_size = nn_shape_size(l->out);
    if (m->n_params + l->n_params > NN_MAX_PARAMS)
        return nn_fail(err, NN_ERR_LIMIT, "model exceeds %llu parameters",
                       (unsigned long long)NN_MAX_PARAMS);
    l->param_off = m->n_params;
    m->n_params += l->n_params;
    m->n_layers++;
    return NN_OK;
}

nn_status nn_model_init(nn_model *m, nn_rng *rng, nn_error *err)
{
    if (!m || !rng)
        return nn_fail(err, NN_ERR_ARG, "nn_model_init: %s is NULL",
                       m ? "rng" : "model");
    if (m->params)
        return nn_fail(err, NN_ERR_STATE, "model is already initialised");
    if (m->n_layers == 0)
        return nn_fail(err, NN_ERR_STATE, "model has no layers");
    size_t n = m->n_params ? m->n_params : 1;
    m->params = calloc(n, sizeof(float));
    m->grads = calloc(n, sizeof(float));
    m->opt_state = calloc(2 * n, sizeof(float));
    if (!m->params || !m->grads || !m->opt_state) {
        free(m->params);
        free(m->grads);
        free(m->opt_state);
        m->params = m->grads = m->opt_state = NULL;
        return nn_fail(err, NN_ERR_NOMEM, "out of memory for %zu parameters",
                       m->n_params);
    }
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        l->w = m->params + l->param_off;
        l->dw = m->grads + l->param_off;
        if (l->ops->init)
            l->ops->init(l, rng);
    }
    return NN_OK;
}

nn_status nn_model_reserve(nn_model *m, int B, nn_error *err)
{
    if (B <= m->ws_batch)
        return NN_OK;
    size_t width = m->in_size, total = m->in_size, scratch = 0;
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        total += l->out_size;
        width = l->out_size > width ? l->out_size : width;
        scratch += l->scratch_per_sample;
    }
    total += 2 * width + scratch;
    if (total > SIZE_MAX / sizeof(float) / (size_t)B)
        return nn_fail(err, NN_ERR_NOMEM, "workspace too large");
    float *ws = malloc(sizeof(float) * total * (size_t)B);
    if (!ws)
        return nn_fail(err, NN_ERR_NOMEM,
                       "out of memory for a batch of %d", B);
    free(m->ws);
    m->ws = ws;
    m->ws_batch = B;
    float *p = ws;
    m->x_buf = p;
    p += m->in_size * (size_t)B;
    for (int i = 0; i < m->n_layers; i++) {
        m->acts[i] = p;
        p += m->layers[i].out_size * (size_t)B;
    }
    m->g[0] = p;
    p += width * (size_t)B;
    m->g[1] = p;
    p += width * (size_t)B;
    for (int i = 0; i < m->n_layers; i++) {
        m->layers[i].scratch = p;
        p += m->layers[i].scratch_per_sample * (size_t)B;
    }
    return NN_OK;
}

const float *nn_model_forward_input(nn_model *m, const float *x, int B)
{
    const float *in = x ? x : m->x_buf;
    if (m->norm) {   /* x' = (x - mean) / std, into x_buf (in place there) */
        size_t n = m->in_size * (size_t)B;
        float mean = m->norm_mean, sd = m->norm_std;
        for (size_t j = 0; j < n; j++)
            m->x_buf[j] = (in[j] - mean) / sd;
        in = m->x_buf;
    }
    return in;
}

const float *nn_model_forward(nn_model *m, const float *x, int B,
                              bool training)
{
    const float *in = nn_model_forward_input(m, x, B);
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        l->ops->forward(l, in, m->acts[i], B, training);
        in = m->acts[i];
    }
    return in;
}

const float *nn_model_first_input(const nn_model *m, const float *x)
{
    return m->norm || !x ? m->x_buf : x;
}

nn_status nn_model_set_input_norm(nn_model *m, float mean, float std,
                                  nn_error *err)
{
    if (!isfinite(mean) || !isfinite(std) || !(std > 0.0f) ||
        fabsf(mean) > 1e6f || std > 1e6f || std < 1e-6f)
        return nn_fail(err, NN_ERR_ARG, "input normalisation: need a finite "
                       "mean and a std in [1e-6, 1e6], got %g, %g",
                       (double)mean, (double)std);
    m->norm = !(mean == 0.0f && std == 1.0f);
    m->norm_mean = mean;
    m->norm_std = std;
    return NN_OK;
}

void nn_model_input_norm(const nn_model *m, float *mean, float *std)
{
    *mean = m->norm ? m->norm_mean : 0.0f;
    *std = m->norm ? m->norm_std : 1.0f;
}

/* Reads the B samples gather wants from d's source into rows (B, n):
 * one read for a run of consecutive samples. */
static nn_status read_rows(const nn_dataset *d, const uint32_t *idx,
                           size_t begin, int B, size_t n, uint8_t *rows,
                           nn_error *err)
{
    const nn_dataset_source *src = &d->source;
    for (int b = 0; b < B;) {
        size_t row = idx ? idx[begin + (size_t)b] : begin + (size_t)b;
        int run = 1;
        while (b + run < B &&
               (idx ? idx[begin + (size_t)(b + run)] : row + (size_t)run) ==
                   row + (size_t)run)
            run++;
        nn_status s = src->read(src->ctx, src->first + row, (size_t)run,
                                rows + (size_t)b * n, err);
        if (s != NN_OK)
            return s;
        b += run;
    }
    return NN_OK;
}

nn_status nn_model_gather(nn_model *m, const nn_dataset *d,
                          const uint32_t *idx, size_t begin, int B,
                          nn_error *err)
{
    return nn_model_gather_to(m, d, idx, begin, B, m->x_buf, err);
}

nn_status nn_model_gather_to(nn_model *m, const nn_dataset *d,
                             const uint32_t *idx, size_t begin, int B,
                             float *dst, nn_error *err)
{
    size_t n = m->in_size;
    const uint8_t *u8 = d->x_u8;
    if (d->source.read) {
        /* staged in g[0] (B x at least n floats), unused until backward */
        uint8_t *rows = (uint8_t *)m->g[0];
        nn_status s = read_rows(d, idx, begin, B, n, rows, err);
        if (s != NN_OK)
            return s;
        u8 = rows;      /* sample b of the batch is row b */
        idx = NULL;
        begin = 0;
    }
    if (u8) {
        float s = d->scale;
#pragma omp parallel for schedule(static) if (NN_PAR_IF((size_t)B * n))
        for (int b = 0; b < B; b++) {
            size_t row = idx ? idx[begin + (size_t)b] : begin + (size_t)b;
            const uint8_t *src = u8 + row * n;
            float *o = dst + (size_t)b * n;
            for (size_t j = 0; j < n; j++)
                o[j] = (float)src[j] * s;
        }
    } else {
        for (int b = 0; b < B; b++) {
            size_t row = idx ? idx[begin + (size_t)b] : begin + (size_t)b;
            memcpy(dst + (size_t)b * n, d->x_f32 + row * n,
                   sizeof(float) * n);
        }
    }
    return NN_OK;
}

/* ---------------------------------------------------------- accessors */

/* Queries: a NULL model, or a layer index outside 0..layers-1, gives the
 * empty answer (0, NULL, a zero struct). */
int nn_model_layer_count(const nn_model *m) { return m ? m->n_layers : 0; }
nn_shape nn_model_input_shape(const nn_model *m)
{
    return m ? m->input : (nn_shape){0};
}
float *nn_model_params(nn_model *m) { return m ? m->params : NULL; }
const float *nn_model_grads(const nn_model *m)
{
    return m ? m->grads : NULL;
}
size_t nn_model_param_count(const nn_model *m) { return m ? m->n_params : 0; }

size_t nn_model_nontrainable_count(const nn_model *m)
{
    size_t n = 0;
    for (int i = 0; m && i < m->n_layers; i++)
        n += m->layers[i].n_nontrainable;
    return n;
}

nn_status nn_model_bind(nn_model *m, float *params, float *grads,
                        nn_error *err)
{
    if (!m)
        return nn_fail(err, NN_ERR_ARG, "nn_model_bind: model is NULL");
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE, "bind: initialise the model first");
    size_t bytes = sizeof(float) * m->n_params;
    if (params && params != m->params && memcmp(params, m->params, bytes))
        return nn_fail(err, NN_ERR_ARG, "bind: the memory given for the "
                       "weights does not hold the model's weights");
    if (params && params != m->params) {
        if (!m->params_bound)
            free(m->params);
        m->params = params;
        m->params_bound = true;
    }
    if (grads && grads != m->grads) {
        memcpy(grads, m->grads, bytes);
        if (!m->grads_bound)
            free(m->grads);
        m->grads = grads;
        m->grads_bound = true;
    }
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        l->w = m->params + l->param_off;
        l->dw = m->grads + l->param_off;
    }
    return NN_OK;
}

static const nn_layer *layer_at(const nn_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? &m->layers[i] : NULL;
}

nn_layer_spec nn_model_layer(const nn_model *m, int i)
{
    const nn_layer *l = layer_at(m, i);
    return l ? l->spec : (nn_layer_spec){0};
}

nn_shape nn_model_output_shape(const nn_model *m)
{
    if (!m)
        return (nn_shape){0};
    return m->n_layers ? m->layers[m->n_layers - 1].out : m->input;
}

nn_shape nn_model_layer_output_shape(const nn_model *m, int i)
{
    const nn_layer *l = layer_at(m, i);
    return l ? l->out : (nn_shape){0};
}

size_t nn_model_layer_param_count(const nn_model *m, int i)
{
    const nn_layer *l = layer_at(m, i);
    return l ? l->n_params : 0;
}

/* ----------------------------------------------------------- summary */

/* Appends to a bounded buffer, tracking the length it would need. */
typedef struct sbuf {
    char *p;
    size_t size, len;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->size ? b->size - b->len : 0;
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n;
}

/* 407050 -> "407,050" */
static const char *grouped(size_t v, char buf[32])
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static void shape_str(nn_shape s, char *buf, size_t size)
{
    if (s.rank == 1)
        snprintf(buf, size, "(None, %d)", s.dim[0]);
    else
        snprintf(buf, size, "(None, %d, %d, %d)", s.dim[0], s.dim[1],
                 s.dim[2]);
}

size_t nn_model_summary(const nn_model *m, char *buf, size_t size)
{
    if (!buf)
        size = 0;   /* only the length wanted */
    sbuf b = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    if (!m)
        return 0;
    static const char rule[] = "_________________________________________"
                               "________________________";
    static const char dbl[] = "========================================="
                              "========================";
    char name[96], shp[40], num[32];
    int count[NN_LAYER_KIND_COUNT] = {0};
    size_t nontrain = 0;
    /* The first column is Keras' 28 characters, or wider where a name
     * such as "batch_normalization_1 (BatchNormalization)" needs it; the
     * rules grow with it. */
    int wide = 28;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *l = &m->layers[i];
        int k = count[l->spec.kind]++;   /* kinds were checked by add */
        int n = k ? snprintf(name, sizeof name, "%s_%d (%s)",
                             nn_layer_kind_name(l->spec.kind), k,
                             nn_layer_keras_name(l->spec.kind))
                  : snprintf(name, sizeof name, "%s (%s)",
                             nn_layer_kind_name(l->spec.kind),
                             nn_layer_keras_name(l->spec.kind));
        wide = n + 1 > wide ? n + 1 : wide;
    }
    memset(count, 0, sizeof count);
    int extra = wide - 28;
    sb_printf(&b, "Model: \"sequential\"\n%s%.*s\n", rule, extra, rule);
    sb_printf(&b, " %-*s %-25s %-9s\n", wide, "Layer (type)", "Output Shape",
              "Param #");
    sb_printf(&b, "%s%.*s\n", dbl, extra, dbl);
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *l = &m->layers[i];
        const char *kind = nn_layer_kind_name(l->spec.kind);
        const char *keras = nn_layer_keras_name(l->spec.kind);
        int k = count[l->spec.kind]++;
        if (k)
            snprintf(name, sizeof name, "%s_%d (%s)", kind, k, keras);
        else
            snprintf(name, sizeof name, "%s (%s)", kind, keras);
        shape_str(l->out, shp, sizeof shp);
        sb_printf(&b, " %-*s %-25s %-9s\n", wide, name, shp,
                  grouped(l->n_params, num));
        if (i + 1 < m->n_layers)
            sb_printf(&b, "\n");
        else
            sb_printf(&b, "%s%.*s\n", dbl, extra, dbl);
        nontrain += l->n_nontrainable;
    }
    sb_printf(&b, "Total params: %s\n", grouped(m->n_params, num));
    sb_printf(&b, "Trainable params: %s\n",
              grouped(m->n_params - nontrain, num));
    sb_printf(&b, "Non-trainable params: %s\n%s%.*s\n",
              grouped(nontrain, num), rule, extra, rule);
    return b.len;
}
