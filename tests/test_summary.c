/*
 * test_summary.c - nn_model_summary's table keeps its columns when a
 * layer's name is longer than Keras' 28 characters
 * ("batch_normalization_1 (BatchNormalization)",
 * "global_average_pooling2d (GlobalAveragePooling2D)"): every row's
 * output shape starts under the header's "Output Shape", and the rules
 * are as wide as the rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"

/* The column at which "(None" starts on each row, all equal to the
 * header's "Output Shape"; returns the number of rows seen. */
static int check_columns(const char *text)
{
    const char *hdr = strstr(text, "Output Shape");
    assert_non_null(hdr);
    const char *line = hdr;
    while (line > text && line[-1] != '\n')
        line--;
    long col = hdr - line;
    int rows = 0;
    size_t rule = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *none = NULL;
        for (const char *q = p; q + 5 <= p + len; q++)
            if (!strncmp(q, "(None", 5)) {
                none = q;
                break;
            }
        if (none) {
            assert_int_equal(none - p, col);
            /* the name (padded) ends before the shape */
            assert_int_equal(none[-1], ' ');
            rows++;
        }
        if (len && (p[0] == '_' || p[0] == '='))
            rule = rule ? rule : len;
        if (len && (p[0] == '_' || p[0] == '='))
            assert_int_equal(len, rule);   /* all rules alike */
        p += len + (end != NULL);
    }
    assert_true(rule >= (size_t)col + 25 + 10);
    return rows;
}

static void test_long_names(void **state)
{
    (void)state;
    nn_error err;
    nn_model *m = nn_model_from_spec(
        "conv2d(4,3,relu) batchnorm batchnorm gap dense(10,softmax)",
        nn_shape3(12, 12, 1), 10, NULL, &err);
    assert_non_null(m);
    size_t n = nn_model_summary(m, NULL, 0);
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    assert_int_equal(nn_model_summary(m, buf, n + 1), n);
    assert_non_null(strstr(buf, "batch_normalization_1 (BatchNormalization)"));
    assert_non_null(strstr(buf, "(GlobalAveragePooling2D)"));
    assert_int_equal(check_columns(buf), 5);
    free(buf);
    nn_model_free(m);
    /* short names keep Keras' widths exactly: 65-character rules */
    m = nn_model_from_spec("mlp", nn_shape3(28, 28, 1), 10, NULL, &err);
    assert_non_null(m);
    char small[4096];
    nn_model_summary(m, small, sizeof small);
    assert_int_equal(check_columns(small), 2);
    assert_non_null(strstr(small, "\n" "_________________________________"
                                  "________________________________\n"));
    nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
