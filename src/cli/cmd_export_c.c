/*
 * cmd_export_c.c - `digits export-c --model FILE --out DIR`: the model as
 * C99 source for a microcontroller, DIR/NAME.h and DIR/NAME.c, float or
 * int8 (--int8). The library writes the text; the files are saved
 * atomically.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static void usage(void)
{
    printf("usage: digits export-c [--model FILE] [--name NAME] [--int8]\n"
           "                       [--calibrate N] [--data DIR] [--threads N]\n"
           "                       --out DIR\n\n"
           "Writes the model as plain C99 for devices: DIR/NAME.h (the\n"
           "interface, NAME_predict) and DIR/NAME.c (weights as static const\n"
           "arrays, no malloc, scratch memory from the caller).\n\n"
           "  --model FILE   model file (default model.nn)\n"
           "  --name NAME    C identifier for the files and functions\n"
           "                 (default model)\n"
           "  --int8         int8 post-training quantization "
           "(docs/quantization.md)\n"
           "  --calibrate N  training images that calibrate the int8 ranges\n"
           "                 (default %d; evaluate/predict --int8 use the same)\n"
           "  --data DIR     data folder for calibration (default "
           "$DIGITS_DATA or ./data/mnist)\n"
           "  --threads N    threads (default: all cores)\n"
           "  --out DIR      output folder (created if missing)\n",
           NN_QUANT_CALIBRATE);
}

/* "dir/name.ext" into a new string. */
static char *join(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s%s", dir, name, ext);
    return s;
}

int cmd_export_c(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"name", required_argument, 0, 'n'},
        {"int8", no_argument, 0, 'q'},
        {"calibrate", required_argument, 0, 'c'},
        {"data", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = "model.nn", *name = "model", *data = NULL,
               *out = NULL;
    bool int8 = false;
    long calibrate = NN_QUANT_CALIBRATE, threads = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'n': name = optarg; break;
        case 'q': int8 = true; break;
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'c':
            if (!cli_int("--calibrate", optarg, 1, 1000000, &calibrate))
                return 1;
            break;
        case 't':
            if (!cli_int("--threads", optarg, 0, 1024, &threads))
                return 1;
            break;
        case 'h': usage(); return 0;
        default: return cli_usage_error("export-c", c, argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_error("export-c: unexpected argument '%s'", argv[optind]);
    if (!out)
        return cli_error("export-c: --out DIR is required (see 'digits "
                         "export-c --help')");
    if (!nn_export_name_ok(name))
        return cli_error("--name: '%.80s' is not a C identifier of 1..%d "
                         "characters (letters, digits, '_', not a keyword)",
                         name, NN_EXPORT_MAX_NAME);
    struct stat st;
    if (stat(out, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return cli_error("--out: '%s' exists and is not a folder", out);
    } else if (errno != ENOENT || mkdir(out, 0777) != 0) {
        return cli_error("--out: cannot create folder '%s': %s", out,
                         strerror(errno));
    }
    nn_set_threads((int)threads);
    nn_error err;
    nn_model *m = cli_model_load(model, &err);
    if (!m)
        return cli_nn_error(&err);
    nn_qmodel *q = NULL;
    nn_export_c ex = {0};
    char *hpath = join(out, name, ".h"), *cpath = join(out, name, ".c");
    int rc = 1;
    if (!hpath || !cpath) {
        cli_error("out of memory");
        goto done;
    }
    if (int8 && !(q = cli_quantize(m, model, data, calibrate)))
        goto done;
    if (nn_model_export_c(m, q, name, "digits " NN_VERSION_STRING, &ex,
                          &err) != NN_OK) {
        cli_error("%s: %s", model, err.msg);
        goto done;
    }
    if (nn_write_file_atomic(hpath, ex.header, strlen(ex.header), &err) != NN_OK ||
        nn_write_file_atomic(cpath, ex.source, strlen(ex.source), &err) != NN_OK) {
        cli_nn_error(&err);
        goto done;
    }
    printf("wrote %s and %s: %s, %zu bytes of tables, %zu bytes of "
           "scratch\n", hpath, cpath, int8 ? "int8" : "float32",
           ex.weight_bytes, ex.scratch_bytes);
    rc = 0;
done:
    nn_export_c_free(&ex);
    free(hpath);
    free(cpath);
    nn_qmodel_free(q);
    nn_model_free(m);
    return rc;
}
