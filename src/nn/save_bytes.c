/*
 * save_bytes.c - nn_save_bytes: any bytes to a file, atomically (afile.c),
 * for the text the library returns (nn_model_export_c).
 */
#include "nn/internal.h"

nn_status nn_save_bytes(const char *path, const void *data, size_t size,
                        nn_error *err)
{
    nn_afile af;
    nn_status s = nn_afile_open(&af, path, err);
    if (s != NN_OK)
        return s;
    if (size && fwrite(data, 1, size, af.f) != size) {
        nn_afile_abort(&af);
        return nn_fail(err, NN_ERR_IO, "%s: cannot write", path);
    }
    return nn_afile_commit(&af, err);
}
