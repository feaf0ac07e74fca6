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
         "                       [--errors FILE.png] [--confusion FILE]\n"
         "                       [--classes A,B,..] [--threads N]\n"
         "                       [--int8] [--calibrate N] [--limit N]\n"
         "                       [--scores FILE]\n\n"
         "Scores a saved model on the test set: test_loss, test_acc and a\n"
         "confusion matrix with per-class accuracy (the matrix for models of\n"
         "up to 100 classes; --json lists the pairs that occur above that).\n"
         "Never downloads data (see 'digits fetch').\n\n"
         "  --model FILE  model file, .nn or .onnx (default model.nn)\n"
         "  --data DIR    data folder (default $DIGITS_DATA or ./data/mnist)\n"
         "  --threads N   threads (default: all cores)\n"
         "  --json        one JSON object on stdout\n"
         "  --errors F    draw the misclassified test digits (first 100) with\n"
         "                true and predicted labels into F, a .png\n"
         "  --confusion F draw the confusion matrix as a heat map into F\n"
         "                (.png or .svg)\n"
         "  --classes A,B,...  names of the classes, in label order, for "
         "the output\n"
         "  --int8        the int8 model (docs/quantization.md): what the C of\n"
         "                'digits export-c --int8' answers, bit for bit\n"
         "  --calibrate N training images calibrating --int8 (default 2000)\n"
         "  --limit N     only the first N test images\n"
         "  --scores F    one line per test image into F: the class, then\n"
         "                the scores (%.9g)");
}

/* Larger models get no (K, K) matrix: per-class counts and a sparse list
 * of the (true, predicted) pairs that occur instead. */
#define CONFUSION_MAX PLOT_CONFUSION_MAX

/* What evaluate reports per class: the dense matrix (K <= CONFUSION_MAX),
 * or for larger K each sample's prediction, from which rows and the
 * sparse pairs are counted. */
typedef struct scores {
    int K;
    uint32_t *cm;       /* (K, K) or NULL */
    int *pred;          /* (n) predicted class, or NULL */
    float *prob;        /* (n) its probability, or NULL */
} scores;

/* Each sample's predicted class and probability, a slice at a time so
 * that memory stays (chunk, K) whatever K is. */
static int predict_all(nn_model *m, const nn_qmodel *q, const nn_dataset *d,
                       int K, scores *sc, const char *model)
{
    size_t in = nn_shape_size(d->shape), w = in > (size_t)K ? in : (size_t)K;
    size_t chunk = ((size_t)16 << 20) / w;   /* about 64 MiB of floats */
    chunk = chunk < 1 ? 1 : chunk > 1024 ? 1024 : chunk;
    float *y = malloc(sizeof *y * chunk * (size_t)K);
    int *cls = malloc(sizeof *cls * chunk);
    sc->pred = malloc(sizeof *sc->pred * (d->n ? d->n : 1));
    sc->prob = malloc(sizeof *sc->prob * (d->n ? d->n : 1));
    if (!y || !cls || !sc->pred || !sc->prob) {
        free(y);
        free(cls);
        return cli_error("out of memory");
    }
    nn_error err;
    for (size_t b = 0; b < d->n; b += chunk) {
        size_t n = d->n - b < chunk ? d->n - b : chunk;
        nn_dataset part = nn_dataset_slice(d, b, n);
        if ((q ? nn_qmodel_predict(q, part.x_u8, n, y, cls, &err)
               : nn_model_predict_dataset(m, &part, y, &err)) != NN_OK) {
            free(y);
            free(cls);
            return cli_error("%s: %s", model, err.msg);
        }
        for (size_t i = 0; i < n; i++) {
            const float *p = y + i * (size_t)K;
            /* int8: the class from the int8 outputs, as NAME_predict */
            int best = q ? cls[i] : (int)nn_argmax(p, (size_t)K);
            sc->pred[b + i] = best;
            sc->prob[b + i] = p[best];
        }
    }
    free(y);
    free(cls);
    return 0;
}

/* --scores: per image "class s0 s1 ...", scores with %.9g; the class as
 * predict_all gives it. Written atomically. */
