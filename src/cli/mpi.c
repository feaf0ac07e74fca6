/*
 * mpi.c - data-parallel training's communication (mpi.h): joining the job,
 * agreeing on failures, and the sums of each step. Built with MPI when the
 * Makefile finds Open MPI (DIGITS_MPI); otherwise a job of one rank.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/mpi.h"

uint64_t cli_hash(uint64_t h, const void *data, size_t n)
{
    /* FNV-1a's constants, eight bytes at a time, then a final mix. */
    const unsigned char *p = data;
    h ^= 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= (uint64_t)n;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

#ifdef DIGITS_MPI

#include <limits.h>
#include <mpi.h>

static bool joined;
static int rank_, size_ = 1;
static char held[1024];   /* this rank's last error line (ranks > 0) */
static bool splitting;     /* cli_mpi_split_units said yes */
static int *part_counts;  /* (2 * size_): the sharded optimizer's parts,
                             counts then displacements (parts_of) */

/* Shared weights (cli_mpi_share_weights): one copy of the weights in
 * wwin, every rank's gradients in gwin, both open for the run (a passive
 * epoch, MPI_Win_lock_all) and synchronised with MPI_Win_sync around the
 * collectives that order the step. */
static struct shared {
    MPI_Win wwin, gwin;
    float *weights;           /* (nf) in wwin; NULL: not sharing */
    float **grads;            /* (size_) each rank's (nf) in gwin */
    size_t nf;
} sh;

static void shared_free(void)
{
    if (!sh.weights)
        return;
    MPI_Win_unlock_all(sh.gwin);
    MPI_Win_unlock_all(sh.wwin);
    MPI_Win_free(&sh.gwin);
    MPI_Win_free(&sh.wwin);
    free(sh.grads);
    sh = (struct shared){0};
}

/* Split units' shared batches (cli_mpi_split_units): rank 0's block in
 * rows_win, open for the run and synchronised around every allreduce. */
static MPI_Win rows_win = MPI_WIN_NULL;

static void rows_free(void)
{
    if (rows_win == MPI_WIN_NULL)
        return;
    MPI_Win_unlock_all(rows_win);
    MPI_Win_free(&rows_win);
}

static void hold_error(const char *msg)
{
    snprintf(held, sizeof held, "%s", msg);
}

/* Started by mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE, PMIx PMIX_RANK). */
static bool launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK");
}

int cli_mpi_start(void)
{
    if (joined || !launched())
        return 0;
    /* Waiting ranks yield the core (sched_yield) rather than only spin:
     * on cores shared with other work a spinning rank holds up the rank
     * it waits for; with nothing else to run the yield returns at once.
     * A setting of the user's own is kept. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    /* Every rank on this machine (mpirun's variables say so before the
     * start, alike on every rank): Open MPI's ob1 messaging over shared
     * memory. Its default, cm, first probes the network libraries (OFI,
     * PSM2): about 0.2 s more start-up here, and slower small collectives
     * (docs/distributed.md). Between machines Open MPI chooses. */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE"),
               *world = getenv("OMPI_COMM_WORLD_SIZE");
    if (local && world && !strcmp(local, world))
        setenv("OMPI_MCA_pml", "ob1", 0);
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) !=
        MPI_SUCCESS)
        return cli_error("MPI_Init failed");
    joined = true;
    /* Errors come back as codes; this file turns them into one line. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (rank_ > 0) {
        cli_error_hook = hold_error;
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout))
            return cli_error("rank %d: cannot open /dev/null", rank_);
    }
    return 0;
}

void cli_mpi_stop(void)
{
    if (!joined)
        return;
    fflush(stdout);
    fflush(stderr);
    shared_free();
    rows_free();
    MPI_Finalize();
    free(part_counts);
    part_counts = NULL;
    joined = splitting = false;
    cli_error_hook = NULL;
}

void cli_mpi_abort(void)
{
    if (joined) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

int cli_mpi_rank(void) { return rank_; }
int cli_mpi_size(void) { return size_; }

int cli_mpi_local_size(void)
{
    const char *v = joined ? getenv("OMPI_COMM_WORLD_LOCAL_SIZE") : NULL;
    int n = v ? atoi(v) : 1;
    return n >= 1 ? n : 1;
}

/* MPI's words for error code `code`. */
static void mpi_why(int code, char why[MPI_MAX_ERROR_STRING])
{
    int len = 0;
    if (MPI_Error_string(code, why, &len) != MPI_SUCCESS)
        snprintf(why, MPI_MAX_ERROR_STRING, "error %d", code);
}

