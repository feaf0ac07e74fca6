/*
 * test_files.c - the small shared helpers of nn.h: whole-file reads under
 * a limit (regular files, streams, folders, missing files), atomic writes,
 * nn_argmax, per-class accuracy from a confusion matrix, and
 * nn_model_create's reasons.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "nn.h"
#include "util/tmpdir.h"

static void test_read_and_write(void **state)
{
    (void)state;
    assert_non_null(tu_tmpdir_make("files"));
    nn_error e;
    const char text[] = "hello, file";
    assert_int_equal(nn_write_file_atomic(tu_path("a"), text, 11, &e),
                     NN_OK);
    void *d;
    size_t n;
    assert_int_equal(nn_read_file(tu_path("a"), 11, &d, &n, &e), NN_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(d, text, 11);
    assert_int_equal(((char *)d)[11], '\0');   /* NUL after the bytes */
    free(d);
    /* replaced atomically: the new contents, no temporaries left */
    assert_int_equal(nn_write_file_atomic(tu_path("a"), "xy", 2, &e), NN_OK);
    assert_int_equal(nn_read_file(tu_path("a"), 100, &d, &n, &e), NN_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "xy", 2);
    free(d);
    assert_int_equal(nn_write_file_atomic(tu_path("empty"), NULL, 0, &e),
                     NN_OK);
    assert_int_equal(nn_read_file(tu_path("empty"), 0, &d, &n, &e), NN_OK);
    assert_int_equal(n, 0);
    free(d);

    /* one byte over the limit; a folder; a missing file */
    assert_int_equal(nn_read_file(tu_path("a"), 1, &d, &n, &e),
                     NN_ERR_LIMIT);
    assert_null(d);
    assert_non_null(strstr(e.msg, "limit"));
    mkdir(tu_path("dir"), 0700);
    assert_int_equal(nn_read_file(tu_path("dir"), 100, &d, &n, &e),
                     NN_ERR_IO);
    assert_non_null(strstr(e.msg, "folder"));
    assert_int_equal(nn_read_file(tu_path("nope"), 100, &d, &n, &e),
                     NN_ERR_IO);
    assert_non_null(strstr(e.msg, "cannot open"));
    /* a write into a missing folder fails and names the path */
    assert_int_equal(nn_write_file_atomic(tu_path("no/such"), "x", 1, &e),
                     NN_ERR_IO);

    /* a stream that grows past its first buffer, and one over the limit */
    FILE *f = tmpfile();
    assert_non_null(f);
    enum { BIG = 200000 };
    for (int i = 0; i < BIG; i++)
        fputc('a' + i % 26, f);
    rewind(f);
    assert_int_equal(nn_read_stream(f, "stream", BIG, 0, &d, &n, &e), NN_OK);
    assert_int_equal(n, BIG);
    assert_int_equal(((char *)d)[BIG - 1], 'a' + (BIG - 1) % 26);
    free(d);
    rewind(f);
    assert_int_equal(nn_read_stream(f, "stream", BIG - 1, 0, &d, &n, &e),
                     NN_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "stream"));
    fclose(f);
    tu_tmpdir_remove();
}

static void test_argmax_and_class_accuracy(void **state)
{
    (void)state;
    const float v[5] = {0.1f, 0.7f, 0.2f, 0.7f, -1.0f};
    assert_int_equal(nn_argmax(v, 5), 1);   /* the first of a tie */
    assert_int_equal(nn_argmax(v + 2, 3), 1);
    assert_int_equal(nn_argmax(v, 1), 0);
    /* rows: true class; class 2 has no samples */
    const uint32_t cm[9] = {3, 1, 0,
                            2, 2, 4,
                            0, 0, 0};
    double acc[3];
    nn_confusion_accuracy(cm, 3, acc);
    assert_true(acc[0] == 0.75);
    assert_true(acc[1] == 0.25);
    assert_true(isnan(acc[2]));
}

static void test_model_create_says_why(void **state)
{
    (void)state;
    nn_error e;
    assert_null(nn_model_create(nn_shape3(0, 28, 1), &e));
    assert_int_equal(e.code, NN_ERR_SHAPE);
    assert_non_null(strstr(e.msg, "input shape"));
    assert_null(nn_model_new((nn_shape){.rank = 2, .dim = {3, 3, 1}}));
    nn_model *m = nn_model_create(nn_shape1(4), &e);
    assert_non_null(m);
    nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_and_write),
        cmocka_unit_test(test_argmax_and_class_accuracy),
        cmocka_unit_test(test_model_create_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
