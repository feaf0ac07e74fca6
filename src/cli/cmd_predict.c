/*
 * cmd_predict.c - `digits predict --model FILE IMAGE...`: reads pictures of
 * digits (PNG, JPEG, BMP, GIF, PGM/PPM; `-` for standard input), prepares
 * each as MNIST was made (nn_preprocess_digit) and prints the answer.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void usage(void)
{
    puts("usage: digits predict [--model FILE] [--json] [--top K] [--show]\n"
         "                      [--ink auto|dark|light] [--threads N]\n"
         "                      [--classes A,B,..] [--any]\n"
         "                      [--int8] [--calibrate N] [--data DIR]\n"
         "                      IMAGE... | -\n\n"
         "Recognises the digit in each picture: PNG, JPEG, BMP, GIF or\n"
         "binary PGM/PPM, any size up to 16384 pixels a side and 64 Mpx;\n"
         "'-' reads one picture from standard input. Each picture is made\n"
         "into a 28x28 MNIST-style input first: dark ink on light paper is\n"
         "inverted, the paper level removed, the ink cropped, scaled to fit\n"
         "20x20 and centred by its centre of mass (docs/preprocessing.md).\n\n"
         "Prints one line per picture, 'FILE: DIGIT (PROBABILITY)', or\n"
         "'FILE: no digit found' for a blank picture, or 'FILE: not a digit\n"
         "(REASON)' for one whose ink is nothing like a digit (noise, a\n"
         "texture, a pattern, a line; docs/preprocessing.md). A picture that cannot\n"
         "be read gets one line on stderr; the others are still processed\n"
         "and the exit status is then 1.\n\n"
         "  --model FILE  model file (.nn or .onnx) with 784 inputs (default\n"
         "                model.nn)\n"
         "  --json        one JSON object per picture: {\"file\", \"digit\"\n"
         "                (null if none found or not a digit), \"probabilities\",\n"
         "                \"not_digit\" (the reason, or null)}\n"
         "  --top K       also list the K most likely digits\n"
         "  --show        print the 28x28 input the model saw as text art\n"
         "                (on stderr with --json)\n"
         "  --ink MODE    dark (ink darker than the paper), light, or auto\n"
         "                (default: decided from the picture)\n"
         "  --threads N   threads (default: all cores)\n"
         "  --classes A,B,...  names of the classes in label order, "
         "printed after\n"
         "                the class number (JSON: \"class\")\n"
         "  --any         answer even for pictures that are not digits\n"
         "  --int8        the int8 model (docs/quantization.md), as the C of\n"
         "                'digits export-c --int8' answers\n"
         "  --calibrate N training images calibrating --int8 (default 2000)\n"
         "  --data DIR    their folder (default $DIGITS_DATA or ./data/mnist)");
}

/* The 28x28 input as text art, two characters per pixel so that it keeps
 * its shape in a terminal. */
static void show(FILE *f, const uint8_t *px, const nn_preprocess_info *info)
{
    static const char ramp[] = " .:-=+*#%@";
    if (info->found)
        fprintf(f, "  input 28x28 (ink %s, box %dx%d at %d,%d in the "
                "picture)\n", info->inverted ? "dark on light, inverted"
                                             : "light on dark",
                info->box_w, info->box_h, info->box_x, info->box_y);
    fprintf(f, "  +--------------------------------------------------------"
               "+\n");
    for (int y = 0; y < NN_DIGIT_SIDE; y++) {
        fputs("  |", f);
        for (int x = 0; x < NN_DIGIT_SIDE; x++) {
            char c = ramp[px[y * NN_DIGIT_SIDE + x] * 9 / 255];
            fputc(c, f);
            fputc(c, f);
        }
        fputs("|\n", f);
    }
    fprintf(f, "  +--------------------------------------------------------"
               "+\n");
}

typedef struct predict_args {
    const char *model;
    bool json, show, any;
    const char *data;     /* --int8's calibration data folder */
    long calibrate;
    bool int8;
    nn_qmodel *q;         /* the int8 model, or NULL */
    long top, threads;
    nn_preprocess_options pre;
    const char *classes;
    char **names;         /* from --classes, or NULL */
} predict_args;

