/*
 * test_augment.c - random affine augmentation (src/nn/augment.c): the
 * single-image transform against hand-made expectations (integer shifts,
 * quarter turns, 2x scale about the centre), and the batch function's
 * contract (off is a no-op, shape and range kept, reproducible by seed,
 * independent of the thread count, scratch size respected, flat inputs
 * left alone, parameter checks).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "nn/augment.h"
#include "util/gradcheck.h"

/* ------------------------------------------------------------ helpers */

static void expect_floats(const float *got, const float *want, size_t n,
                          float tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("[%zu]: got %.7g, want %.7g", i, got[i], want[i]);
}

#define CANARY 12345.0f

/* A batch buffer of B images of `shape` plus `extra` canary floats after
 * it, filled uniform in [lo, hi) from seed. */
static float *new_batch(nn_shape shape, int B, size_t extra, float lo,
                        float hi, uint64_t seed)
{
    size_t n = nn_shape_size(shape) * (size_t)B;
    float *x = malloc(sizeof(float) * (n + extra));
    assert_non_null(x);
    fill_uniform(x, n, lo, hi, seed);
    for (size_t i = 0; i < extra; i++)
        x[n + i] = CANARY;
    return x;
}

static float *new_scratch(nn_shape shape, int B, size_t extra)
{
    size_t n = nn_augment_scratch_floats(shape, B);
    float *s = malloc(sizeof(float) * (n + extra + 1));
    assert_non_null(s);
    for (size_t i = 0; i < n + extra; i++)
        s[i] = CANARY;
    return s;
}

/* ----------------------------------------------------- one image */

static void test_one_identity(void **state)
{
    (void)state;
    enum { H = 5, W = 7, C = 3, N = H * W * C };
    float src[N], dst[N];
    fill_uniform(src, N, -1.0f, 1.0f, 1);
    nn_augment_one(src, dst, H, W, C, 0.0f, 0.0f, 0.0f, 1.0f);
    assert_memory_equal(src, dst, sizeof src);
}

static void test_one_integer_shift(void **state)
{
    (void)state;
    enum { H = 5, W = 6, C = 3, N = H * W * C };
    static const int shifts[][2] = {{2, -1}, {-3, 4}, {0, 1}, {5, 0},
                                    {-5, -4}};
    for (size_t t = 0; t < sizeof shifts / sizeof shifts[0]; t++) {
        int dx = shifts[t][0], dy = shifts[t][1];
        const int r = 2, c = 2;   /* the bright pixel, all channels */
        float src[N] = {0}, dst[N], want[N] = {0};
        for (int k = 0; k < C; k++)
            src[(r * W + c) * C + k] = 1.0f + (float)k;
        int r2 = r + dy, c2 = c + dx;
        if (r2 >= 0 && r2 < H && c2 >= 0 && c2 < W)
            for (int k = 0; k < C; k++)
                want[(r2 * W + c2) * C + k] = 1.0f + (float)k;
        nn_augment_one(src, dst, H, W, C, (float)dx, (float)dy, 0.0f, 1.0f);
        assert_memory_equal(dst, want, sizeof want);
    }
    /* shifted right by 2: the left two columns are new, hence 0, and the
     * rest is the input moved exactly */
    float src[N], dst[N];
    fill_uniform(src, N, 0.5f, 1.0f, 2);
    nn_augment_one(src, dst, H, W, C, 2.0f, 0.0f, 0.0f, 1.0f);
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++)
            for (int k = 0; k < C; k++)
                assert_true(dst[(i * W + j) * C + k] ==
                            (j < 2 ? 0.0f : src[(i * W + j - 2) * C + k]));
    /* a shift of the whole width leaves nothing */
    nn_augment_one(src, dst, H, W, C, (float)W, 0.0f, 0.0f, 1.0f);
    for (int i = 0; i < N; i++)
        assert_true(dst[i] == 0.0f);
}

static void test_one_half_pixel_shift(void **state)
{
    (void)state;
    /* 1 x 4, shift right by 0.5: each output is the mean of its two
     * neighbours, the first one's left neighbour being 0 */
    const float src[4] = {2, 4, 8, 16};
    const float want[4] = {1, 3, 6, 12};
    float dst[4];
    nn_augment_one(src, dst, 1, 4, 1, 0.5f, 0.0f, 0.0f, 1.0f);
    expect_floats(dst, want, 4, 0.0f);
}

