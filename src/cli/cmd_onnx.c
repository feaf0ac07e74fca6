/*
 * cmd_onnx.c - `digits export-onnx` and `digits import-onnx` (docs/onnx.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static void export_usage(void)
{
    puts("usage: digits export-onnx --model FILE --out FILE.onnx\n\n"
         "Writes a model as ONNX (opset 13) for onnxruntime, OpenVINO, "
         "TensorRT,\n"
         "browsers. Input \"input\": float32 (N, 28, 28, 1) for image "
         "models or\n"
         "(N, 784), values pixel/255; output \"output\": (N, classes), "
         "probabilities.\n"
         "See docs/onnx.md.\n\n"
         "  --model FILE   model file (.nn or .onnx)\n"
         "  --out FILE     the ONNX file to write");
}

int cmd_export_onnx(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"out", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *out = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'h': export_usage(); return 0;
        default: return cli_usage_error("export-onnx", c, argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_error("export-onnx: unexpected argument '%s'",
                         argv[optind]);
    if (!model || !out)
        return cli_error("export-onnx: --model and --out are required");
    nn_error err;
    nn_model *m = cli_model_load(model, &err);
    if (!m)
        return cli_nn_error(&err);
    int rc = 0;
    if (nn_onnx_save(m, out, &err) != NN_OK)
        rc = cli_nn_error(&err);
    else
        printf("wrote %s (ONNX opset %d)\n", out, NN_ONNX_OPSET);
    nn_model_free(m);
    return rc;
}

static void import_usage(void)
{
    puts("usage: digits import-onnx FILE.onnx --out FILE [--normalize M,S]"
         "\n\n"
         "Converts an ONNX model (from PyTorch's torch.onnx.export, tf2onnx "
         "or\n"
         "export-onnx) into a digits model file. See docs/onnx.md for the "
         "ops\n"
         "supported.\n\n"
         "  --out FILE        the model file to write\n"
         "  --normalize M,S   the model was trained on (pixel/255 - M) / S "
         "(PyTorch's\n"
         "                    Normalize((M,), (S,)); MNIST examples use "
         "0.1307,0.3081);\n"
         "                    stored with the model (default: pixel/255 "
         "as is)");
}

int cmd_import_onnx(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},
        {"normalize", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *out = NULL;
    nn_onnx_options o = nn_onnx_defaults();
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n': {
            char *end;
            double m = strtod(optarg, &end), s = 0;
            if (end != optarg && *end == ',') {
                const char *q = end + 1;
                s = strtod(q, &end);
                if (end == q || *end)
                    s = 0;
            }
            if (!(s >= 1e-6 && s <= 1e6) || !(m >= -1e6 && m <= 1e6))
                return cli_error("--normalize: expected MEAN,STD such as "
                                 "0.1307,0.3081, got '%s'", optarg);
            o.mean = (float)m;
            o.std = (float)s;
            break;
        }
        case 'h': import_usage(); return 0;
        default: return cli_usage_error("import-onnx", c, argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_error(optind < argc ? "import-onnx: one ONNX file, please"
                                       : "import-onnx: no ONNX file given");
    if (!out)
        return cli_error("import-onnx: --out is required");
    nn_error err;
    nn_model *m = nn_onnx_load(argv[optind], &o, &err);
    if (!m)
        return cli_nn_error(&err);
    int rc = 0;
    if (nn_model_save(m, out, false, &err) != NN_OK)
        rc = cli_nn_error(&err);
    else
        printf("wrote %s (%d layers, %zu parameters)\n", out,
               nn_model_layer_count(m), nn_model_param_count(m));
    nn_model_free(m);
    return rc;
}
