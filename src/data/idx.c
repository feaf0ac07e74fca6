/*
 * idx.c - the IDX format (MNIST, Fashion-MNIST), raw or gzip-compressed,
 * and the data sets built from a pair of IDX files: loaded, or with the
 * images left in their file and read by offset (nn_idx_open_pair).
 *
 *   bytes 0..3   0x00 0x00 TYPE RANK      (only TYPE 0x08, unsigned byte)
 *   then         RANK big-endian u32 dimensions
 *   then         product(dims) elements, row-major
 *
 * Everything is validated before it sizes an allocation: rank 1..4, each
 * dimension 1..NN_MAX_DIM, total bytes <= NN_MAX_IDX_BYTES (computed without
 * overflow), and for raw files the file's length must equal header +
 * payload. A gzip file's length says nothing about its contents, so its
 * buffer starts at GZ_FIRST bytes at most and doubles only when data that
 * has really arrived fills it: a lying header cannot make us allocate more
 * than twice what the file actually holds.
 *
 * gzip is detected by content (0x1f 0x8b), not by name. Data after the end
 * of the gzip stream (not another gzip member) is ignored, as zlib does.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nn/internal.h"

#define GZ_FIRST ((size_t)16 << 20)   /* first gzip buffer, 16 MiB */
#define IO_CHUNK ((size_t)1 << 30)    /* largest single read() / gzread() */

/* The largest payload we accept: the documented limit, or less where
 * size_t is narrower. */
static const uint64_t max_payload =
    NN_MAX_IDX_BYTES < SIZE_MAX ? NN_MAX_IDX_BYTES : SIZE_MAX;

/* ------------------------------------------------------------- reading */

/* An open IDX file: raw (gz == NULL, read with read()) or gzip; or IDX
 * bytes in memory (mem != NULL): raw (copied) or gzip (inflated here with
 * the same rules as zlib's gzread: further gzip members are read on,
 * anything else after a member is ignored, a stream cut short just ends). */
typedef struct idx_reader {
    const char *path; /* the file name, or the caller's name for memory */
    int fd;           /* -1 once handed to zlib */
    gzFile gz;        /* NULL for raw files */
    uint64_t size;    /* file length in bytes (compressed for gzip) */
    const unsigned char *mem;   /* memory input (size bytes), or NULL */
    size_t pos;       /* next unread byte of mem */
    z_stream zs;      /* memory gzip: the inflate state, when zinit */
    bool zinit;       /* memory input is gzip */
    bool zmember_end; /* a gzip member just ended */
    bool zend;        /* no more data will come */
    bool ztrunc;      /* the data ended inside a gzip member */
} idx_reader;

/* Opens `path`: a regular file, or a clear error (a directory, a missing
 * file). O_NONBLOCK keeps a FIFO from hanging us before fstat rejects it. */
