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
    MPI_Finalize();
    joined = false;
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

/* One line for a failed MPI call, on the rank that saw it. */
static void mpi_failed(const char *call, int code)
{
    char why[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, why, &len) != MPI_SUCCESS)
        snprintf(why, sizeof why, "error %d", code);
    cli_error("%s: %s", call, why);
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

nn_status cli_mpi_allreduce(float *f, size_t nf, double *d, int nd,
                            nn_error *err)
{
    if (!joined)
        return NN_OK;
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
    if (rc != MPI_SUCCESS) {
        char why[MPI_MAX_ERROR_STRING];
        int len = 0;
        if (MPI_Error_string(rc, why, &len) != MPI_SUCCESS)
            snprintf(why, sizeof why, "error %d", rc);
        if (err) {
            err->code = NN_ERR_IO;
            snprintf(err->msg, sizeof err->msg, "MPI_Allreduce: %s", why);
        }
        return NN_ERR_IO;
    }
    return NN_OK;
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

#endif
