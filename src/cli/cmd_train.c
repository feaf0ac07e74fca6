/*
 * cmd_train.c - `digits train`: build, fit, save, evaluate; Keras-style
 * progress while it runs.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/mpi.h"
#include "cli/plot.h"

static void usage(void)
{
    char names[128];
    cli_optimizer_names(names, sizeof names);
    printf("usage: digits train [OPTIONS]\n\n"
         "Trains a model on the training set, saves it, then prints the\n"
         "test set's loss and accuracy (test_loss: / test_acc: lines).\n\n"
         "  --data DIR             data folder (default $DIGITS_DATA or "
         "./data/mnist;\n"
         "                         MNIST is fetched when missing)\n"
         "  --model SPEC           preset (mlp, cnn, lenet5) or layer list, "
         "e.g.\n"
         "                         \"dense(512,relu) dense(10,softmax)\" "
         "(default mlp)\n"
         "  --epochs N             passes over the training set (default 5)\n"
         "  --batch-size N         samples per step (default 128)\n"
         "  --optimizer NAME       %s (default: the preset's)\n"
         "  --lr X                 learning rate (default: Keras' for the "
         "optimizer)\n"
         "  --seed N               seed for weights and shuffling (default 42)\n"
         "  --validation-split F   hold out the last fraction F for "
         "validation\n"
         "  --threads N            threads (default: all cores)\n"
         "  --limit N              train on the first N training images "
         "only\n"
         "  --out FILE             where to save the model (default "
         "model.nn)\n"
         "  --json                 one JSON object on stdout; progress on "
         "stderr\n"
         "  --plot FILE            draw loss and accuracy per epoch "
         "(training and\n"
         "                         validation) into FILE, a .svg or .png\n"
         "  --augment[=S,R,Z]      shift each training image by up to S "
         "pixels, turn\n"
         "                         it by up to R degrees, zoom by up to Z "
         "(default\n"
         "                         2,10,0.1), anew for every batch\n"
         "  --lr-decay F|cosine    multiply the learning rate by F after "
         "every epoch,\n"
         "                         or lower it along a half cosine to 0 "
         "over the run\n"
         "  --patience N           stop after N epochs without a lower "
         "validation\n"
         "                         loss (training loss without "
         "--validation-split)\n"
         "                         and keep the best epoch's weights\n"
         "  --checkpoint FILE      written after every epoch and on Ctrl-C "
         "or\n"
         "                         SIGTERM or SIGUSR1 (default OUT.ckpt); "
         "removed\n"
         "                         when training ends\n"
         "  --resume               continue from the checkpoint (same "
         "options)\n\n"
         "Under mpirun (mpirun -np N digits train ...), N processes train one\n"
         "model data-parallel: each takes its share of every batch, their\n"
         "gradients are summed, and rank 0 prints and writes the files.\n"
         "--threads defaults to the cores per process. See "
         "docs/distributed.md.\n", names);
}

typedef struct progress {
    FILE *f;
    bool tty;
    int epochs, steps, epoch;
    double t0, last;
    nn_model *m;              /* checkpointed after every epoch */
    const char *checkpoint;
    bool failed;              /* a checkpoint could not be written */
    bool writer;              /* rank 0: writes the checkpoints */
    bool stopped;             /* some rank was asked to stop (MPI) */
    bool mpi;                 /* one of several ranks under mpirun */
} progress;

/* Ctrl-C and SIGTERM only raise a flag; training stops after its step. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);   /* mpirun forwards it to every rank */
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* "469/469 [==============================] - 3s 6ms/step - loss: ..." */
static void progress_line(progress *p, int step, int steps, double loss,
                          double acc, const nn_epoch_stats *es)
{
    char bar[31];
    int fill = steps ? (int)(30L * step / steps) : 30;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : '.';
    bar[30] = '\0';
    double el = now() - p->t0;
    fprintf(p->f, "%s%d/%d [%s] - %.0fs %.0fms/step - loss: %.4f - "
            "accuracy: %.4f", p->tty ? "\r" : "", step, steps, bar, el,
            1000.0 * el / (step ? step : 1), loss, acc);
    if (es && !isnan(es->val_loss))
        fprintf(p->f, " - val_loss: %.4f - val_accuracy: %.4f", es->val_loss,
                es->val_accuracy);
    if (es)
        fputc('\n', p->f);
    fflush(p->f);
}

