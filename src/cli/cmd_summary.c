/*
 * cmd_summary.c - `digits summary --model FILE|SPEC`.
 */
#include <getopt.h>
#include <stdlib.h>

#include "cli/cli.h"

static void usage(void)
{
    puts("usage: digits summary --model FILE|SPEC [--input HxWxC]\n\n"
         "Prints the layer table of a saved model or of a spec (a preset:\n"
         "mlp, cnn, lenet5; or a layer list such as\n"
         "\"dense(512,relu) dense(10,softmax)\").\n\n"
         "  --model FILE|SPEC  model file or spec (default: mlp)\n"
         "  --input HxWxC      input shape for a spec (default 28x28x1)\n"
         "  --classes N        output classes for a preset (default 10)");
}

int cmd_summary(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"input", required_argument, 0, 'i'},
        {"classes", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = "mlp";
    int h = 28, w = 28, ch = 1;
    long classes = 10;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i':
            if (sscanf(optarg, "%dx%dx%d", &h, &w, &ch) != 3 || h < 1 ||
                w < 1 || ch < 1 || h > NN_MAX_DIM || w > NN_MAX_DIM ||
                ch > NN_MAX_DIM)
                return cli_error("--input: expected HxWxC such as 28x28x1, "
                                 "got '%s'", optarg);
            break;
        case 'c':
            if (!cli_int("--classes", optarg, 2, NN_MAX_CLASSES, &classes))
                return 1;
            break;
        case 'h': usage(); return 0;
        default: return cli_usage_error("summary", c, argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_error("summary: unexpected argument '%s'", argv[optind]);
    nn_model *m = cli_model_from_file_or_spec(model, nn_shape3(h, w, ch),
                                              (int)classes, NULL);
    if (!m)
        return 1;
    size_t n = nn_model_summary(m, NULL, 0);
    char *buf = malloc(n + 1);
    if (!buf) {
        nn_model_free(m);
        return cli_error("out of memory");
    }
    nn_model_summary(m, buf, n + 1);
    fputs(buf, stdout);
    free(buf);
    nn_model_free(m);
    return 0;
}
