/*
 * nn.h - libnn, a small Keras-style neural-network library in C11.
 *
 * This header is the library's whole public contract. Concepts follow Keras:
 * a sequential model of layers, compile (loss, optimizer), fit, evaluate,
 * predict, summary, save/load.
 *
 * Conventions
 *  - Tensors are float32, row-major, batch first. A sample's shape is
 *    (H, W, C) for images and (N) for vectors; comments give shapes.
 *  - Functions that can fail return an nn_status and, when `err` is not NULL,
 *    fill it with a message the caller can show. The library never prints and
 *    never exits.
 *  - Ownership is stated at each declaration. Objects returned by *_new or
 *    *_load are freed with the matching *_free, which accepts NULL.
 *  - NULL pointers: every function that returns an nn_status refuses a NULL
 *    model, data set, path or buffer with NN_ERR_ARG (`err` itself may
 *    always be NULL; buffers may be NULL where their count is 0); queries
 *    on a NULL model, or with a layer index out of range, return the empty
 *    answer (0, NULL, false or a zero struct); parsers return false. The
 *    one exception: the nn_rng_* functions, which run in inner loops, take
 *    a generator that must not be NULL. tests/test_nullargs.c checks each.
 *  - No hidden global state: randomness comes from an nn_rng the caller
 *    seeds, so two models in one process never disturb each other. What
 *    is process-wide: the thread count (nn_set_threads, which is OpenMP's
 *    own) and OpenBLAS' thread count, which libnn keeps at 1.
 *  - Threads: one model must not be used from two threads at once (its
 *    workspace, gradients and training position are shared by its calls);
 *    different models may be used from different threads.
 */
#ifndef NN_H
#define NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NN_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef enum nn_status {
    NN_OK = 0,
    NN_ERR_ARG,      /* invalid argument or option value */
    NN_ERR_NOMEM,    /* allocation failed */
    NN_ERR_IO,       /* file could not be opened, read or written */
    NN_ERR_FORMAT,   /* file contents are malformed or inconsistent */
    NN_ERR_LIMIT,    /* input exceeds a documented limit (docs/limits.md) */
    NN_ERR_SHAPE,    /* tensor shapes do not fit together */
    NN_ERR_STATE,    /* call made in the wrong state (e.g. fit before compile) */
    NN_ERR_INTERRUPTED /* a callback asked to stop */
} nn_status;

/* A failure reason: code plus a one-line message (no trailing newline). */
typedef struct nn_error {
    nn_status code;
    char msg[512];
} nn_error;

/* Returns a static, never-NULL name for a status ("out of memory", ...). */
const char *nn_status_str(nn_status s);

/* ---------------------------------------------------------------- limits */

/* Documented in docs/limits.md; every input is checked against these before
 * it is used to size an allocation. */
#define NN_MAX_LAYERS        64
#define NN_MAX_DIM           65536          /* any one dimension */
#define NN_MAX_SAMPLE_SIZE   (1u << 24)     /* elements in one sample */
#define NN_MAX_PARAMS        (1ull << 28)   /* parameters in one model (1 GiB) */
#define NN_MAX_IDX_BYTES     (1ull << 32)   /* bytes of one IDX file, 4 GiB */
#define NN_MAX_CLASSES       65536
#define NN_MAX_EPOCHS        100000         /* epochs of one fit */

/* -------------------------------------------------------------------- rng */

/* A small, explicit random generator (xoshiro128+ seeded by splitmix64).
 * Same seed, same sequence, on every platform. */
typedef struct nn_rng {
    uint32_t s[4];
} nn_rng;

/* r must not be NULL (in all five). */
void nn_rng_seed(nn_rng *r, uint64_t seed);
uint32_t nn_rng_u32(nn_rng *r);
float nn_rng_uniform(nn_rng *r);               /* [0, 1) */
float nn_rng_normal(nn_rng *r);                /* mean 0, stddev 1 */
uint32_t nn_rng_below(nn_rng *r, uint32_t n);  /* [0, n), unbiased; n > 0 */

/* ------------------------------------------------------------------ shape */

/* Per-sample shape: rank 1 (N) or rank 3 (H, W, C). */
typedef struct nn_shape {
    int rank;
    int dim[3];
} nn_shape;

nn_shape nn_shape1(int n);
nn_shape nn_shape3(int h, int w, int c);
size_t nn_shape_size(nn_shape s);   /* product of dims */

/* ------------------------------------------------------------------ data */

/* Samples read on demand instead of held in memory: read() copies the
 * uint8 samples [row, row + count) of the source (each nn_shape_size
 * bytes) to dst; anything but NN_OK (with err filled) stops what asked for
 * them. Fit, evaluate and predict ask for a batch at a time (fit: only the
 * rows of its shard, nn_fit_options.shards), so memory holds a batch, not
 * the set. nn_idx_open_pair makes one that reads an IDX file by offset;
 * close() (may be NULL) releases ctx, from nn_dataset_free. */
typedef struct nn_dataset_source {
    nn_status (*read)(void *ctx, size_t row, size_t count, uint8_t *dst,
                      nn_error *err);
    void (*close)(void *ctx);
    void *ctx;
    size_t first;             /* the source's row of sample 0 (a slice) */
} nn_dataset_source;

/* A data set: n samples of `shape`, and their labels.
 * Images may stay uint8 (scaled by `scale` per batch, so memory stays the
 * data set's bytes), be float, or stay where they are, read as uint8 by
 * `source`. Exactly one of x_u8 / x_f32 / source.read is set.
 * Targets are class indices in `labels`, or float rows in `targets`
 * (n, target_width) for regression / soft targets.
 * Ownership: the struct owns exactly the buffers in `owned` (malloc'd;
 * nn_dataset_free frees them with free()). A reader that returns a data
 * set it made puts its buffers there; a caller who points the arrays at
 * its own memory leaves `owned` zero. */
