/*
 * test_idx.c - the IDX reader on generated good and broken files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "nn.h"

static char dir[64];

static const char *path_of(const char *name)
{
    static char p[4][128];   /* several may be live in one call */
    static int next;
    char *o = p[next++ % 4];
    snprintf(o, sizeof p[0], "%s/%s", dir, name);
    return o;
}

static void write_raw(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(path_of(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *name, const void *data, size_t n)
{
    gzFile g = gzopen(path_of(name), "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    gzclose(g);
}

/* An IDX header for rank dims, then n payload bytes 0,1,2,... into buf. */
static size_t make_idx(unsigned char *buf, int type, int rank,
                       const uint32_t *dims, size_t payload)
{
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        buf[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        buf[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        buf[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        buf[7 + 4 * i] = (unsigned char)dims[i];
    }
    size_t h = 4 + 4 * (size_t)rank;
    for (size_t i = 0; i < payload; i++)
        buf[h + i] = (unsigned char)(i % 251);
    return h + payload;
}

/* Loads name and expects failure with code, the path and `word` in the
 * message. */
static void expect_fail(const char *name, nn_status code, const char *word)
{
    nn_idx x;
    nn_error err;
    nn_status s = nn_idx_load(path_of(name), &x, &err);
    assert_int_equal(s, code);
    assert_null(x.data);
    assert_non_null(strstr(err.msg, name));
    if (word && !strstr(err.msg, word))
        fail_msg("message '%s' lacks '%s'", err.msg, word);
}

static unsigned char buf[4096];

static void test_good_raw_and_gz(void **state)
{
    (void)state;
    uint32_t dims[3] = {3, 4, 5};
    size_t n = make_idx(buf, 8, 3, dims, 60);
    write_raw("good", buf, n);
    write_gz("good.gz", buf, n);
    const char *names[] = {"good", "good.gz"};
    for (int k = 0; k < 2; k++) {
        nn_idx x;
        nn_error err;
        assert_int_equal(nn_idx_load(path_of(names[k]), &x, &err), NN_OK);
        assert_int_equal(x.rank, 3);
        assert_int_equal(x.dim[0], 3);
        assert_int_equal(x.dim[2], 5);
        assert_memory_equal(x.data, buf + 16, 60);
        nn_idx_free(&x);
    }
}

static void test_save_round_trip(void **state)
{
    (void)state;
    uint32_t dims[2] = {7, 3};
    uint8_t data[21];
    for (int i = 0; i < 21; i++)
        data[i] = (uint8_t)(i * 11);
    nn_error err;
    assert_int_equal(nn_idx_save(path_of("saved"), 2, dims, data, &err),
                     NN_OK);
    nn_idx x;
    assert_int_equal(nn_idx_load(path_of("saved"), &x, &err), NN_OK);
    assert_int_equal(x.rank, 2);
    assert_int_equal(x.dim[0], 7);
    assert_memory_equal(x.data, data, 21);
    nn_idx_free(&x);
}

static void test_broken_headers(void **state)
{
    (void)state;
    uint32_t dims[4] = {2, 2, 2, 2};
    size_t n = make_idx(buf, 8, 1, dims, 2);
    buf[0] = 7;
    write_raw("magic", buf, n);
    expect_fail("magic", NN_ERR_FORMAT, "magic");

    n = make_idx(buf, 0x0D, 1, dims, 2);   /* float elements */
    write_raw("type", buf, n);
    expect_fail("type", NN_ERR_FORMAT, "type");

    n = make_idx(buf, 8, 0, dims, 0);
    write_raw("rank0", buf, n);
    expect_fail("rank0", NN_ERR_FORMAT, "rank");

    n = make_idx(buf, 8, 4, dims, 16);
    buf[3] = 5;
    write_raw("rank5", buf, n);
    expect_fail("rank5", NN_ERR_FORMAT, "rank");

    uint32_t zero[2] = {0, 3};
    n = make_idx(buf, 8, 2, zero, 0);
    write_raw("dim0", buf, n);
    expect_fail("dim0", NN_ERR_LIMIT, "dimension");

    write_raw("empty", buf, 0);
    expect_fail("empty", NN_ERR_FORMAT, "short");

    n = make_idx(buf, 8, 3, dims, 0);
    write_raw("shorthdr", buf, 9);
    expect_fail("shorthdr", NN_ERR_FORMAT, "truncated");
}

static void test_absurd_dimensions_fail_fast(void **state)
{
    (void)state;
    /* 65536^3 = 256 TiB promised: refused before any allocation. */
    uint32_t huge[3] = {65536, 65536, 65536};
    size_t n = make_idx(buf, 8, 3, huge, 10);
    write_raw("huge", buf, n);
    expect_fail("huge", NN_ERR_LIMIT, "limit");
    write_gz("huge.gz", buf, n);
    expect_fail("huge.gz", NN_ERR_LIMIT, "limit");
    uint32_t over[3] = {0xffffffffu, 1, 1};
    n = make_idx(buf, 8, 3, over, 0);
    write_raw("over", buf, n);
    expect_fail("over", NN_ERR_LIMIT, NULL);
    /* Within limits but far longer than the gzip stream: fails on the
     * data actually present, after allocating at most one chunk. */
    uint32_t big[1] = {60000};
    n = make_idx(buf, 8, 1, big, 100);
    write_gz("promise.gz", buf, n);
    expect_fail("promise.gz", NN_ERR_FORMAT, "truncated");
}

static void test_truncated_and_trailing(void **state)
{
    (void)state;
    uint32_t dims[2] = {10, 10};
    size_t n = make_idx(buf, 8, 2, dims, 100);
    write_raw("trunc", buf, n - 1);
    expect_fail("trunc", NN_ERR_FORMAT, "truncated");
    buf[n] = 1;
    write_raw("trail", buf, n + 1);
    expect_fail("trail", NN_ERR_FORMAT, "trailing");
    write_gz("trail.gz", buf, n + 1);
    expect_fail("trail.gz", NN_ERR_FORMAT, "trailing");
    write_gz("short.gz", buf, n - 5);
    expect_fail("short.gz", NN_ERR_FORMAT, "truncated");
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    uint32_t dims[1] = {1000};
    static unsigned char raw[1100];
    size_t n = make_idx(raw, 8, 1, dims, 1000);
    write_gz("c.gz", raw, n);
    FILE *f = fopen(path_of("c.gz"), "rb");
    assert_non_null(f);
    size_t gn = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(gn > 40);
    /* flip bytes in the deflate stream */
    for (size_t i = 20; i < 30; i++)
        buf[i] ^= 0x5a;
    write_raw("c.gz", buf, gn);
    expect_fail("c.gz", NN_ERR_FORMAT, NULL);
    /* cut the stream short */
    write_raw("cut.gz", buf, 15);
    expect_fail("cut.gz", NN_ERR_FORMAT, NULL);
}

static void test_missing_and_directory(void **state)
{
    (void)state;
    expect_fail("nothing-here", NN_ERR_IO, "No such file");
    assert_int_equal(mkdir(path_of("adir"), 0755), 0);
    expect_fail("adir", NN_ERR_IO, "directory");
}

static void test_pair(void **state)
{
    (void)state;
    uint32_t idims[3] = {4, 2, 3}, ldims[1] = {4};
    size_t n = make_idx(buf, 8, 3, idims, 24);
    write_raw("img", buf, n);
    unsigned char lab[12] = {0, 0, 8, 1, 0, 0, 0, 4, 2, 0, 7, 1};
    write_raw("lab", lab, 12);
    nn_dataset d;
    nn_error err;
    assert_int_equal(nn_idx_load_pair(path_of("img"), path_of("lab"), 10, &d,
                                      &err), NN_OK);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.shape.dim[0], 2);
    assert_int_equal(d.shape.dim[1], 3);
    assert_int_equal(d.shape.dim[2], 1);
    assert_int_equal(d.num_classes, 8);
    assert_int_equal(d.labels[3], 1);
    assert_true(d.scale > 0.0039f && d.scale < 0.0040f);
    nn_dataset s = nn_dataset_slice(&d, 1, 2);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.labels[0], 0);
    assert_int_equal(s.labels[1], 7);
    assert_ptr_equal(s.x_u8, d.x_u8 + 6);
    assert_null(s.owned_);
    nn_dataset_free(&d);
    assert_null(d.x_u8);

    /* label out of range */
    assert_int_equal(nn_idx_load_pair(path_of("img"), path_of("lab"), 5, &d,
                                      &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "out of range"));
    /* count mismatch */
    ldims[0] = 3;
    n = make_idx(buf, 8, 1, ldims, 3);
    write_raw("lab3", buf, n);
    assert_int_equal(nn_idx_load_pair(path_of("img"), path_of("lab3"), 0, &d,
                                      &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "4 images but 3 labels"));
    /* rank mismatch: labels file as images */
    assert_int_equal(nn_idx_load_pair(path_of("lab"), path_of("lab"), 0, &d,
                                      &err), NN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "rank"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_idx.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_raw_and_gz),
        cmocka_unit_test(test_save_round_trip),
        cmocka_unit_test(test_broken_headers),
        cmocka_unit_test(test_absurd_dimensions_fail_fast),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_corrupt_gzip),
        cmocka_unit_test(test_missing_and_directory),
        cmocka_unit_test(test_pair),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}
