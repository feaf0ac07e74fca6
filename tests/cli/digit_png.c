/*
 * digit_png.c - a helper for tests/cli/serve.sh and bench/serve.sh: writes
 * MNIST test digits as the pictures a user sends, dark ink on white paper,
 * enlarged SCALE times (bilinear), as PNG or JPEG (by OUT's extension).
 * Usage: digit_png MNIST_DIR INDEX SCALE OUT.png|OUT.jpg
 * Prints the digit's label on stdout; exits 1 with a message on any error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/stb_write.h"

#include "nn.h"

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "digit_png: %s: %s\n", what, why);
    return 1;
}

/* "dir/name" or "dir/name.gz", whichever exists. */
static void find(const char *dir, const char *name, char *out, size_t n)
{
    struct stat st;
    snprintf(out, n, "%s/%s", dir, name);
    if (stat(out, &st) != 0)
        snprintf(out, n, "%s/%s.gz", dir, name);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return fail("usage", "digit_png MNIST_DIR INDEX SCALE OUT.png|.jpg");
    char ip[4096], lp[4096];
    find(argv[1], "t10k-images-idx3-ubyte", ip, sizeof ip);
    find(argv[1], "t10k-labels-idx1-ubyte", lp, sizeof lp);
    long index = strtol(argv[2], NULL, 10), scale = strtol(argv[3], NULL, 10);
    if (scale < 1 || scale > 64)
        return fail(argv[3], "SCALE must be 1..64");
    nn_dataset d;
    nn_error err;
    if (nn_idx_load_pair(ip, lp, 0, &d, &err) != NN_OK)
        return fail("MNIST", err.msg);
    if (index < 0 || (size_t)index >= d.n) {
        nn_dataset_free(&d);
        return fail(argv[2], "no such test digit");
    }
    const uint8_t *src = d.x_u8 + (size_t)index * 784;
    int side = 28 * (int)scale;
    uint8_t *px = malloc((size_t)side * (size_t)side);
    if (!px) {
        nn_dataset_free(&d);
        return fail("memory", "out of memory");
    }
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            /* pixel centre in source coordinates, clamped at the edges */
            double sx = (x + 0.5) / scale - 0.5, sy = (y + 0.5) / scale - 0.5;
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            double ax = sx - x0, ay = sy - y0, v = 0;
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < 2; i++) {
                    int xx = x0 + i, yy = y0 + j;
                    xx = xx < 0 ? 0 : xx > 27 ? 27 : xx;
                    yy = yy < 0 ? 0 : yy > 27 ? 27 : yy;
                    v += (i ? ax : 1 - ax) * (j ? ay : 1 - ay) *
                         src[yy * 28 + xx];
                }
            px[(size_t)y * side + x] = (uint8_t)(255 - lrint(v));
        }
    const char *out = argv[4];
    size_t len = strlen(out);
    int ok = len > 4 && !strcmp(out + len - 4, ".jpg")
                 ? stbi_write_jpg(out, side, side, 1, px, 90)
                 : stbi_write_png(out, side, side, 1, px, side);
    printf("%d\n", d.labels[index]);
    free(px);
    nn_dataset_free(&d);
    return ok ? 0 : fail(out, "cannot write");
}