#define NN_DATASET_OWNED 4
typedef struct nn_dataset {
    size_t n;
    nn_shape shape;
    const uint8_t *x_u8;      /* (n, shape) or NULL */
    const float *x_f32;       /* (n, shape) or NULL */
    float scale;              /* applied to x_u8; 1/255 for MNIST */
    const uint8_t *labels;    /* (n) class indices, or NULL */
    const float *targets;     /* (n, target_width), or NULL */
    int num_classes;          /* 0 if unknown */
    int target_width;         /* floats per targets row; 0: num_classes if
                                 set, else the model's outputs (fit,
                                 evaluate) */
    void *owned[NN_DATASET_OWNED]; /* freed by nn_dataset_free; NULL: none */
    nn_dataset_source source; /* uint8 samples read on demand, or zero */
} nn_dataset;

/* Frees the buffers in d->owned, closes d->source and zeroes *d.
 * NULL-safe. */
void nn_dataset_free(nn_dataset *d);

/* A view of samples [begin, begin+count) of d, clamped to [0, d->n):
 * shares d's storage and owns nothing (`owned` is zero; do not use it
 * after d is freed). x_u8 / x_f32 advance by begin * sample size, labels by
 * begin, targets by begin rows of nn_dataset_target_width(d) floats (when
 * that is 0, targets survive only in a slice that starts at 0), a source's
 * `first` by begin (its close is NULL in the view). */
nn_dataset nn_dataset_slice(const nn_dataset *d, size_t begin, size_t count);

/* Floats per targets row: target_width, else num_classes; 0 when d has no
 * targets or neither is set. */
size_t nn_dataset_target_width(const nn_dataset *d);

/* --------------------------------------------------------------- IDX files */

/* An IDX array (the MNIST format), raw or gzip-compressed (detected by
 * content, not name). Only unsigned-byte element type (0x08) is accepted.
 * Dimensions are validated against NN_MAX_* and the file length before any
 * allocation; no more than the header promises is read. */
typedef struct nn_idx {
    int rank;                 /* 1..4 */
    uint32_t dim[4];
    uint8_t *data;            /* owned; product(dim) bytes */
} nn_idx;

/* Loads `path` into *out. On failure *out is zeroed and err names the file
 * and the problem. Free with nn_idx_free. */
nn_status nn_idx_load(const char *path, nn_idx *out, nn_error *err);

/* Same, from `size` bytes at `data` (raw or gzip, by content; not kept
 * after the call); `name` is used in error messages (NULL: "IDX data").
 * Accepts exactly what nn_idx_load accepts from a file of those bytes. */
nn_status nn_idx_load_mem(const void *data, size_t size, const char *name,
                          nn_idx *out, nn_error *err);
void nn_idx_free(nn_idx *x);

/* Loads an images file (rank 3: n, h, w, or rank 4: n, h, w, c) and a labels
 * file (rank 1: n) into a data set of uint8 images with scale 1/255.
 * Checks that counts agree and every label is below `max_classes`
 * (0: NN_MAX_CLASSES); num_classes is set to max label + 1.
 * Free with nn_dataset_free. */
nn_status nn_idx_load_pair(const char *images_path, const char *labels_path,
                           int max_classes, nn_dataset *out, nn_error *err);

/* As nn_idx_load_pair, but the images stay in their file: the data set's
 * `source` reads samples by offset when a batch needs them (pread; the
 * file is open until nn_dataset_free), so memory holds the labels, not
 * the images. The header, the file's length and every label are checked
 * here as nn_idx_load_pair checks them; a file that changes afterwards
 * fails the read that finds it short. A gzip file cannot be read by
 * offset: it is loaded as nn_idx_load_pair loads it (x_u8 set, source
 * zero). */
nn_status nn_idx_open_pair(const char *images_path, const char *labels_path,
                           int max_classes, nn_dataset *out, nn_error *err);

/* Writes an IDX uint8 file atomically (used by tests and tools). */
nn_status nn_idx_save(const char *path, int rank, const uint32_t *dim,
                      const uint8_t *data, nn_error *err);

/* ---------------------------------------------------------------- layers */

typedef enum nn_activation {
    NN_ACT_LINEAR = 0,
    NN_ACT_RELU,
    NN_ACT_SIGMOID,
    NN_ACT_TANH,
    NN_ACT_SOFTMAX
} nn_activation;

typedef enum nn_layer_kind {
    NN_LAYER_DENSE = 1,
    NN_LAYER_CONV2D,
    NN_LAYER_MAXPOOL2D,
    NN_LAYER_AVGPOOL2D,
    NN_LAYER_FLATTEN,
    NN_LAYER_DROPOUT,
    NN_LAYER_BATCHNORM,
    NN_LAYER_GLOBAL_AVGPOOL2D,
    NN_LAYER_LEAKY_RELU,
    NN_LAYER_KIND_COUNT   /* one past the last kind (kinds start at 1):
                             the size of an array indexed by kind */
} nn_layer_kind;

typedef enum nn_padding { NN_PAD_VALID = 0, NN_PAD_SAME = 1 } nn_padding;

/* A layer's configuration (what a model file records). Build with the
 * helpers below; fields that a kind does not use stay zero. */
typedef struct nn_layer_spec {
    nn_layer_kind kind;
    nn_activation activation;
    int units;        /* dense: output size; conv2d: filters */
    int kernel;       /* conv2d: kernel size; pools: pool size */
    int stride;       /* conv2d / pools; 0 means default */
    nn_padding padding;
    float rate;       /* dropout rate; batchnorm momentum; leaky relu
                         alpha */
} nn_layer_spec;