static void test_one_rotate_90(void **state)
{
    (void)state;
    /* 3 x 3 by hand: a quarter turn anticlockwise as seen on screen */
    const float src3[9] = {1, 2, 3,
                           4, 5, 6,
                           7, 8, 9};
    const float ccw3[9] = {3, 6, 9,
                           2, 5, 8,
                           1, 4, 7};
    const float cw3[9] = {7, 4, 1,
                          8, 5, 2,
                          9, 6, 3};
    float dst[9];
    nn_augment_one(src3, dst, 3, 3, 1, 0.0f, 0.0f, 90.0f, 1.0f);
    expect_floats(dst, ccw3, 9, 1e-6f);
    nn_augment_one(src3, dst, 3, 3, 1, 0.0f, 0.0f, -90.0f, 1.0f);
    expect_floats(dst, cw3, 9, 1e-6f);

    /* 4 x 4 x 2 (centre between pixels): out[i][j] = in[j][3 - i] */
    enum { S = 4, C = 2 };
    float src[S * S * C], out[S * S * C], want[S * S * C];
    for (int i = 0; i < S * S * C; i++)
        src[i] = (float)(i + 1);
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            for (int k = 0; k < C; k++)
                want[(i * S + j) * C + k] = src[(j * S + (S - 1 - i)) * C + k];
    nn_augment_one(src, out, S, S, C, 0.0f, 0.0f, 90.0f, 1.0f);
    expect_floats(out, want, S * S * C, 1e-5f);

    /* a half turn, then 180 degrees back the other way: the input again */
    float half[S * S * C], back[S * S * C];
    nn_augment_one(src, half, S, S, C, 0.0f, 0.0f, 180.0f, 1.0f);
    for (int i = 0; i < S * S; i++)
        for (int k = 0; k < C; k++)
            assert_true(fabsf(half[i * C + k] -
                              src[(S * S - 1 - i) * C + k]) <= 1e-5f);
    nn_augment_one(half, back, S, S, C, 0.0f, 0.0f, -180.0f, 1.0f);
    expect_floats(back, src, S * S * C, 1e-5f);
}

static void test_one_scale_2(void **state)
{
    (void)state;
    /* 5 x 5, one pixel right of the centre (2, 2); scaled by 2 about the
     * centre it moves to (2, 4) and spreads bilinearly over rows 1..3,
     * columns 3..4 (worked by hand from the inverse map (p' - c)/2 + c) */
    float src[25] = {0}, dst[25];
    src[2 * 5 + 3] = 1.0f;
    const float want[25] = {0, 0, 0, 0,     0,
                            0, 0, 0, 0.25f, 0.5f,
                            0, 0, 0, 0.5f,  1.0f,
                            0, 0, 0, 0.25f, 0.5f,
                            0, 0, 0, 0,     0};
    nn_augment_one(src, dst, 5, 5, 1, 0.0f, 0.0f, 0.0f, 2.0f);
    expect_floats(dst, want, 25, 0.0f);

    /* the centre pixel stays; a constant image stays constant when
     * enlarged, and shrinking by 2 leaves a zero border */
    float ones[25], out[25];
    for (int i = 0; i < 25; i++)
        ones[i] = 1.0f;
    nn_augment_one(ones, out, 5, 5, 1, 0.0f, 0.0f, 0.0f, 2.0f);
    expect_floats(out, ones, 25, 0.0f);
    nn_augment_one(ones, out, 5, 5, 1, 0.0f, 0.0f, 0.0f, 0.5f);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            float w = (i == 0 || i == 4 || j == 0 || j == 4) ? 0.0f : 1.0f;
            assert_true(out[i * 5 + j] == w);
        }
    memset(src, 0, sizeof src);
    src[12] = 3.0f;
    nn_augment_one(src, dst, 5, 5, 1, 0.0f, 0.0f, 0.0f, 2.0f);
    assert_true(dst[12] == 3.0f);
}

static void test_one_bad_parameters_give_zeros(void **state)
{
    (void)state;
    float src[12], dst[12];
    fill_uniform(src, 12, 0.5f, 1.0f, 3);
    const float bad[][4] = {{0, 0, 0, 0.0f}, {0, 0, 0, -1.0f},
                            {NAN, 0, 0, 1.0f}, {0, INFINITY, 0, 1.0f},
                            {0, 0, NAN, 1.0f}, {1e30f, 0, 0, 1.0f}};
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        nn_augment_one(src, dst, 2, 3, 2, bad[t][0], bad[t][1], bad[t][2],
                       bad[t][3]);
        for (int i = 0; i < 12; i++)
            assert_true(dst[i] == 0.0f);
    }
}

/* ------------------------------------------------------------ batch */