/* One line for a failed MPI call, on the rank that saw it. */
static void mpi_failed(const char *call, int code)
{
    char why[MPI_MAX_ERROR_STRING];
    mpi_why(code, why);
    cli_error("%s: %s", call, why);
}

/* cli_mpi_agree without the line: every rank learns whether all are ok. */
static bool all_ok(bool ok)
{
    int mine = ok ? 1 : 0, all = 0;
    return MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) ==
               MPI_SUCCESS &&
           all == 1;
}

bool cli_mpi_agree(bool ok)
{
    if (!joined)
        return ok;
    int mine = ok ? size_ : rank_, first = 0;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN,
                           MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        mpi_failed("MPI_Allreduce", rc);
        cli_mpi_abort();
    }
    if (first >= size_)
        return true;
    if (first > 0) {   /* its line goes to rank 0 */
        char msg[sizeof held];
        snprintf(msg, sizeof msg, "%s", held[0] ? held : "failed");
        if (MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first,
                      MPI_COMM_WORLD) == MPI_SUCCESS && rank_ == 0) {
            msg[sizeof msg - 1] = '\0';
            cli_error("rank %d: %s", first, msg);
        }
    }
    return false;
}

bool cli_mpi_same(uint64_t h, const char *what)
{
    if (!joined)
        return true;
    uint64_t h0 = h;
    int rc = MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        mpi_failed("MPI_Bcast", rc);
        cli_mpi_abort();
    }
    int mine = h == h0 ? size_ : rank_, first = 0;
    rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        mpi_failed("MPI_Allreduce", rc);
        cli_mpi_abort();
    }
    if (first >= size_)
        return true;
    if (rank_ == 0)
        cli_error("%s differ between ranks (rank %d and rank 0)", what,
                  first);
    return false;
}

bool cli_mpi_bcast(void *buf, size_t n)
{
    if (!joined)
        return true;
    for (size_t off = 0; off < n;) {
        int c = n - off > (size_t)INT_MAX ? INT_MAX : (int)(n - off);
        int rc = MPI_Bcast((char *)buf + off, c, MPI_BYTE, 0,
                           MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            mpi_failed("MPI_Bcast", rc);
            return false;
        }
        off += (size_t)c;
    }
    return true;
}

/* NN_ERR_IO with MPI's reason for code, from `call`. */
static nn_status mpi_status(int rc, const char *call, nn_error *err)
{
    if (rc == MPI_SUCCESS)
        return NN_OK;
    char why[MPI_MAX_ERROR_STRING];
    mpi_why(rc, why);
    if (err) {
        err->code = NN_ERR_IO;
        snprintf(err->msg, sizeof err->msg, "%s: %s", call, why);
    }
    return NN_ERR_IO;
}

nn_status cli_mpi_allreduce(float *f, size_t nf, double *d, int nd,
                            nn_error *err)
{
    if (!joined)
        return NN_OK;
    if (rows_win != MPI_WIN_NULL)   /* the rows written before, read after */
        MPI_Win_sync(rows_win);
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < nf && rc == MPI_SUCCESS;) {
        int c = nf - off > (size_t)INT_MAX ? INT_MAX : (int)(nf - off);
        rc = MPI_Allreduce(MPI_IN_PLACE, f + off, c, MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD);
        off += (size_t)c;
    }
    if (rc == MPI_SUCCESS && nd > 0)
        rc = MPI_Allreduce(MPI_IN_PLACE, d, nd, MPI_DOUBLE, MPI_SUM,
                           MPI_COMM_WORLD);
    if (rows_win != MPI_WIN_NULL)
        MPI_Win_sync(rows_win);
    return mpi_status(rc, "MPI_Allreduce", err);
}

/* The ranks' parts of nf floats as MPI counts and displacements; false
 * when one does not fit an int. */
static bool parts_of(size_t nf)
{
    if (!part_counts && !(part_counts = malloc(sizeof(int) * 2 *
                                               (size_t)size_)))
        return false;
    for (int r = 0; r < size_; r++) {
        size_t lo, hi;
        nn_shard_part(nf, size_, r, &lo, &hi);
        if (hi > (size_t)INT_MAX)
            return false;
        part_counts[r] = (int)(hi - lo);
        part_counts[size_ + r] = (int)lo;
    }
    return true;
}

bool cli_mpi_sharing(void) { return sh.weights != NULL; }

/* The shared step's sums: once every rank's gradients are in gwin (the
 * stats' allreduce orders it), this rank's part summed over the ranks in
 * rank order, into its own gradients' part (which no other rank reads). */