nn_layer_spec nn_dense(int units, nn_activation act);
nn_layer_spec nn_conv2d(int filters, int kernel, int stride, nn_padding pad,
                        nn_activation act);
nn_layer_spec nn_maxpool2d(int pool, int stride);
nn_layer_spec nn_avgpool2d(int pool, int stride);
nn_layer_spec nn_flatten(void);
nn_layer_spec nn_dropout(float rate);
nn_layer_spec nn_batchnorm(void);
/* GlobalAveragePooling2D: (H, W, C) -> (C), each channel's mean. */
nn_layer_spec nn_global_avgpool2d(void);
/* LeakyReLU: x if x > 0 else alpha x, alpha in [0, 1); Keras' default
 * is 0.3. A layer, as in Keras, not an activation of dense / conv2d. */
nn_layer_spec nn_leaky_relu(float alpha);

const char *nn_activation_name(nn_activation a);   /* "relu", ... */
/* Parses "relu" etc.; returns false on an unknown name. */
bool nn_activation_parse(const char *name, nn_activation *out);
const char *nn_layer_kind_name(nn_layer_kind k);   /* "dense", ... */
const char *nn_layer_keras_name(nn_layer_kind k);  /* "Dense", ... */

/* ----------------------------------------------------------------- model */

typedef struct nn_model nn_model;
typedef struct nn_optimizer nn_optimizer;   /* below, with compile */

/* Creates an empty sequential model for samples of shape `input`.
 * Returns NULL on invalid shape or out of memory, and then fills err with
 * which. Free with nn_model_free. */
nn_model *nn_model_create(nn_shape input, nn_error *err);
/* The same without the reason. */
nn_model *nn_model_new(nn_shape input);
void nn_model_free(nn_model *m);

/* Appends a layer. Shapes are inferred at once; an impossible layer (e.g. a
 * kernel larger than its input) fails here with NN_ERR_SHAPE. Dense layers
 * flatten their input. Parameters are allocated by nn_model_init. */
nn_status nn_model_add(nn_model *m, nn_layer_spec spec, nn_error *err);

/* Builds a model from a spec string: a preset name ("mlp", "cnn",
 * "lenet5") or a layer list in Keras-like syntax, layers separated by
 * spaces:
 *   dense(UNITS[,ACT])  conv2d(FILTERS,KERNEL[,ACT][,stride=S][,padding=same])
 *   maxpool(POOL[,stride=S])  avgpool(POOL[,stride=S])  flatten
 *   dropout(RATE)  batchnorm  globalavgpool2d (or gap)
 *   leakyrelu([ALPHA]) (default 0.3)
 * e.g. "dense(512,relu) dense(10,softmax)". Presets end in a softmax layer
 * of `num_classes` units (0 means 10). Returns NULL and fills err on a
 * syntax or shape error. `optimizer_out`, if not NULL, receives the
 * preset's optimizer with its defaults (nn_rmsprop(), nn_adam()), or one
 * of kind 0 for a layer list (no preference).
 * The model is not initialised (call nn_model_init). */
nn_model *nn_model_from_spec(const char *spec, nn_shape input,
                             int num_classes, nn_optimizer *optimizer_out,
                             nn_error *err);

/* Allocates parameters and initialises them: kernels glorot-uniform, biases
 * zero, as Keras does. Must be called once after the last nn_model_add. */
nn_status nn_model_init(nn_model *m, nn_rng *rng, nn_error *err);

/* Layer i from 0; i outside 0..nn_model_layer_count(m)-1 (or m NULL):
 * a zero spec, shape or count. */
int nn_model_layer_count(const nn_model *m);
nn_layer_spec nn_model_layer(const nn_model *m, int i);
nn_shape nn_model_input_shape(const nn_model *m);
nn_shape nn_model_output_shape(const nn_model *m);
nn_shape nn_model_layer_output_shape(const nn_model *m, int i);
size_t nn_model_layer_param_count(const nn_model *m, int i);
size_t nn_model_param_count(const nn_model *m);   /* trainable + state */

/* The flat parameter block (all layers, in order; dense: kernel (in, out)
 * then bias (out)). Points into the model; do not free. NULL before init. */
float *nn_model_params(nn_model *m);
/* Gradients of the last nn_model_train_batch, same layout as params. */
const float *nn_model_grads(const nn_model *m);
/* Of nn_model_param_count, the parameters training does not move by
 * gradient (batch norm's moving statistics, which its forward pass writes
 * in training). */
size_t nn_model_nontrainable_count(const nn_model *m);

/* Moves an initialised model's weights and gradients into memory the
 * caller provides (nn_model_param_count floats each; NULL leaves that
 * block where it is): data-parallel processes on one machine can then
 * share one copy of the weights in a shared-memory window, each with its
 * own gradients there (docs/distributed.md "Shared weights"). `params`
 * must already hold the model's weights (checked: NN_ERR_ARG); the
 * gradients are copied. The memory stays the caller's: it must outlive
 * the model's use of it, and nn_model_free leaves it alone. Processes that
 * share weights must not run training steps on models with non-trainable
 * parameters (their forward pass writes them) and must update disjoint
 * parts (nn_fit_options.gather). */
nn_status nn_model_bind(nn_model *m, float *params, float *grads,
                        nn_error *err);

/* Input normalisation, applied to every sample before the first layer:
 * x' = (x - mean) / std, x the values as given (pixel/255 for images).
 * It is part of the model (saved in its file, used by fit, evaluate and
 * predict), so that a model trained on normalised inputs, such as an
 * imported PyTorch model, is fed what it was trained on. Default mean 0,
 * std 1 (off). NN_ERR_ARG unless mean is finite, |mean| <= 1e6 and std is
 * in [1e-6, 1e6]. */
