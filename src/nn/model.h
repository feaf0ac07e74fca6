/*
 * model.h - the model's private layout, shared by model.c, train.c and
 * modelfile.c.
 */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include "nn/layer.h"

/* Where a fit stands (nn_fit_options.resume; saved in checkpoints). */
typedef struct nn_fit_pos {
    bool valid;
    int epoch, step;          /* the next step: `step` of epoch `epoch` */
    double loss_sum;          /* the current epoch's sums so far */
    uint64_t correct, seen;
    nn_rng rng;               /* m->rng (dropout, augmentation) there */
    float base_lr;            /* learning rate before any decay */
    double best;              /* early stopping: lowest monitored loss, */
    int best_epoch, wait;     /* its epoch (-1: none), epochs since */
    int n_hist;               /* completed epochs' statistics */
    nn_epoch_stats *hist;     /* (n_hist), owned */
    /* The settings the run started with; resume requires the same. */
    uint64_t seed;
    int batch_size;
    uint32_t n_train;
    nn_lr_schedule lr_schedule;
    float lr_decay, validation_split;
    int patience, epochs;     /* epochs: the cosine schedule's length */
    nn_augment augment;
} nn_fit_pos;

struct nn_model {
    nn_shape input;
    size_t in_size;
    int n_layers;
    nn_layer layers[NN_MAX_LAYERS];

    /* One allocation each, carved into per-layer views. */
    size_t n_params;
    float *params;       /* (n_params) */
    float *grads;        /* (n_params) */
    float *opt_state;    /* (2 * n_params): first and second moments */
    uint64_t opt_step;   /* optimizer steps taken (Adam's t) */

    bool compiled;
    nn_loss loss;
    nn_optimizer opt;

    /* Workspace for batches of up to ws_batch samples, one allocation:
     * x_buf (B, in), acts[i] (B, out_i), g[0], g[1] (B, max width),
     * then each layer's scratch. */
    int ws_batch;
    float *ws;
    float *x_buf;
    float *acts[NN_MAX_LAYERS];
    float *g[2];

    /* Input normalisation before the first layer, x' = (x - mean) / std
     * (nn_model_set_input_norm); off when mean 0, std 1. */
    bool norm;
    float norm_mean, norm_std;

    nn_rng rng;          /* training randomness: dropout, augmentation */
    nn_fit_pos pos;      /* training position while fit runs */
    float *best;         /* (n_params) early stopping's best weights, or NULL */
};

/* Makes sure the workspace holds batches of B; reallocates only to grow. */
nn_status nn_model_reserve(nn_model *m, int B, nn_error *err);

/* Forward pass over B samples already in m->x_buf (or `x` if not NULL);
 * returns the output (B, outputs), pointing into the workspace. With input
 * normalisation on, the normalised input is written to m->x_buf first
 * (nn_model_first_input says where the first layer's input is). */
const float *nn_model_forward(nn_model *m, const float *x, int B,
                              bool training);

/* The first layer's input in the last forward pass given `x` (as passed
 * to nn_model_forward): m->x_buf when the input was normalised. */
const float *nn_model_first_input(const nn_model *m, const float *x);

/* Copies samples idx[0..B) (or begin..begin+B when idx is NULL) of d into
 * m->x_buf as float, scaling uint8 images. */
void nn_model_gather(nn_model *m, const nn_dataset *d, const uint32_t *idx,
                     size_t begin, int B);

#endif
