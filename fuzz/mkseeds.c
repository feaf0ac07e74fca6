/*
 * mkseeds.c - writes the fuzzers' seed corpora: small valid inputs of each
 * kind, built with libnn itself (models, IDX files), zlib (gzip) and
 * stb_image_write (PNG, JPEG, BMP), plus hand-made PGM/PPM and GIF.
 * Usage: mkseeds DIR   (writes DIR/{idx,model,image,spec,onnx}/NAME).
 * `make fuzz-seeds` regenerates fuzz/seeds with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cli/stb_write.h"
#include "nn.h"

static const char *root;

static void die(const char *what)
{
    fprintf(stderr, "mkseeds: %s\n", what);
    exit(1);
}

static void put(const char *kind, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, kind);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, kind, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die(path);
}

/* ------------------------------------------------------------------ IDX */

static size_t idx_bytes(unsigned char *out, int rank, const unsigned *dim)
{
    size_t n = 4, count = 1;
    out[0] = out[1] = 0;
    out[2] = 8;
    out[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        for (int b = 0; b < 4; b++)
            out[n++] = (unsigned char)(dim[i] >> (24 - 8 * b));
        count *= dim[i];
    }
    for (size_t i = 0; i < count; i++)
        out[n++] = (unsigned char)(i * 37 % 251);
    return n;
}

