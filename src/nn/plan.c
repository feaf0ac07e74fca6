/*
 * plan.c - turns a model into inference steps (plan.h): weights transposed
 * to one row per output channel, batch normalization folded into the layer
 * before it where that layer has no activation, pooling fused into the
 * convolution before it.
 *   dense W (in, out) -> (out, in)     conv W (k, k, C, F) -> (F, k, k, C)
 * Folding BN (a = gamma / sqrt(var + eps), c = beta - mean a):
 *   w'[f] = a[f] w[f]    b'[f] = a[f] b[f] + c[f]
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/model.h"
#include "nn/plan.h"

#define BN_EPSILON 1e-3f   /* as batchnorm.c */

void nn_plan_free(nn_plan *p)
{
    for (int i = 0; i < p->n_steps; i++) {
        nn_step *s = &p->step[i];
        free(s->w);
        free(s->b);
        free(s->wq);
        free(s->bq);
        free(s->mult);
        free(s->shift);
    }
    p->n_steps = 0;
}

static nn_status alloc_step(nn_step *s, size_t n_w, int n_b, nn_error *err)
{
    s->n_w = n_w;
    s->n_b = n_b;
    s->w = malloc(sizeof(float) * (n_w ? n_w : 1));
    s->b = malloc(sizeof(float) * (size_t)(n_b ? n_b : 1));
    if (!s->w || !s->b)
        return nn_fail(err, NN_ERR_NOMEM, "out of memory (export plan)");
    return NN_OK;
}

/* Padding before the input along one axis, as conv2d.c (TensorFlow's). */
static int pad_before(int in, int out, int k, int s, nn_padding pad)
{
    if (pad != NN_PAD_SAME)
        return 0;
    long total = (long)(out - 1) * s + k - in;
    return total > 0 ? (int)(total / 2) : 0;
}

static nn_status add_dense(const nn_layer *l, int i, nn_step *s,
                           nn_error *err)
{
    int in = (int)l->in_size, out = (int)l->out_size;
    s->kind = NN_STEP_DENSE;
    s->act = (int)l->spec.activation;
    s->g = (nnk_geom){.H = 1, .W = 1, .C = in, .OH = 1, .OW = 1, .F = out,
                      .k = 1, .s = 1, .PH = 1, .PW = 1};
    nn_status st = alloc_step(s, (size_t)in * out, out, err);
    if (st)
        return st;
    for (int o = 0; o < out; o++)
        for (int j = 0; j < in; j++)
            s->w[(size_t)o * in + j] = l->w[(size_t)j * out + o];
    memcpy(s->b, l->w + (size_t)in * out, sizeof(float) * (size_t)out);
    s->first = s->last = i;
    return NN_OK;
}

static nn_status add_conv(const nn_layer *l, int i, nn_step *s,
                          nn_error *err)
{
    const nn_layer_spec *sp = &l->spec;
    int H = l->in.dim[0], W = l->in.dim[1], C = l->in.dim[2];
    int OH = l->out.dim[0], OW = l->out.dim[1], F = l->out.dim[2];
    int k = sp->kernel, st_ = sp->stride > 0 ? sp->stride : 1;
    s->kind = NN_STEP_CONV;
    s->act = (int)sp->activation;
    s->g = (nnk_geom){.H = H, .W = W, .C = C, .OH = OH, .OW = OW, .F = F,
                      .k = k, .s = st_,
                      .pt = pad_before(H, OH, k, st_, sp->padding),
                      .pl = pad_before(W, OW, k, st_, sp->padding),
                      .pool = NNK_POOL_NONE, .PH = OH, .PW = OW};
    size_t K = (size_t)k * k * C;
    nn_status st = alloc_step(s, K * F, F, err);
    if (st)
        return st;
    for (int f = 0; f < F; f++)
        for (size_t t = 0; t < K; t++)
            s->w[(size_t)f * K + t] = l->w[t * F + f];
    memcpy(s->b, l->w + K * F, sizeof(float) * (size_t)F);
    s->first = s->last = i;
    return NN_OK;
}

static void set_pool(const nn_layer *l, nnk_geom *g)
{
    g->pool = l->spec.kind == NN_LAYER_MAXPOOL2D ? NNK_POOL_MAX
                                                 : NNK_POOL_AVG;
    g->pk = l->spec.kernel;
    g->ps = l->spec.stride > 0 ? l->spec.stride : l->spec.kernel;
    g->PH = l->out.dim[0];
    g->PW = l->out.dim[1];
}

/* Batch normalization's inference form y = a x + c, per channel. */
static void bn_affine(const nn_layer *l, int C, float *a, float *c)
{
    const float *gamma = l->w, *beta = l->w + C, *mean = l->w + 2 * C,
                *var = l->w + 3 * C;
    for (int j = 0; j < C; j++) {
        a[j] = gamma[j] / sqrtf(var[j] + BN_EPSILON);
        c[j] = beta[j] - mean[j] * a[j];
    }
}

