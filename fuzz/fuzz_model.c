/*
 * fuzz_model.c - libFuzzer target for the model-file loader
 * (nn_model_load_mem).
 *
 * Input: one mode byte, then the file. Mode bit 0 set: the last 4 bytes are
 * replaced by the file's real CRC-32 before loading, so mutations get past
 * the checksum and reach the header, layer and parameter checks. Mode bit 0
 * clear: the file is loaded as it is (the checksum itself is tested).
 * A model that loads is summarised and, when small, run on one sample and
 * trained one step on two.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Elements a forward pass on one sample touches (input and every layer). */
static size_t forward_size(const nn_model *m)
{
    size_t n = nn_shape_size(nn_model_input_shape(m));
    for (int i = 0; i < nn_model_layer_count(m); i++)
        n += nn_shape_size(nn_model_layer_output_shape(m, i));
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    size--;
    uint8_t *file = malloc(size ? size : 1);
    if (!file)
        return 0;
    memcpy(file, data + 1, size);
    if ((mode & 1) && size >= 4) {
        uLong crc = crc32(crc32(0L, Z_NULL, 0), file, (uInt)(size - 4));
        file[size - 4] = (uint8_t)crc;
        file[size - 3] = (uint8_t)(crc >> 8);
        file[size - 2] = (uint8_t)(crc >> 16);
        file[size - 1] = (uint8_t)(crc >> 24);
    }
    nn_error err;
    nn_model *m = nn_model_load_mem(file, size, &err);
    free(file);
    if (!m) {
        if (err.code == NN_OK || !err.msg[0])
            abort();   /* a failure must say why */
        return 0;
    }
    char buf[4096];
    nn_model_summary(m, buf, sizeof buf);
    size_t in = nn_shape_size(nn_model_input_shape(m));
    size_t out = nn_shape_size(nn_model_output_shape(m));
    if (forward_size(m) <= (1u << 18) &&
        nn_model_param_count(m) * in <= (1u << 26)) {
        /* predict one sample, then one training step on two (the loaded
         * optimizer settings and state at work) */
        float *x = calloc(2 * in, sizeof *x), *y = calloc(2 * out, sizeof *y);
        if (x && y) {
            for (size_t i = 0; i < 2 * in; i++)
                x[i] = (float)(i % 7) / 7.0f;
            nn_model_predict(m, x, 1, y, &err);
            uint8_t labels[2] = {0, (uint8_t)((out - 1) % 256)};
            for (size_t i = 0; i < 2 * out; i++)
                y[i] = i == 0 || i == out + labels[1] ? 1.0f : 0.0f;
            const nn_batch b = {.x = x, .labels = labels, .targets = y,
                                .size = 2, .apply = true};
            nn_batch_result r;
            if (nn_model_train_batch(m, &b, &r, &err) == NN_OK &&
                (r.correct < 0 || r.correct > 2))
                abort();
        }
        free(x);
        free(y);
    }
    nn_model_free(m);
    return 0;
}