typedef struct ranked {
    float p;
    int digit;
} ranked;

/* Most likely first; ties by the smaller class. */
static int by_probability(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? 1 : -1;
    return (x->digit > y->digit) - (x->digit < y->digit);
}

/* One picture; returns 0, or 1 after printing its error line. */
static int predict_one(nn_model *m, int K, const predict_args *a,
                       const char *file)
{
    nn_image img;
    nn_error err;
    nn_status s;
    const char *label = file;
    if (!strcmp(file, "-")) {
        size_t n;
        void *buf;
        s = nn_read_stream(stdin, "standard input", NN_MAX_IMAGE_BYTES, 0,
                           &buf, &n, &err);
        if (s == NN_OK)
            s = nn_image_load_mem(buf, n, "standard input", &img, &err);
        free(buf);
    } else {
        s = nn_image_load(file, &img, &err);
    }
    if (s != NN_OK)
        return cli_nn_error(&err);
    uint8_t px[NN_DIGIT_SIDE * NN_DIGIT_SIDE];
    nn_preprocess_info info;
    s = nn_preprocess_digit(&img, &a->pre, px, &info, &err);
    nn_image_free(&img);
    if (s != NN_OK)
        return cli_error("%s: %s", file, err.msg);
    float x[NN_DIGIT_SIDE * NN_DIGIT_SIDE], *p = malloc((size_t)K * sizeof *p);
    ranked *order = malloc((size_t)K * sizeof *order);
    if (!p || !order) {
        free(p);
        free(order);
        return cli_error("out of memory");
    }
    if (info.found) {
        for (int i = 0; i < NN_DIGIT_SIDE * NN_DIGIT_SIDE; i++)
            x[i] = px[i] / 255.0f;
        if ((a->q ? nn_qmodel_predict(a->q, px, 1, p, NULL, &err)
                  : nn_model_predict(m, x, 1, p, &err)) != NN_OK) {
            free(p);
            free(order);
            return cli_error("%s: %s", a->model, err.msg);
        }
        for (int i = 0; i < K; i++)
            if (!isfinite(p[i])) {
                const char *what = isnan(p[i]) ? "NaN" : "infinite";
                free(p);
                free(order);
                return cli_error("%s: the model's output for %s is %s, "
                                 "not a probability; its weights are "
                                 "broken, retrain it", a->model, label,
                                 what);
            }
        for (int i = 0; i < K; i++)
            order[i] = (ranked){p[i], i};
        qsort(order, (size_t)K, sizeof *order, by_probability);
    }
    int top = a->top > K ? K : (int)a->top;
    /* a picture with ink that is not a digit (noise, a pattern, a line) */
    const char *not_digit = a->any ? NULL : nn_preprocess_not_digit(&info);
    if (a->json) {
        printf("{\"file\": ");
        cli_json_string(stdout, label);
        if (!info.found) {
            printf(", \"digit\": null, \"probabilities\": null}\n");
        } else {
            if (not_digit)
                printf(", \"digit\": null, ");
            else
                printf(", \"digit\": %d, ", order[0].digit);
            if (a->names && !not_digit) {
                printf("\"class\": ");
                cli_json_string(stdout, a->names[order[0].digit]);
                printf(", ");
            }
            printf("\"probabilities\": [");
            for (int i = 0; i < K; i++) {
                printf("%s", i ? ", " : "");
                cli_json_number(stdout, p[i], 6);
            }
            printf("]");
            if (a->top > 0) {
                printf(", \"top\": [");
                for (int i = 0; i < top; i++) {
                    printf("%s{\"digit\": %d, \"probability\": ",
                           i ? ", " : "", order[i].digit);
                    cli_json_number(stdout, order[i].p, 6);
                    printf("}");
                }
                printf("]");
            }
            printf(", \"not_digit\": ");
            if (not_digit)
                cli_json_string(stdout, not_digit);
            else
                printf("null");
            printf("}\n");
        }
    } else if (!info.found) {
        printf("%s: no digit found\n", label);
    } else if (not_digit && top < 1) {
        printf("%s: not a digit (%s)\n", label, not_digit);
    } else {
        printf("%s", label);
        if (not_digit)
            printf(": not a digit (%s); the model would say", not_digit);
        for (int i = 0; i < (top > 1 ? top : 1); i++) {
            printf("%s%d", i == 0 ? (not_digit ? " " : ": ")
                           : i == 1 ? ", then " : ", ",
                   order[i].digit);
            if (a->names)
                printf(" %s", a->names[order[i].digit]);
            printf(" (%.3f)", order[i].p);
        }
        printf("\n");
    }
    if (a->show)
        show(a->json ? stderr : stdout, px, &info);
    fflush(stdout);
    free(p);
    free(order);
    return 0;
}