static nn_status reader_open(idx_reader *r, const char *path, nn_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (r->fd < 0)
        return nn_fail(err, NN_ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    struct stat st;
    nn_status s = NN_OK;
    if (fstat(r->fd, &st) != 0)
        s = nn_fail(err, NN_ERR_IO, "%s: cannot stat: %s", path,
                    strerror(errno));
    else if (S_ISDIR(st.st_mode))
        s = nn_fail(err, NN_ERR_IO, "%s: is a directory, not an IDX file",
                    path);
    else if (!S_ISREG(st.st_mode))
        s = nn_fail(err, NN_ERR_IO, "%s: not a regular file", path);
    if (s != NN_OK) {
        close(r->fd);
        return s;
    }
    r->size = (uint64_t)st.st_size;
    unsigned char magic[2];
    if (pread(r->fd, magic, 2, 0) != 2 || magic[0] != 0x1f || magic[1] != 0x8b)
        return NN_OK;   /* raw (a short or unreadable file fails later) */
    if (!(r->gz = gzdopen(r->fd, "rb"))) {
        close(r->fd);
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", path);
    }
    r->fd = -1;   /* zlib owns it now */
    gzbuffer(r->gz, 1 << 17);
    return NN_OK;
}

/* Sets up a reader over `size` bytes at `data`. */
static nn_status reader_open_mem(idx_reader *r, const void *data, size_t size,
                                 const char *name, nn_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = name;
    r->fd = -1;
    r->mem = data;
    r->size = size;
    if (size < 2 || r->mem[0] != 0x1f || r->mem[1] != 0x8b)
        return NN_OK;   /* raw */
    int rc = inflateInit2(&r->zs, 15 + 16);   /* gzip wrapper only */
    if (rc != Z_OK)
        return nn_fail(err, rc == Z_MEM_ERROR ? NN_ERR_NOMEM : NN_ERR_FORMAT,
                       "%s: cannot start gzip decoding", name);
    r->zinit = true;
    return NN_OK;
}

/* Inflates up to n bytes of memory gzip data into dst (adds to *got). */
static nn_status mem_gz_read(idx_reader *r, unsigned char *dst, size_t n,
                             size_t *got, nn_error *err)
{
    z_stream *z = &r->zs;
    while (*got < n && !r->zend) {
        size_t left = (size_t)r->size - r->pos;
        if (r->zmember_end) {
            /* another member follows, or the rest is ignored (as gzread) */
            if (left < 2 || r->mem[r->pos] != 0x1f ||
                r->mem[r->pos + 1] != 0x8b) {
                r->zend = true;
                break;
            }
            inflateReset(z);
            r->zmember_end = false;
        }
        size_t want = n - *got;
        z->next_in = (Bytef *)(uintptr_t)(r->mem + r->pos);
        z->avail_in = left < IO_CHUNK ? (uInt)left : (uInt)IO_CHUNK;
        z->next_out = dst + *got;
        z->avail_out = want < IO_CHUNK ? (uInt)want : (uInt)IO_CHUNK;
        uInt in0 = z->avail_in, out0 = z->avail_out;
        int rc = inflate(z, Z_NO_FLUSH);
        r->pos += in0 - z->avail_in;
        *got += out0 - z->avail_out;
        if (rc == Z_STREAM_END) {
            r->zmember_end = true;
        } else if (rc == Z_MEM_ERROR) {
            return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", r->path);
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return nn_fail(err, NN_ERR_FORMAT, "%s: corrupt gzip data (%s)",
                           r->path, z->msg ? z->msg : "inflate failed");
        } else if (r->pos == r->size ||
                   (in0 == z->avail_in && out0 == z->avail_out)) {
            r->zend = r->ztrunc = true;   /* input ran out inside a member */
        }
    }
    return NN_OK;
}

static void reader_close(idx_reader *r)
{
    if (r->zinit)
        inflateEnd(&r->zs);
    r->zinit = false;
    if (r->gz)
        gzclose(r->gz);
    else if (r->fd >= 0)
        close(r->fd);
    r->gz = NULL;
    r->fd = -1;
}

/* A failed gzread: corrupt data, or an I/O error underneath. */
static nn_status gz_failure(idx_reader *r, nn_error *err)
{
    int code = Z_OK;
    const char *what = gzerror(r->gz, &code);
    if (code == Z_ERRNO)
        return nn_fail(err, NN_ERR_IO, "%s: read error: %s", r->path,
                       strerror(errno));
    if (code == Z_MEM_ERROR)
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", r->path);
    /* zlib prefixes its own name for the file, "<fd:3>: "; ours is first */
    const char *colon = what && !strncmp(what, "<fd:", 4) ? strstr(what, ": ")
                                                         : NULL;
    return nn_fail(err, NN_ERR_FORMAT, "%s: corrupt gzip data (%s)", r->path,
                   colon ? colon + 2 : what);
}

/* Reads up to n bytes into dst; *got < n only at the end of the data (for
 * gzip, a stream cut short also just ends: the caller reports truncation). */
static nn_status reader_read(idx_reader *r, unsigned char *dst, size_t n,
                             size_t *got, nn_error *err)
{
    *got = 0;
    if (r->zinit)
        return mem_gz_read(r, dst, n, got, err);
    if (r->mem) {
        size_t left = (size_t)r->size - r->pos;
        *got = n < left ? n : left;
        memcpy(dst, r->mem + r->pos, *got);
        r->pos += *got;
        return NN_OK;
    }
    while (*got < n) {
        size_t want = n - *got < IO_CHUNK ? n - *got : IO_CHUNK;
        long long k;
        if (r->gz) {
            k = gzread(r->gz, dst + *got, (unsigned)want);
            if (k < 0)
                return gz_failure(r, err);
        } else {
            k = read(r->fd, dst + *got, want);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return nn_fail(err, NN_ERR_IO, "%s: read error: %s", r->path,
                               strerror(errno));
        }
        if (k == 0)
            break;
        *got += (size_t)k;
    }
    return NN_OK;
}

/* ------------------------------------------------------------- header */

/* Reads and checks the header; fills out->rank, out->dim and *payload
 * (the element bytes it promises) and *header (its own length). */
static nn_status read_header(idx_reader *r, nn_idx *out, uint64_t *payload,
                             uint64_t *header, nn_error *err)
{
    unsigned char h[4 + 4 * 4];
    size_t got;
    nn_status s = reader_read(r, h, 4, &got, err);
    if (s != NN_OK)
        return s;
    if (got < 4)
        return nn_fail(err, NN_ERR_FORMAT, "%s: too short for an IDX header "
                       "(%zu bytes)", r->path, got);
    if (h[0] != 0 || h[1] != 0)
        return nn_fail(err, NN_ERR_FORMAT, "%s: bad magic 0x%02x%02x (not an "
                       "IDX file)", r->path, h[0], h[1]);
    if (h[2] != 0x08)
        return nn_fail(err, NN_ERR_FORMAT, "%s: element type 0x%02x is not "
                       "supported (only unsigned byte, 0x08)", r->path, h[2]);
    int rank = h[3];
    if (rank < 1 || rank > 4)
        return nn_fail(err, NN_ERR_FORMAT, "%s: rank %d is not supported "
                       "(must be 1..4)", r->path, rank);
    if ((s = reader_read(r, h + 4, 4 * (size_t)rank, &got, err)) != NN_OK)
        return s;
    if (got < 4 * (size_t)rank)
        return nn_fail(err, NN_ERR_FORMAT, "%s: truncated header (%d "
                       "dimensions promised)", r->path, rank);
    uint64_t total = 1;   /* <= max_payload * NN_MAX_DIM: cannot overflow */
    for (int i = 0; i < rank; i++) {
        uint32_t d = nn_get_u32_be(h + 4 + 4 * i);
        if (d == 0)
            return nn_fail(err, NN_ERR_FORMAT, "%s: dimension %d is 0",
                           r->path, i + 1);
        if (d > NN_MAX_DIM)
            return nn_fail(err, NN_ERR_LIMIT, "%s: dimension %d is %u, over "
                           "the limit of %d", r->path, i + 1, d, NN_MAX_DIM);
        total *= d;
        if (total > max_payload)
            return nn_fail(err, NN_ERR_LIMIT, "%s: header promises more than "
                           "the limit of %llu bytes of data", r->path,
                           (unsigned long long)max_payload);
        out->dim[i] = d;
    }
    out->rank = rank;
    *payload = total;
    *header = 4 + 4 * (uint64_t)rank;
    return NN_OK;
}

/* A raw file's length must be exactly header + payload. */
static nn_status check_raw_length(const idx_reader *r, uint64_t header,
                                  uint64_t payload, nn_error *err)
{
    uint64_t have = r->size > header ? r->size - header : 0;
    if (have < payload)
        return nn_fail(err, NN_ERR_FORMAT, "%s: truncated: expected %llu "
                       "bytes of data, found %llu", r->path,
                       (unsigned long long)payload, (unsigned long long)have);
    if (have > payload)
        return nn_fail(err, NN_ERR_FORMAT, "%s: expected %llu bytes of data, "
                       "found %llu (trailing bytes)", r->path,
                       (unsigned long long)payload, (unsigned long long)have);
    return NN_OK;
}

/* ------------------------------------------------------------ payload */

/* Reads exactly `payload` bytes into a new buffer *data (caller frees).
 * Raw: the file length was checked, so the whole buffer is allocated at
 * once. Gzip: the buffer grows (doubling from GZ_FIRST) only when real
 * data has filled it. */
static nn_status read_payload(idx_reader *r, uint64_t payload,
                              uint8_t **data, nn_error *err)
{
    bool gz = r->gz || r->zinit;
    size_t cap = gz && payload > GZ_FIRST ? GZ_FIRST : (size_t)payload;
    size_t have = 0;
    uint8_t *buf = malloc(cap);
    nn_status s = NN_OK;
    if (!buf)
        return nn_fail(err, NN_ERR_NOMEM, "%s: out of memory for %zu bytes",
                       r->path, cap);
    for (;;) {
        size_t got;
        if ((s = reader_read(r, buf + have, cap - have, &got, err)) != NN_OK)
            break;
        have += got;
        if (have < cap || have == payload)
            break;   /* end of data, or all of it */
        size_t ncap = payload - cap > cap ? 2 * cap : (size_t)payload;
        uint8_t *p = realloc(buf, ncap);
        if (!p) {
            s = nn_fail(err, NN_ERR_NOMEM, "%s: out of memory for %zu bytes",
                        r->path, ncap);
            break;
        }
        buf = p;
        cap = ncap;
    }
    if (s == NN_OK && have < payload)
        s = nn_fail(err, NN_ERR_FORMAT, "%s: truncated: expected %llu bytes "
                    "of data, found %zu", r->path,
                    (unsigned long long)payload, have);
    if (s != NN_OK) {
        free(buf);
        return s;
    }
    *data = buf;
    return NN_OK;
}

/* Gzip: the stream must end with the payload, and end properly: reading on
 * makes zlib check the CRC and length in the gzip trailer. */
static nn_status expect_end(idx_reader *r, uint64_t payload, nn_error *err)
{
    unsigned char extra;
    size_t got;
    nn_status s = reader_read(r, &extra, 1, &got, err);
    if (s != NN_OK)
        return s;
    if (got > 0)
        return nn_fail(err, NN_ERR_FORMAT, "%s: trailing bytes after the "
                       "%llu bytes of data the header promises", r->path,
                       (unsigned long long)payload);
    int code = Z_OK;
    if (r->gz)
        gzerror(r->gz, &code);
    if (code == Z_BUF_ERROR || r->ztrunc)   /* "unexpected end of file" */
        return nn_fail(err, NN_ERR_FORMAT, "%s: truncated gzip data (the "
                       "stream ends before its trailer)", r->path);
    return NN_OK;
}

/* Header and (raw) length check, from an open reader, which it closes on
 * failure. */
static nn_status load_header(idx_reader *r, nn_idx *out, uint64_t *payload,
                             nn_error *err)
{
    uint64_t header = 0;
    nn_status s = read_header(r, out, payload, &header, err);
    if (s == NN_OK && !r->gz && !r->zinit)
        s = check_raw_length(r, header, *payload, err);
    if (s != NN_OK)
        reader_close(r);
    return s;
}

/* Payload and (gzip) proper end after load_header; closes the reader. */
static nn_status load_body(idx_reader *r, uint64_t payload, nn_idx *out,
                           nn_error *err)
{
    bool gz = r->gz || r->zinit;
    nn_status s = read_payload(r, payload, &out->data, err);
    if (s == NN_OK && gz)
        s = expect_end(r, payload, err);
    reader_close(r);
    return s;
}

/* Header, length check, payload and (gzip) proper end, from an open
 * reader, which it closes. */
static nn_status load_from(idx_reader *r, nn_idx *out, nn_error *err)
{
    uint64_t payload = 0;
    nn_status s = load_header(r, out, &payload, err);
    return s != NN_OK ? s : load_body(r, payload, out, err);
}

nn_status nn_idx_load(const char *path, nn_idx *out, nn_error *err)
{
    if (!out)
        return nn_fail(err, NN_ERR_ARG, "nn_idx_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return nn_fail(err, NN_ERR_ARG, "nn_idx_load: path is NULL");
    idx_reader r;
    nn_status s = reader_open(&r, path, err);
    if (s != NN_OK)
        return s;
    s = load_from(&r, out, err);
    if (s != NN_OK)
        nn_idx_free(out);
    else
        nn_ok(err);
    return s;
}

nn_status nn_idx_load_mem(const void *data, size_t size, const char *name,
                          nn_idx *out, nn_error *err)
{
    if (!out)
        return nn_fail(err, NN_ERR_ARG, "nn_idx_load_mem: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && size)
        return nn_fail(err, NN_ERR_ARG, "nn_idx_load_mem: data is NULL");
    if (!name)
        name = "IDX data";
    if (!data && size)
        return nn_fail(err, NN_ERR_ARG, "%s: data is NULL", name);
    static const unsigned char none[1];
    idx_reader r;
    nn_status s = reader_open_mem(&r, data ? data : none, size, name, err);
    if (s != NN_OK)
        return s;
    s = load_from(&r, out, err);
    if (s != NN_OK)
        nn_idx_free(out);
    else
        nn_ok(err);
    return s;
}

void nn_idx_free(nn_idx *x)
{
    if (!x)
        return;
    free(x->data);
    memset(x, 0, sizeof *x);
}

/* ------------------------------------------------------------- writing */

/* data: product(dim[0..rank)) bytes. Dimensions are written big-endian. */
nn_status nn_idx_save(const char *path, int rank, const uint32_t *dim,
                      const uint8_t *data, nn_error *err)
{
    if (!path || !dim || !data)
        return nn_fail(err, NN_ERR_ARG, "nn_idx_save: NULL argument");
    if (rank < 1 || rank > 4)
        return nn_fail(err, NN_ERR_ARG, "%s: rank %d (must be 1..4)", path,
                       rank);
    unsigned char h[4 + 4 * 4] = {0, 0, 0x08, (unsigned char)rank};
    uint64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dim[i] == 0 || dim[i] > NN_MAX_DIM)
            return nn_fail(err, NN_ERR_ARG, "%s: dimension %d is %u (must be "
                           "1..%d)", path, i + 1, dim[i], NN_MAX_DIM);
        n *= dim[i];
        if (n > max_payload)
            return nn_fail(err, NN_ERR_LIMIT, "%s: more than %llu bytes of "
                           "data", path, (unsigned long long)max_payload);
        for (int b = 0; b < 4; b++)
            h[4 + 4 * i + b] = (unsigned char)(dim[i] >> (24 - 8 * b));
    }
    nn_afile af;
    nn_status s = nn_afile_open(&af, path, err);
    if (s != NN_OK)
        return s;
    size_t hn = 4 + 4 * (size_t)rank;
    if (fwrite(h, 1, hn, af.f) != hn ||
        fwrite(data, 1, (size_t)n, af.f) != (size_t)n) {
        int e = errno;
        nn_afile_abort(&af);
        return nn_fail(err, NN_ERR_IO, "%s: cannot write: %s", path,
                       strerror(e));
    }
    return nn_afile_commit(&af, err);
}

/* ------------------------------------------------------------ data sets */

/* Checks the two files fit together and fills out's shape and n. */
static nn_status check_pair(const nn_idx *im, const nn_idx *lb,
                            const char *images_path, const char *labels_path,
                            nn_dataset *out, nn_error *err)
{
    if (im->rank != 3 && im->rank != 4)
        return nn_fail(err, NN_ERR_FORMAT, "%s: images need rank 3 (n, h, w) "
                       "or 4 (n, h, w, c), found rank %d", images_path,
                       im->rank);
    if (lb->rank != 1)
        return nn_fail(err, NN_ERR_FORMAT, "%s: labels need rank 1 (n), found "
                       "rank %d", labels_path, lb->rank);
    if (im->dim[0] != lb->dim[0])
        return nn_fail(err, NN_ERR_FORMAT, "%s: %u images but %u labels in %s",
                       images_path, im->dim[0], lb->dim[0], labels_path);
    uint32_t c = im->rank == 4 ? im->dim[3] : 1;
    uint64_t size = (uint64_t)im->dim[1] * im->dim[2] * c;
    if (size > NN_MAX_SAMPLE_SIZE)
        return nn_fail(err, NN_ERR_LIMIT, "%s: images of %llu values exceed "
                       "the limit of %u", images_path,
                       (unsigned long long)size, NN_MAX_SAMPLE_SIZE);
    out->n = im->dim[0];
    out->shape.rank = 3;
    out->shape.dim[0] = (int)im->dim[1];
    out->shape.dim[1] = (int)im->dim[2];
    out->shape.dim[2] = (int)c;
    return NN_OK;
}

/* Every label below `limit`; returns the largest in *top. */
static nn_status check_labels(const nn_idx *lb, const char *labels_path,
                              int limit, int *top, nn_error *err)
{
    *top = 0;
    for (uint32_t i = 0; i < lb->dim[0]; i++) {
        int v = lb->data[i];
        if (v >= limit)
            return nn_fail(err, NN_ERR_FORMAT, "%s: label %d of item %u is out "
                           "of range (must be below %d)", labels_path, v, i,
                           limit);
        *top = v > *top ? v : *top;
    }
    return NN_OK;
}

/* The arguments of fn (nn_idx_load_pair, nn_idx_open_pair); zeroes *out. */
static nn_status pair_args(const char *fn, const char *images_path,
                           const char *labels_path, int max_classes,
                           nn_dataset *out, nn_error *err)
{
    if (!out)
        return nn_fail(err, NN_ERR_ARG, "%s: out is NULL", fn);
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path)
        return nn_fail(err, NN_ERR_ARG, "%s: %s path is NULL", fn,
                       images_path ? "labels" : "images");
    if (max_classes < 0)
        return nn_fail(err, NN_ERR_ARG, "%s: max_classes %d is negative",
                       images_path, max_classes);
    return NN_OK;
}

