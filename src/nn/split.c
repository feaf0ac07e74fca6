/*
 * split.c - training a two-layer perceptron with its hidden units split
 * over shards (nn_fit_options.split_units; docs/distributed.md "Split
 * units"), the tensor parallelism of Megatron-LM's MLP block:
 *
 *   shard s of S owns hidden units [u0, u1) (nn_shard_part of the units):
 *   columns u0..u1 of W1 and b1, rows u0..u1 of W2; every shard updates
 *   b2 alike, and shard 0 owns it.
 *
 *   forward, every row of the batch:  h = f1(x W1[:, u] + b1[u])
 *                                     z = sum over shards of h W2[u, :]
 *                                     y = f2(z + b2)
 *   backward:  dz (the loss, on every shard alike)
 *              dW2[u, :] = h^T dz     dh = dz W2[u, :]^T
 *              dz1 = dh f1'(.)        dW1[:, u] = x^T dz1    db1[u], db2
 *
 * The one sum a step needs is z's (batch x outputs floats, through
 * nn_fit_options.reduce); each shard updates only what it owns, so no
 * gradient is ever summed. A shard keeps its columns of W1, their
 * gradients and optimizer state packed (in x units, contiguous) for the
 * products and the update. The weights a shard does not own go stale
 * during an epoch and are joined (summed with zeros elsewhere) when an
 * epoch ends or fit stops, with the optimizer state, so that evaluation
 * and checkpoints see the whole model.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"

bool nn_model_can_split_units(const nn_model *m)
{
    if (!m || m->n_layers != 2)
        return false;
    const nn_layer *a = &m->layers[0], *b = &m->layers[1];
    return a->spec.kind == NN_LAYER_DENSE && b->spec.kind == NN_LAYER_DENSE &&
           a->spec.activation != NN_ACT_SOFTMAX && a->n_nontrainable == 0 &&
           b->n_nontrainable == 0;
}

struct nn_split {
    size_t u0, nu;              /* this shard's units: u0 .. u0 + nu */
    float *w, *dw, *s1, *s2;    /* (in, nu): W1's columns u0.., packed */
};

/* rows x n floats from src (row stride lds) to dst (row stride ldd) */
static void copy_rows(float *dst, size_t ldd, const float *src, size_t lds,
                      size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(dst + r * ldd, src + r * lds, sizeof(float) * n);
}

/* Between the model's layout and the shard's packed columns of W1: the
 * weights and both optimizer states (to the packed copy when `pack`). */
static void move_columns(nn_model *m, nn_split *sp, bool pack)
{
    const nn_layer *a = &m->layers[0];
    size_t I = a->in_size, U = a->out_size, at = a->param_off + sp->u0;
    float *model[3] = {m->params + at, m->opt_state + at,
                       m->opt_state + m->n_params + at};
    float *packed[3] = {sp->w, sp->s1, sp->s2};
    for (int k = 0; k < 3; k++) {
        if (pack)
            copy_rows(packed[k], sp->nu, model[k], U, I, sp->nu);
        else
            copy_rows(model[k], U, packed[k], sp->nu, I, sp->nu);
    }
}

void nn_split_free(nn_split *sp)
{
    if (!sp)
        return;
    free(sp->w);
    free(sp);
}

nn_status nn_split_begin(nn_model *m, const nn_fit_options *o,
                         nn_split **out, nn_error *err)
{
    size_t u0, u1, I = m->layers[0].in_size;
    nn_shard_part(m->layers[0].out_size, o->shards, o->shard, &u0, &u1);
    size_t n = I * (u1 - u0);
    nn_split *sp = calloc(1, sizeof *sp);
    float *block = sp ? malloc(sizeof(float) * (n > 0 ? 4 * n : 1)) : NULL;
    if (!block) {
        free(sp);
        return nn_fail(err, NN_ERR_NOMEM, "fit: out of memory");
    }
    *sp = (nn_split){.u0 = u0, .nu = u1 - u0, .w = block, .dw = block + n,
                     .s1 = block + 2 * n, .s2 = block + 3 * n};
    move_columns(m, sp, true);
    *out = sp;
    return NN_OK;
}

/* Zeroes what shard `shard` does not own in v (the parameter layout). */
static void clear_others(nn_model *m, const nn_split *sp, int shard,
                         float *v)
{
    const nn_layer *a = &m->layers[0], *b = &m->layers[1];
    size_t I = a->in_size, U = a->out_size, K = b->out_size;
    size_t u0 = sp->u0, u1 = sp->u0 + sp->nu;
    float *p = v + a->param_off;
    for (size_t row = 0; row <= I; row++, p += U) {   /* W1's rows, b1 */
        memset(p, 0, sizeof(float) * u0);
        memset(p + u1, 0, sizeof(float) * (U - u1));
    }
    p = v + b->param_off;
    memset(p, 0, sizeof(float) * u0 * K);
    memset(p + u1 * K, 0, sizeof(float) * ((U - u1) * K + (shard ? K : 0)));
}