static bool on_batch(void *user, int epoch, int step, int steps, double loss,
                     double acc)
{
    progress *p = user;
    if (epoch != p->epoch) {   /* the first step of an epoch (or resume) */
        fprintf(p->f, "Epoch %d/%d\n", epoch + 1, p->epochs);
        p->epoch = epoch;
        p->t0 = now();
        p->last = 0;
    }
    p->steps = steps;
    double t = now();
    if (p->tty && step < steps && t - p->last > 0.1) {
        progress_line(p, step, steps, loss, acc, NULL);
        p->last = t;
    }
    /* Under mpirun only the stop all ranks agreed on in this step's
     * reduce counts: a rank that stopped on its own signal would leave the
     * others waiting in the next step's allreduce. */
    return p->mpi ? !p->stopped : !stop_signal;
}

/* nn_fit_options.reduce under mpirun: the step's sums over the ranks, with
 * every rank's stop request, so that all ranks stop after the same step. */
static nn_status reduce(void *user, float *grads, size_t n, double *stats,
                        int n_stats, nn_error *err)
{
    progress *p = user;
    double d[8] = {0};
    if (n_stats < 0 || n_stats > 7) {
        snprintf(err->msg, sizeof err->msg, "reduce: %d sums", n_stats);
        return err->code = NN_ERR_ARG;
    }
    memcpy(d, stats, sizeof(double) * (size_t)n_stats);
    d[n_stats] = stop_signal ? 1.0 : 0.0;
    nn_status s = cli_mpi_allreduce(grads, n, d, n_stats + 1, err);
    memcpy(stats, d, sizeof(double) * (size_t)n_stats);
    p->stopped = d[n_stats] > 0.0;
    return s;
}

static bool on_epoch(void *user, int epoch, const nn_epoch_stats *es)
{
    progress *p = user;
    (void)epoch;
    progress_line(p, p->steps, p->steps, es->loss, es->accuracy, es);
    nn_error err;
    bool ok = true;
    if (p->writer && nn_model_save(p->m, p->checkpoint, true, &err) != NN_OK)
        ok = !cli_nn_error(&err);
    if (!cli_mpi_agree(ok)) {   /* under mpirun every rank stops alike */
        p->failed = true;
        return false;
    }
    return true;
}

typedef struct train_args {
    const char *data, *model, *out, *optimizer, *plot, *checkpoint;
    long epochs, batch, seed, threads, limit, patience;
    double lr, vsplit, lr_decay;
    bool cosine;
    nn_augment augment;
    bool json, resume;
} train_args;

/* "S,R,Z" for --augment; NULL (no value) gives the defaults. */
static bool parse_augment(const char *v, nn_augment *a)
{
    *a = (nn_augment){2.0f, 10.0f, 0.1f};
    if (!v)
        return true;
    double x[3];
    const char *q = v;
    for (int i = 0; i < 3; i++) {
        char *end;
        x[i] = strtod(q, &end);
        if (end == q || (i < 2 ? *end != ',' : *end != '\0'))
        {
            cli_error("--augment: expected SHIFT,DEGREES,ZOOM such as "
                      "2,10,0.1, got '%s'", v);
            return false;
        }
        q = end + 1;
    }
    if (!(x[0] >= 0 && x[0] <= 64 && x[1] >= 0 && x[1] <= 180 &&
          x[2] >= 0 && x[2] < 1))
    {
        cli_error("--augment: shift 0..64 pixels, 0..180 degrees, zoom "
                  "0..0.99; got '%s'", v);
        return false;
    }
    *a = (nn_augment){(float)x[0], (float)x[1], (float)x[2]};
    return true;
}

