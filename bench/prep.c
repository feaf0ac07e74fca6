/*
 * prep.c - the cost of reading and preparing a picture (image.c and
 * preprocess.c), and their exact output, for speed work on them.
 *
 * usage: prep [--dump] [--repeat N] FILE...
 * Reads every FILE once into memory, then N times (default 1) decodes
 * each (nn_image_load_mem) and prepares it (nn_preprocess_digit), and
 * prints decode_us= and preprocess_us= per picture (CPU time of this
 * process, so a busy machine disturbs it less than wall time). --dump
 * prints, per file, the nn_preprocess_info fields and the 784 output
 * bytes in hex, so that two builds can be compared byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn.h"

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    fclose(f);
    *n = len;
    return b;
}

int main(int argc, char **argv)
{
    bool dump = false;
    long repeat = 1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--dump"))
            dump = true;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: prep [--dump] [--repeat N] FILE...\n");
            return 2;
        }
    }
    int nf = argc - i;
    if (nf < 1 || repeat < 1) {
        fprintf(stderr, "usage: prep [--dump] [--repeat N] FILE...\n");
        return 2;
    }
    void **buf = calloc((size_t)nf, sizeof *buf);
    size_t *len = calloc((size_t)nf, sizeof *len);
    if (!buf || !len)
        return 1;
    for (int k = 0; k < nf; k++)
        if (!(buf[k] = slurp(argv[i + k], &len[k]))) {
            fprintf(stderr, "prep: cannot read %s\n", argv[i + k]);
            return 1;
        }
    double t_dec = 0, t_pre = 0;
    long count = 0;
    int rc = 0;
    for (long r = 0; r < repeat; r++)
        for (int k = 0; k < nf; k++) {
            nn_image img;
            nn_error err;
            uint8_t out[NN_DIGIT_SIDE * NN_DIGIT_SIDE];
            nn_preprocess_info inf;
            double t0 = cpu();
            if (nn_image_load_mem(buf[k], len[k], argv[i + k], &img, &err) !=
                NN_OK) {
                if (dump && r == 0)
                    printf("%s: error %s\n", argv[i + k], err.msg);
                rc = 1;
                continue;
            }
            double t1 = cpu();
            nn_status st = nn_preprocess_digit(&img, NULL, out, &inf, &err);
            double t2 = cpu();
            t_dec += t1 - t0;
            t_pre += t2 - t1;
            count++;
            if (dump && r == 0) {
                printf("%s: %dx%d st=%d found=%d inv=%d bg=%d box=%d,%d,%d,%d "
                       "c=%.4f,%.4f parts=%d holes=%d fill=%.4f sol=%.4f "
                       "el=%.4f tilt=%.4f\n", argv[i + k], img.w, img.h,
                       (int)st, inf.found, inf.inverted, inf.background,
                       inf.box_x, inf.box_y, inf.box_w, inf.box_h, inf.cx,
                       inf.cy, inf.parts, inf.holes, inf.fill, inf.solidity,
                       inf.elongation, inf.tilt);
                for (int p = 0; p < NN_DIGIT_SIDE * NN_DIGIT_SIDE; p++)
                    printf("%02x%s", out[p], p % 28 == 27 ? "\n" : "");
            }
            nn_image_free(&img);
        }
    if (count)
        printf("pictures=%ld decode_us=%.1f preprocess_us=%.1f\n", count,
               1e6 * t_dec / count, 1e6 * t_pre / count);
    for (int k = 0; k < nf; k++)
        free(buf[k]);
    free(buf);
    free(len);
    return rc;
}
