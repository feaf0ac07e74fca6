/*
 * model.h - the model's private layout and the internal calls shared by
 * model.c, train.c, fit.c, evaluate.c and modelfile.c.
 */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include "nn/layer.h"

/* The settings a fit runs with that a resumed fit must repeat, described
 * once. Each row: field, C type, how the model file stores it (U64, U32,
 * I32 masked to 31 bits, F32), its offset in the file's training-position
 * record (docs/model-format.md), the words a refused resume names, and
 * how it is taken from nn_fit_options `o` and the training-set size
 * `n_train`. The rows drive the settings struct, its filling, the resume
 * check, the encoder and the decoder (fit.c, modelfile.c): a new resumable
 * option is a field in nn_fit_options plus one row here (and a free offset
 * in the record: 124 is reserved). Rows are in the order resume checks
 * them. */
#define NN_FIT_SETTINGS(X)                                                  \
    X(seed, uint64_t, U64, 72, "seed", o->seed)                            \
    X(batch_size, int, I32, 80, "batch size", o->batch_size)               \
    X(n_train, uint32_t, U32, 84, "number of training samples",            \
      (uint32_t)n_train)                                                    \
    X(lr_schedule, uint32_t, U32, 112, "learning-rate schedule",           \
      (uint32_t)o->lr_schedule)                                             \
    X(lr_decay, float, F32, 88, "learning-rate schedule",                  \
      o->lr_schedule == NN_LR_EXPONENTIAL ? o->lr_decay : 0.0f)             \
    X(epochs, int, I32, 120, "number of epochs (cosine schedule)",         \
      o->lr_schedule == NN_LR_COSINE ? o->epochs : 0)                       \
    X(validation_split, float, F32, 108, "validation data",                \
      o->validation_data ? -1.0f : o->validation_split)                     \
    X(patience, int, I32, 92, "patience", o->patience)                     \
    X(aug_shift, float, F32, 96, "augmentation", o->augment.shift)         \
    X(aug_rotate, float, F32, 100, "augmentation", o->augment.rotate)      \
    X(aug_scale, float, F32, 104, "augmentation", o->augment.scale)

typedef struct nn_fit_settings {
#define NN_FIT_FIELD(name, ctype, ftype, off, what, from) ctype name;
    NN_FIT_SETTINGS(NN_FIT_FIELD)
#undef NN_FIT_FIELD
} nn_fit_settings;

