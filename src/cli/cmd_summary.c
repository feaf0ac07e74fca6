/*
 * cmd_summary.c - `digits summary --model FILE|SPEC`.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void usage(void)
{
    puts("usage: digits summary [--model FILE|SPEC] [--input HxWxC]\n"
         "                      [--classes A,B,..|N] [--json]\n\n"
         "Prints the layer table of a saved model or of a spec (a preset:\n"
         "mlp, cnn, lenet5; or a layer list such as\n"
         "\"dense(512,relu) dense(10,softmax)\").\n\n"
         "  --model FILE|SPEC  model file or spec (default: mlp)\n"
         "  --input HxWxC      input shape for a spec (default 28x28x1)\n"
         "  --classes A,B,..   the classes' names, as in evaluate and predict:\n"
         "                     a preset gets one output per name (or give\n"
         "                     their number N; default 10)\n"
         "  --json             one JSON object on stdout: {\"model\", \"layers\":\n"
         "                     [{\"name\", \"type\", \"output_shape\", \"params\"}],\n"
         "                     \"params\"}");
}

static void print_json(const nn_model *m, const char *model)
{
    int count[256] = {0};
    printf("{\"model\": ");
    cli_json_string(stdout, model);
    printf(", \"input_shape\": ");
    nn_shape in = nn_model_input_shape(m);
    printf(in.rank == 3 ? "[%d, %d, %d]" : "[%d]", in.dim[0], in.dim[1],
           in.dim[2]);
    printf(", \"layers\": [");
    for (int i = 0; i < nn_model_layer_count(m); i++) {
        nn_layer_spec sp = nn_model_layer(m, i);
        nn_shape o = nn_model_layer_output_shape(m, i);
        int k = (unsigned)sp.kind < 256 ? count[sp.kind]++ : 0;
        char name[64];
        if (k)
            snprintf(name, sizeof name, "%s_%d", nn_layer_kind_name(sp.kind),
                     k);
        else
            snprintf(name, sizeof name, "%s", nn_layer_kind_name(sp.kind));
        printf("%s{\"name\": ", i ? ", " : "");
        cli_json_string(stdout, name);
        printf(", \"type\": ");
        cli_json_string(stdout, nn_layer_keras_name(sp.kind));
        printf(o.rank == 3 ? ", \"output_shape\": [%d, %d, %d]"
                           : ", \"output_shape\": [%d]",
               o.dim[0], o.dim[1], o.dim[2]);
        printf(", \"params\": %zu}", nn_model_layer_param_count(m, i));
    }
    printf("], \"params\": %zu}\n", nn_model_param_count(m));
}

int cmd_summary(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"input", required_argument, 0, 'i'},
        {"classes", required_argument, 0, 'c'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = "mlp";
    int h = 28, w = 28, ch = 1;
    long classes = 10;
    bool json = false;
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
            if (!cli_class_count(optarg, &classes))
                return 1;
            break;
        case 'j': json = true; break;
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
    if (json) {
        print_json(m, model);
        nn_model_free(m);
        return 0;
    }
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