nn_status nn_plan_build(const nn_model *m, nn_plan *p, nn_error *err)
{
    memset(p, 0, sizeof *p);
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE, "model is not initialised");
    /* The steps (and the exported C) take pixel/255 as they are. */
    if (m->norm)
        return nn_fail(err, NN_ERR_ARG, "the model normalises its input "
                       "(mean %g, std %g, e.g. an imported ONNX model): "
                       "int8 and C export do not support that yet",
                       (double)m->norm_mean, (double)m->norm_std);
    p->input = m->input;
    p->in_size = m->in_size;
    p->outputs = nn_shape_size(nn_model_output_shape(m));
    nn_status st = NN_OK;
    for (int i = 0; i < m->n_layers && st == NN_OK; i++) {
        const nn_layer *l = &m->layers[i];
        nn_step *prev = p->n_steps ? &p->step[p->n_steps - 1] : NULL;
        /* a step may end where only flatten / dropout followed it */
        bool adjacent = prev != NULL;
        for (int j = prev ? prev->last + 1 : 0; adjacent && j < i; j++)
            adjacent = m->layers[j].spec.kind == NN_LAYER_FLATTEN ||
                       m->layers[j].spec.kind == NN_LAYER_DROPOUT;
        nn_step *s = &p->step[p->n_steps];
        switch (l->spec.kind) {
        case NN_LAYER_DENSE:
            st = add_dense(l, i, s, err);
            p->n_steps++;
            break;
        case NN_LAYER_CONV2D:
            st = add_conv(l, i, s, err);
            p->n_steps++;
            break;
        case NN_LAYER_MAXPOOL2D:
        case NN_LAYER_AVGPOOL2D:
            if (adjacent && prev->kind == NN_STEP_CONV &&
                prev->g.pool == NNK_POOL_NONE && prev->act != NNK_SOFTMAX) {
                set_pool(l, &prev->g);
                prev->last = i;
                break;
            }
            s->kind = NN_STEP_POOL;
            s->act = NNK_LINEAR;
            s->g = (nnk_geom){.H = l->in.dim[0], .W = l->in.dim[1],
                              .C = l->in.dim[2], .F = l->in.dim[2],
                              .OH = l->in.dim[0], .OW = l->in.dim[1]};
            set_pool(l, &s->g);
            s->first = s->last = i;
            st = alloc_step(s, 0, 0, err);
            p->n_steps++;
            break;
        case NN_LAYER_BATCHNORM: {
            int C = l->in.rank == 3 ? l->in.dim[2] : l->in.dim[0];
            float *a = malloc(sizeof(float) * (size_t)C);
            float *c = malloc(sizeof(float) * (size_t)C);
            if (!a || !c) {
                free(a), free(c);
                st = nn_fail(err, NN_ERR_NOMEM, "out of memory (plan)");
                break;
            }
            bn_affine(l, C, a, c);
            if (adjacent && (prev->kind == NN_STEP_DENSE ||
                             prev->kind == NN_STEP_CONV) &&
                prev->act == NNK_LINEAR &&
                prev->g.pool == NNK_POOL_NONE && prev->g.F == C) {
                size_t row = prev->n_w / (size_t)C;
                for (int f = 0; f < C; f++) {
                    for (size_t t = 0; t < row; t++)
                        prev->w[(size_t)f * row + t] *= a[f];
                    prev->b[f] = prev->b[f] * a[f] + c[f];
                }
                prev->last = i;
            } else {
                s->kind = NN_STEP_AFFINE;
                s->act = NNK_LINEAR;
                size_t S = l->in_size / (size_t)C;
                s->g = (nnk_geom){.H = (int)S, .W = 1, .C = C, .OH = (int)S,
                                  .OW = 1, .F = C, .k = 1, .s = 1,
                                  .PH = (int)S, .PW = 1};
                s->first = s->last = i;
                s->n_w = (size_t)C;
                s->n_b = C;
                s->w = a, s->b = c;
                a = c = NULL;
                p->n_steps++;
            }
            free(a);
            free(c);
            break;
        }
        case NN_LAYER_GLOBAL_AVGPOOL2D: {
            int S = l->in.dim[0] * l->in.dim[1], C = l->in.dim[2];
            s->kind = NN_STEP_GAP;
            s->act = NNK_LINEAR;
            s->g = (nnk_geom){.H = S, .W = 1, .C = C, .OH = 1, .OW = 1,
                              .F = C, .k = 1, .s = 1, .PH = 1, .PW = 1};
            s->first = s->last = i;
            st = alloc_step(s, 0, 0, err);
            p->n_steps++;
            break;
        }
        case NN_LAYER_LEAKY_RELU: {
            int n = (int)l->in_size;
            s->kind = NN_STEP_LEAKY;
            s->act = NNK_LINEAR;
            s->alpha = l->spec.rate;
            s->g = (nnk_geom){.H = n, .W = 1, .C = 1, .OH = n, .OW = 1,
                              .F = 1, .k = 1, .s = 1, .PH = n, .PW = 1};
            s->first = s->last = i;
            st = alloc_step(s, 0, 0, err);
            p->n_steps++;
            break;
        }
        case NN_LAYER_FLATTEN:
        case NN_LAYER_DROPOUT:
            break;
        default:
            st = nn_fail(err, NN_ERR_ARG, "layer %d (%s) cannot be exported",
                         i + 1, nn_layer_kind_name(l->spec.kind));
        }
    }
    if (st != NN_OK) {
        nn_plan_free(p);
        return st;
    }
    p->max_io = p->in_size;
    for (int i = 0; i < p->n_steps; i++) {
        nn_step *s = &p->step[i];
        nnk_geom *g = &s->g;
        s->in_size = (size_t)g->H * g->W * g->C;
        s->out_size = (size_t)g->PH * g->PW * g->F;
        if (s->in_size + s->out_size > p->max_io)
            p->max_io = s->in_size + s->out_size;
        size_t conv = (size_t)g->OH * g->OW * g->F;
        if (conv > p->max_conv)
            p->max_conv = conv;
    }
    return NN_OK;
}