static void test_batch_off_is_identity(void **state)
{
    (void)state;
    nn_shape sh = nn_shape3(6, 5, 2);
    enum { B = 3 };
    size_t n = nn_shape_size(sh) * B;
    float *x = new_batch(sh, B, 0, -1.0f, 1.0f, 4);
    float *ref = new_batch(sh, B, 0, -1.0f, 1.0f, 4);
    float *scr = new_scratch(sh, B, 0);
    nn_augment off = {0};
    nn_rng r, r0;
    nn_rng_seed(&r, 7);
    r0 = r;
    assert_false(nn_augment_enabled(&off));
    assert_false(nn_augment_enabled(NULL));
    nn_augment_batch(x, B, sh, &off, &r, scr);
    assert_memory_equal(x, ref, sizeof(float) * n);
    assert_memory_equal(&r, &r0, sizeof r);   /* no draws */
    nn_augment_batch(x, B, sh, NULL, &r, scr);
    assert_memory_equal(x, ref, sizeof(float) * n);
    free(x), free(ref), free(scr);
}

static void test_batch_flat_and_invalid_do_nothing(void **state)
{
    (void)state;
    nn_augment p = {2.0f, 10.0f, 0.1f};
    nn_rng r, r0;
    nn_rng_seed(&r, 8);
    r0 = r;
    /* rank 1: no image, no scratch, nothing done */
    nn_shape flat = nn_shape1(20);
    assert_int_equal(nn_augment_scratch_floats(flat, 4), 0);
    float v[80], ref[80];
    fill_uniform(v, 80, -1.0f, 1.0f, 9);
    memcpy(ref, v, sizeof v);
    nn_augment_batch(v, 4, flat, &p, &r, NULL);
    assert_memory_equal(v, ref, sizeof v);
    assert_memory_equal(&r, &r0, sizeof r);
    /* parameters nn_augment_check rejects: nothing either */
    nn_shape sh = nn_shape3(4, 5, 1);
    float *scr = new_scratch(sh, 4, 0);
    nn_augment bad = {2.0f, 10.0f, 1.0f};
    nn_augment_batch(v, 4, sh, &bad, &r, scr);
    assert_memory_equal(v, ref, sizeof v);
    assert_memory_equal(&r, &r0, sizeof r);
    /* B = 0 */
    assert_int_equal(nn_augment_scratch_floats(sh, 0), 0);
    nn_augment_batch(v, 0, sh, &p, &r, NULL);
    assert_memory_equal(&r, &r0, sizeof r);
    free(scr);
}

static void test_batch_shape_range_and_scratch(void **state)
{
    (void)state;
    nn_shape sh = nn_shape3(12, 10, 3);
    enum { B = 9, EXTRA = 16 };
    size_t n = nn_shape_size(sh) * B;
    assert_int_equal(nn_augment_scratch_floats(sh, B),
                     (size_t)B * (nn_shape_size(sh) + 4));
    float *x = new_batch(sh, B, EXTRA, -0.3f, 0.9f, 10);
    float *ref = new_batch(sh, B, EXTRA, -0.3f, 0.9f, 10);
    float *scr = new_scratch(sh, B, EXTRA);
    size_t ns = nn_augment_scratch_floats(sh, B);
    float lo = ref[0], hi = ref[0];
    for (size_t i = 0; i < n; i++)
        lo = fminf(lo, ref[i]), hi = fmaxf(hi, ref[i]);
    nn_augment p = {3.0f, 30.0f, 0.2f};
    nn_rng r, r0;
    nn_rng_seed(&r, 11);
    r0 = r;
    nn_augment_batch(x, B, sh, &p, &r, scr);
    /* bilinear with zero padding: within [min(0, lo), max(0, hi)], here
     * the input's own range since it straddles 0 */
    lo = fminf(lo, 0.0f), hi = fmaxf(hi, 0.0f);
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(x[i] >= lo && x[i] <= hi);
        changed += x[i] != ref[i];
    }
    assert_true(changed > n / 2);
    /* each image changed; nothing written past the batch or the scratch */
    for (int b = 0; b < B; b++)
        assert_true(memcmp(x + b * nn_shape_size(sh),
                           ref + b * nn_shape_size(sh),
                           sizeof(float) * nn_shape_size(sh)) != 0);
    for (size_t i = 0; i < EXTRA; i++) {
        assert_true(x[n + i] == CANARY);
        assert_true(scr[ns + i] == CANARY);
    }
    /* exactly four draws per image */
    for (int i = 0; i < 4 * B; i++)
        nn_rng_u32(&r0);
    assert_memory_equal(&r, &r0, sizeof r);
    free(x), free(ref), free(scr);
}