nn_status nn_model_set_input_norm(nn_model *m, float mean, float std,
                                  nn_error *err);
void nn_model_input_norm(const nn_model *m, float *mean, float *std);

/* Writes a Keras-style summary table into buf (always NUL-terminated;
 * buf may be NULL to ask only for the length); returns the length it
 * needed, like snprintf (0 for a NULL model). */
size_t nn_model_summary(const nn_model *m, char *buf, size_t size);

/* --------------------------------------------------------- loss, optimizer */

typedef enum nn_loss {
    NN_LOSS_CATEGORICAL_CROSSENTROPY = 1,
    NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
    NN_LOSS_MSE
} nn_loss;

typedef enum nn_optimizer_kind {
    NN_OPT_SGD = 1,
    NN_OPT_RMSPROP,
    NN_OPT_ADAM,
    NN_OPT_KIND_COUNT   /* one past the last kind (kinds start at 1) */
} nn_optimizer_kind;

struct nn_optimizer {
    nn_optimizer_kind kind;
    float lr;        /* learning rate */
    float momentum;  /* sgd */
    bool nesterov;   /* sgd */
    float rho;       /* rmsprop */
    float beta1, beta2;  /* adam */
    float epsilon;   /* rmsprop, adam */
};

/* Keras' defaults: sgd lr 0.01 momentum 0; rmsprop lr 0.001 rho 0.9
 * eps 1e-7; adam lr 0.001 beta1 0.9 beta2 0.999 eps 1e-7. */
nn_optimizer nn_sgd(float lr, float momentum, bool nesterov);
nn_optimizer nn_rmsprop(void);
nn_optimizer nn_adam(void);
/* By name ("sgd", "rmsprop", "adam"): the kind's defaults as above. */
bool nn_optimizer_parse(const char *name, nn_optimizer *out);
/* The kind's name; "?" for a value that is no kind. Kinds run 1 ..
 * NN_OPT_KIND_COUNT - 1 (lists of names are built from that). */
const char *nn_optimizer_name(nn_optimizer_kind k);
const char *nn_loss_name(nn_loss l);
bool nn_loss_parse(const char *name, nn_loss *out);

/* Sets loss and optimizer and allocates the optimizer state. May be called
 * again to change them (state is reset). Cross-entropy losses require a
 * softmax output layer (fused, numerically stable softmax + CE). */
nn_status nn_model_compile(nn_model *m, nn_loss loss, nn_optimizer opt,
                           nn_error *err);
nn_loss nn_model_loss(const nn_model *m);
nn_optimizer nn_model_optimizer(const nn_model *m);

/* Sets the number of threads libnn uses (0: all cores; the default). libnn
 * runs its own threads and keeps OpenBLAS on one thread inside them, so it
 * sets OpenBLAS' process-wide thread count to 1 on its first call.
 * Results are bit-identical for a given seed whatever the thread count
 * (one build, one OpenBLAS kernel family): products are cut into blocks by
 * their shape alone. */
void nn_set_threads(int n);
int nn_get_threads(void);

/* ------------------------------------------------------------ training */

typedef struct nn_epoch_stats {
    double loss, accuracy;            /* on the training batches */
    double val_loss, val_accuracy;    /* NAN without validation data */
    double seconds;
} nn_epoch_stats;

typedef struct nn_history {
    int epochs;              /* entries filled */
    nn_epoch_stats *epoch;   /* owned; free with nn_history_free */
} nn_history;

void nn_history_free(nn_history *h);

/* Progress callbacks; return false to stop training (fit then returns
 * NN_ERR_INTERRUPTED after finishing the current step). */
typedef bool (*nn_batch_callback)(void *user, int epoch, int step, int steps,
                                  double loss, double accuracy);
typedef bool (*nn_epoch_callback)(void *user, int epoch,
                                  const nn_epoch_stats *stats);

/* Random changes to each training image, drawn anew for every batch:
 * a shift of up to `shift` pixels in each direction, a rotation of up to
 * `rotate` degrees and a zoom by a factor in [1 - scale, 1 + scale], about
 * the image's centre, sampled bilinearly (zero outside). All zero: none.
 * Images keep their size; labels are unchanged. */
typedef struct nn_augment {
    float shift, rotate, scale;
} nn_augment;

/* The learning rate of epoch e (from 0) of E, from the compiled rate lr:
 *   NN_LR_CONSTANT     lr
 *   NN_LR_EXPONENTIAL  lr * lr_decay^e           (Keras ExponentialDecay,
 *                                                 staircase, one epoch)
 *   NN_LR_COSINE       lr * (1 + cos(pi e / E)) / 2  (Keras CosineDecay to
 *                                                 0, stepped per epoch)
 * fit hands each step its epoch's rate; the compiled rate (what
 * nn_model_optimizer and a saved file report) stays as compiled, so a
 * second fit starts the schedule from it again. */
typedef enum nn_lr_schedule {
    NN_LR_CONSTANT = 0,
    NN_LR_EXPONENTIAL,
    NN_LR_COSINE
} nn_lr_schedule;

/* Data-parallel training (nn_fit_options.shards; docs/distributed.md):
 * called on every shard once per step, after backward and before the
 * optimizer step. On entry `grads` (n, the parameter layout) holds this
 * shard's share of the batch's mean gradient (its rows' mean gradient
 * times rows / batch rows; non-trainable state such as batch norm's moving
 * statistics: its value times the same share) and `stats` (n_stats) this
 * shard's loss sum, correct predictions and rows. The callback replaces
 * both with their sums over all shards (MPI_Allreduce with MPI_SUM), the
 * same on every shard, so that every shard takes the same step. Anything
 * but NN_OK stops fit with that status and err. */