nn_status nn_idx_load_pair(const char *images_path, const char *labels_path,
                           int max_classes, nn_dataset *out, nn_error *err)
{
    nn_idx images = {0}, labels = {0};
    int top = 0;
    /* Both headers first: a pair that does not fit together (counts,
     * ranks, sample size) is refused before any payload is read or
     * inflated. */
    idx_reader ri, rl;
    uint64_t pi = 0, pl = 0;
    nn_status s = pair_args("nn_idx_load_pair", images_path, labels_path,
                            max_classes, out, err);
    if (s != NN_OK)
        return s;
    bool open_i = false, open_l = false;
    if (s == NN_OK && (s = reader_open(&ri, images_path, err)) == NN_OK &&
        (s = load_header(&ri, &images, &pi, err)) == NN_OK)
        open_i = true;
    if (s == NN_OK && (s = reader_open(&rl, labels_path, err)) == NN_OK &&
        (s = load_header(&rl, &labels, &pl, err)) == NN_OK)
        open_l = true;
    if (s == NN_OK)
        s = check_pair(&images, &labels, images_path, labels_path,
                       out, err);
    if (s == NN_OK) {
        s = load_body(&rl, pl, &labels, err);
        open_l = false;
    }
    if (s == NN_OK) {
        s = load_body(&ri, pi, &images, err);
        open_i = false;
    }
    if (open_i)
        reader_close(&ri);
    if (open_l)
        reader_close(&rl);
    if (s == NN_OK)
        s = check_labels(&labels, labels_path,
                         max_classes > 0 ? max_classes : NN_MAX_CLASSES, &top,
                         err);
    if (s != NN_OK) {
        nn_idx_free(&images);
        nn_idx_free(&labels);
        memset(out, 0, sizeof *out);
        return s;
    }
    /* The data set owns the two arrays (nn_dataset_free frees them). */
    out->x_u8 = images.data;
    out->scale = 1.0f / 255.0f;
    out->labels = labels.data;
    out->num_classes = top + 1;
    out->owned[0] = images.data;
    out->owned[1] = labels.data;
    return NN_OK;
}

