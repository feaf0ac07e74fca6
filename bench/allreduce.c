/*
 * allreduce.c - what one data-parallel step of `digits train` spends in
 * MPI (bench/mpi.sh, docs/distributed.md): MPI_Allreduce(MPI_SUM) of n
 * floats in place (the gradients) plus one of 4 doubles (the step's loss,
 * correct count, rows and stop flag), as src/cli/mpi.c does it.
 *   mpirun -np N allreduce FLOATS [REPS]
 * Rank 0 prints "floats=F bytes=B ranks=N median_ms=M min_ms=m small_us=S"
 * (median and minimum of REPS steps, default 200, after 20 warm-up steps;
 * small_us: the 4-double allreduce alone, median).
 * Build: mpicc -O2 bench/allreduce.c -o allreduce
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long n = argc > 1 ? atol(argv[1]) : 407050;
    int reps = argc > 2 ? atoi(argv[2]) : 200;
    if (n < 1 || n > (1L << 28) || reps < 1 || reps > 100000) {
        if (rank == 0)
            fprintf(stderr, "usage: allreduce FLOATS [REPS]\n");
        MPI_Finalize();
        return 2;
    }
    float *g = malloc(sizeof(float) * (size_t)n);
    double *t = malloc(sizeof(double) * (size_t)reps);
    double *ts = malloc(sizeof(double) * (size_t)reps);
    if (!g || !t || !ts)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < n; i++)
        g[i] = (float)(i % 97) * 1e-3f;
    double d[4] = {1, 2, 3, 0};
    for (int r = -20; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
        double t1 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, d, 4, MPI_DOUBLE, MPI_SUM,
                      MPI_COMM_WORLD);
        double t2 = MPI_Wtime();
        if (r >= 0) {
            t[r] = t2 - t0;
            ts[r] = t2 - t1;
        }
        for (long i = 0; i < n; i += 4096)   /* keep the sums bounded */
            g[i] *= 1.0f / (float)size;
    }
    /* the slowest rank's time is the step's */
    MPI_Allreduce(MPI_IN_PLACE, t, reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, ts, reps, MPI_DOUBLE, MPI_MAX,
                  MPI_COMM_WORLD);
    qsort(t, (size_t)reps, sizeof *t, cmp);
    qsort(ts, (size_t)reps, sizeof *ts, cmp);
    if (rank == 0)
        printf("floats=%ld bytes=%ld ranks=%d median_ms=%.4f min_ms=%.4f "
               "small_us=%.2f\n", n, n * 4, size, 1e3 * t[reps / 2],
               1e3 * t[0], 1e6 * ts[reps / 2]);
    free(g);
    free(t);
    free(ts);
    MPI_Finalize();
    return 0;
}