typedef nn_status (*nn_reduce_callback)(void *user, float *grads, size_t n,
                                        double *stats, int n_stats,
                                        nn_error *err);

/* The sharded optimizer (nn_fit_options.gather; docs/distributed.md): the
 * part of the n values of the parameter layout that shard `shard` of
 * `shards` updates, [*lo, *hi); the parts are in shard order, cover [0, n)
 * and start on multiples of 16 values. */
void nn_shard_part(size_t n, int shards, int shard, size_t *lo, size_t *hi);

/* With the sharded optimizer: on entry `v` (n, the parameter layout) holds
 * this shard's part (nn_shard_part) up to date; on return every shard's
 * part, the same on every shard (MPI_Allgatherv). Anything but NN_OK stops
 * fit with that status and err. */
typedef nn_status (*nn_gather_callback)(void *user, float *v, size_t n,
                                        nn_error *err);

typedef struct nn_fit_options {
    int epochs;                 /* default 1 */
    int batch_size;             /* default 32, as Keras */
    bool shuffle;               /* default true */
    float validation_split;     /* last fraction of the data, as Keras; 0 */
    const nn_dataset *validation_data;  /* overrides validation_split */
    uint64_t seed;              /* shuffling, dropout, augmentation */
    nn_augment augment;         /* rank-3 (image) inputs only; zero: none */
    nn_lr_schedule lr_schedule; /* default NN_LR_CONSTANT */
    float lr_decay;             /* NN_LR_EXPONENTIAL's factor, (0, 1] */
    int patience;               /* early stopping, as Keras' EarlyStopping(
                                   restore_best_weights=True): stop after
                                   `patience` epochs without a lower
                                   validation loss (training loss without
                                   validation data), then restore the best
                                   epoch's weights; 0: off */
    bool resume;                /* continue from the training position the
                                   model carries (see below) */
    int shards;                 /* data-parallel: processes training one
                                   model, each on rows [bs*shard/shards,
                                   bs*(shard+1)/shards) of every batch of
                                   bs rows; needs `reduce`; 0 or 1: off */
    int shard;                  /* this process, 0 .. shards - 1 */
    nn_reduce_callback reduce;  /* sums over the shards; see above */
    nn_gather_callback gather;  /* NULL, or the sharded optimizer (ZeRO
                                   stage 1): `reduce` need then leave only
                                   this shard's part of the gradients
                                   summed (nn_shard_part; the rest may hold
                                   anything, stats are summed in full),
                                   each shard updates its part of the
                                   weights and optimizer state, and
                                   `gather` shares the weights after every
                                   step and the optimizer state when an
                                   epoch ends or fit stops */
    bool split_units;           /* with shards > 1, a model of two dense
                                   layers (nn_model_can_split_units): the
                                   shards split its hidden units rather
                                   than the batch's rows (tensor
                                   parallelism): each runs every row of
                                   every batch through its units, `reduce`
                                   sums the output layer's inputs (batch
                                   x outputs floats, zero stats) once a
                                   step, and, when an epoch ends or fit
                                   stops, the weights and the optimizer
                                   state (each shard's part, zeros
                                   elsewhere); no `gather` */
    float *split_rows;          /* with split_units: NULL (every shard
                                   reads every row of a batch), or 3 *
                                   batch_size * inputs floats that every
                                   shard sees (one shared-memory block):
                                   each shard then reads only its rows
                                   [bs*shard/shards, bs*(shard+1)/shards)
                                   of each batch there, one step ahead,
                                   and the others read them after that
                                   step's `reduce` (which must order the
                                   shards' writes before it and reads
                                   after it, as a barrier does; at the
                                   start of every epoch it is called once
                                   more, with no floats) */
    uint64_t *split_claims;     /* with split_rows: NULL, or 3 words that
                                   every shard sees (shared memory), zero
                                   when fit starts: the shards then share
                                   the reading of each batch, each taking
                                   chunks of 8 rows or more (atomically) while
                                   any are left, so that the shard ahead
                                   reads more; the rows, their draws and
                                   the results are the same whoever reads
                                   them */
    nn_batch_callback on_batch; /* may be NULL */
    nn_epoch_callback on_epoch; /* may be NULL */
    void *user;
} nn_fit_options;

/* Whether nn_fit_options.split_units can train m: two dense layers, the
 * first's activation not softmax. */
bool nn_model_can_split_units(const nn_model *m);

nn_fit_options nn_fit_defaults(void);

/* Trains the compiled model on `train`. `history`, if not NULL, receives
 * one entry per completed epoch (free with nn_history_free; it is filled
 * even when fit stops early).
 *
 * Checkpoints: while fit runs, the model carries its training position
 * (epoch and step, generator state, learning-rate and early-stopping
 * state, history so far). nn_model_save(..., with_state = true) from a
 * callback writes it with the optimizer state; when a callback stops fit,
 * the position is that after the last step taken. Loading such a file and
 * calling fit with `resume` (and the same data, seed, batch size and
 * options; `epochs` may be larger) continues exactly where it stopped:
 * the weights come out bit-identical to an uninterrupted run (any thread
 * count). A fit that finishes clears the position.
 *
 * With shards > 1 every shard runs fit on the same data, options and
 * weights; the position is global (a checkpoint of any shard resumes with
 * any number of shards). Shuffling, dropout and augmentation draw what one
 * process draws, so the weights equal one process's with the same batch
 * size up to the order of float sums; batch normalisation normalises each
 * shard's rows by their own statistics (its moving statistics are
 * averaged over the shards by share). */
nn_status nn_model_fit(nn_model *m, const nn_dataset *train,
                       const nn_fit_options *opts, nn_history *history,
                       nn_error *err);

