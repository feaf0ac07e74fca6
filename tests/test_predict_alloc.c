/*
 * test_predict_alloc.c - after one warm-up call, nn_model_predict allocates
 * nothing: `digits serve` keeps one model per server thread and predicts
 * once at start-up, so that no request allocates in the library. Linked
 * with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (Makefile), so every
 * malloc, calloc and realloc that libnn's code makes is counted here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "nn.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static _Atomic long allocations;

void *__wrap_malloc(size_t n)
{
    allocations++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    allocations++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    allocations++;
    return __real_realloc(p, n);
}

/* A model from spec, initialised; predicts once (warm-up), then `calls`
 * more times on one sample each and returns how many allocations those
 * made. */
static long allocations_after_warmup(const char *spec, int calls)
{
    nn_error err;
    nn_model *m = nn_model_from_spec(spec, nn_shape3(28, 28, 1), 10, NULL,
                                     &err);
    assert_non_null(m);
    nn_rng rng;
    nn_rng_seed(&rng, 7);
    assert_int_equal(nn_model_init(m, &rng, &err), NN_OK);
    float x[784], y[10];
    for (int i = 0; i < 784; i++)
        x[i] = nn_rng_uniform(&rng);
    assert_int_equal(nn_model_predict(m, x, 1, y, &err), NN_OK);
    long before = allocations;
    for (int k = 0; k < calls; k++) {
        x[k % 784] = nn_rng_uniform(&rng);
        assert_int_equal(nn_model_predict(m, x, 1, y, &err), NN_OK);
    }
    long made = allocations - before;
    float sum = 0;
    for (int i = 0; i < 10; i++)
        sum += y[i];
    assert_true(sum > 0.99f && sum < 1.01f);   /* it did predict */
    nn_model_free(m);
    return made;
}

/* The counter itself works: building a model allocates. */
static void test_counter_counts(void **state)
{
    (void)state;
    long before = allocations;
    nn_model *m = nn_model_new(nn_shape1(4));
    assert_non_null(m);
    nn_model_free(m);
    assert_true(allocations > before);
}

static void test_mlp(void **state)
{
    (void)state;
    assert_int_equal(allocations_after_warmup("mlp", 50), 0);
}

static void test_cnn(void **state)
{
    (void)state;
    assert_int_equal(allocations_after_warmup("cnn", 5), 0);
}

static void test_lenet5(void **state)
{
    (void)state;
    assert_int_equal(allocations_after_warmup("lenet5", 5), 0);
}

int main(void)
{
    nn_set_threads(1);   /* as digits serve runs it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_counts),
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_cnn),
        cmocka_unit_test(test_lenet5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