static int parse(int argc, char **argv, train_args *a)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"model", required_argument, 0, 'm'},
        {"epochs", required_argument, 0, 'e'},
        {"batch-size", required_argument, 0, 'b'},
        {"optimizer", required_argument, 0, 'o'},
        {"lr", required_argument, 0, 'l'},
        {"seed", required_argument, 0, 's'},
        {"validation-split", required_argument, 0, 'v'},
        {"threads", required_argument, 0, 't'},
        {"out", required_argument, 0, 'O'},
        {"limit", required_argument, 0, 'L'},
        {"json", no_argument, 0, 'j'},
        {"plot", required_argument, 0, 'P'},
        {"augment", optional_argument, 0, 'A'},
        {"lr-decay", required_argument, 0, 'D'},
        {"patience", required_argument, 0, 'p'},
        {"checkpoint", required_argument, 0, 'C'},
        {"resume", no_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'd': a->data = optarg; break;
        case 'm': a->model = optarg; break;
        case 'O': a->out = optarg; break;
        case 'o': a->optimizer = optarg; break;
        case 'j': a->json = true; break;
        case 'P': a->plot = optarg; break;
        case 'e': ok = cli_int("--epochs", optarg, 1, 100000, &a->epochs); break;
        case 'b':
            ok = cli_int("--batch-size", optarg, 1, 65536, &a->batch);
            break;
        case 's': ok = cli_int("--seed", optarg, 0, 0x7fffffffL, &a->seed); break;
        case 't': ok = cli_int("--threads", optarg, 0, 1024, &a->threads); break;
        case 'L': ok = cli_int("--limit", optarg, 1, 0x7fffffffL, &a->limit); break;
        case 'l': ok = cli_float("--lr", optarg, 1e-12, 100.0, &a->lr); break;
        case 'v':
            ok = cli_float("--validation-split", optarg, 0.0, 0.99,
                           &a->vsplit);
            break;
        case 'A': ok = parse_augment(optarg, &a->augment); break;
        case 'D':
            a->cosine = !strcmp(optarg, "cosine");
            ok = a->cosine ||
                 cli_float("--lr-decay", optarg, 1e-6, 1.0, &a->lr_decay);
            break;
        case 'p':
            ok = cli_int("--patience", optarg, 1, 100000, &a->patience);
            break;
        case 'C': a->checkpoint = optarg; break;
        case 'R': a->resume = true; break;
        case 'h': usage(); return -1;
        default: return cli_usage_error("train", c, argv[optind - 1]);
        }
        if (!ok)
            return 1;
    }
    if (optind < argc)
        return cli_error("train: unexpected argument '%s'", argv[optind]);
    if (a->plot && !plot_is_svg(a->plot) && !plot_is_png(a->plot))
        return cli_error("--plot: '%s' must end in .svg or .png", a->plot);
    return 0;
}

static void print_json(const train_args *a, const nn_model *m,
                       const nn_history *h, double secs, const nn_eval *ev)
{
    printf("{\"model\": ");
    cli_json_string(stdout, a->model);
    printf(", \"params\": %zu, \"seed\": %ld, \"batch_size\": %ld, "
           "\"optimizer\": \"%s\", \"threads\": %d, \"ranks\": %d, "
           "\"out\": ", nn_model_param_count(m), a->seed, a->batch,
           nn_optimizer_name(nn_model_optimizer(m).kind), nn_get_threads(),
           cli_mpi_size());
    cli_json_string(stdout, a->out);
    printf(", \"epochs\": [");
    for (int e = 0; e < h->epochs; e++) {
        const nn_epoch_stats *s = &h->epoch[e];
        printf("%s{\"epoch\": %d, \"loss\": %.6f, \"accuracy\": %.6f, "
               "\"seconds\": %.3f", e ? ", " : "", e + 1, s->loss,
               s->accuracy, s->seconds);
        if (!isnan(s->val_loss))
            printf(", \"val_loss\": %.6f, \"val_accuracy\": %.6f", s->val_loss,
                   s->val_accuracy);
        printf("}");
    }
    printf("], \"train_seconds\": %.3f, \"test_loss\": %.6f, "
           "\"test_acc\": %.6f}\n", secs, ev->loss, ev->accuracy);
}