/* The training position a model carries (one loaded from a checkpoint, or
 * one that fit is running on): false when it carries none. *epoch gets the
 * epochs completed, *base_lr the learning rate before any schedule; either
 * may be NULL. */
bool nn_model_fit_position(const nn_model *m, int *epoch, float *base_lr);

/* One batch for nn_model_train_batch: B samples already in float. */
typedef struct nn_batch {
    const float *x;           /* (B, input) */
    const uint8_t *labels;    /* (B) class indices, or NULL */
    const float *targets;     /* (B, outputs), or NULL (one of the two) */
    int size;                 /* B >= 1 */
    bool apply;               /* false: gradients only, no update (checks) */
    float lr;                 /* this step's learning rate; 0: the compiled
                                 one (which is never changed) */
} nn_batch;

typedef struct nn_batch_result {
    double loss;              /* mean loss over the batch */
    int correct;              /* samples whose argmax prediction is right */
} nn_batch_result;

/* One optimisation step on a batch. `out` may be NULL. Gradients remain
 * readable via nn_model_grads. */
nn_status nn_model_train_batch(nn_model *m, const nn_batch *batch,
                               nn_batch_result *out, nn_error *err);

typedef struct nn_eval {
    double loss;
    double accuracy;
    size_t n;
} nn_eval;

/* Loss and accuracy over a data set; NN_ERR_STATE if the model's outputs
 * are not finite (NaN weights or overflow). If `confusion` is not NULL it receives
 * a (C, C) matrix of counts, rows true class, columns predicted, where C is
 * the model's output size (caller allocates C*C). */
nn_status nn_model_evaluate(nn_model *m, const nn_dataset *data,
                            nn_eval *out, uint32_t *confusion,
                            nn_error *err);

/* Output (probabilities for softmax) for n samples of float input:
 * x (n, input) -> y (n, outputs). Caller owns both buffers. */
nn_status nn_model_predict(nn_model *m, const float *x, size_t n, float *y,
                           nn_error *err);

/* Predicts a data set in batches: y (data->n, outputs), caller-allocated. */
nn_status nn_model_predict_dataset(nn_model *m, const nn_dataset *data,
                                   float *y, nn_error *err);

/* The index of the largest of v[0..n) (the first on ties; 0 when n is 0):
 * the predicted class of a row of outputs. */
size_t nn_argmax(const float *v, size_t n);

/* Per-class accuracy from a (K, K) confusion matrix (rows true class):
 * acc[k] = cm[k][k] / sum of row k, or NAN for a class with no samples. */
void nn_confusion_accuracy(const uint32_t *cm, int K, double *acc);

/* ---------------------------------------------------------- model files */

/* Writes the model (architecture, loss, optimizer settings, parameters and,
 * when `with_state`, the optimizer state for resuming) to `path`
 * atomically: a temporary file in the same folder, fsync, rename. A crash
 * at any moment leaves either the old file or the new one; temporaries
 * that killed writers left for `path` are removed.
 * Format: docs/model-format.md. */
nn_status nn_model_save(const nn_model *m, const char *path, bool with_state,
                        nn_error *err);

/* Loads a model written by nn_model_save; the model is compiled with the
 * recorded loss and optimizer. Rejects damaged or inconsistent files.
 * Returns NULL and fills err on failure. Free with nn_model_free. */
nn_model *nn_model_load(const char *path, nn_error *err);

/* Same, from memory (for fuzzing and embedding). */
nn_model *nn_model_load_mem(const void *data, size_t size, nn_error *err);

/* ---------------------------------------------------------------- files */

/* Writes `size` bytes to `path` atomically, as nn_model_save does: a
 * temporary in the same folder, fsync, rename, fsync of the folder. */
nn_status nn_write_file_atomic(const char *path, const void *data,
                               size_t size, nn_error *err);

/* Reads the whole file `path` (a regular file, pipe or device; not a
 * folder) into a malloc'd buffer: *data (free with free()) holds *size
 * bytes and a NUL after them. More than `max_bytes` fails with
 * NN_ERR_LIMIT (a regular file before anything is allocated). */
nn_status nn_read_file(const char *path, size_t max_bytes, void **data,
                       size_t *size, nn_error *err);

/* The same from an open stream, to its end (e.g. stdin); `name` is used in
 * messages, `size_hint` (0: none) sizes the first buffer. */
nn_status nn_read_stream(FILE *f, const char *name, size_t max_bytes,
                         size_t size_hint, void **data, size_t *size,
                         nn_error *err);

/* ------------------------------------------------------ int8 and export */

/* A model quantized to int8 after training (docs/quantization.md), as
 * TensorFlow Lite and CMSIS-NN do it: weights symmetric int8 per output
 * channel, activations int8 with a scale and zero point per tensor found
 * on calibration images, int32 accumulators, fixed-point requantization.
 * Inputs are uint8 pixels as in the data set (scale 1/255). The same
 * integer arithmetic runs in nn_qmodel_predict and in the C that
 * nn_model_export_c writes, so both answer the same, bit for bit. */
typedef struct nn_qmodel nn_qmodel;

#define NN_QUANT_CALIBRATE   2000     /* default calibration images */
#define NN_QUANT_MAX_TAPS    32768    /* inputs to one output (int32 sums) */

/* Quantizes an initialised model, calibrating activation ranges on the
 * first n images of `calib` (uint8 images; n > 0, at most calib->n).
 * Returns NULL and fills err on failure (NN_ERR_LIMIT for a layer with
 * more than NN_QUANT_MAX_TAPS inputs per output). The model is not kept.
 * Free with nn_qmodel_free. */
nn_qmodel *nn_model_quantize(const nn_model *m, const nn_dataset *calib,
                             size_t n, nn_error *err);
void nn_qmodel_free(nn_qmodel *q);

