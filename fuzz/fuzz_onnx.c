/*
 * fuzz_onnx.c - libFuzzer target for the ONNX reader (nn_onnx_load_mem).
 *
 * Input: an ONNX file. A model that converts is summarised and, when
 * small, run on one sample; a failure must have a code and a message.
 */
#include <stdint.h>
#include <stdlib.h>

#include "nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_error err;
    nn_model *m = nn_onnx_load_mem(data, size, NULL, &err);
    if (!m) {
        if (err.code == NN_OK || !err.msg[0])
            abort();   /* a failure must say why */
        return 0;
    }
    char buf[4096];
    nn_model_summary(m, buf, sizeof buf);
    size_t in = nn_shape_size(nn_model_input_shape(m));
    size_t out = nn_shape_size(nn_model_output_shape(m));
    if (in <= (1u << 16) && nn_model_param_count(m) <= (1u << 22)) {
        float *x = calloc(in, sizeof *x), *y = calloc(out, sizeof *y);
        if (x && y) {
            for (size_t i = 0; i < in; i++)
                x[i] = (float)(i % 7) / 7.0f;
            if (nn_model_predict(m, x, 1, y, &err) != NN_OK && !err.msg[0])
                abort();
        }
        free(x);
        free(y);
    }
    nn_model_free(m);
    return 0;
}