int cmd_predict(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"json", no_argument, 0, 'j'},
        {"top", required_argument, 0, 'k'},
        {"show", no_argument, 0, 's'},
        {"ink", required_argument, 0, 'i'},
        {"threads", required_argument, 0, 't'},
        {"classes", required_argument, 0, 'N'},
        {"any", no_argument, 0, 'a'},
        {"int8", no_argument, 0, 'q'},
        {"calibrate", required_argument, 0, 'c'},
        {"data", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    predict_args a = {.model = "model.nn", .pre = nn_preprocess_defaults(),
                      .calibrate = NN_QUANT_CALIBRATE};
    int c;
    opterr = 0;
    /* getopt leaves a lone "-" (standard input) among the files */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a.model = optarg; break;
        case 'j': a.json = true; break;
        case 's': a.show = true; break;
        case 'a': a.any = true; break;
        case 'q': a.int8 = true; break;
        case 'd': a.data = optarg; break;
        case 'c':
            if (!cli_int("--calibrate", optarg, 1, 1000000, &a.calibrate))
                return 1;
            break;
        case 'N': a.classes = optarg; break;
        case 'k':
            if (!cli_int("--top", optarg, 1, NN_MAX_CLASSES, &a.top))
                return 1;
            break;
        case 't':
            if (!cli_int("--threads", optarg, 0, 1024, &a.threads))
                return 1;
            break;
        case 'i':
            if (!strcmp(optarg, "auto"))
                a.pre.ink = NN_INK_AUTO;
            else if (!strcmp(optarg, "dark"))
                a.pre.ink = NN_INK_DARK;
            else if (!strcmp(optarg, "light"))
                a.pre.ink = NN_INK_LIGHT;
            else
                return cli_error("--ink: expected auto, dark or light, got "
                                 "'%s'", optarg);
            break;
        case 'h': usage(); return 0;
        default: return cli_usage_error("predict", c, argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_error("predict: no image given (see 'digits predict "
                         "--help')");
    int stdin_uses = 0;
    for (int i = optind; i < argc; i++)
        stdin_uses += !strcmp(argv[i], "-");
    if (stdin_uses > 1)
        return cli_error("predict: '-' (standard input) given %d times",
                         stdin_uses);
    nn_set_threads((int)a.threads);
    nn_error err;
    nn_model *m = cli_model_load(a.model, &err);
    if (!m)
        return cli_nn_error(&err);
    size_t in = nn_shape_size(nn_model_input_shape(m));
    int K = (int)nn_shape_size(nn_model_output_shape(m));
    int rc = 0;
    if (in != NN_DIGIT_SIDE * NN_DIGIT_SIDE) {
        rc = cli_error("%s: the model takes %zu inputs per sample; predict "
                       "needs a 28x28 (784-input) model", a.model, in);
    } else if (!cli_check_shape(m, nn_shape3(NN_DIGIT_SIDE, NN_DIGIT_SIDE, 1),
                                a.model, "digits predict")) {
        rc = 1;
    } else if (a.int8 && !(a.q = cli_quantize(m, a.model, a.data,
                                               a.calibrate))) {
        rc = 1;
    } else if (!a.classes || cli_class_names(a.classes, K, &a.names)) {
        for (int i = optind; i < argc; i++)
            rc |= predict_one(m, K, &a, argv[i]);
    } else {
        rc = 1;
    }
    free(a.names);
    nn_qmodel_free(a.q);
    nn_model_free(m);
    return rc;
}