static int write_scores(const char *path, nn_model *m, const nn_qmodel *q,
                        const nn_dataset *d, int K, const char *model)
{
    const size_t chunk = 1024;
    size_t cap = d->n * ((size_t)K * 18 + 16) + 1, len = 0;
    char *buf = malloc(cap);
    float *y = malloc(sizeof *y * chunk * (size_t)K);
    int *cls = malloc(sizeof *cls * chunk);
    int rc = 0;
    nn_error err;
    if (!buf || !y || !cls) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (size_t b = 0; b < d->n; b += chunk) {
        size_t n = d->n - b < chunk ? d->n - b : chunk;
        nn_dataset part = nn_dataset_slice(d, b, n);
        if ((q ? nn_qmodel_predict(q, part.x_u8, n, y, cls, &err)
               : nn_model_predict_dataset(m, &part, y, &err)) != NN_OK) {
            rc = cli_error("%s: %s", model, err.msg);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const float *p = y + i * (size_t)K;
            int best = q ? cls[i] : (int)nn_argmax(p, (size_t)K);
            len += (size_t)snprintf(buf + len, cap - len, "%d", best);
            for (int j = 0; j < K; j++)
                len += (size_t)snprintf(buf + len, cap - len, " %.9g",
                                        (double)p[j]);
            len += (size_t)snprintf(buf + len, cap - len, "\n");
        }
    }
    if (nn_write_file_atomic(path, buf, len, &err) != NN_OK)
        rc = cli_nn_error(&err);
done:
    free(buf);
    free(y);
    free(cls);
    return rc;
}

static int cmp_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return *x < *y ? -1 : *x > *y;
}

/* The sparse confusion: "[[true, predicted, count], ...]", in order. */
static void print_sparse(const nn_dataset *d, const scores *sc)
{
    uint64_t *pair = malloc(sizeof *pair * (d->n ? d->n : 1));
    printf("\"confusion\": null, \"confusion_sparse\": [");
    if (pair) {
        for (size_t i = 0; i < d->n; i++)
            pair[i] = (uint64_t)d->labels[i] << 32 | (uint32_t)sc->pred[i];
        qsort(pair, d->n, sizeof *pair, cmp_pair);
        for (size_t i = 0, first = 1; i < d->n; first = 0) {
            size_t j = i;
            while (j < d->n && pair[j] == pair[i])
                j++;
            printf("%s[%u, %u, %zu]", first ? "" : ", ",
                   (unsigned)(pair[i] >> 32), (unsigned)(uint32_t)pair[i],
                   j - i);
            i = j;
        }
    }
    free(pair);
    printf("], ");
}

/* Row totals and diagonal of the confusion: (K) each. */
static bool class_counts(const nn_dataset *d, const scores *sc,
                         uint64_t **row, uint64_t **right)
{
    int K = sc->K;
    *row = calloc((size_t)K, sizeof **row);
    *right = calloc((size_t)K, sizeof **right);
    if (!*row || !*right)
        return false;
    for (int i = 0; sc->cm && i < K; i++)
        for (int j = 0; j < K; j++) {
            (*row)[i] += sc->cm[(size_t)i * K + j];
            if (i == j)
                (*right)[i] += sc->cm[(size_t)i * K + j];
        }
    for (size_t i = 0; !sc->cm && i < d->n; i++) {
        (*row)[d->labels[i]]++;
        (*right)[d->labels[i]] += sc->pred[i] == d->labels[i];
    }
    return true;
}

static void print_json(const nn_eval *ev, const nn_dataset *d,
                       const scores *sc, char *const *names)
{
    int K = sc->K;
    const uint32_t *cm = sc->cm;
    printf("{\"test_loss\": ");
    cli_json_number(stdout, ev->loss, 6);
    printf(", \"test_acc\": ");
    cli_json_number(stdout, ev->accuracy, 6);
    printf(", \"n\": %zu, ", ev->n);
    if (names) {
        printf("\"classes\": [");
        for (int i = 0; i < K; i++) {
            printf("%s", i ? ", " : "");
            cli_json_string(stdout, names[i]);
        }
        printf("], ");
    }
    if (cm) {
        printf("\"confusion\": [");
        for (int i = 0; i < K; i++) {
            printf("%s[", i ? ", " : "");
            for (int j = 0; j < K; j++)
                printf("%s%u", j ? ", " : "", cm[(size_t)i * K + j]);
            printf("]");
        }
        printf("], ");
    } else {
        print_sparse(d, sc);
    }
    uint64_t *row, *right;
    bool ok = class_counts(d, sc, &row, &right);
    printf("\"per_class_accuracy\": [");
    for (int i = 0; ok && i < K; i++) {
        printf("%s", i ? ", " : "");
        if (row[i])
            cli_json_number(stdout, (double)right[i] / row[i], 6);
        else
            printf("null");
    }
    printf("]}\n");
    free(row);
    free(right);
}

/* Outputs before anything is loaded; then, with the model and data known,
 * that none of them is an input. */
