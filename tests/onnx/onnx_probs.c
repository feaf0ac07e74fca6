/*
 * onnx_probs.c - test helper: a model's outputs for the first N images of
 * an MNIST IDX file, as float32 (N, K) little-endian, for compare.js.
 *   onnx_probs MODEL IMAGES N OUT [MEAN STD]
 * MODEL is a .onnx file (imported with the normalisation MEAN, STD if
 * given) or a digits model file. Inputs are pixel/255, as digits feeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: onnx_probs MODEL IMAGES N OUT [MEAN STD]\n");
        return 2;
    }
    nn_error err;
    size_t len = strlen(argv[1]);
    nn_onnx_options o = nn_onnx_defaults();
    if (argc == 7)
        o.mean = strtof(argv[5], NULL), o.std = strtof(argv[6], NULL);
    nn_model *m = len > 5 && !strcmp(argv[1] + len - 5, ".onnx")
                      ? nn_onnx_load(argv[1], &o, &err)
                      : nn_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "onnx_probs: %s\n", err.msg);
        return 1;
    }
    nn_idx x;
    if (nn_idx_load(argv[2], &x, &err) != NN_OK || x.rank != 3) {
        fprintf(stderr, "onnx_probs: %s\n", x.rank ? "not images" : err.msg);
        nn_model_free(m);
        return 1;
    }
    size_t n = strtoul(argv[3], NULL, 10);
    n = n < x.dim[0] ? n : x.dim[0];
    nn_dataset d = {.n = n, .shape = nn_model_input_shape(m), .x_u8 = x.data,
                    .scale = 1.0f / 255.0f};
    size_t K = nn_shape_size(nn_model_output_shape(m));
    float *y = malloc(sizeof(float) * n * K);
    int rc = 1;
    if ((size_t)x.dim[1] * x.dim[2] != nn_shape_size(d.shape))
        fprintf(stderr, "onnx_probs: the model does not take 28x28 images\n");
    else if (!y)
        fprintf(stderr, "onnx_probs: out of memory\n");
    else if (nn_model_predict_dataset(m, &d, y, &err) != NN_OK)
        fprintf(stderr, "onnx_probs: %s\n", err.msg);
    else {
        FILE *f = fopen(argv[4], "wb");
        rc = !f || fwrite(y, sizeof(float), n * K, f) != n * K;
        if (f && fclose(f))
            rc = 1;
        if (rc)
            fprintf(stderr, "onnx_probs: cannot write %s\n", argv[4]);
    }
    free(y);
    nn_idx_free(&x);
    nn_model_free(m);
    return rc;
}
