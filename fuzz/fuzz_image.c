/*
 * fuzz_image.c - libFuzzer target for image decoding and MNIST-style
 * preprocessing (nn_image_load_mem, nn_preprocess_digit).
 *
 * Input: the image file as it is. A decoded image is checked for sane
 * dimensions and run through preprocessing with each ink setting (the
 * last byte of the input picks one; big pictures only with the default).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_error err;
    nn_image img;
    nn_status s = nn_image_load_mem(data, size, "fuzz", &img, &err);
    if (s != NN_OK) {
        if (err.code != s || !err.msg[0] || img.pixels || img.w || img.h)
            abort();
        return 0;
    }
    if (img.w < 1 || img.h < 1 || img.w > NN_MAX_IMAGE_SIDE ||
        img.h > NN_MAX_IMAGE_SIDE ||
        (uint64_t)img.w * (uint64_t)img.h > NN_MAX_IMAGE_PIXELS || !img.pixels)
        abort();
    /* every pixel readable (ASan / valgrind catch a short buffer) */
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)img.w * (size_t)img.h; i++)
        sum += img.pixels[i];
    nn_preprocess_options o = nn_preprocess_defaults();
    if ((size_t)img.w * (size_t)img.h <= (1u << 20))
        o.ink = (nn_ink)(data[size - 1] % 3);
    o.min_contrast = 1 + (int)(sum % 64);
    uint8_t out[NN_DIGIT_SIDE * NN_DIGIT_SIDE];
    nn_preprocess_info info;
    if ((size_t)img.w * (size_t)img.h <= (1u << 22) &&
        nn_preprocess_digit(&img, &o, out, &info, &err) == NN_OK &&
        !info.found)
        for (int i = 0; i < NN_DIGIT_SIDE * NN_DIGIT_SIDE; i++)
            if (out[i])
                abort();   /* no digit: all zero, as documented */
    nn_image_free(&img);
    return 0;
}
