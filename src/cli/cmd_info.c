/*
 * cmd_info.c - `digits info`: shapes and label counts, as the seed printed.
 */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

static void usage(void)
{
    puts("usage: digits info [--data DIR] [--json]\n\n"
         "Prints the shape of the training and test images and the count of\n"
         "each label. Never downloads (see 'digits fetch').\n\n"
         "  --data DIR   data folder (default $DIGITS_DATA or ./data/mnist)\n"
         "  --json       one JSON object on stdout: {\"train\": {\"n\",\n"
         "               \"shape\" [H, W, C], \"label_counts\"}, \"test\": {...}}");
}

static void describe(const char *name, const nn_dataset *d)
{
    nn_shape s = d->shape;
    if (s.dim[2] == 1)
        printf("%s_images.shape (%zu, %d, %d)\n", name, d->n, s.dim[0],
               s.dim[1]);
    else
        printf("%s_images.shape (%zu, %d, %d, %d)\n", name, d->n, s.dim[0],
               s.dim[1], s.dim[2]);
    printf("%s_labels.shape (%zu,)\n", name, d->n);
    size_t count[256];
    cli_label_counts(d, count);
    printf("%s label counts:", name);
    for (int k = 0; k < d->num_classes; k++)
        printf(" %d:%zu", k, count[k]);
    printf("\n");
}

/* "NAME": {"n": N, "shape": [H, W, C], "label_counts": [...]} */
static void describe_json(const char *name, const nn_dataset *d)
{
    size_t count[256];
    cli_label_counts(d, count);
    cli_json_string(stdout, name);
    printf(": {\"n\": %zu, \"shape\": [%d, %d, %d], \"label_counts\": [",
           d->n, d->shape.dim[0], d->shape.dim[1], d->shape.dim[2]);
    for (int k = 0; k < d->num_classes; k++)
        printf("%s%zu", k ? ", " : "", count[k]);
    printf("]}");
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *data = NULL;
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'j': json = true; break;
        case 'h': usage(); return 0;
        default: return cli_usage_error("info", c, argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_error("info: unexpected argument '%s'", argv[optind]);
    const char *dir = cli_data_dir(data);
    nn_dataset train = {0}, test = {0};
    if (cli_load_split(dir, "train", false, 0, &train) ||
        cli_load_split(dir, "t10k", false, 0, &test)) {
        nn_dataset_free(&train);
        return 1;
    }
    if (json) {
        printf("{");
        describe_json("train", &train);
        printf(", ");
        describe_json("test", &test);
        printf("}\n");
    } else {
        describe("train", &train);
        describe("test", &test);
    }
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