/* ------------------------------------------------ images left in a file */

/* A raw images file a data set's source reads by offset. */
typedef struct idx_rows {
    int fd;
    uint64_t offset;          /* of sample 0: the header's length */
    size_t sample;            /* bytes per sample */
    size_t n;                 /* samples */
    char path[];
} idx_rows;

static nn_status rows_read(void *ctx, size_t row, size_t count, uint8_t *dst,
                           nn_error *err)
{
    const idx_rows *f = ctx;
    if (row > f->n || count > f->n - row)
        return nn_fail(err, NN_ERR_ARG, "%s: samples %zu..%zu asked for, "
                       "the file has %zu", f->path, row, row + count,
                       f->n);
    size_t want = count * f->sample, got = 0;
    uint64_t at = f->offset + (uint64_t)row * f->sample;
    while (got < want) {
        size_t ask = want - got < IO_CHUNK ? want - got : IO_CHUNK;
        ssize_t k = pread(f->fd, dst + got, ask, (off_t)(at + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return nn_fail(err, NN_ERR_IO, "%s: cannot read sample %zu: %s",
                           f->path, row, strerror(errno));
        if (k == 0)
            return nn_fail(err, NN_ERR_FORMAT, "%s: sample %zu is past the "
                           "end of the file (it was cut short after it was "
                           "opened)", f->path, row + got / f->sample);
        got += (size_t)k;
    }
    return NN_OK;
}

static void rows_close(void *ctx)
{
    idx_rows *f = ctx;
    if (f) {
        close(f->fd);
        free(f);
    }
}

nn_status nn_idx_open_pair(const char *images_path, const char *labels_path,
                           int max_classes, nn_dataset *out, nn_error *err)
{
    idx_reader ri, rl;
    nn_idx images = {0}, labels = {0};
    uint64_t pi = 0, pl = 0;
    nn_status s = pair_args("nn_idx_open_pair", images_path, labels_path,
                            max_classes, out, err);
    if (s != NN_OK || (s = reader_open(&ri, images_path, err)) != NN_OK)
        return s;
    if (ri.gz) {   /* no offsets into a gzip stream: load it */
        reader_close(&ri);
        return nn_idx_load_pair(images_path, labels_path, max_classes, out,
                                err);
    }
    if ((s = load_header(&ri, &images, &pi, err)) != NN_OK)
        return s;   /* closed */
    idx_rows *f = NULL;
    int top = 0;
    bool open_l = false;
    if ((s = reader_open(&rl, labels_path, err)) == NN_OK &&
        (s = load_header(&rl, &labels, &pl, err)) == NN_OK)
        open_l = true;
    if (s == NN_OK)
        s = check_pair(&images, &labels, images_path, labels_path, out, err);
    if (s == NN_OK) {
        s = load_body(&rl, pl, &labels, err);
        open_l = false;
    }
    if (s == NN_OK)
        s = check_labels(&labels, labels_path,
                         max_classes > 0 ? max_classes : NN_MAX_CLASSES, &top,
                         err);
    size_t len = strlen(images_path) + 1;
    if (s == NN_OK && !(f = malloc(sizeof *f + len)))
        s = nn_fail(err, NN_ERR_NOMEM, "%s: out of memory", images_path);
    if (open_l)
        reader_close(&rl);
    if (s != NN_OK) {
        reader_close(&ri);
        nn_idx_free(&labels);
        memset(out, 0, sizeof *out);
        return s;
    }
    f->fd = ri.fd;   /* the source owns it now */
    f->offset = 4 + 4 * (uint64_t)images.rank;
    f->n = out->n;
    f->sample = nn_shape_size(out->shape);
    memcpy(f->path, images_path, len);
    out->source = (nn_dataset_source){.read = rows_read, .close = rows_close,
                                      .ctx = f};
    out->scale = 1.0f / 255.0f;
    out->labels = labels.data;
    out->num_classes = top + 1;
    out->owned[0] = labels.data;
    return NN_OK;
}
