/*
 * quant.h - pieces of the int8 path shared by quant.c and quant_vnni.c
 * (internal).
 */
#ifndef NN_QUANT_H
#define NN_QUANT_H

#include "nn/plan.h"

/* real = mult 2^-shift, mult in [2^30, 2^31) (fewer bits when real is
 * below 2^-32; saturated above 2^30). real <= 0 gives 0. */
void nnq_multiplier(double real, int32_t *mult, int8_t *shift);

/* Per-thread buffers of the VNNI path, grown on demand. */
typedef struct nnq_work {
    uint8_t *u;
    size_t ucap;
    int32_t *acc;
    size_t acap;
    int8_t *c;
    size_t ccap;
} nnq_work;
void nnq_work_free(nnq_work *w);

/* The fastest instruction set this CPU has. */
nn_qisa nnq_best_isa(void);
/* Switches q to isa: (re)packs its dense steps' weights. */
nn_status nnq_select(nn_qmodel *q, nn_qisa isa, nn_error *err);
void nnq_unpack(void *packed);

/* Dense step s on B samples with packed weights: x (B, in) -> y (B, out),
 * the same integers as nnk_dense_i8 per sample. Needs w's buffers; if
 * they cannot grow, falls back to nnk_dense_i8. */
void nnq_dense_batch(const void *packed, const nn_step *s,
                     const nnk_qout *qo, const int8_t *x, int B, int8_t *y,
                     nnq_work *w);

/* The same for a convolution step (nnk_conv_i8, pooling included). */
void nnq_conv_batch(const void *packed, const nn_step *s,
                    const nnk_qout *qo, const int8_t *x, int B, int8_t *y,
                    nnq_work *w);

#endif
