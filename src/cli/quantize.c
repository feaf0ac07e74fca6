/*
 * quantize.c - the int8 model the --int8 options use: the model quantized
 * with the first N training images of the data folder as calibration
 * (the same for export-c, evaluate and predict, so they agree).
 */
#include "cli/cli.h"

nn_qmodel *cli_quantize(const nn_model *m, const char *model_path,
                        const char *data_dir, long calibrate)
{
    nn_dataset train = {0};
    if (cli_load_split(cli_data_dir(data_dir), "train", false, 0, &train))
        return NULL;
    size_t n = (size_t)calibrate < train.n ? (size_t)calibrate : train.n;
    nn_error err;
    nn_qmodel *q = nn_model_quantize(m, &train, n, &err);
    if (!q)
        cli_error("%s: %s", model_path, err.msg);
    nn_dataset_free(&train);
    return q;
}