/* Instruction sets for int8 products; every one gives the same results. */
typedef enum nn_qisa {
    NN_QISA_PORTABLE = 0,     /* plain C, the exported code's kernels */
    NN_QISA_AVX512_VNNI,      /* x86-64 AVX-512 VNNI (vpdpbusd, zmm) */
    NN_QISA_AVX_VNNI          /* x86-64 AVX-VNNI (vpdpbusd, ymm) */
} nn_qisa;

const char *nn_qisa_name(nn_qisa isa);     /* "portable", ... */
bool nn_qisa_supported(nn_qisa isa);       /* by this CPU and build */
/* The one a new nn_qmodel uses: the fastest supported. */
nn_qisa nn_qmodel_isa(const nn_qmodel *q);
/* Chooses another (tests, benchmarks); NN_ERR_ARG if unsupported. */
nn_status nn_qmodel_set_isa(nn_qmodel *q, nn_qisa isa, nn_error *err);

/* n samples of uint8 pixels (n, input) -> scores (n, outputs)
 * (probabilities for softmax models) and classes (n); either output may
 * be NULL. The class is the first largest of the last layer's int8
 * outputs. Caller owns the buffers. */
nn_status nn_qmodel_predict(const nn_qmodel *q, const uint8_t *pixels,
                            size_t n, float *scores, int *classes,
                            nn_error *err);

/* As nn_model_evaluate, with the int8 model (uint8 images only). */
nn_status nn_qmodel_evaluate(const nn_qmodel *q, const nn_dataset *data,
                             nn_eval *out, uint32_t *confusion,
                             nn_error *err);

/* Limits of nn_model_export_c (docs/limits.md). */
#define NN_EXPORT_MAX_PARAMS (1u << 22)   /* parameters of one model */
#define NN_EXPORT_MAX_NAME   64           /* characters of NAME */

/* C source of a model for devices: header and source text of NAME.h and
 * NAME.c, plain C99 (stdint.h; math.h for float models), no allocation,
 * no mutable globals; weights static const; scratch memory provided by
 * the caller (NAME_SCRATCH_BYTES, upper case). The header declares
 *   int NAME_predict(const uint8_t *pixels, void *scratch, float *scores);
 * Both strings are owned by the struct: free with nn_export_c_free. */
typedef struct nn_export_c {
    char *header, *source;
    size_t scratch_bytes;     /* NAME_SCRATCH_BYTES */
    size_t weight_bytes;      /* bytes of static const tables */
} nn_export_c;

/* Writes the C text of model m: the float model when q is NULL, else the
 * int8 model q (made from m by nn_model_quantize). `name` must be a C
 * identifier of at most NN_EXPORT_MAX_NAME characters (NN_ERR_ARG), the
 * model within NN_EXPORT_MAX_PARAMS (NN_ERR_LIMIT). `tool` (may be NULL)
 * names the exporting program in the header's comment. */
nn_status nn_model_export_c(const nn_model *m, const nn_qmodel *q,
                            const char *name, const char *tool,
                            nn_export_c *out, nn_error *err);
void nn_export_c_free(nn_export_c *e);
/* Whether nn_model_export_c accepts `name`. */
bool nn_export_name_ok(const char *name);

/* ------------------------------------------------------------------- ONNX */

/* Models in and out through ONNX (docs/onnx.md), read and written with
 * ONNX's own onnx.proto compiled by protobuf-c. */
#define NN_ONNX_OPSET      13               /* the opset nn_onnx_save writes */
#define NN_MAX_ONNX_BYTES  (1u << 30)       /* bytes of one ONNX file */
#define NN_MAX_ONNX_NODES  4096             /* nodes and initializers */

/* Writes `m` as an ONNX model (opset NN_ONNX_OPSET) to `path`, atomically.
 * Input "input": float32 (N, H, W, C) for image models (channels last, as
 * the model was trained) or (N, F) for vector ones, values pixel/255; the
 * model's input normalisation, if any, is in the graph. Output "output":
 * (N, outputs), probabilities after a softmax layer. Dropout is written
 * as Dropout nodes (no-ops at inference). */
nn_status nn_onnx_save(const nn_model *m, const char *path, nn_error *err);

typedef struct nn_onnx_options {
    /* Input normalisation for the imported model (nn_model_set_input_norm)
     * on top of pixel/255: PyTorch's Normalize((0.1307,), (0.3081,)) is
     * mean 0.1307, std 0.3081. Default 0, 1: none. */
    float mean, std;
} nn_onnx_options;

nn_onnx_options nn_onnx_defaults(void);

/* Converts an ONNX model into a sequential model (the ops and patterns
 * docs/onnx.md lists: what PyTorch's exporter and tf2onnx produce for the
 * networks libnn can express), NCHW or NHWC input turned into libnn's
 * channels-last layout; compiled with categorical cross-entropy (mean
 * squared error unless it ends in a dense softmax) and RMSprop. The file
 * is hostile input: size limits are checked before allocating, external
 * tensor data is refused, and anything not supported is refused with a
 * message naming the node and its op type (NN_ERR_FORMAT; NN_ERR_LIMIT
 * past the limits). `opts` may be NULL (defaults). Returns NULL and fills
 * err on failure. Free with nn_model_free. */
nn_model *nn_onnx_load(const char *path, const nn_onnx_options *opts,
                       nn_error *err);
nn_model *nn_onnx_load_mem(const void *data, size_t size,
                           const nn_onnx_options *opts, nn_error *err);

/* ------------------------------------------------ images and preprocessing */

