/*
 * shard.c - the cuts of data-parallel training (nn_fit_options.shards;
 * docs/distributed.md): a batch's rows over the shards, the parameter
 * layout over them (the sharded optimizer, split units' hidden units),
 * and the data-parallel step that sums the shards' gradients and applies
 * the same update on every shard. fit.c's epoch loop calls it.
 */
#include <math.h>

#include "nn/internal.h"
#include "nn/model.h"

nn_batch_rows nn_shard_rows(int shards, int shard, int bs)
{
    nn_batch_rows r = {.bs = bs, .nb = bs};
    if (shards > 1) {
        r.lo = (int)((long)bs * shard / shards);
        r.nb = (int)((long)bs * (shard + 1) / shards) - r.lo;
    }
    r.run = r.nb > 0 ? r.nb : 1;
    r.off = r.nb > 0 ? r.lo : 0;
    return r;
}

void nn_shard_part(size_t n, int shards, int shard, size_t *lo, size_t *hi)
{
    if (shards < 1 || shard < 0 || shard >= shards) {
        *lo = *hi = 0;
        return;
    }
    /* 16 floats: a cache line, and whole vectors for the update */
    size_t lines = (n + 15) / 16;
    size_t a = lines * (size_t)shard / (size_t)shards * 16,
           b = lines * (size_t)(shard + 1) / (size_t)shards * 16;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

/* A data-parallel step on the rows fit.c's gather_batch put in m->x_buf: the
 * gradients and non-trainable state (batch norm's moving statistics) go
 * to o->reduce as this shard's share, the summed state is put back, and
 * every shard takes the same optimizer step: on all the parameters, or,
 * with o->gather (the sharded optimizer), on its part of them, which
 * o->gather then shares. sums (3): loss sum, correct, rows over all
 * shards. */
nn_status nn_shard_step(nn_model *m, const nn_fit_options *o,
                        const uint8_t *labels, const float *targets,
                        nn_batch_rows r, float lr, double *sums,
                        nn_error *err)
{
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].row0 = r.off;    /* dropout's streams per global row */
    /* The share of the batch's mean gradient: the rows' summed loss over
     * the batch's rows (none: a zero gradient). */
    int ok = 0;
    double l = nn_model_gradients(m, NULL, labels, targets, r.run,
                                  r.nb ? (float)r.bs : INFINITY, &ok);
    float share = (float)r.nb / (float)r.bs;
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *ly = &m->layers[i];
        for (size_t k = ly->n_params - ly->n_nontrainable; k < ly->n_params;
             k++)
            ly->dw[k] = ly->w[k] * share;
    }
    sums[0] = r.nb ? l * r.nb : 0.0;
    sums[1] = r.nb ? ok : 0;
    sums[2] = r.nb;
    nn_status s = o->reduce(o->user, m->grads, m->n_params, sums, 3, err);
    if (s != NN_OK)
        return s;
    size_t lo = 0, hi = m->n_params;
    if (o->gather)
        nn_shard_part(m->n_params, o->shards, o->shard, &lo, &hi);
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *ly = &m->layers[i];
        size_t at = ly->param_off;
        for (size_t k = ly->n_params - ly->n_nontrainable; k < ly->n_params;
             k++)
            if (at + k >= lo && at + k < hi) {
                ly->w[k] = ly->dw[k];
                ly->dw[k] = 0.0f;
            }
    }
    nn_model_apply_step_part(m, lr, lo, hi);
    return o->gather ? o->gather(o->user, m->params, m->n_params, err)
                     : NN_OK;
}

/* The sharded optimizer: every shard's part of the optimizer state on
 * every shard, so that a checkpoint written from a callback, or by the
 * caller after fit stopped, holds all of it. */
nn_status nn_shard_gather_state(nn_model *m, const nn_fit_options *o,
                                nn_error *err)
{
    if (o->shards < 2 || !o->gather)
        return NN_OK;
    nn_status s = o->gather(o->user, m->opt_state, m->n_params, err);
    if (s == NN_OK)
        s = o->gather(o->user, m->opt_state + m->n_params, m->n_params, err);
    return s;
}