/* Where a fit stands (nn_fit_options.resume; saved in checkpoints). */
typedef struct nn_fit_pos {
    bool valid;
    int epoch, step;          /* the next step: `step` of epoch `epoch` */
    double loss_sum;          /* the current epoch's sums so far */
    uint64_t correct, seen;
    nn_rng rng;               /* m->rng (dropout, augmentation) there */
    float base_lr;            /* the compiled rate the schedule starts from */
    double best;              /* early stopping: lowest monitored loss, */
    int best_epoch, wait;     /* its epoch (-1: none), epochs since */
    int n_hist;               /* completed epochs' statistics */
    nn_epoch_stats *hist;     /* (n_hist), owned */
    nn_fit_settings set;      /* the settings the run started with */
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
    bool params_bound;   /* params, grads: the caller's (nn_model_bind) */
    bool grads_bound;
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

/* The first layer's input for B samples in m->x_buf (or `x` if not
 * NULL): normalised into m->x_buf when input normalisation is on. */
const float *nn_model_forward_input(nn_model *m, const float *x, int B);

/* The first layer's input in the last forward pass given `x` (as passed
 * to nn_model_forward): m->x_buf when the input was normalised. */
const float *nn_model_first_input(const nn_model *m, const float *x);

/* NN_OK if the model is compiled, else NN_ERR_STATE. */
nn_status nn_model_check_compiled(const nn_model *m, nn_error *err);

/* Checks a data set against the model (sample size, one of x_u8 / x_f32,
 * labels in range, a targets row width equal to the outputs); `what` names
 * the caller in messages. need_targets: labels or targets required. */
nn_status nn_model_check_data(const nn_model *m, const nn_dataset *d,
                              bool need_targets, const char *what,
                              nn_error *err);

/* One training step on B samples in m->x_buf (or x if not NULL) with
 * labels (B) or targets (B, outputs): forward, loss, backward, and when
 * `apply` the optimizer update at learning rate `lr` (the compiled rate
 * stays as compiled). Returns the mean loss; *correct (may be NULL) gets
 * the count of right argmax predictions. The workspace must hold B. */
double nn_model_step(nn_model *m, const float *x, const uint8_t *labels,
                     const float *targets, int B, float lr, bool apply,
                     int *correct);

/* nn_model_step's forward, loss and backward without the update: the
 * gradients are those of the B rows' summed loss divided by `norm` (B for
 * the mean; nn_loss_eval). */
double nn_model_gradients(nn_model *m, const float *x, const uint8_t *labels,
                          const float *targets, int B, float norm,
                          int *correct);

/* The optimizer update from the gradients in m->grads at rate lr (what
 * nn_model_step does when `apply`; data-parallel fit sums the gradients
 * over its shards first). _part updates parameters [lo, hi) alone (the
 * sharded optimizer); both count one step. */
void nn_model_apply_step(nn_model *m, float lr);
void nn_model_apply_step_part(nn_model *m, float lr, size_t lo, size_t hi);

/* Copies samples idx[begin..begin+B) (or begin..begin+B when idx is
 * NULL) of d into m->x_buf as float, scaling uint8 images; a source's are
 * read first (into m->g[0]), and only its read can fail. */
nn_status nn_model_gather(nn_model *m, const nn_dataset *d,
                          const uint32_t *idx, size_t begin, int B,
                          nn_error *err);
/* The same into dst (B, inputs) rather than m->x_buf. */
nn_status nn_model_gather_to(nn_model *m, const nn_dataset *d,
                             const uint32_t *idx, size_t begin, int B,
                             float *dst, nn_error *err);

/* Data-parallel training (shard.c, nn_fit_options.shards). The rows of a
 * batch of bs that shard `shard` of `shards` computes: [lo, lo + nb); `run`
 * rows go through the network from row `off` (a shard without rows, bs <
 * shards, runs one so that its generator draws as the others' do, and
 * contributes nothing). shards <= 1: the whole batch. */
typedef struct nn_batch_rows {
    int bs, lo, nb, run, off;
} nn_batch_rows;
nn_batch_rows nn_shard_rows(int shards, int shard, int bs);
/* The step on rows r in m->x_buf: this shard's share of the gradients
 * summed over the shards by o->reduce, the same update on every shard
 * (o->gather: the sharded optimizer). sums (3): loss sum, correct, rows
 * over all shards. */
nn_status nn_shard_step(nn_model *m, const nn_fit_options *o,
                        const uint8_t *labels, const float *targets,
                        nn_batch_rows r, float lr, double *sums,
                        nn_error *err);
/* With the sharded optimizer (o->gather), every shard's part of the
 * optimizer state on every shard: after an epoch and when fit stops. */
nn_status nn_shard_gather_state(nn_model *m, const nn_fit_options *o,
                                nn_error *err);

/* Split units (split.c, nn_fit_options.split_units): begin packs this
 * shard's columns of the first layer's weights and optimizer state out of
 * the model; a step on the B rows in m->x_buf runs this shard's units
 * alone (sums (3) as nn_shard_step's); join puts the packed columns back and
 * sums the shards' parts of the weights and optimizer state. */
typedef struct nn_split nn_split;
nn_status nn_split_begin(nn_model *m, const nn_fit_options *o,
                         nn_split **out, nn_error *err);
nn_status nn_split_step(nn_model *m, nn_split *sp, const nn_fit_options *o,
                        const uint8_t *labels, const float *targets, int B,
                        float lr, double *sums, nn_error *err);
nn_status nn_split_join(nn_model *m, nn_split *sp, const nn_fit_options *o,
                        nn_error *err);
/* nn_split_step in two: the forward pass of this shard's units on x (B,
 * inputs, as the first layer takes it), then the rest of the step, from
 * the sum of z on (x must be unchanged in between). */
void nn_split_forward(nn_model *m, nn_split *sp, const float *x, int B);
nn_status nn_split_finish(nn_model *m, nn_split *sp, const nn_fit_options *o,
                          const float *x, const uint8_t *labels,
                          const float *targets, int B, float lr,
                          double *sums, nn_error *err);
void nn_split_free(nn_split *sp);

#endif