static nn_status shared_reduce(float *f, double *d, int nd, nn_error *err)
{
    MPI_Win_sync(sh.gwin);
    double none = 0.0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, nd > 0 ? d : &none, nd > 0 ? nd : 1,
                           MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Win_sync(sh.gwin);
    if (rc != MPI_SUCCESS)
        return mpi_status(rc, "MPI_Allreduce", err);
    size_t lo = (size_t)part_counts[size_ + rank_],
           hi = lo + (size_t)part_counts[rank_];
    enum { BLOCK = 1024 };
    float acc[BLOCK];
    for (size_t b = lo; b < hi; b += BLOCK) {
        size_t n = hi - b < BLOCK ? hi - b : BLOCK;
        memcpy(acc, sh.grads[0] + b, sizeof(float) * n);
        for (int r = 1; r < size_; r++) {
            const float *g = sh.grads[r] + b;
            for (size_t k = 0; k < n; k++)
                acc[k] += g[k];
        }
        memcpy(f + b, acc, sizeof(float) * n);
    }
    return NN_OK;
}

/* Whether every rank runs on this rank's machine (MPI's shared-memory
 * node); not collective. */
static bool one_machine(void)
{
    MPI_Comm node = MPI_COMM_NULL;
    int local = 0;
    bool ok = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
                                  MPI_INFO_NULL, &node) == MPI_SUCCESS &&
              MPI_Comm_size(node, &local) == MPI_SUCCESS && local == size_;
    if (node != MPI_COMM_NULL)
        MPI_Comm_free(&node);
    return ok;
}

/* n floats and 3 words after them, zero, on rank 0, that every rank
 * sees; false (and NULL) on every rank when none could be had. */
static bool shared_rows(size_t n, float **rows, uint64_t **claims)
{
    float *mine = NULL, *block = NULL;
    bool ok = n <= ((size_t)PTRDIFF_MAX - 128) / sizeof(float);
    /* the words on a cache line of their own */
    MPI_Aint len, at = ok ? (MPI_Aint)((sizeof(float) * n + 63) / 64 * 64)
                          : 0;
    MPI_Aint bytes = at + 3 * (MPI_Aint)sizeof(uint64_t);
    int unit;
    ok = ok && MPI_Win_allocate_shared(rank_ == 0 ? bytes : 0, 1,
                                      MPI_INFO_NULL, MPI_COMM_WORLD, &mine,
                                      &rows_win) == MPI_SUCCESS;
    ok = ok && MPI_Win_shared_query(rows_win, 0, &len, &unit, &block) ==
                   MPI_SUCCESS;
    if (ok && rank_ == 0)
        memset((char *)block + at, 0, 3 * sizeof(uint64_t));
    if (!all_ok(ok)) {   /* a barrier: the words are zero before use */
        if (rows_win != MPI_WIN_NULL)
            MPI_Win_free(&rows_win);
        *rows = NULL;
        *claims = NULL;
        return false;
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, rows_win);
    MPI_Win_sync(rows_win);
    *rows = block;
    *claims = (uint64_t *)(void *)((char *)block + at);
    return true;
}

bool cli_mpi_split_units(const nn_model *m, int batch, float **rows,
                         uint64_t **claims)
{
    /* every rank takes the same way: all on one machine, a model of two
     * dense layers */
    *rows = NULL;
    *claims = NULL;
    bool ok = joined && !sh.weights && nn_model_can_split_units(m) &&
              one_machine();
    splitting = all_ok(ok);
    if (splitting)
        shared_rows(3 * (size_t)batch *
                        nn_shape_size(nn_model_input_shape(m)),
                    rows, claims);
    return splitting;
}

bool cli_mpi_splitting(void) { return splitting; }

