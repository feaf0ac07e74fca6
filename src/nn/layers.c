/*
 * layers.c - layer constructors (nn_dense, nn_conv2d, ...), kind names and
 * the table from kind to implementation.
 */
#include "nn/layer.h"

nn_layer_spec nn_dense(int units, nn_activation act)
{
    return (nn_layer_spec){.kind = NN_LAYER_DENSE, .units = units,
                           .activation = act};
}

nn_layer_spec nn_conv2d(int filters, int kernel, int stride, nn_padding pad,
                        nn_activation act)
{
    return (nn_layer_spec){.kind = NN_LAYER_CONV2D, .units = filters,
                           .kernel = kernel, .stride = stride,
                           .padding = pad, .activation = act};
}

nn_layer_spec nn_maxpool2d(int pool, int stride)
{
    return (nn_layer_spec){.kind = NN_LAYER_MAXPOOL2D, .kernel = pool,
                           .stride = stride};
}

nn_layer_spec nn_avgpool2d(int pool, int stride)
{
    return (nn_layer_spec){.kind = NN_LAYER_AVGPOOL2D, .kernel = pool,
                           .stride = stride};
}

nn_layer_spec nn_flatten(void)
{
    return (nn_layer_spec){.kind = NN_LAYER_FLATTEN};
}

nn_layer_spec nn_dropout(float rate)
{
    return (nn_layer_spec){.kind = NN_LAYER_DROPOUT, .rate = rate};
}

nn_layer_spec nn_batchnorm(void)
{
    return (nn_layer_spec){.kind = NN_LAYER_BATCHNORM, .rate = 0.99f};
}

const char *nn_layer_kind_name(nn_layer_kind k)
{
    switch (k) {
    case NN_LAYER_DENSE: return "dense";
    case NN_LAYER_CONV2D: return "conv2d";
    case NN_LAYER_MAXPOOL2D: return "max_pooling2d";
    case NN_LAYER_AVGPOOL2D: return "average_pooling2d";
    case NN_LAYER_FLATTEN: return "flatten";
    case NN_LAYER_DROPOUT: return "dropout";
    case NN_LAYER_BATCHNORM: return "batch_normalization";
    }
    return "?";
}

const nn_layer_ops *nn_layer_ops_for(nn_layer_kind kind)
{
    switch (kind) {
    case NN_LAYER_DENSE: return &nn_dense_ops;
    case NN_LAYER_CONV2D: return &nn_conv2d_ops;
    case NN_LAYER_MAXPOOL2D: return &nn_maxpool2d_ops;
    case NN_LAYER_AVGPOOL2D: return &nn_avgpool2d_ops;
    case NN_LAYER_FLATTEN: return &nn_flatten_ops;
    case NN_LAYER_DROPOUT: return &nn_dropout_ops;
    case NN_LAYER_BATCHNORM: return &nn_batchnorm_ops;
    }
    return NULL;
}
