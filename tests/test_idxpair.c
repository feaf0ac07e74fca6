/*
 * test_idxpair.c - nn_idx_load_pair reads both headers before any payload
 * (issue 10: a gzip file must not be inflated for nothing): a pair whose
 * counts, ranks or sample size do not fit together is refused from the
 * headers alone, even when the payload would take long to inflate or is
 * not there at all. nn_idx_open_pair leaves the images in their file and
 * reads them by offset: the same samples, predictions and checks as a
 * loaded pair, a clear error for a file cut short after it was opened,
 * and gzip loaded as before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "nn.h"
#include "util/tmpdir.h"

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX header of rank 3 (n, h, w) or 1 (n), gzip-compressed, with
 * `payload` bytes of zeros after it. */
static void write_gz(const char *name, int rank, uint32_t n, uint32_t h,
                     uint32_t w, size_t payload)
{
    unsigned char hd[16] = {0, 0, 8, (unsigned char)rank};
    be32(hd + 4, n);
    be32(hd + 8, h);
    be32(hd + 12, w);
    gzFile g = gzopen(tu_path(name), "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, hd, (unsigned)(4 + 4 * rank)), 4 + 4 * rank);
    static const unsigned char zero[4096];
    while (payload) {
        unsigned k = payload < sizeof zero ? (unsigned)payload : sizeof zero;
        assert_int_equal(gzwrite(g, zero, k), (int)k);
        payload -= k;
    }
    assert_int_equal(gzclose(g), Z_OK);
}

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir_make("idxpair") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_tmpdir_remove();
    return 0;
}

static void test_counts_before_payload(void **state)
{
    (void)state;
    nn_error err;
    nn_dataset d;
    /* 65,536 images of 256x256 promised (4 GiB, the limit), none there;
     * the labels say 50: the mismatch is the answer, not "truncated" */
    write_gz("big.gz", 3, 65536, 256, 256, 0);
    write_gz("lab.gz", 1, 50, 0, 0, 50);
    assert_int_equal(nn_idx_load_pair(tu_path("big.gz"), tu_path("lab.gz"), 0,
                                      &d, &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "65536 images but 50 labels"));
    assert_null(d.x_u8);
}

static void test_sample_size_before_payload(void **state)
{
    (void)state;
    nn_error err;
    nn_dataset d;
    /* one sample of 8192 x 4096 = 32 Mi values: past the sample limit
     * (16 Mi) although the file (32 MiB) is within its own */
    write_gz("wide.gz", 3, 1, 8192, 4096, 0);
    write_gz("lab1.gz", 1, 1, 0, 0, 1);
    assert_int_equal(nn_idx_load_pair(tu_path("wide.gz"), tu_path("lab1.gz"),
                                      0, &d, &err), NN_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "exceed the limit"));
}