bool cli_mpi_share_weights(nn_model *m)
{
    size_t nf = nn_model_param_count(m);
    /* every rank takes the same way: all on one machine, a model without
     * state its forward pass writes, parts that fit MPI's counts */
    bool ok = joined && !sh.weights && !splitting &&
              nn_model_nontrainable_count(m) == 0 && parts_of(nf) &&
              one_machine();
    if (!all_ok(ok))
        return false;
    /* rank 0 holds the weights, each rank its gradients, on its own
     * pages (alloc_shared_noncontig) */
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    float *mine = NULL, *w0 = NULL;
    MPI_Aint bytes = (MPI_Aint)(sizeof(float) * nf);
    sh.grads = calloc((size_t)size_, sizeof *sh.grads);
    ok = sh.grads &&
         MPI_Win_allocate_shared(rank_ == 0 ? bytes : 0, sizeof(float), info,
                                 MPI_COMM_WORLD, &w0, &sh.wwin) ==
             MPI_SUCCESS;
    bool have_w = ok;
    ok = ok && MPI_Win_allocate_shared(bytes, sizeof(float), info,
                                       MPI_COMM_WORLD, &mine, &sh.gwin) ==
                   MPI_SUCCESS;
    bool have_g = ok;
    MPI_Info_free(&info);
    MPI_Aint len;
    int unit;
    ok = ok && MPI_Win_shared_query(sh.wwin, 0, &len, &unit, &sh.weights) ==
                   MPI_SUCCESS;
    for (int r = 0; ok && r < size_; r++)
        ok = MPI_Win_shared_query(sh.gwin, r, &len, &unit, &sh.grads[r]) ==
             MPI_SUCCESS;
    if (!all_ok(ok)) {
        if (have_g)
            MPI_Win_free(&sh.gwin);
        if (have_w)
            MPI_Win_free(&sh.wwin);
        free(sh.grads);
        sh = (struct shared){0};
        return false;
    }
    sh.nf = nf;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, sh.wwin);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, sh.gwin);
    if (rank_ == 0)
        memcpy(sh.weights, nn_model_params(m), sizeof(float) * nf);
    MPI_Win_sync(sh.wwin);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_sync(sh.wwin);
    nn_error err;
    ok = nn_model_bind(m, sh.weights, sh.grads[rank_], &err) == NN_OK;
    if (!ok)
        hold_error(err.msg);
    if (!cli_mpi_agree(ok))
        cli_mpi_abort();   /* some models point into the windows */
    return true;
}

nn_status cli_mpi_reduce_part(float *f, size_t nf, double *d, int nd,
                              nn_error *err)
{
    if (sh.weights && f == sh.grads[rank_] && nf == sh.nf)
        return shared_reduce(f, d, nd, err);
    return cli_mpi_allreduce(f, nf, d, nd, err);
}

nn_status cli_mpi_gather_parts(float *f, size_t nf, nn_error *err)
{
    if (!joined)
        return NN_OK;
    if (sh.weights && f == sh.weights && nf == sh.nf) {
        /* every rank updated its part in place: wait for all of them */
        MPI_Win_sync(sh.wwin);
        int rc = MPI_Barrier(MPI_COMM_WORLD);
        MPI_Win_sync(sh.wwin);
        return mpi_status(rc, "MPI_Barrier", err);
    }
    if (!parts_of(nf))
        return mpi_status(MPI_ERR_COUNT, "MPI_Allgatherv", err);
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, f,
                            part_counts, part_counts + size_, MPI_FLOAT,
                            MPI_COMM_WORLD);
    return mpi_status(rc, "MPI_Allgatherv", err);
}

#else /* a job of one rank */

/* Under mpirun with more than one rank, each would train alone and all
 * would write the same files: refuse. */
int cli_mpi_start(void)
{
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n)
        n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        return cli_error("started by mpirun with %s ranks, but this digits "
                         "was built without MPI (rebuild with Open MPI "
                         "installed, or make MPI=1)", n);
    return 0;
}

void cli_mpi_stop(void) {}
void cli_mpi_abort(void) {}
int cli_mpi_rank(void) { return 0; }
int cli_mpi_size(void) { return 1; }
int cli_mpi_local_size(void) { return 1; }
bool cli_mpi_agree(bool ok) { return ok; }

bool cli_mpi_same(uint64_t h, const char *what)
{
    (void)h, (void)what;
    return true;
}

bool cli_mpi_bcast(void *buf, size_t n)
{
    (void)buf, (void)n;
    return true;
}

nn_status cli_mpi_allreduce(float *f, size_t nf, double *d, int nd,
                            nn_error *err)
{
    (void)f, (void)nf, (void)d, (void)nd, (void)err;
    return NN_OK;
}

bool cli_mpi_sharing(void) { return false; }
bool cli_mpi_splitting(void) { return false; }

bool cli_mpi_split_units(const nn_model *m, int batch, float **rows,
                         uint64_t **claims)
{
    (void)m, (void)batch;
    *rows = NULL;
    *claims = NULL;
    return false;
}

bool cli_mpi_share_weights(nn_model *m)
{
    (void)m;
    return false;
}

nn_status cli_mpi_reduce_part(float *f, size_t nf, double *d, int nd,
                              nn_error *err)
{
    return cli_mpi_allreduce(f, nf, d, nd, err);
}

nn_status cli_mpi_gather_parts(float *f, size_t nf, nn_error *err)
{
    (void)f, (void)nf, (void)err;
    return NN_OK;
}

#endif