/* Prints one shell word, quoted when it needs to be. */
static void shell_word(FILE *f, const char *w)
{
    if (*w && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_./=,:+@%") == strlen(w)) {
        fputs(w, f);
        return;
    }
    fputc('\'', f);
    for (; *w; w++)
        if (*w == '\'')
            fputs("'\\''", f);
        else
            fputc(*w, f);
    fputc('\'', f);
}

/* After Ctrl-C or SIGTERM: the checkpoint at the step reached, and how to
 * go on. Exit status 128 + the signal's number, as shells report it. */
static int interrupted(nn_model *m, const char *checkpoint, int argc,
                       char **argv)
{
    int sig = stop_signal ? stop_signal : SIGTERM;   /* MPI: another rank's */
    nn_error err;
    if (cli_mpi_rank() > 0)
        return 128 + sig;
    if (nn_model_save(m, checkpoint, true, &err) != NN_OK) {
        cli_nn_error(&err);
        return 1;
    }
    fprintf(stderr, "digits: interrupted; checkpoint saved to %s; resume "
            "with:\n  ", checkpoint);
    if (cli_mpi_size() > 1)
        fprintf(stderr, "mpirun -np %d ", cli_mpi_size());
    fputs("digits", stderr);
    bool has_resume = false;
    for (int i = 0; i < argc; i++) {   /* argv[0] is "train" */
        fputc(' ', stderr);
        shell_word(stderr, argv[i]);
        has_resume |= strcmp(argv[i], "--resume") == 0;
    }
    fputs(has_resume ? "\n" : " --resume\n", stderr);
    return 128 + sig;
}

/* The options every rank must share: the command line but --threads and
 * --data (cores and folders may differ between machines). */
static uint64_t options_hash(int argc, char **argv)
{
    uint64_t h = 0;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        bool skip = !strncmp(w, "--threads", 9) || !strncmp(w, "--data", 6);
        if (skip && !strchr(w, '=') && i + 1 < argc)
            i++;                        /* and its value */
        if (!skip)
            h = cli_hash(h, w, strlen(w) + 1);
    }
    return h;
}

static uint64_t data_hash(const nn_dataset *d)
{
    size_t n = nn_shape_size(d->shape) * d->n;
    uint64_t h = cli_hash(0, &d->n, sizeof d->n);
    if (d->x_u8)
        h = cli_hash(h, d->x_u8, n);
    if (d->labels)
        h = cli_hash(h, d->labels, d->n);
    return h;
}

/* The checkpoint: rank 0 loads (and so checks) the file and sends its
 * bytes to the other ranks, which need no copy of their own. Collective;
 * NULL after an error line (rank 0's, or that of the first failing rank). */