static void test_valid_pair_still_loads(void **state)
{
    (void)state;
    nn_error err;
    nn_dataset d;
    write_gz("im.gz", 3, 5, 4, 3, 5 * 4 * 3);
    write_gz("lb.gz", 1, 5, 0, 0, 5);
    assert_int_equal(nn_idx_load_pair(tu_path("im.gz"), tu_path("lb.gz"), 0,
                                      &d, &err), NN_OK);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.shape.dim[0], 4);
    assert_int_equal(d.shape.dim[1], 3);
    assert_int_equal(d.num_classes, 1);
    nn_dataset_free(&d);
    /* a truncated images payload is still found after the headers agree */
    write_gz("short.gz", 3, 5, 4, 3, 7);
    assert_int_equal(nn_idx_load_pair(tu_path("short.gz"), tu_path("lb.gz"),
                                      0, &d, &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
}

enum { PN = 7, PH = 3, PW = 4 };

/* A raw pair of PN images (PH x PW, every byte different) and labels. */
static void write_raw_pair(void)
{
    uint8_t im[PN * PH * PW], lb[PN];
    for (int i = 0; i < PN * PH * PW; i++)
        im[i] = (uint8_t)(i * 3 + 1);
    for (int i = 0; i < PN; i++)
        lb[i] = (uint8_t)(i % 3);
    nn_error err;
    uint32_t di[3] = {PN, PH, PW}, dl[1] = {PN};
    assert_int_equal(nn_idx_save(tu_path("im.idx"), 3, di, im, &err), NN_OK);
    assert_int_equal(nn_idx_save(tu_path("lb.idx"), 1, dl, lb, &err), NN_OK);
}

static nn_model *small_model(void)
{
    nn_error err;
    nn_model *m = nn_model_from_spec("dense(5,relu) dense(3,softmax)",
                                     nn_shape3(PH, PW, 1), 3, NULL, &err);
    assert_non_null(m);
    nn_rng r;
    nn_rng_seed(&r, 1);
    assert_int_equal(nn_model_init(m, &r, &err), NN_OK);
    return m;
}

static void test_open_reads_by_offset(void **state)
{
    (void)state;
    write_raw_pair();
    nn_error err;
    nn_dataset ld, od;
    assert_int_equal(nn_idx_load_pair(tu_path("im.idx"), tu_path("lb.idx"),
                                      0, &ld, &err), NN_OK);
    assert_int_equal(nn_idx_open_pair(tu_path("im.idx"), tu_path("lb.idx"),
                                      0, &od, &err), NN_OK);
    assert_null(od.x_u8);
    assert_non_null(od.source.read);
    assert_int_equal(od.n, PN);
    assert_memory_equal(&od.shape, &ld.shape, sizeof od.shape);
    assert_memory_equal(od.labels, ld.labels, PN);
    assert_int_equal(od.num_classes, 3);
    assert_true(od.scale == ld.scale);
    uint8_t rows[3 * PH * PW];
    assert_int_equal(od.source.read(od.source.ctx, 2, 3, rows, &err), NN_OK);
    assert_memory_equal(rows, ld.x_u8 + 2 * PH * PW, sizeof rows);
    /* past the end: an error naming the file, not a read */
    assert_int_equal(od.source.read(od.source.ctx, PN - 1, 2, rows, &err),
                     NN_ERR_ARG);
    assert_non_null(strstr(err.msg, "im.idx"));
    /* predictions over the whole set and over a slice, as from memory */
    nn_model *m = small_model();
    float yl[PN * 3], yo[PN * 3];
    assert_int_equal(nn_model_predict_dataset(m, &ld, yl, &err), NN_OK);
    assert_int_equal(nn_model_predict_dataset(m, &od, yo, &err), NN_OK);
    assert_memory_equal(yl, yo, sizeof yl);
    nn_dataset ls = nn_dataset_slice(&ld, 3, 4), os = nn_dataset_slice(&od, 3, 4);
    assert_null(os.source.close);   /* a view closes nothing */
    assert_int_equal(nn_model_predict_dataset(m, &ls, yl, &err), NN_OK);
    assert_int_equal(nn_model_predict_dataset(m, &os, yo, &err), NN_OK);
    assert_memory_equal(yl, yo, sizeof(float) * 4 * 3);
    nn_model_free(m);
    nn_dataset_free(&ld);
    nn_dataset_free(&od);
    assert_null(od.source.read);
}

/* The file cut short while open: the read that finds it says so. */
static void test_open_file_cut_short(void **state)
{
    (void)state;
    write_raw_pair();
    nn_error err;
    nn_dataset od;
    assert_int_equal(nn_idx_open_pair(tu_path("im.idx"), tu_path("lb.idx"),
                                      0, &od, &err), NN_OK);
    assert_int_equal(truncate(tu_path("im.idx"), 16 + 2 * PH * PW), 0);
    nn_model *m = small_model();
    float y[PN * 3];
    assert_int_equal(nn_model_predict_dataset(m, &od, y, &err),
                     NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "im.idx"));
    assert_non_null(strstr(err.msg, "cut short"));
    nn_model_free(m);
    nn_dataset_free(&od);
}

/* The checks of a loaded pair; gzip is loaded, not read by offset. */
static void test_open_checks_and_gzip(void **state)
{
    (void)state;
    nn_error err;
    nn_dataset d;
    write_raw_pair();
    uint8_t bad[PN] = {0, 1, 2, 3, 200, 0, 1};
    uint32_t dl[1] = {PN}, dm[1] = {PN - 1};
    assert_int_equal(nn_idx_save(tu_path("bad.idx"), 1, dl, bad, &err), NN_OK);
    assert_int_equal(nn_idx_open_pair(tu_path("im.idx"), tu_path("bad.idx"),
                                      10, &d, &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "label 200 of item 4"));
    assert_null(d.source.read);
    assert_int_equal(nn_idx_save(tu_path("few.idx"), 1, dm, bad, &err), NN_OK);
    assert_int_equal(nn_idx_open_pair(tu_path("im.idx"), tu_path("few.idx"),
                                      0, &d, &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "7 images but 6 labels"));
    assert_int_equal(nn_idx_open_pair(tu_path("im.idx"), tu_path("lb.idx"),
                                      -1, &d, &err), NN_ERR_ARG);
    assert_non_null(strstr(err.msg, "negative"));
    assert_int_equal(nn_idx_open_pair(tu_path("none.idx"), tu_path("lb.idx"),
                                      0, &d, &err), NN_ERR_IO);
    assert_non_null(strstr(err.msg, "none.idx"));
    write_gz("im.gz", 3, 5, 4, 3, 5 * 4 * 3);
    write_gz("lb.gz", 1, 5, 0, 0, 5);
    assert_int_equal(nn_idx_open_pair(tu_path("im.gz"), tu_path("lb.gz"), 0,
                                      &d, &err), NN_OK);
    assert_non_null(d.x_u8);
    assert_null(d.source.read);
    assert_int_equal(d.n, 5);
    nn_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_before_payload),
        cmocka_unit_test(test_sample_size_before_payload),
        cmocka_unit_test(test_valid_pair_still_loads),
        cmocka_unit_test(test_open_reads_by_offset),
        cmocka_unit_test(test_open_file_cut_short),
        cmocka_unit_test(test_open_checks_and_gzip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
