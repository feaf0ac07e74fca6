/*
 * gradcheck.h - numerical gradient checks for the layer tests (cmocka).
 *
 *   one_layer(in, spec, B, seed)     a model of one initialised layer with
 *                                    a workspace for batches of B
 *   check_layer_grads(m, x, B, tr)   the layer's input and parameter
 *                                    gradients against central differences
 *                                    of L = sum(y * r), r random (dy = r);
 *                                    at a kink (relu, max) the backward
 *                                    value must match one side, and at most
 *                                    a tenth of the values may be at kinks
 *   check_model_grads(m, x, lab, B)  every trainable parameter gradient of
 *                                    a compiled model against central
 *                                    differences of its loss
 * All fail the running cmocka test on a mismatch or an all-zero gradient.
 */
#ifndef TESTS_UTIL_GRADCHECK_H
#define TESTS_UTIL_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "nn.h"

/* v[0..n) uniform in [lo, hi), from its own generator seeded with seed. */
void fill_uniform(float *v, size_t n, float lo, float hi, uint64_t seed);
nn_model *one_layer(nn_shape in, nn_layer_spec spec, int B, uint64_t seed);
void check_layer_grads(nn_model *m, float *x, int B, bool training);
void check_model_grads(nn_model *m, const float *x, const uint8_t *labels,
                       int B);

#endif
