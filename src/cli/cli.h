/*
 * cli.h - shared pieces of the digits tool: errors, option values, data
 * folders and output helpers. One file per subcommand (cmd_*.c).
 */
#ifndef DIGITS_CLI_H
#define DIGITS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "nn.h"

/* Each subcommand: argc/argv start at the subcommand name; returns the
 * process exit status (0 ok, 1 bad input or failure). */
int cmd_info(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export_c(int argc, char **argv);
int cmd_export_onnx(int argc, char **argv);   /* cmd_onnx.c */
int cmd_import_onnx(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Re-executes the tool with faster OpenBLAS kernels where OpenBLAS did not
 * recognise the processor (see blas_tune.c). Returns if nothing to do. */
void cli_blas_tune(char **argv);
/* The OpenBLAS kernel family this process runs with ("SkylakeX", ...), or
 * "none" in a build without BLAS; `digits --version` prints it. */
const char *cli_blas_kernels(void);

/* Prints "digits: <message>" as one line on stderr; returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* When set, cli_error hands it the message (no prefix, no newline) instead
 * of printing it (mpi.c: ranks other than 0 keep it for rank 0 to print). */
extern void (*cli_error_hook)(const char *msg);
/* Same, for a library error. */
int cli_nn_error(const nn_error *err);
/* Same, naming `what` (an option or file) in place of the library step
 * ("fit: ", "compile: ") that users of the tool never called. */
int cli_nn_error_as(const char *what, const nn_error *err);
/* "digits: unknown option '-x' (see 'digits CMD --help')", returns 1. */
int cli_usage_error(const char *cmd, int opt, const char *arg);

/* Parse option values; on failure print one line naming the option and
 * return false. */
bool cli_int(const char *opt, const char *val, long lo, long hi, long *out);
bool cli_float(const char *opt, const char *val, double lo, double hi,
               double *out);

/* Data folder: --data, else $DIGITS_DATA, else ./data/mnist. */
const char *cli_data_dir(const char *opt);

/* Loads split "train" or "t10k" from dir (raw or .gz file names), every
 * label below max_classes (0: NN_MAX_CLASSES). When the files are missing
 * and `fetch` is true, runs fetch-mnist first, saying so on stderr;
 * otherwise a missing dir is "no such folder". Returns 0 or prints the
 * error and returns 1. Commands fetch only into the default folder
 * (cli_data_fetch) and only `train` does. */
int cli_load_split(const char *dir, const char *split, bool fetch,
                   int max_classes, nn_dataset *out);

/* The same, but the images stay in their file, read by offset as batches
 * need them (nn_idx_open_pair; a .gz file is loaded): what a rank of
 * `mpirun digits train` holds, its memory falling with the ranks. */
int cli_open_split(const char *dir, const char *split, bool fetch,
                   int max_classes, nn_dataset *out);

/* True when MNIST may be fetched into the data folder on its own: no
 * --data was given (the folder is $DIGITS_DATA or ./data/mnist). */
bool cli_data_fetch(const char *opt);

/* The image and label files of split in dir as cli_load_split finds them
 * (raw, else .gz; the raw name when neither exists). */
void cli_split_paths(const char *dir, const char *split, char *img,
                     char *lab, size_t size);

/* Output files (paths.c). cli_check_output: not empty, not a folder,
 * device, FIFO or socket, and in a folder that exists and is writable
 * (a symbolic link is followed). cli_check_distinct: no output names the
 * same file as another output or as an input (same device and inode when
 * the file exists, same resolved path otherwise); entries with a NULL
 * path are skipped. Both print one line naming the option and return
 * false when a check fails. */
typedef struct cli_file {
    const char *opt;    /* "--out", or for inputs what it is: "data file" */
    const char *path;
} cli_file;

bool cli_check_output(const char *opt, const char *path);
bool cli_check_distinct(const cli_file *out, int n_out, const cli_file *in,
                        int n_in);

/* True when the data's samples have the model's input shape: the same
 * dimensions, or for a flat (rank-1) model input, the same size. Prints
 * one line naming `what` otherwise. */
bool cli_check_shape(const nn_model *m, nn_shape data, const char *what,
                     const char *dir);

/* Runs the fetch-mnist script for dir; returns its exit status (0 ok). */
int cli_run_fetch(const char *dir);

/* Model from a file path (if it exists) or a spec; NULL after an error
 * line. `input` and `classes` size specs. */
nn_model *cli_model_from_file_or_spec(const char *arg, nn_shape input,
                                      int classes, nn_optimizer *optimizer);

/* The optimizers' names from the library's registry: "sgd, rmsprop or
 * adam". */
void cli_optimizer_names(char *buf, size_t size);

/* Loads a digits model file or an ONNX file (by its name, .onnx, or its
 * first bytes), wherever a model file is accepted. NULL and err filled
 * on failure. */
nn_model *cli_model_load(const char *path, nn_error *err);

/* The JSON writer (json.c), used by every --json output. Writes s as a
 * JSON string literal: valid UTF-8 kept, control characters and bytes
 * that are not valid UTF-8 escaped (a byte B as \u00BB). */
void cli_json_string(FILE *f, const char *s);
/* Writes v with `decimals` digits after the point; null when v is NaN or
 * infinite (JSON has no such numbers). */
void cli_json_number(FILE *f, double v, int decimals);

/* Prints a (K, K) confusion matrix and per-class accuracy; with class
 * names (or NULL), a legend line after it. */
void cli_print_confusion(FILE *f, const uint32_t *cm, int K,
                         char *const *names);

/* How many samples of d have each label (IDX labels are bytes); d->labels
 * must be set. */
void cli_label_counts(const nn_dataset *d, size_t count[256]);

/* --classes where it sizes a model (summary, train): names "a,b,c" (their
 * count) or a count N, from 2 to NN_MAX_CLASSES, into *k. False after an
 * error line. */
bool cli_class_count(const char *arg, long *k);

/* Class names for --classes: "a,b,c" split into K names (in one
 * allocation, *names; free it). Returns false after an error line when the
 * count is not K or a name is empty. */
bool cli_class_names(const char *arg, int K, char ***names);

/* The model quantized to int8, calibrated on the first `calibrate`
 * training images of data_dir (cli_data_dir); NULL after an error line
 * naming model_path. Free with nn_qmodel_free. */
nn_qmodel *cli_quantize(const nn_model *m, const char *model_path,
                        const char *data_dir, long calibrate);

#endif
