/*
 * test_idxpair.c - nn_idx_load_pair reads both headers before any payload
 * (issue 10: a gzip file must not be inflated for nothing): a pair whose
 * counts, ranks or sample size do not fit together is refused from the
 * headers alone, even when the payload would take long to inflate or is
 * not there at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_before_payload),
        cmocka_unit_test(test_sample_size_before_payload),
        cmocka_unit_test(test_valid_pair_still_loads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
