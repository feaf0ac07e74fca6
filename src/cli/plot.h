/*
 * plot.h - pictures for people: the misclassified digits, the confusion
 * matrix and the training curves, as PNG (through stb_image_write) or SVG.
 *
 * Each function writes `path` atomically (a temporary file in the same
 * folder, then rename), and returns 0, or prints one error line naming the
 * file and returns 1. The format follows the extension, .png or .svg
 * (case-insensitive); plot_errors writes PNG only.
 */
#ifndef DIGITS_PLOT_H
#define DIGITS_PLOT_H

#include <stdint.h>

#include "nn.h"

/* True if `path` ends in ".png" / ".svg". */
bool plot_is_png(const char *path);
bool plot_is_svg(const char *path);

/* A grid of the misclassified samples of `data` (grey images: (H, W, 1)
 * or (H*W) with H = W), at most 100, in data order, each labelled
 * "TRUE>PREDICTED" with the predicted probability. pred, prob: (data->n),
 * each sample's predicted class and its probability. */
int plot_errors(const char *path, const nn_dataset *data, const int *pred,
                const float *prob);

/* The most classes plot_confusion draws. */
#define PLOT_CONFUSION_MAX 100

/* A heat map of a (K, K) confusion matrix (rows true, columns predicted):
 * counts in the cells, blue on the diagonal, red off it, and each class's
 * accuracy beside its row. */
int plot_confusion(const char *path, const uint32_t *cm, int K);

/* Loss and accuracy per epoch, training and (where present) validation,
 * side by side. */
int plot_history(const char *path, const nn_history *h);

#endif