/* gzip of n bytes at p into out (cap bytes); returns the length. */
static size_t gz(const unsigned char *p, size_t n, unsigned char *out,
                 size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    z.next_in = (Bytef *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate");
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

static void idx_seeds(void)
{
    unsigned char raw[4096], z[4096];
    size_t n, k;
    n = idx_bytes(raw, 1, (unsigned[]){10});
    put("idx", "labels-r1", raw, n);
    k = gz(raw, n, z, sizeof z);
    put("idx", "labels-r1.gz", z, k);
    n = idx_bytes(raw, 3, (unsigned[]){3, 4, 5});
    put("idx", "images-r3", raw, n);
    k = gz(raw, n, z, sizeof z);
    put("idx", "images-r3.gz", z, k);
    memcpy(z + k, "junk", 4);   /* ignored after the stream, as gzip does */
    put("idx", "images-r3-trailing.gz", z, k + 4);
    k = gz(raw, 20, z, sizeof z);   /* two members: header, then data */
    k += gz(raw + 20, n - 20, z + k, sizeof z - k);
    put("idx", "images-r3-2members.gz", z, k);
    n = idx_bytes(raw, 4, (unsigned[]){2, 3, 3, 2});
    put("idx", "images-r4", raw, n);
    k = gz(raw, n, z, sizeof z);
    put("idx", "images-r4.gz", z, k);
    n = idx_bytes(raw, 2, (unsigned[]){1, 1});
    put("idx", "one-r2", raw, n);
}

/* ---------------------------------------------------------------- models */

/* A checkpoint: a fit stopped mid-epoch, with history, early stopping's
 * best weights and every kind of schedule state in its training position.
 * (Its history holds epoch times, so its bytes differ from run to run.) */
static bool stop_at_epoch_2(void *user, int epoch, int step, int steps,
                            double loss, double acc)
{
    (void)user, (void)steps, (void)loss, (void)acc;
    return !(epoch == 2 && step == 1);
}

/* The model file as two seeds: NAME (mode 1: the CRC is fixed up) and
 * NAME-nofix (mode 0: the file as it is). */
static void write_seed(const char *name, nn_model *m, bool state)
{
    nn_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/model.tmp", root);
    if (nn_model_save(m, path, state, &err) != NN_OK)
        die(err.msg);
    FILE *f = fopen(path, "rb");
    static unsigned char buf[1 << 16];
    buf[0] = 1;   /* mode: fix up the CRC */
    size_t n = f ? fread(buf + 1, 1, sizeof buf - 1, f) : 0;
    if (!f || n == 0 || n == sizeof buf - 1)
        die(path);
    fclose(f);
    remove(path);
    put("model", name, buf, n + 1);
    char raw[600];
    snprintf(raw, sizeof raw, "%s-nofix", name);
    buf[0] = 0;   /* mode: as it is, checksum checked */
    put("model", raw, buf, n + 1);
}

static void model_seed(const char *name, nn_shape in, const char *spec,
                       nn_loss loss, nn_optimizer opt, bool state)
{
    nn_error err;
    nn_model *m = nn_model_from_spec(spec, in, 0, NULL, &err);
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    if (!m || nn_model_init(m, &rng, &err) != NN_OK ||
        nn_model_compile(m, loss, opt, &err) != NN_OK)
        die(err.msg);
    write_seed(name, m, state);
    nn_model_free(m);
}

static void checkpoint_seed(void)
{
    static uint8_t x[12 * 16], y[12];
    for (int i = 0; i < 12 * 16; i++)
        x[i] = (uint8_t)(i * 37);
    for (int i = 0; i < 12; i++)
        y[i] = (uint8_t)(i % 2);
    nn_dataset d = {.n = 12, .shape = nn_shape3(4, 4, 1), .x_u8 = x,
                    .scale = 1.0f / 255.0f, .labels = y, .num_classes = 2};
    nn_error err;
    nn_model *m = nn_model_from_spec("dense(3,relu) dense(2,softmax)",
                                     d.shape, 2, NULL, &err);
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    if (!m || nn_model_init(m, &rng, &err) != NN_OK ||
        nn_model_compile(m, NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                         nn_adam(), &err) != NN_OK)
        die(err.msg);
    nn_fit_options o = nn_fit_defaults();
    o.epochs = 4;
    o.batch_size = 4;
    o.validation_split = 0.25f;
    o.patience = 3;
    o.lr_schedule = NN_LR_COSINE;
    o.augment = (nn_augment){1.0f, 5.0f, 0.1f};
    o.on_batch = stop_at_epoch_2;
    if (nn_model_fit(m, &d, &o, NULL, &err) != NN_ERR_INTERRUPTED)
        die("checkpoint seed: fit did not stop");
    write_seed("checkpoint", m, true);
    nn_model_free(m);
}

static void model_seeds(void)
{
    checkpoint_seed();
    model_seed("mlp", nn_shape3(4, 4, 1), "dense(3,relu) dense(2,softmax)",
               NN_LOSS_CATEGORICAL_CROSSENTROPY, nn_rmsprop(), false);
    model_seed("mlp-state", nn_shape1(5), "dense(4,tanh) dense(3,sigmoid)",
               NN_LOSS_MSE, nn_adam(), true);
    model_seed("cnn", nn_shape3(6, 6, 1),
               "conv2d(2,3,relu,padding=same) maxpool(2) flatten "
               "dense(2,softmax)", NN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
               nn_adam(), false);
    model_seed("cnn2", nn_shape3(7, 5, 2),
               "conv2d(2,2,linear,stride=2) batchnorm avgpool(1) dropout(0.5)"
               " dense(2,softmax)", NN_LOSS_CATEGORICAL_CROSSENTROPY,
               nn_sgd(0.1f, 0.9f, true), true);
    model_seed("gap", nn_shape3(5, 5, 2),
               "conv2d(3,3,tanh) gap leakyrelu(0.2) dense(2,softmax)",
               NN_LOSS_CATEGORICAL_CROSSENTROPY, nn_adam(), true);
}

/* ------------------------------------------------------------------ ONNX */

/* A model exported by nn_onnx_save: every layer kind and activation. */
static void onnx_seed(const char *name, nn_shape in, const char *spec,
                      float mean, float sd)
{
    nn_error err;
    nn_model *m = nn_model_from_spec(spec, in, 3, NULL, &err);
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    if (!m || nn_model_init(m, &rng, &err) != NN_OK ||
        nn_model_set_input_norm(m, mean, sd, &err) != NN_OK)
        die(err.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/onnx.tmp", root);
    if (nn_onnx_save(m, path, &err) != NN_OK)
        die(err.msg);
    nn_model_free(m);
    FILE *f = fopen(path, "rb");
    static unsigned char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || n == 0 || n == sizeof buf)
        die(path);
    fclose(f);
    remove(path);
    put("onnx", name, buf, n);
}

static void onnx_seeds(void)
{
    onnx_seed("mlp", nn_shape1(6), "dense(4,relu) dense(3,softmax)", 0, 1);
    onnx_seed("cnn", nn_shape3(8, 8, 1),
              "conv2d(2,3,relu,padding=same) batchnorm maxpool(2) "
              "conv2d(2,2,tanh,stride=2) avgpool(1) dropout(0.5) flatten "
              "dense(3,sigmoid) dense(3,softmax)", 0.1307f, 0.3081f);
    onnx_seed("image-out", nn_shape3(5, 5, 2), "conv2d(3,3,softmax)", 0, 1);
    onnx_seed("gap", nn_shape3(6, 5, 2),
              "conv2d(3,3) leakyrelu(0.1) gap leakyrelu dense(3,softmax)", 0,
              1);
}

/* ---------------------------------------------------------------- images */

static unsigned char img_buf[1 << 14];
static size_t img_len;

static void to_buf(void *ctx, void *data, int size)
{
    (void)ctx;
    if (img_len + (size_t)size > sizeof img_buf)
        die("image too big");
    memcpy(img_buf + img_len, data, (size_t)size);
    img_len += (size_t)size;
}

/* A 12x12 dark "1" on light paper, in `comp` channels (alpha: opaque
 * stroke on transparent paper). */
static void digit(unsigned char *px, int comp)
{
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 12; x++)
            for (int c = 0; c < comp; c++) {
                bool ink = x >= 5 && x <= 6 && y >= 2 && y <= 9;
                unsigned char *p = px + (y * 12 + x) * comp + c;
                if (comp == 4 && c == 3)
                    *p = ink ? 255 : 0;
                else
                    *p = ink ? (unsigned char)(20 + 10 * c) : 230;
            }
}

static void image_seeds(void)
{
    unsigned char px[12 * 12 * 4];
    static const struct { const char *name; int comp; } png[] = {
        {"grey.png", 1}, {"grey-alpha.png", 2}, {"rgb.png", 3},
        {"rgba.png", 4},
    };
    for (size_t i = 0; i < sizeof png / sizeof *png; i++) {
        digit(px, png[i].comp);
        img_len = 0;
        if (!stbi_write_png_to_func(to_buf, NULL, 12, 12, png[i].comp, px,
                                    12 * png[i].comp))
            die("png");
        put("image", png[i].name, img_buf, img_len);
    }
    digit(px, 3);
    img_len = 0;
    if (!stbi_write_jpg_to_func(to_buf, NULL, 12, 12, 3, px, 80))
        die("jpg");
    put("image", "rgb.jpg", img_buf, img_len);
    digit(px, 1);
    img_len = 0;
    if (!stbi_write_jpg_to_func(to_buf, NULL, 12, 12, 1, px, 80))
        die("jpg");
    put("image", "grey.jpg", img_buf, img_len);
    digit(px, 3);
    img_len = 0;
    if (!stbi_write_bmp_to_func(to_buf, NULL, 12, 12, 3, px))
        die("bmp");
    put("image", "rgb.bmp", img_buf, img_len);

    /* PGM 8 and 16 bit, PPM */
    unsigned char pnm[1024];
    int h = sprintf((char *)pnm, "P5\n# a comment\n12 12\n255\n");
    digit(pnm + h, 1);
    put("image", "grey.pgm", pnm, (size_t)h + 144);
    h = sprintf((char *)pnm, "P5 12 12 65535\n");
    digit(px, 1);
    for (int i = 0; i < 144; i++)
        pnm[h + 2 * i] = px[i], pnm[h + 2 * i + 1] = 0x80;
    put("image", "grey16.pgm", pnm, (size_t)h + 288);
    h = sprintf((char *)pnm, "P6\n12 12\n255\n");
    digit(pnm + h, 3);
    put("image", "rgb.ppm", pnm, (size_t)h + 432);

    /* GIF: 2x1, 2-colour palette (black, white), one frame; LZW minimum
     * code size 2, 3-bit codes clear(4) 0 1 end(5) */
    static const unsigned char gif[] = {
        'G', 'I', 'F', '8', '9', 'a', 2, 0, 1, 0, 0x80, 0, 0,
        0, 0, 0, 255, 255, 255,
        0x2c, 0, 0, 0, 0, 2, 0, 1, 0, 0,
        2, 2, 0x44, 0x0a, 0, 0x3b,
    };
    put("image", "bw.gif", gif, sizeof gif);
}

/* ------------------------------------------------------------------ specs */

static void spec_seeds(void)
{
    static const struct { const char *name, *text; unsigned char shape, classes; } s[] = {
        {"mlp", "mlp", 0, 10},
        {"cnn", "cnn", 0, 10},
        {"lenet5", "lenet5", 0, 3},
        {"dense", "dense(32,relu) dense(10,softmax)", 1, 0},
        {"conv", "conv2d(4,3,relu,stride=2,padding=same) maxpool(2,stride=1)"
                 " avgpool(pool=2) flatten dropout(0.25) batchnorm "
                 "dense(units=5,activation=tanh)", 2, 0},
        {"keys", "conv(filters=2,kernel=2,strides=1,padding=valid) "
                 "max_pooling2d average_pooling2d(1) "
                 "batch_normalization(momentum=0.9), dense(3,sigmoid)", 5, 0},
        {"vector", "dense(8,linear) dropout(rate=0.5) dense(4)", 3, 4},
    };
    char buf[512];
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        size_t n = strlen(s[i].text);
        buf[0] = (char)s[i].shape;
        buf[1] = (char)s[i].classes;
        memcpy(buf + 2, s[i].text, n);
        put("spec", s[i].name, buf, n + 2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: mkseeds DIR");
    root = argv[1];
    mkdir(root, 0755);
    idx_seeds();
    model_seeds();
    image_seeds();
    spec_seeds();
    onnx_seeds();
    return 0;
}
