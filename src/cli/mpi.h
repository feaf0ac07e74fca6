/*
 * mpi.h - the digits tool's side of data-parallel training over MPI
 * (docs/distributed.md). libnn knows nothing of MPI: fit calls
 * nn_fit_options.reduce, and this file sums over the ranks.
 *
 * Without MPI in the build (make MPI=0), or when the process was not
 * started by mpirun (no OMPI_COMM_WORLD_SIZE / PMIX_RANK in the
 * environment), everything here is a job of one rank: rank 0 of 1, every
 * collective a no-op that succeeds.
 *
 * The collectives below must be called by every rank in the same order.
 */
#ifndef DIGITS_MPI_H
#define DIGITS_MPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn.h"

/* Joins the MPI job when mpirun started this process (MPI_Init_thread);
 * on ranks other than 0, stdout goes to /dev/null and error lines are kept
 * for cli_mpi_agree instead of printed. Returns 0, or 1 after an error
 * line. */
int cli_mpi_start(void);
/* Leaves the job (MPI_Finalize) if cli_mpi_start joined one. */
void cli_mpi_stop(void);
/* Ends every rank of the job now (MPI_Abort) with status 1; for failures
 * after which the ranks cannot agree. Returns when there is no job. */
void cli_mpi_abort(void);

int cli_mpi_rank(void);      /* 0 .. size - 1 */
int cli_mpi_size(void);      /* 1 without a job */
/* Ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE), 1 without a job. */
int cli_mpi_local_size(void);

/* Collective: true when `ok` is true on every rank. Otherwise rank 0
 * prints one line: its own error (already printed) when it failed itself,
 * else "digits: rank R: <the error rank R kept>", R the first failing
 * rank; the other ranks print nothing. */
bool cli_mpi_agree(bool ok);

/* Collective: true when `h` is the same on every rank; otherwise rank 0
 * prints "digits: <what> differ between ranks (rank R and rank 0)". */
bool cli_mpi_same(uint64_t h, const char *what);

/* A 64-bit hash of n bytes, continuing from h (0 to start). */
uint64_t cli_hash(uint64_t h, const void *data, size_t n);

/* Collective: rank 0's n bytes at buf to every rank (n the same on every
 * rank). Returns false (after an error line on rank 0) if MPI fails. */
bool cli_mpi_bcast(void *buf, size_t n);

/* Collective: sums f (nf floats) and d (nd doubles) over the ranks in
 * place with MPI_Allreduce (the same sums on every rank). NN_OK, or
 * NN_ERR_IO with MPI's reason in err. */
nn_status cli_mpi_allreduce(float *f, size_t nf, double *d, int nd,
                            nn_error *err);

/* Collective: true when every rank runs on this machine and m is a
 * model of two dense layers: the ranks split its hidden units
 * (nn_fit_options.split_units, docs/distributed.md), and the weights are
 * not shared. *rows then gets a shared-memory block for 3 batches of
 * `batch` rows (nn_fit_options.split_rows; cli_mpi_allreduce orders its
 * writes and reads) and *claims its 3 words, zero, for the ranks to share
 * the reading (nn_fit_options.split_claims), or both NULL when none
 * could be had. */
bool cli_mpi_split_units(const nn_model *m, int batch, float **rows,
                         uint64_t **claims);
bool cli_mpi_splitting(void);   /* cli_mpi_split_units said yes */

/* Collective: when every rank runs on this machine, the units are not
 * split and m has no non-trainable parameters, puts one copy of m's weights in an MPI-3
 * shared-memory window and each rank's gradients in another
 * (nn_model_bind), and returns true: the sharded optimizer
 * (nn_fit_options.gather) with the two calls below. Otherwise (or when
 * the windows cannot be had) returns false and nothing changed. The
 * windows are freed by cli_mpi_stop: m must be freed before. */
bool cli_mpi_share_weights(nn_model *m);
bool cli_mpi_sharing(void);   /* cli_mpi_share_weights did */
/* Collective: with shared weights and f the rank's gradients there, this
 * rank's part of f (nn_shard_part) summed over the ranks straight from
 * their gradients (the rest of f is left as it was); otherwise all of f
 * (cli_mpi_allreduce). d (nd doubles) is summed in full. NN_OK, or
 * NN_ERR_IO with MPI's reason in err. */
nn_status cli_mpi_reduce_part(float *f, size_t nf, double *d, int nd,
                              nn_error *err);
/* Collective: every rank's part of f (nf floats) on every rank: for the
 * shared weights, only a wait for every rank's update in place; for
 * other arrays (the optimizer state) MPI_Allgatherv. NN_OK, or NN_ERR_IO
 * with MPI's reason in err. */
nn_status cli_mpi_gather_parts(float *f, size_t nf, nn_error *err);

#endif