nn_status nn_split_join(nn_model *m, nn_split *sp, const nn_fit_options *o,
                        nn_error *err)
{
    size_t n = m->n_params;
    move_columns(m, sp, false);
    clear_others(m, sp, o->shard, m->params);
    clear_others(m, sp, o->shard, m->opt_state);
    clear_others(m, sp, o->shard, m->opt_state + n);
    double none[1] = {0.0};
    nn_status s = o->reduce(o->user, m->params, n, none, 0, err);
    if (s == NN_OK)
        s = o->reduce(o->user, m->opt_state, 2 * n, none, 0, err);
    return s;
}

/* The optimizer on n parameters of the model's layout from `at`. */
static void update(nn_model *m, float lr, uint64_t t, size_t at, size_t n)
{
    float *s1 = m->opt_state, *s2 = m->opt_state + m->n_params;
    if (n > 0)
        nn_optimizer_step(&m->opt, lr, m->params + at, m->grads + at,
                          s1 + at, s2 + at, n, t);
}

void nn_split_forward(nn_model *m, nn_split *sp, const float *x, int B)
{
    nn_layer *a = &m->layers[0], *b = &m->layers[1];
    int I = (int)a->in_size, U = (int)a->out_size, K = (int)b->out_size;
    int nu = (int)sp->nu;
    const float *b1 = a->w + (size_t)I * U + sp->u0,
                *W2 = b->w + sp->u0 * K;
    float *h = m->acts[0], *z = m->acts[1];
    if (nu > 0) {
        nn_gemm(false, false, B, nu, I, 1.0f, x, I, sp->w, nu, 0.0f, h, nu);
        nn_bias_activate(a->spec.activation, h, b1, B, nu);
        nn_gemm(false, false, B, K, nu, 1.0f, h, nu, W2, K, 0.0f, z, K);
    } else {
        memset(z, 0, sizeof(float) * (size_t)B * (size_t)K);
    }
}

nn_status nn_split_finish(nn_model *m, nn_split *sp, const nn_fit_options *o,
                          const float *x, const uint8_t *labels,
                          const float *targets, int B, float lr,
                          double *sums, nn_error *err)
{
    nn_layer *a = &m->layers[0], *b = &m->layers[1];
    int I = (int)a->in_size, U = (int)a->out_size, K = (int)b->out_size;
    int nu = (int)sp->nu;
    size_t u0 = sp->u0;
    const float *W2 = b->w + u0 * K, *b2 = b->w + (size_t)U * K;
    float *db1 = a->dw + (size_t)I * U + u0, *dW2 = b->dw + u0 * K,
          *db2 = b->dw + (size_t)U * K;
    float *h = m->acts[0], *z = m->acts[1], *dz = m->g[0], *dh = m->g[1];

    /* z summed over the shards */
    double none[3] = {0.0, 0.0, 0.0};
    nn_status s = o->reduce(o->user, z, (size_t)B * (size_t)K, none, 3, err);
    if (s != NN_OK)
        return s;
    nn_bias_activate(b->spec.activation, z, b2, B, K);

    /* the loss on every row, the same on every shard */
    int ok = 0;
    double l = nn_loss_eval(m->loss, z, labels, targets, B, K, (float)B, dz,
                            &ok);
    sums[0] = l * B;
    sums[1] = ok;
    sums[2] = B;

    /* backward through this shard's units */
    nn_activate_backward_bias(b->dy_is_preact ? NN_ACT_LINEAR
                                              : b->spec.activation,
                              z, dz, db2, B, K);
    if (nu > 0) {
        nn_gemm(true, false, nu, K, B, 1.0f, h, nu, dz, K, 0.0f, dW2, K);
        nn_gemm(false, true, B, nu, K, 1.0f, dz, K, W2, K, 0.0f, dh, nu);
        nn_activate_backward_bias(a->spec.activation, h, dh, db1, B, nu);
        nn_gemm(true, false, I, nu, B, 1.0f, x, I, dh, nu, 0.0f, sp->dw, nu);
    }

    /* the optimizer, one step, on this shard's columns of W1 (packed) and
     * b1, its rows of W2, and b2, which every shard updates alike (the
     * next z needs it) and shard 0 owns */
    uint64_t t = ++m->opt_step;
    if (nu > 0)
        nn_optimizer_step(&m->opt, lr, sp->w, sp->dw, sp->s1, sp->s2,
                          (size_t)I * (size_t)nu, t);
    update(m, lr, t, a->param_off + (size_t)I * U + u0, (size_t)nu);
    update(m, lr, t, b->param_off + u0 * K, (size_t)nu * K);
    update(m, lr, t, b->param_off + (size_t)U * K, (size_t)K);
    return NN_OK;
}

nn_status nn_split_step(nn_model *m, nn_split *sp, const nn_fit_options *o,
                        const uint8_t *labels, const float *targets, int B,
                        float lr, double *sums, nn_error *err)
{
    const float *x = nn_model_forward_input(m, NULL, B);
    nn_split_forward(m, sp, x, B);
    return nn_split_finish(m, sp, o, x, labels, targets, B, lr, sums, err);
}
