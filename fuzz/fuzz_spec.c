/*
 * fuzz_spec.c - libFuzzer target for the model-spec parser
 * (nn_model_from_spec).
 *
 * Input: 2 bytes choosing the input shape and class count, then the spec
 * text (NUL-terminated here). A model that builds is summarised and, when
 * small, initialised and run on one sample.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const nn_shape *pick_shape(int k)
{
    static nn_shape shapes[6];
    shapes[0] = nn_shape3(28, 28, 1);
    shapes[1] = nn_shape3(8, 8, 1);
    shapes[2] = nn_shape3(5, 7, 3);
    shapes[3] = nn_shape1(16);
    shapes[4] = nn_shape3(1, 1, 1);
    shapes[5] = nn_shape3(32, 32, 3);
    return &shapes[k % 6];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 4096)
        return 0;
    nn_shape in = *pick_shape(data[0]);
    int classes = data[1] < 200 ? data[1] : 70000;   /* over the limit too */
    char *spec = malloc(size - 1);
    if (!spec)
        return 0;
    memcpy(spec, data + 2, size - 2);
    spec[size - 2] = '\0';
    nn_error err;
    nn_optimizer opt;
    nn_model *m = nn_model_from_spec(spec, in, classes, &opt, &err);
    free(spec);
    if (!m) {
        if (err.code == NN_OK || !err.msg[0])
            abort();
        return 0;
    }
    char buf[4096];
    nn_model_summary(m, buf, sizeof buf);
    size_t fwd = nn_shape_size(in);
    for (int i = 0; i < nn_model_layer_count(m); i++)
        fwd += nn_shape_size(nn_model_layer_output_shape(m, i));
    size_t isz = nn_shape_size(in), osz = nn_shape_size(nn_model_output_shape(m));
    if (fwd <= (1u << 18) && nn_model_param_count(m) <= (1u << 20) &&
        nn_model_param_count(m) * isz <= (1u << 26)) {
        nn_rng rng;
        nn_rng_seed(&rng, 1);
        if (nn_model_init(m, &rng, &err) == NN_OK) {
            float *x = calloc(isz, sizeof *x), *y = calloc(osz, sizeof *y);
            if (x && y) {
                for (size_t i = 0; i < isz; i++)
                    x[i] = (float)(i % 5) / 5.0f;
                nn_model_predict(m, x, 1, y, &err);
            }
            free(x);
            free(y);
        }
    }
    nn_model_free(m);
    return 0;
}
