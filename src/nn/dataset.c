/*
 * dataset.c - sample shapes and data sets in memory (nn_shape, nn_dataset):
 * the types every floor shares, so they live with the library. Readers
 * (src/data/idx.c, ...) fill a data set and hand it malloc'd buffers in
 * `owned`, or a source that reads samples on demand; nn_dataset_free
 * frees the one with free() and closes the other.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"

nn_shape nn_shape1(int n)
{
    return (nn_shape){.rank = 1, .dim = {n, 1, 1}};
}

nn_shape nn_shape3(int h, int w, int c)
{
    return (nn_shape){.rank = 3, .dim = {h, w, c}};
}

size_t nn_shape_size(nn_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= (size_t)s.dim[i];
    return n;
}

void nn_dataset_free(nn_dataset *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < NN_DATASET_OWNED; i++)
        free(d->owned[i]);
    if (d->source.close)
        d->source.close(d->source.ctx);
    memset(d, 0, sizeof *d);
}

/* Elements in one sample of shape s (0 for an unset shape). */
static size_t sample_size(nn_shape s)
{
    if (s.rank < 1 || s.rank > 3)
        return 0;
    size_t n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= s.dim[i] > 0 ? (size_t)s.dim[i] : 0;
    return n;
}

size_t nn_dataset_target_width(const nn_dataset *d)
{
    if (!d || !d->targets)
        return 0;
    if (d->target_width > 0)
        return (size_t)d->target_width;
    return d->num_classes > 0 ? (size_t)d->num_classes : 0;
}

nn_dataset nn_dataset_slice(const nn_dataset *d, size_t begin, size_t count)
{
    nn_dataset s;
    memset(&s, 0, sizeof s);
    if (!d)
        return s;
    s = *d;
    memset(s.owned, 0, sizeof s.owned);
    s.source.close = NULL;
    if (begin > d->n)
        begin = d->n;
    s.n = count < d->n - begin ? count : d->n - begin;
    size_t n = sample_size(d->shape), tw = nn_dataset_target_width(d);
    if (d->x_u8)
        s.x_u8 = d->x_u8 + begin * n;
    if (d->x_f32)
        s.x_f32 = d->x_f32 + begin * n;
    if (d->source.read)
        s.source.first = d->source.first + begin;
    if (d->labels)
        s.labels = d->labels + begin;
    if (d->targets && tw > 0)
        s.targets = d->targets + begin * tw;
    else if (d->targets && begin > 0)
        s.targets = NULL;   /* row width unknown: no view past row 0 */
    return s;
}