static bool check_files(const char *errors, const char *confusion,
                        const char *scores_path, const char *model,
                        const char *dir)
{
    if ((errors && !cli_check_output("--errors", errors)) ||
        (confusion && !cli_check_output("--confusion", confusion)) ||
        (scores_path && !cli_check_output("--scores", scores_path)))
        return false;
    char img[4096], lab[4096];
    cli_split_paths(dir, "t10k", img, lab, sizeof img);
    const cli_file out[] = {{"--errors", errors}, {"--confusion", confusion},
                            {"--scores", scores_path}};
    const cli_file in[] = {{"--model", model}, {"data file", img},
                           {"data file", lab}};
    return cli_check_distinct(out, 3, in, 3);
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
        {"int8", no_argument, 0, 'q'},
        {"calibrate", required_argument, 0, 'c'},
        {"limit", required_argument, 0, 'L'},
        {"scores", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = "model.nn", *data = NULL, *errors = NULL,
               *confusion = NULL, *classes = NULL, *scores_path = NULL;
    bool json = false, int8 = false;
    long threads = 0, calibrate = NN_QUANT_CALIBRATE, limit = 0;
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
        case 'q': int8 = true; break;
        case 'S': scores_path = optarg; break;
        case 'c':
            if (!cli_int("--calibrate", optarg, 1, 1000000, &calibrate))
                return 1;
            break;
        case 'L':
            if (!cli_int("--limit", optarg, 1, 0x7fffffffL, &limit))
                return 1;
            break;
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
    const char *dir = cli_data_dir(data);
    if (!check_files(errors, confusion, scores_path, model, dir))
        return 1;
    nn_set_threads((int)threads);
    nn_error err;
    nn_model *m = cli_model_load(model, &err);
    if (!m)
        return cli_nn_error(&err);
    nn_dataset test = {0}, all = {0};
    nn_qmodel *q = NULL;
    scores sc = {0};
    char **names = NULL;
    int rc = 1;
    nn_shape out = nn_model_output_shape(m);
    int K = (int)nn_shape_size(out);
    sc.K = K;
    if (confusion && K > PLOT_CONFUSION_MAX) {
        cli_error("--confusion: %s has %d classes; the heat map is drawn "
                  "for at most %d", model, K, PLOT_CONFUSION_MAX);
        goto done;
    }
    if (classes && !cli_class_names(classes, K, &names))
        goto done;
    /* evaluate never downloads: the data is what the user has */
    if (cli_load_split(dir, "t10k", false, 0, &all) ||
        !cli_check_shape(m, all.shape, model, dir))
        goto done;
    test = all;
    if (limit > 0 && (size_t)limit < all.n)
        test = nn_dataset_slice(&all, 0, (size_t)limit);
    if (test.num_classes > K) {
        cli_error("%s: model has %d outputs but the data has %d classes",
                  model, K, test.num_classes);
        goto done;
    }
    if (!test.labels) {
        cli_error("%s: the test set has no labels", dir);
        goto done;
    }
    if (K <= CONFUSION_MAX && !(sc.cm = calloc((size_t)K * K, sizeof *sc.cm))) {
        cli_error("out of memory");
        goto done;
    }
    if (int8 && !(q = cli_quantize(m, model, data, calibrate)))
        goto done;
    nn_eval ev;
    if ((q ? nn_qmodel_evaluate(q, &test, &ev, sc.cm, &err)
           : nn_model_evaluate(m, &test, &ev, sc.cm, &err)) != NN_OK) {
        cli_error("%s: %s", model, err.msg);
        goto done;
    }
    if ((!sc.cm || errors) && predict_all(m, q, &test, K, &sc, model))
        goto done;
    if (json) {
        print_json(&ev, &test, &sc, names);
    } else {
        printf("test_loss: %.4f\ntest_acc: %.4f\n", ev.loss, ev.accuracy);
        if (sc.cm)
            cli_print_confusion(stdout, sc.cm, K, names);
        else
            printf("confusion matrix: not shown for %d classes (at most %d; "
                   "--json lists the pairs that occur)\n", K, CONFUSION_MAX);
    }
    if (confusion && plot_confusion(confusion, sc.cm, K))
        goto done;
    if (errors && plot_errors(errors, &test, sc.pred, sc.prob))
        goto done;
    if (scores_path && write_scores(scores_path, m, q, &test, K, model))
        goto done;
    rc = 0;
done:
    free(names);
    free(sc.cm);
    free(sc.pred);
    free(sc.prob);
    nn_qmodel_free(q);
    nn_model_free(m);
    nn_dataset_free(&all);
    return rc;
}
