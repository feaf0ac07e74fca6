/*
 * main.c - the digits tool: dispatches to one subcommand per file.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"info", cmd_info, "shapes and label counts of the data set"},
    {"train", cmd_train, "train a model, evaluate it, save it"},
    {"evaluate", cmd_evaluate, "test loss, accuracy and confusion matrix"},
    {"predict", cmd_predict, "recognise the digit in image files"},
    {"serve", cmd_serve, "a page to draw digits on, and an HTTP API"},
    {"summary", cmd_summary, "layer table of a model file or spec"},
    {"fetch", cmd_fetch, "download and verify the MNIST files"},
    {"export-c", cmd_export_c, "C source of a model for microcontrollers"},
    {"export-onnx", cmd_export_onnx, "write a model as ONNX"},
    {"import-onnx", cmd_import_onnx, "convert an ONNX model to a model file"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: digits COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'digits COMMAND --help' or 'digits help COMMAND' describes a "
               "command's options.\n"
               "Data: --data DIR, else $DIGITS_DATA, else ./data/mnist.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_error("no command given (see 'digits --help')");
    const char *cmd = argv[1];
    cli_blas_tune(argv);
    /* Human output and error lines stay in order in one log: stdout is
     * flushed at every line (and by cli_error before it writes). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(cmd, "help") && argc > 2) {   /* digits help CMD */
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
            if (!strcmp(argv[2], commands[i].name)) {
                char *av[] = {argv[2], "--help", NULL};
                return commands[i].run(2, av);
            }
        return cli_error("help: unknown command '%s' (see 'digits --help')",
                         argv[2]);
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("digits %s\nblas kernels: %s\n", NN_VERSION_STRING,
               cli_blas_kernels());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    return cli_error("unknown command '%s' (see 'digits --help')", cmd);
}
