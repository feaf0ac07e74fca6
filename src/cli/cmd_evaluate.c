/*
 * cmd_evaluate.c - `digits evaluate --model FILE`: test loss, accuracy and
 * the confusion matrix.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/plot.h"

static void usage(void)
{
    puts("usage: digits evaluate [--model FILE] [--data DIR] [--json]\n"
         "                       [--errors FILE.png] [--confusion FILE]\n\n"
         "Scores a saved model on the test set: test_loss, test_acc and a\n"
         "confusion matrix with per-class accuracy.\n\n"
         "  --model FILE  model file (default model.nn)\n"
         "  --data DIR    data folder (default $DIGITS_DATA or ./data/mnist)\n"
         "  --threads N   threads (default: all cores)\n"
         "  --json        one JSON object on stdout\n"
         "  --errors F    draw the misclassified test digits (first 100) with\n"
         "                true and predicted labels into F, a .png\n"
         "  --confusion F draw the confusion matrix as a heat map into F\n"
         "                (.png or .svg)\n"
         "  --classes A,B,...  names of the classes, in label order, for "
         "the output");
}

static void print_json(const nn_eval *ev, const uint32_t *cm, int K,
                       char *const *names)
{
    printf("{\"test_loss\": %.6f, \"test_acc\": %.6f, \"n\": %zu, ",
           ev->loss, ev->accuracy, ev->n);
    if (names) {
        printf("\"classes\": [");
        for (int i = 0; i < K; i++) {
            printf("%s", i ? ", " : "");
            cli_json_string(stdout, names[i]);
        }
        printf("], ");
    }
    printf("\"confusion\": [");
    for (int i = 0; i < K; i++) {
        printf("%s[", i ? ", " : "");
        for (int j = 0; j < K; j++)
            printf("%s%u", j ? ", " : "", cm[(size_t)i * K + j]);
        printf("]");
    }
    printf("], \"per_class_accuracy\": [");
    double *acc = malloc(sizeof(double) * (size_t)K);
    if (acc)
        nn_confusion_accuracy(cm, K, acc);
    for (int i = 0; i < K; i++) {
        if (acc && !isnan(acc[i]))
            printf("%s%.6f", i ? ", " : "", acc[i]);
        else
            printf("%snull", i ? ", " : "");
    }
    free(acc);
    printf("]}\n");
}

int cmd_evaluate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"data", required_argument, 0, 'd'},
        {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},
        {"errors", required_argument, 0, 'E'},
        {"confusion", required_argument, 0, 'C'},
        {"classes", required_argument, 0, 'N'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = "model.nn", *data = NULL, *errors = NULL,
               *confusion = NULL, *classes = NULL;
    bool json = false;
    long threads = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'j': json = true; break;
        case 'E': errors = optarg; break;
        case 'C': confusion = optarg; break;
        case 'N': classes = optarg; break;
        case 't':
            if (!cli_int("--threads", optarg, 0, 1024, &threads))
                return 1;
            break;
        case 'h': usage(); return 0;
        default: return cli_usage_error("evaluate", c, argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_error("evaluate: unexpected argument '%s'", argv[optind]);
    if (errors && !plot_is_png(errors))
        return cli_error("--errors: '%s' must end in .png", errors);
    if (confusion && !plot_is_png(confusion) && !plot_is_svg(confusion))
        return cli_error("--confusion: '%s' must end in .png or .svg",
                         confusion);
    nn_set_threads((int)threads);
    nn_error err;
    nn_model *m = nn_model_load(model, &err);
    if (!m)
        return cli_nn_error(&err);
    nn_dataset test = {0};
    uint32_t *cm = NULL;
    float *probs = NULL;
    char **names = NULL;
    int rc = 1;
    if (cli_load_split(cli_data_dir(data), "t10k", true, &test))
        goto done;
    nn_shape out = nn_model_output_shape(m);
    int K = (int)nn_shape_size(out);
    if (test.num_classes > K) {
        cli_error("%s: model has %d outputs but the data has %d classes",
                  model, K, test.num_classes);
        goto done;
    }
    if (classes && !cli_class_names(classes, K, &names))
        goto done;
    cm = calloc((size_t)K * K, sizeof *cm);
    nn_eval ev;
    if (!cm) {
        cli_error("out of memory");
        goto done;
    }
    if (nn_model_evaluate(m, &test, &ev, cm, &err) != NN_OK) {
        cli_error("%s: %s", model, err.msg);
        goto done;
    }
    if (json) {
        print_json(&ev, cm, K, names);
    } else {
        printf("test_loss: %.4f\ntest_acc: %.4f\n", ev.loss, ev.accuracy);
        cli_print_confusion(stdout, cm, K, names);
    }
    if (confusion && plot_confusion(confusion, cm, K))
        goto done;
    if (errors) {
        probs = malloc(test.n * (size_t)K * sizeof *probs);
        if (!probs) {
            cli_error("out of memory");
            goto done;
        }
        if (nn_model_predict_dataset(m, &test, probs, &err) != NN_OK) {
            cli_error("%s: %s", model, err.msg);
            goto done;
        }
        if (plot_errors(errors, &test, probs, K))
            goto done;
    }
    rc = 0;
done:
    free(names);
    free(probs);
    free(cm);
    nn_model_free(m);
    nn_dataset_free(&test);
    return rc;
}