/* Image files in, MNIST-style digits out (docs/preprocessing.md).
 * Decoding uses stb_image (Debian libstb-dev): PNG (8 and 16 bit, grey,
 * palette, RGB, with or without alpha/tRNS), JPEG (baseline and
 * progressive; turned upright by its Exif orientation), BMP, GIF (first
 * frame); binary PGM/PPM (P5/P6, 8 or 16 bit) are read by libnn itself. Limits (docs/preprocessing.md) are checked from the header before
 * any pixel is decoded; decoding needs about 4 bytes per pixel (8 for
 * 16-bit files) on top of the file itself. */
#define NN_MAX_IMAGE_SIDE    16384          /* width and height */
#define NN_MAX_IMAGE_PIXELS  (1u << 26)     /* width * height, 64 Mpx */
#define NN_MAX_IMAGE_BYTES   (1u << 28)     /* bytes of one image file */

/* An 8-bit grey image, 0 black .. 255 white, row-major. */
typedef struct nn_image {
    int w, h;
    uint8_t *pixels;          /* (h, w); owned, free with nn_image_free */
} nn_image;

/* Decodes the image file `path` to grey: colour by luminance
 * (0.299 R + 0.587 G + 0.114 B), 16-bit samples rounded to 8 bit,
 * palettes expanded, and transparency composed over white paper (over
 * black instead when most of the picture is transparent and what is drawn
 * is light, as with light strokes exported from a dark canvas).
 * On failure *out is zeroed and err names the file and the reason:
 * NN_ERR_IO (cannot read), NN_ERR_FORMAT (not an image, damaged, truncated),
 * NN_ERR_LIMIT (over the NN_MAX_IMAGE_* limits). Free with nn_image_free. */
nn_status nn_image_load(const char *path, nn_image *out, nn_error *err);

/* Same, from `size` bytes at `data` (not kept after the call); `name` is
 * used in error messages (NULL: "image"). */
nn_status nn_image_load_mem(const void *data, size_t size, const char *name,
                            nn_image *out, nn_error *err);

/* Frees the pixels and zeroes *img. NULL-safe. */
void nn_image_free(nn_image *img);

#define NN_DIGIT_SIDE 28   /* MNIST field: 28x28 ... */
#define NN_DIGIT_BOX  20   /* ... with the ink scaled to fit 20x20 */

typedef enum nn_ink {
    NN_INK_AUTO = 0,   /* decide from the picture (the default) */
    NN_INK_DARK,       /* dark ink on light paper: invert */
    NN_INK_LIGHT       /* light ink on dark ground, as MNIST */
} nn_ink;

typedef struct nn_preprocess_options {
    nn_ink ink;          /* default NN_INK_AUTO */
    int min_contrast;    /* grey levels above the background that the
                            strongest ink (3x3 average) must reach to count
                            as a digit; default 32 */
} nn_preprocess_options;

nn_preprocess_options nn_preprocess_defaults(void);

/* What preprocessing found and did. Coordinates are pixels. */
typedef struct nn_preprocess_info {
    bool found;             /* false: no digit found (blank picture) */
    bool inverted;          /* dark ink on light paper was inverted */
    int background;         /* paper level removed, 0..255, as in the input */
    int box_x, box_y, box_w, box_h;  /* ink bounding box in the input */
    float cx, cy;           /* ink centre of mass in the output (x, y) */
    /* Ink statistics, for telling a digit from other pictures
     * (nn_preprocess_not_digit; docs/preprocessing.md, "Not a digit"); all
     * zero when found is false. */
    int parts;              /* connected stroke parts kept (specks dropped) */
    int holes;              /* regions of the 28x28 output enclosed by ink
                               (pixels >= 64; 4-connected background) */
    float fill;             /* share of the 28x28 pixels at 128 or more */
    float solidity;         /* share of the output ink's bounding box at
                               64 or more (a solid block: 1) */
    float elongation;       /* ratio of the ink's principal second moments
                               in the output, >= 1 (a line: large) */
    float tilt;             /* degrees between the ink's long axis and
                               upright, 0..90 */
} nn_preprocess_info;

/* Turns a picture of one digit into an MNIST-style sample, as MNIST was
 * made: ink made light on black (dark-on-light detected from the border
 * against the extremes of the picture, or as opts->ink says); background
 * level and paper noise removed; ink found (connected strokes, specks
 * dropped) and cropped; its box scaled to fit 20x20 keeping the aspect
 * ratio (area averaging when shrinking, bilinear when enlarging: grey,
 * anti-aliased edges); placed in 28x28 so that its centre of mass falls
 * on pixel (14, 14), within half a pixel. Deterministic.
 * out: (28, 28) bytes, 0 background .. 255 ink (use scale 1/255 as for
 * MNIST data). When no digit is found, returns NN_OK with out all zero and
 * info->found false. `opts` and `info` may be NULL (defaults / not
 * wanted). NN_ERR_ARG on an empty or oversized image. */
nn_status nn_preprocess_digit(const nn_image *img,
                              const nn_preprocess_options *opts,
                              uint8_t *out, nn_preprocess_info *info,
                              nn_error *err);

/* Whether a picture that nn_preprocess_digit found ink in is, by its ink
 * statistics, not a digit at all (noise, a texture, a regular pattern, a
 * single line): returns a static one-line reason, or NULL when the picture
 * may be a digit (and when info is NULL or info->found is false).
 * Criteria, each outside what handwritten digits give
 * (docs/preprocessing.md): 25 or more separate parts; 6 or more enclosed
 * holes; more than 36% of the 28x28 field bright; a solid block (solidity
 * 0.95 or more with over 20% of the field bright); a line far from
 * upright (elongation over 10 and tilt over 50 degrees, or over 50 and
 * 30 degrees). */
const char *nn_preprocess_not_digit(const nn_preprocess_info *info);

#ifdef __cplusplus
}
#endif

#endif /* NN_H */