static nn_model *load_checkpoint(const char *path)
{
    nn_error err;
    nn_model *m = NULL;
    if (cli_mpi_size() == 1) {
        if (!(m = nn_model_load(path, &err)))
            cli_nn_error(&err);
        return m;
    }
    uint64_t size = 0;
    char *bytes = NULL;
    bool ok = true;
    if (cli_mpi_rank() == 0) {
        FILE *f = NULL;
        long len = -1;
        if (!(m = nn_model_load(path, &err)))
            ok = !cli_nn_error(&err);
        else if (!(f = fopen(path, "rb")) || fseek(f, 0, SEEK_END) ||
                 (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
                 !(bytes = malloc((size_t)len + 1)) ||
                 fread(bytes, 1, (size_t)len, f) != (size_t)len)
            ok = !cli_error("%s: cannot read it again to send it to the "
                            "other ranks", path);
        if (f)
            fclose(f);
        size = ok ? (uint64_t)len : 0;
    }
    if (cli_mpi_agree(ok) && cli_mpi_bcast(&size, sizeof size)) {
        if (cli_mpi_rank() > 0 && !(bytes = malloc(size ? size : 1)))
            ok = !cli_error("out of memory");
        if (cli_mpi_agree(ok) && cli_mpi_bcast(bytes, size)) {
            if (cli_mpi_rank() > 0 && !(m = nn_model_load_mem(bytes, size,
                                                              &err)))
                ok = !cli_nn_error(&err);
            free(bytes);
            if (cli_mpi_agree(ok))
                return m;
            nn_model_free(m);
            return NULL;
        }
    }
    free(bytes);
    nn_model_free(m);
    return NULL;
}

static int train(int argc, char **argv);

int cmd_train(int argc, char **argv)
{
    if (cli_mpi_start())
        return 1;
    int rc = train(argc, argv);
    cli_mpi_stop();
    return rc;
}

static int train(int argc, char **argv)
{
    train_args a = {.model = "mlp", .out = "model.nn", .epochs = 5,
                    .batch = 128, .seed = 42, .threads = -1};
    int rank = cli_mpi_rank(), ranks = cli_mpi_size();
    if (!cli_mpi_same(options_hash(argc, argv),
                      "options (all but --threads and --data)"))
        return 1;
    int rc = parse(argc, argv, &a);
    if (!cli_mpi_agree(rc <= 0))
        return 1;
    if (rc)
        return rc < 0 ? 0 : rc;
    nn_optimizer opt;
    if (a.optimizer && !nn_optimizer_parse(a.optimizer, &opt)) {
        char names[128];
        cli_optimizer_names(names, sizeof names);
        return cli_error("--optimizer: expected %s, got '%s'", names,
                         a.optimizer);
    }
    if (a.threads < 0) {   /* default: all cores, shared by this machine's ranks */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        a.threads = ranks == 1 ? 0 : cores / cli_mpi_local_size();
        if (a.threads < 1)
            a.threads = 1;
    }
    nn_set_threads((int)a.threads);

    const char *dir = cli_data_dir(a.data);
    nn_dataset train = {0}, test = {0};
    nn_model *m = NULL;
    char *ckpt = NULL;
    nn_history hist = {0};
    nn_error err;
    rc = 1;
    /* Only rank 0 fetches MNIST; every rank needs the same data. */
    bool ok = !cli_load_split(dir, "train", rank == 0, &train) &&
              !cli_load_split(dir, "t10k", false, &test);
    if (ok && memcmp(&train.shape, &test.shape, sizeof train.shape) != 0)
        ok = !cli_error("%s: training and test images differ in shape", dir);
    if (!cli_mpi_agree(ok) ||
        !cli_mpi_same(data_hash(&train), "the training data"))
        goto done;
    nn_dataset used = train;
    if (a.limit > 0 && (size_t)a.limit < train.n)
        used = nn_dataset_slice(&train, 0, (size_t)a.limit);
    int classes = train.num_classes > test.num_classes ? train.num_classes
                                                       : test.num_classes;
    if (!a.checkpoint) {
        size_t n = strlen(a.out) + sizeof ".ckpt";
        if ((ckpt = malloc(n)))
            snprintf(ckpt, n, "%s.ckpt", a.out);
        a.checkpoint = ckpt;
    }
    if (!cli_mpi_agree(a.checkpoint || !cli_error("out of memory")))
        goto done;
    if (a.resume) {
        /* The checkpoint carries the model, its optimizer and position. */
        if (!(m = load_checkpoint(a.checkpoint)))
            goto done;
        nn_shape in = nn_model_input_shape(m);
        if (nn_shape_size(in) != nn_shape_size(train.shape)) {
            cli_error("%s: the checkpoint's model does not take %s's images",
                      a.checkpoint, dir);
            goto done;
        }
    } else {
        nn_optimizer preset_opt;
        m = nn_model_from_spec(a.model, train.shape, classes, &preset_opt,
                               &err);
        if (!m) {
            cli_error("--model: %s", err.msg);
            goto done;
        }
        if (!a.optimizer)
            opt = preset_opt.kind ? preset_opt : nn_rmsprop();
        if (a.lr > 0)
            opt.lr = (float)a.lr;
        nn_rng rng;
        nn_rng_seed(&rng, (uint64_t)a.seed);
        if (nn_model_init(m, &rng, &err) ||
            nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY, opt,
                             &err)) {
            cli_nn_error(&err);
            goto done;
        }
    }
    uint64_t wh = cli_hash(0, nn_model_params(m),
                           sizeof(float) * nn_model_param_count(m));
    if (!cli_mpi_same(wh, "the initial weights"))
        goto done;
    FILE *human = a.json && rank == 0 ? stderr : stdout;
    size_t need = nn_model_summary(m, NULL, 0);
    char *sum = malloc(need + 1);
    if (sum) {
        nn_model_summary(m, sum, need + 1);
        fputs(sum, human);
        free(sum);
    }
    progress p = {.f = human, .tty = isatty(fileno(human)),
                  .epochs = (int)a.epochs, .epoch = -1, .m = m,
                  .checkpoint = a.checkpoint, .writer = rank == 0,
                  .mpi = ranks > 1};
    nn_fit_options fo = nn_fit_defaults();
    fo.epochs = (int)a.epochs;
    fo.batch_size = (int)a.batch;
    fo.validation_split = (float)a.vsplit;
    fo.seed = (uint64_t)a.seed;
    fo.augment = a.augment;
    fo.lr_schedule = a.cosine ? NN_LR_COSINE
                   : a.lr_decay > 0 ? NN_LR_EXPONENTIAL : NN_LR_CONSTANT;
    fo.lr_decay = (float)a.lr_decay;
    fo.patience = (int)a.patience;
    fo.resume = a.resume;
    if (ranks > 1) {
        fo.shards = ranks;
        fo.shard = rank;
        fo.reduce = reduce;
    }
    fo.on_batch = on_batch;
    fo.on_epoch = on_epoch;
    fo.user = &p;
    catch_signals();
    double t0 = now();
    if (nn_model_fit(m, &used, &fo, &hist, &err) != NN_OK) {
        if (err.code == NN_ERR_INTERRUPTED && (stop_signal || p.stopped)) {
            rc = interrupted(m, a.checkpoint, argc, argv);
            goto done;
        }
        if (!p.failed)
            cli_nn_error(&err);
        goto done;
    }
    double secs = now() - t0;
    wh = cli_hash(0, nn_model_params(m),
                  sizeof(float) * nn_model_param_count(m));
    if (!cli_mpi_same(wh, "the weights after training"))
        goto done;
    if (rank > 0) {   /* rank 0 writes and evaluates */
        rc = 0;
        goto done;
    }
    if (hist.epochs < fo.epochs)
        fprintf(human, "early stopping after epoch %d: no lower loss for %ld "
                "epochs; kept the weights of the best epoch\n", hist.epochs,
                a.patience);
    if (nn_model_save(m, a.out, false, &err) != NN_OK) {
        cli_nn_error(&err);
        goto done;
    }
    unlink(a.checkpoint);   /* the model is safe: the checkpoint goes */
    if (a.plot && plot_history(a.plot, &hist))
        goto done;
    nn_eval ev;
    if (nn_model_evaluate(m, &test, &ev, NULL, &err) != NN_OK) {
        cli_nn_error(&err);
        goto done;
    }
    if (a.json) {
        print_json(&a, m, &hist, secs, &ev);
    } else {
        printf("saved %s (train %.1fs)\n", a.out, secs);
        printf("test_loss: %.4f\ntest_acc: %.4f\n", ev.loss, ev.accuracy);
    }
    rc = 0;
done:
    free(ckpt);
    nn_history_free(&hist);
    nn_model_free(m);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return rc;
}