static void test_batch_matches_one_with_drawn_parameters(void **state)
{
    (void)state;
    nn_shape sh = nn_shape3(8, 9, 2);
    enum { B = 4 };
    size_t s = nn_shape_size(sh);
    float *x = new_batch(sh, B, 0, 0.0f, 1.0f, 12);
    float *ref = new_batch(sh, B, 0, 0.0f, 1.0f, 12);
    float *scr = new_scratch(sh, B, 0);
    nn_augment p = {2.0f, 15.0f, 0.1f};
    nn_rng r, q;
    nn_rng_seed(&r, 13);
    q = r;
    nn_augment_batch(x, B, sh, &p, &r, scr);
    float *want = malloc(sizeof(float) * s);
    for (int b = 0; b < B; b++) {
        float dx = p.shift * (2.0f * nn_rng_uniform(&q) - 1.0f);
        float dy = p.shift * (2.0f * nn_rng_uniform(&q) - 1.0f);
        float an = p.rotate * (2.0f * nn_rng_uniform(&q) - 1.0f);
        float sc = 1.0f + p.scale * (2.0f * nn_rng_uniform(&q) - 1.0f);
        assert_true(fabsf(dx) <= p.shift && fabsf(dy) <= p.shift);
        assert_true(fabsf(an) <= p.rotate);
        assert_true(sc >= 0.9f && sc <= 1.1f);
        nn_augment_one(ref + b * s, want, 8, 9, 2, dx, dy, an, sc);
        assert_memory_equal(x + b * s, want, sizeof(float) * s);
    }
    free(x), free(ref), free(scr), free(want);
}

static void test_batch_seeded(void **state)
{
    (void)state;
    nn_shape sh = nn_shape3(10, 10, 1);
    enum { B = 5 };
    size_t n = nn_shape_size(sh) * B;
    float *a = new_batch(sh, B, 0, 0.0f, 1.0f, 14);
    float *b = new_batch(sh, B, 0, 0.0f, 1.0f, 14);
    float *c = new_batch(sh, B, 0, 0.0f, 1.0f, 14);
    float *scr = new_scratch(sh, B, 0);
    nn_augment p = {2.0f, 20.0f, 0.1f};
    nn_rng r;
    nn_rng_seed(&r, 100);
    nn_augment_batch(a, B, sh, &p, &r, scr);
    nn_rng_seed(&r, 100);
    nn_augment_batch(b, B, sh, &p, &r, scr);
    nn_rng_seed(&r, 101);
    nn_augment_batch(c, B, sh, &p, &r, scr);
    assert_memory_equal(a, b, sizeof(float) * n);
    assert_true(memcmp(a, c, sizeof(float) * n) != 0);
    free(a), free(b), free(c), free(scr);
}

static void test_batch_independent_of_threads(void **state)
{
    (void)state;
    /* 64 MNIST-sized images: above the threshold for parallel work */
    nn_shape sh = nn_shape3(28, 28, 1);
    enum { B = 64 };
    size_t n = nn_shape_size(sh) * B;
    float *a = new_batch(sh, B, 0, 0.0f, 1.0f, 15);
    float *b = new_batch(sh, B, 0, 0.0f, 1.0f, 15);
    float *scr = new_scratch(sh, B, 0);
    nn_augment p = {3.0f, 15.0f, 0.1f};
    int prev = nn_get_threads();
    nn_rng r;
    nn_set_threads(1);
    nn_rng_seed(&r, 16);
    nn_augment_batch(a, B, sh, &p, &r, scr);
    nn_set_threads(2);
    nn_rng_seed(&r, 16);
    nn_augment_batch(b, B, sh, &p, &r, scr);
    nn_set_threads(prev);
    assert_memory_equal(a, b, sizeof(float) * n);
    free(a), free(b), free(scr);
}

static void test_check(void **state)
{
    (void)state;
    nn_error e;
    const nn_augment good[] = {
        {0, 0, 0}, {3, 15, 0.1f}, {0.5f, 180, 0.99f}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(nn_augment_check(&good[i], &e), NN_OK);
    const nn_augment bad[] = {
        {-1, 0, 0}, {NAN, 0, 0}, {INFINITY, 0, 0}, {0, -5, 0},
        {0, 181, 0}, {0, NAN, 0}, {0, 0, -0.1f}, {0, 0, 1.0f},
        {0, 0, NAN}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(nn_augment_check(&bad[i], &e), NN_ERR_ARG);
        assert_int_equal(e.code, NN_ERR_ARG);
        assert_non_null(strstr(e.msg, "augment"));
    }
    assert_int_equal(nn_augment_check(NULL, NULL), NN_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_identity),
        cmocka_unit_test(test_one_integer_shift),
        cmocka_unit_test(test_one_half_pixel_shift),
        cmocka_unit_test(test_one_rotate_90),
        cmocka_unit_test(test_one_scale_2),
        cmocka_unit_test(test_one_bad_parameters_give_zeros),
        cmocka_unit_test(test_batch_off_is_identity),
        cmocka_unit_test(test_batch_flat_and_invalid_do_nothing),
        cmocka_unit_test(test_batch_shape_range_and_scratch),
        cmocka_unit_test(test_batch_matches_one_with_drawn_parameters),
        cmocka_unit_test(test_batch_seeded),
        cmocka_unit_test(test_batch_independent_of_threads),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
