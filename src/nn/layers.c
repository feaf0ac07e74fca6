/*
 * layers.c - the layer registry: one row per kind, read by everything that
 * enumerates kinds (nn_model_add's ops lookup, the kind names, the spec
 * parser and its "known layers" message, the summary, compile's softmax
 * check). A new kind is an enum value and constructor in nn.h, a file with
 * its nn_layer_ops, and one row here.
 */
#include <stddef.h>

#include "nn/layer.h"

/* Rows indexed by kind; index 0 (no kind) stays empty. */
static const nn_layer_kind_info kinds[NN_LAYER_KIND_COUNT] = {
    [NN_LAYER_DENSE] = {
        NN_LAYER_DENSE, "dense", "Dense", "dense", "ua", 1,
        {.kind = NN_LAYER_DENSE}, &nn_dense_ops},
    [NN_LAYER_CONV2D] = {
        NN_LAYER_CONV2D, "conv2d", "Conv2D", "conv2d conv", "uka", 2,
        {.kind = NN_LAYER_CONV2D}, &nn_conv2d_ops},
    [NN_LAYER_MAXPOOL2D] = {
        NN_LAYER_MAXPOOL2D, "max_pooling2d", "MaxPooling2D",
        "maxpool maxpool2d max_pooling2d", "k", 0,
        {.kind = NN_LAYER_MAXPOOL2D, .kernel = 2}, &nn_maxpool2d_ops},
    [NN_LAYER_AVGPOOL2D] = {
        NN_LAYER_AVGPOOL2D, "average_pooling2d", "AveragePooling2D",
        "avgpool avgpool2d average_pooling2d", "k", 0,
        {.kind = NN_LAYER_AVGPOOL2D, .kernel = 2}, &nn_avgpool2d_ops},
    [NN_LAYER_FLATTEN] = {
        NN_LAYER_FLATTEN, "flatten", "Flatten", "flatten", "", 0,
        {.kind = NN_LAYER_FLATTEN}, &nn_flatten_ops},
    [NN_LAYER_DROPOUT] = {
        NN_LAYER_DROPOUT, "dropout", "Dropout", "dropout", "r", 1,
        {.kind = NN_LAYER_DROPOUT}, &nn_dropout_ops},
    [NN_LAYER_BATCHNORM] = {
        NN_LAYER_BATCHNORM, "batch_normalization", "BatchNormalization",
        "batchnorm batch_normalization", "", 0,
        {.kind = NN_LAYER_BATCHNORM, .rate = 0.99f}, &nn_batchnorm_ops},
    [NN_LAYER_GLOBAL_AVGPOOL2D] = {
        NN_LAYER_GLOBAL_AVGPOOL2D, "global_average_pooling2d",
        "GlobalAveragePooling2D",
        "globalavgpool2d gap global_average_pooling2d", "", 0,
        {.kind = NN_LAYER_GLOBAL_AVGPOOL2D}, &nn_gap2d_ops},
    [NN_LAYER_LEAKY_RELU] = {
        NN_LAYER_LEAKY_RELU, "leaky_re_lu", "LeakyReLU",
        "leakyrelu leaky_relu leaky_re_lu", "r", 0,
        {.kind = NN_LAYER_LEAKY_RELU, .rate = 0.3f}, &nn_leaky_relu_ops},
};

const nn_layer_kind_info *nn_layer_kind_info_for(nn_layer_kind k)
{
    if ((unsigned)k >= NN_LAYER_KIND_COUNT || !kinds[k].name)
        return NULL;
    return &kinds[k];
}

const char *nn_layer_kind_name(nn_layer_kind k)
{
    const nn_layer_kind_info *in = nn_layer_kind_info_for(k);
    return in ? in->name : "?";
}

const char *nn_layer_keras_name(nn_layer_kind k)
{
    const nn_layer_kind_info *in = nn_layer_kind_info_for(k);
    return in ? in->keras : "?";
}

const nn_layer_ops *nn_layer_ops_for(nn_layer_kind kind)
{
    const nn_layer_kind_info *in = nn_layer_kind_info_for(kind);
    return in ? in->ops : NULL;
}

/* ------------------------------------------------------- constructors */

static nn_layer_spec defaults(nn_layer_kind k)
{
    return kinds[k].defaults;
}

nn_layer_spec nn_dense(int units, nn_activation act)
{
    nn_layer_spec s = defaults(NN_LAYER_DENSE);
    s.units = units;
    s.activation = act;
    return s;
}

nn_layer_spec nn_conv2d(int filters, int kernel, int stride, nn_padding pad,
                        nn_activation act)
{
    nn_layer_spec s = defaults(NN_LAYER_CONV2D);
    s.units = filters;
    s.kernel = kernel;
    s.stride = stride;
    s.padding = pad;
    s.activation = act;
    return s;
}

nn_layer_spec nn_maxpool2d(int pool, int stride)
{
    nn_layer_spec s = defaults(NN_LAYER_MAXPOOL2D);
    s.kernel = pool;
    s.stride = stride;
    return s;
}

nn_layer_spec nn_avgpool2d(int pool, int stride)
{
    nn_layer_spec s = defaults(NN_LAYER_AVGPOOL2D);
    s.kernel = pool;
    s.stride = stride;
    return s;
}

nn_layer_spec nn_flatten(void) { return defaults(NN_LAYER_FLATTEN); }

nn_layer_spec nn_dropout(float rate)
{
    nn_layer_spec s = defaults(NN_LAYER_DROPOUT);
    s.rate = rate;
    return s;
}

nn_layer_spec nn_batchnorm(void) { return defaults(NN_LAYER_BATCHNORM); }

nn_layer_spec nn_global_avgpool2d(void)
{
    return defaults(NN_LAYER_GLOBAL_AVGPOOL2D);
}

nn_layer_spec nn_leaky_relu(float alpha)
{
    nn_layer_spec s = defaults(NN_LAYER_LEAKY_RELU);
    s.rate = alpha;
    return s;
}
