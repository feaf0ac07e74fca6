/*
 * cmd_train.c - `digits train`: build, fit, save, evaluate; Keras-style
 * progress while it runs.
 */
#define _XOPEN_SOURCE 700   /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/mpi.h"
#include "cli/plot.h"

static void usage(void)
{
    char names[128];
    cli_optimizer_names(names, sizeof names);
    printf("usage: digits train [--data DIR] [--model SPEC] [--epochs N]\n"
         "                    [--batch-size N] [--optimizer NAME] [--lr X]\n"
         "                    [--seed N] [--validation-split F] [--threads N]\n"
         "                    [--limit N] [--out FILE] [--json] [--plot FILE]\n"
         "                    [--augment[=S,R,Z]] [--lr-decay F|cosine]\n"
         "                    [--patience N] [--checkpoint FILE]\n"
         "                    [--checkpoint-every S] [--no-checkpoint]\n"
         "                    [--resume] [--init FILE] [--classes N|A,B,..]\n\n"
         "Trains a model on the training set, saves it, then prints the\n"
         "test set's loss and accuracy (test_loss: / test_acc: lines).\n\n"
         "  --data DIR             data folder (default $DIGITS_DATA or "
         "./data/mnist;\n"
         "                         MNIST is fetched into that default "
         "folder when\n"
         "                         missing, never into a --data folder)\n"
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
         "  --checkpoint FILE      written on Ctrl-C, SIGTERM or SIGHUP and "
         "after an\n"
         "                         epoch when --checkpoint-every seconds "
         "have passed\n"
         "                         (default OUT.ckpt); removed when "
         "training ends\n"
         "  --checkpoint-every S   at least S seconds between checkpoints "
         "after epochs\n"
         "                         (default 60; 0: after every epoch)\n"
         "  --no-checkpoint        write no checkpoint at all (Ctrl-C just "
         "stops)\n"
         "  --resume               continue from the checkpoint (same "
         "options)\n"
         "  --init FILE            start from a model file's weights (.nn "
         "or .onnx,\n"
         "                         e.g. from PyTorch): fine-tuning; replaces "
         "--model\n"
         "  --classes N|A,B,..     the number of classes (or their names): "
         "every label\n"
         "                         must be below it (default: the largest "
         "label + 1)\n\n"
         "Under mpirun (mpirun -np N digits train ...), N processes train one\n"
         "model data-parallel: each takes its share of every batch, their\n"
         "gradients are summed, and rank 0 prints and writes the files.\n"
         "--threads defaults to the cores per process; SIGUSR1 to mpirun\n"
         "stops and checkpoints like Ctrl-C. See docs/distributed.md.\n",
         names);
}

typedef struct progress {
    FILE *f;
    bool tty;
    int epochs, steps, epoch;
    double t0, last;
    nn_model *m;              /* checkpointed after epochs */
    const char *checkpoint;   /* NULL: --no-checkpoint */
    double every, last_ckpt;  /* --checkpoint-every; time of the last one */
    bool ours;                /* the checkpoint file is the one we wrote */
    dev_t dev;                /* ... which is this one */
    ino_t ino;
    bool foreign;             /* another run replaced it: leave it alone */
    bool failed;              /* a checkpoint could not be written */
    int diverged;             /* epoch (from 1) whose loss or weights went
                                 non-finite; 0: none */
    double div_loss;
    bool writer;              /* rank 0: writes the checkpoints */
    bool stopped;             /* some rank was asked to stop (MPI) */
    bool mpi;                 /* one of several ranks under mpirun */
} progress;

/* Ctrl-C and SIGTERM only raise a flag; training stops after its step. */
static volatile sig_atomic_t stop_signal;

/* Under mpirun, SIGTERM (or SIGINT, SIGHUP) means mpirun is ending the
 * job: Ctrl-C, or a rank that failed or was killed. Open MPI sends SIGKILL
 * odls_base_sigkill_timeout (1 s) later. After Ctrl-C every rank is alive:
 * they agree to stop at the end of the step and rank 0 saves a checkpoint
 * within milliseconds. When a rank is gone the step's allreduce never
 * ends; the timer the signal arms (LOST_NS) fires first, and rank 0 says
 * so in one line and exits 1 instead of dying silently. The timer is
 * disarmed when the ranks agree on the stop, and after training. */
#define LOST_NS 600000000L
static timer_t lost_timer;
static volatile sig_atomic_t lost_on;     /* in fit, under mpirun */
static volatile sig_atomic_t lost_ckpt;   /* a checkpoint has been written */
static char lost_msg[2][768];
static size_t lost_len[2];

static void on_signal(int sig)
{
    stop_signal = sig;
    if (lost_on && sig != SIGUSR1) {
        struct itimerspec t = {.it_value = {.tv_nsec = LOST_NS}};
        timer_settime(lost_timer, 0, &t, NULL);   /* async-signal-safe */
    }
}

static void on_lost(int sig)
{
    (void)sig;
    if (!lost_on)
        return;
    int i = lost_ckpt ? 1 : 0;
    if (cli_mpi_rank() == 0) {
        ssize_t w = write(STDERR_FILENO, lost_msg[i], lost_len[i]);
        (void)w;   /* nothing more to do if stderr is gone */
    }
    _exit(1);
}

static void lost_disarm(void)
{
    if (lost_on) {
        lost_on = 0;
        struct itimerspec t = {{0, 0}, {0, 0}};
        timer_settime(lost_timer, 0, &t, NULL);
    }
}

/* Arms the watch above for an MPI job; `ckpt` names the checkpoint file
 * (NULL: none). */
static void lost_watch(const char *ckpt)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGALRM;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_lost;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0 ||
        timer_create(CLOCK_MONOTONIC, &ev, &lost_timer) != 0)
        return;   /* without the watch, mpirun's SIGKILL ends the rank */
    static const char head[] =
        "digits: the job was ended by mpirun while this step waited for "
        "the other ranks: a rank failed or was killed (mpirun without -q "
        "names it)";
    snprintf(lost_msg[0], sizeof lost_msg[0], "%s; no checkpoint was "
             "written\n", head);
    snprintf(lost_msg[1], sizeof lost_msg[1], "%s; the last checkpoint is "
             "%.500s (resume with the same command and --resume)\n", head,
             ckpt ? ckpt : "");
    lost_len[0] = strlen(lost_msg[0]);
    lost_len[1] = strlen(lost_msg[1]);
    lost_on = 1;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);   /* a closed terminal or ssh session */
    sigaction(SIGUSR1, &sa, NULL);  /* mpirun forwards it to every rank */
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

/* Remembers which file the checkpoint now is (ours, just written or
 * loaded). */
static void ckpt_mark(progress *p)
{
    struct stat st;
    p->ours = stat(p->checkpoint, &st) == 0;
    lost_ckpt = p->ours;
    p->dev = p->ours ? st.st_dev : 0;
    p->ino = p->ours ? st.st_ino : 0;
}

/* True when the checkpoint path holds nothing, or what we last wrote
 * there: another run with the same checkpoint must not lose its file. */
static bool ckpt_is_ours(const progress *p)
{
    struct stat st;
    if (stat(p->checkpoint, &st) != 0)
        return errno == ENOENT;
    return p->ours && st.st_dev == p->dev && st.st_ino == p->ino;
}

/* fsyncs the folder that holds path (after a rename there). */
static void sync_folder(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s",
                 slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Writes the checkpoint unless another run has taken the file over (then
 * says so once and writes no more). It is saved (atomically) under a name
 * of this process's own, identified there, then renamed into place: so
 * the file we later recognise as ours is the one we wrote, never one
 * another run renamed there meanwhile. False after an error line. */
static bool ckpt_write(progress *p)
{
    if (p->foreign)
        return true;
    if (!ckpt_is_ours(p)) {
        p->foreign = true;
        cli_error("warning: %s was replaced by another run; leaving it "
                  "alone and writing no more checkpoints", p->checkpoint);
        return true;
    }
    /* "<ckpt>.tmp.<pid>.<n>": a killed run's is removed by the next save
     * (docs/limits.md, "Saving") */
    size_t n = strlen(p->checkpoint) + 64;
    char *tmp = malloc(n);
    if (!tmp) {
        cli_error("out of memory");
        p->failed = true;
        return false;
    }
    snprintf(tmp, n, "%s.tmp.%ld.999999999", p->checkpoint, (long)getpid());
    nn_error err;
    struct stat st;
    bool ok = nn_model_save(p->m, tmp, true, &err) == NN_OK;
    size_t tl = strlen(tmp);
    if (!ok)   /* the message names our temporary name: name the file */
        cli_error("%s: %s", p->checkpoint,
                  strncmp(err.msg, tmp, tl) == 0 && err.msg[tl] == ':'
                      ? err.msg + tl + 2 : err.msg);
    else if (stat(tmp, &st) != 0 || rename(tmp, p->checkpoint) != 0)
        ok = !cli_error("%s: cannot write: %s", p->checkpoint,
                        strerror(errno));
    if (!ok) {
        unlink(tmp);
        free(tmp);
        p->failed = true;
        return false;
    }
    free(tmp);
    sync_folder(p->checkpoint);
    lost_ckpt = 1;
    p->ours = true;
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->last_ckpt = now();
    return true;
}

/* Removes the checkpoint if it is still the file we wrote (or loaded). */
static void ckpt_remove(const progress *p)
{
    if (p->checkpoint && p->ours && ckpt_is_ours(p))
        unlink(p->checkpoint);
}

static bool all_finite(nn_model *m)
{
    const float *w = nn_model_params(m);
    size_t n = nn_model_param_count(m);
    for (size_t i = 0; w && i < n; i++)
        if (!isfinite(w[i]))
            return false;
    return true;
}

static bool on_batch(void *user, int epoch, int step, int steps, double loss,
                     double acc)
{
    progress *p = user;
    if (!isfinite(loss)) {   /* diverged: stop at once, save nothing */
        p->diverged = epoch + 1;
        p->div_loss = loss;
        return false;
    }
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
    /* this rank's part with shared weights, else all (the allreduce) */
    nn_status s = cli_mpi_reduce_part(grads, n, d, n_stats + 1, err);
    memcpy(stats, d, sizeof(double) * (size_t)n_stats);
    p->stopped = d[n_stats] > 0.0;
    if (p->stopped && s == NN_OK)
        lost_disarm();   /* every rank is here: the stop is agreed */
    return s;
}

/* nn_fit_options.gather under mpirun: every rank's part of v. */
static nn_status gather(void *user, float *v, size_t n, nn_error *err)
{
    (void)user;
    return cli_mpi_gather_parts(v, n, err);
}

static bool on_epoch(void *user, int epoch, const nn_epoch_stats *es)
{
    progress *p = user;
    progress_line(p, p->steps, p->steps, es->loss, es->accuracy, es);
    if (!isfinite(es->loss) || !all_finite(p->m)) {
        p->diverged = epoch + 1;
        p->div_loss = es->loss;
        return false;
    }
    bool ok = true;
    if (p->writer && p->checkpoint && epoch + 1 < p->epochs &&
        now() - p->last_ckpt >= p->every)
        ok = ckpt_write(p);
    if (!cli_mpi_agree(ok)) {   /* under mpirun every rank stops alike */
        p->failed = true;
        return false;
    }
    return true;
}

typedef struct train_args {
    const char *data, *model, *out, *optimizer, *plot, *checkpoint, *init;
    long epochs, batch, seed, threads, limit, patience;
    long classes;            /* --classes: the count; 0: from the labels */
    double lr, vsplit, lr_decay, ckpt_every;
    bool cosine;
    nn_augment augment;
    bool json, resume, no_ckpt;
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
        {"init", required_argument, 0, 'I'},
        {"checkpoint-every", required_argument, 0, 'K'},
        {"no-checkpoint", no_argument, 0, 'N'},
        {"classes", required_argument, 0, 'k'},
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
        case 'I': a->init = optarg; break;
        case 'K':
            ok = cli_float("--checkpoint-every", optarg, 0.0, 1e9,
                           &a->ckpt_every);
            break;
        case 'N': a->no_ckpt = true; break;
        case 'k': ok = cli_class_count(optarg, &a->classes); break;
        case 'h': usage(); return -1;
        default: return cli_usage_error("train", c, argv[optind - 1]);
        }
        if (!ok)
            return 1;
    }
    if (optind < argc)
        return cli_error("train: unexpected argument '%s'", argv[optind]);
    if (a->init && a->resume)
        return cli_error("--init: not with --resume (the checkpoint has the "
                         "weights)");
    if (a->plot && !plot_is_svg(a->plot) && !plot_is_png(a->plot))
        return cli_error("--plot: '%s' must end in .svg or .png", a->plot);
    if (a->no_ckpt && (a->resume || a->checkpoint))
        return cli_error("--no-checkpoint: cannot be combined with %s",
                         a->resume ? "--resume" : "--checkpoint");
    return 0;
}

static void print_json(const train_args *a, const nn_model *m,
                       const nn_history *h, double secs, const nn_eval *ev)
{
    printf("{\"model\": ");
    cli_json_string(stdout, a->model);
    printf(", \"params\": %zu, \"seed\": %ld, \"batch_size\": %ld, "
           "\"optimizer\": \"%s\", \"threads\": %d, \"ranks\": %d, "
           "\"shared_weights\": %s, \"split_units\": %s, \"classes\": %zu, "
           "\"out\": ",
           nn_model_param_count(m), a->seed, a->batch,
           nn_optimizer_name(nn_model_optimizer(m).kind), nn_get_threads(),
           cli_mpi_size(), cli_mpi_sharing() ? "true" : "false",
           cli_mpi_splitting() ? "true" : "false",
           nn_shape_size(nn_model_output_shape(m)));
    cli_json_string(stdout, a->out);
    printf(", \"epochs\": [");
    for (int e = 0; e < h->epochs; e++) {
        const nn_epoch_stats *s = &h->epoch[e];
        printf("%s{\"epoch\": %d, \"loss\": ", e ? ", " : "", e + 1);
        cli_json_number(stdout, s->loss, 6);
        printf(", \"accuracy\": ");
        cli_json_number(stdout, s->accuracy, 6);
        printf(", \"seconds\": ");
        cli_json_number(stdout, s->seconds, 3);
        if (!isnan(s->val_loss)) {
            printf(", \"val_loss\": ");
            cli_json_number(stdout, s->val_loss, 6);
            printf(", \"val_accuracy\": ");
            cli_json_number(stdout, s->val_accuracy, 6);
        }
        printf("}");
    }
    printf("], \"train_seconds\": ");
    cli_json_number(stdout, secs, 3);
    printf(", \"test_loss\": ");
    cli_json_number(stdout, ev->loss, 6);
    printf(", \"test_acc\": ");
    cli_json_number(stdout, ev->accuracy, 6);
    printf("}\n");
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

/* After Ctrl-C, SIGTERM or SIGHUP: the checkpoint at the step reached,
 * and how to go on. Exit status 128 + the signal's number, as shells
 * report it. */
static int interrupted(progress *p, int argc, char **argv)
{
    int sig = stop_signal ? stop_signal : SIGTERM;   /* MPI: another rank's */
    if (!p->writer)
        return 128 + sig;
    if (!p->checkpoint) {
        cli_error("interrupted; no checkpoint written (--no-checkpoint)");
        return 128 + sig;
    }
    if (!ckpt_is_ours(p)) {
        cli_error("interrupted; %s was replaced by another run, so no "
                  "checkpoint was written", p->checkpoint);
        return 1;
    }
    if (!ckpt_write(p))
        return 1;
    fprintf(stderr, "digits: interrupted; checkpoint saved to %s; resume "
            "with:\n  ", p->checkpoint);
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

/* Output paths, before anything is loaded: each one usable, no two the
 * same; an existing checkpoint is only ever continued (--resume). */
static int check_outputs(const train_args *a)
{
    if (!cli_check_output("--out", a->out) ||
        (a->checkpoint && !cli_check_output("--checkpoint", a->checkpoint)) ||
        (a->plot && !cli_check_output("--plot", a->plot)))
        return 1;
    const cli_file out[] = {{"--out", a->out}, {"--checkpoint", a->checkpoint},
                            {"--plot", a->plot}};
    if (!cli_check_distinct(out, 3, NULL, 0))
        return 1;
    struct stat st;
    if (!a->checkpoint || a->resume || stat(a->checkpoint, &st) != 0)
        return 0;
    nn_error err;
    nn_model *old = nn_model_load(a->checkpoint, &err);
    bool is_ckpt = old && nn_model_fit_position(old, NULL, NULL);
    nn_model_free(old);
    if (is_ckpt)
        return cli_error("%s: a checkpoint of an earlier run is there; "
                         "continue it with --resume, remove it, or choose "
                         "another --checkpoint", a->checkpoint);
    return cli_error("--checkpoint: %s exists and is not a checkpoint; "
                     "refusing to replace it", a->checkpoint);
}

/* The data files must not be among the outputs. */
static int check_inputs(const train_args *a, const char *dir)
{
    char f[4][4096];
    cli_split_paths(dir, "train", f[0], f[1], sizeof f[0]);
    cli_split_paths(dir, "t10k", f[2], f[3], sizeof f[0]);
    const cli_file out[] = {{"--out", a->out}, {"--checkpoint", a->checkpoint},
                            {"--plot", a->plot}};
    const cli_file in[] = {{"data file", f[0]}, {"data file", f[1]},
                           {"data file", f[2]}, {"data file", f[3]}};
    return cli_check_distinct(out, 3, in, 4) ? 0 : 1;
}

static bool same_layers(const nn_model *x, const nn_model *y)
{
    int n = nn_model_layer_count(x);
    if (n != nn_model_layer_count(y))
        return false;
    nn_shape a = nn_model_input_shape(x), b = nn_model_input_shape(y);
    if (a.rank != b.rank || memcmp(a.dim, b.dim, sizeof a.dim[0] * (size_t)a.rank))
        return false;
    for (int i = 0; i < n; i++) {
        nn_layer_spec p = nn_model_layer(x, i), q = nn_model_layer(y, i);
        if (p.kind != q.kind || p.activation != q.activation ||
            p.units != q.units || p.kernel != q.kernel ||
            p.stride != q.stride || p.padding != q.padding ||
            p.rate != q.rate)
            return false;
    }
    return true;
}

/* The model a fresh run with these options starts from (initialised and
 * compiled); NULL after an error line. */
static nn_model *fresh_model(const train_args *a, nn_shape shape, int classes)
{
    nn_error err;
    nn_optimizer preset_opt;
    nn_model *m = nn_model_from_spec(a->model, shape, classes, &preset_opt,
                                     &err);
    if (!m) {
        cli_error("--model: %s", err.msg);
        return NULL;
    }
    nn_optimizer opt;
    if (!a->optimizer || !nn_optimizer_parse(a->optimizer, &opt))
        opt = preset_opt.kind ? preset_opt : nn_rmsprop();
    if (a->lr > 0)
        opt.lr = (float)a->lr;
    nn_rng rng;
    nn_rng_seed(&rng, (uint64_t)a->seed);
    if (nn_model_init(m, &rng, &err) ||
        nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY, opt, &err)) {
        cli_nn_error_as("--model", &err);
        nn_model_free(m);
        return NULL;
    }
    return m;
}

/* --init FILE: fine-tuning from a file's layers and weights (.nn or .onnx)
 * with this run's optimizer (default: the file's; RMSprop for ONNX). */
static nn_model *init_model(const train_args *a, nn_shape shape,
                            const char *dir)
{
    nn_error err;
    nn_model *m = cli_model_load(a->init, &err);
    if (!m) {
        cli_nn_error(&err);
        return NULL;
    }
    if (nn_shape_size(nn_model_input_shape(m)) != nn_shape_size(shape)) {
        cli_error("%s: the model does not take %s's images", a->init, dir);
        nn_model_free(m);
        return NULL;
    }
    nn_optimizer opt;
    if (!a->optimizer || !nn_optimizer_parse(a->optimizer, &opt))
        opt = nn_model_optimizer(m);
    if (a->lr > 0)
        opt.lr = (float)a->lr;
    if (nn_model_compile(m, NN_LOSS_CATEGORICAL_CROSSENTROPY, opt, &err)) {
        cli_error("%s: %s", a->init, err.msg);
        nn_model_free(m);
        return NULL;
    }
    return m;
}

/* --resume: the checkpoint must have been made with the model, optimizer
 * and learning rate these options give, and be within --epochs. */
static bool check_resume(const train_args *a, nn_model *ck, nn_shape shape,
                         int classes, const char *dir)
{
    int done;
    float base_lr;
    if (!nn_model_fit_position(ck, &done, &base_lr)) {
        cli_error("%s: not a checkpoint (a finished model?); nothing to "
                  "resume", a->checkpoint);
        return false;
    }
    if (!cli_check_shape(ck, shape, a->checkpoint, dir))
        return false;
    nn_model *fresh = fresh_model(a, shape, classes);
    if (!fresh)
        return false;
    nn_optimizer want = nn_model_optimizer(fresh),
                 have = nn_model_optimizer(ck);
    bool ok = false;
    if (!same_layers(fresh, ck))
        cli_error("--model: %s was made with another model than '%s'; "
                  "resume with the same --model", a->checkpoint, a->model);
    else if (want.kind != have.kind)
        cli_error("--optimizer: %s was made with %s, not %s", a->checkpoint,
                  nn_optimizer_name(have.kind), nn_optimizer_name(want.kind));
    else if (want.lr != base_lr)
        cli_error("--lr: %s was made with --lr %g, not %g", a->checkpoint,
                  (double)base_lr, (double)want.lr);
    else if (done > a->epochs)
        cli_error("--epochs: %s has %d epoch%s done, more than --epochs %ld",
                  a->checkpoint, done, done == 1 ? "" : "s", a->epochs);
    else
        ok = true;
    nn_model_free(fresh);
    return ok;
}

/* --classes N: the model must have N outputs (a layer list, --init or
 * --resume may say otherwise). Without it a preset gets `from_labels`
 * outputs, the largest label + 1: labels below it that no training image
 * has are named in a note on stderr (rank 0), since one stray label byte
 * would otherwise widen the model unseen. False after an error line. */
static bool check_classes(const train_args *a, const nn_model *m,
                          int from_labels, const nn_dataset *train,
                          const char *dir)
{
    int K = (int)nn_shape_size(nn_model_output_shape(m));
    if (a->classes && K != a->classes) {
        if (a->resume || a->init)
            cli_error("--classes: %s has %d outputs, not %ld",
                      a->resume ? a->checkpoint : a->init, K, a->classes);
        else
            cli_error("--classes: --model '%s' has %d outputs, not %ld",
                      a->model, K, a->classes);
        return false;
    }
    if (a->classes || a->resume || a->init || K != from_labels ||
        K > 256 || !train->labels || cli_mpi_rank() > 0)
        return true;
    size_t count[256];
    cli_label_counts(train, count);
    int lo = -1, hi = -1, missing = 0;
    for (int k = 0; k < K; k++)
        if (!count[k]) {
            lo = lo < 0 ? k : lo;
            hi = k;
            missing++;
        }
    if (missing == 0)
        return true;
    char which[64];
    if (missing == 1)
        snprintf(which, sizeof which, "label %d", lo);
    else if (missing == hi - lo + 1)
        snprintf(which, sizeof which, "labels %d to %d", lo, hi);
    else
        snprintf(which, sizeof which, "%d labels from %d to %d", missing, lo,
                 hi);
    fprintf(stderr, "digits: note: no training image in %s has %s; the "
            "model gets %d outputs (the largest label + 1): give --classes N "
            "if the data has N classes\n", dir, which, K);
    return true;
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

/* What every rank's data must share: count, shape, labels, and the
 * images; of images left in their file (each rank reads only its
 * shard's), HASH_ROWS rows spread over it. False after an error line. */
enum { HASH_ROWS = 64 };

static bool data_hash(const nn_dataset *d, uint64_t *out)
{
    size_t size = nn_shape_size(d->shape);
    uint64_t h = cli_hash(0, &d->n, sizeof d->n);
    h = cli_hash(h, &d->shape, sizeof d->shape);
    if (d->labels)
        h = cli_hash(h, d->labels, d->n);
    if (d->x_u8)
        h = cli_hash(h, d->x_u8, size * d->n);
    const nn_dataset_source *src = &d->source;
    uint8_t *row = src->read && d->n ? malloc(size) : NULL;
    if (src->read && d->n && !row)
        return !cli_error("out of memory");
    for (size_t k = 0; row && k < HASH_ROWS; k++) {
        nn_error err;
        size_t i = (d->n - 1) * k / (HASH_ROWS - 1);
        if (src->read(src->ctx, src->first + i, 1, row, &err) != NN_OK) {
            free(row);
            return !cli_nn_error(&err);
        }
        h = cli_hash(h, row, size);
    }
    free(row);
    *out = h;
    return true;
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

/* The test set's loss and accuracy. Under mpirun each rank evaluates its
 * part, rows [n*r/N, n*(r+1)/N), and one allreduce sums them; `ok`
 * false (rank 0 could not write the model) ends it on every rank. */
static bool evaluate_part(nn_model *m, const nn_dataset *test, bool ok,
                          nn_eval *ev)
{
    int rank = cli_mpi_rank(), ranks = cli_mpi_size();
    size_t lo = test->n * (size_t)rank / (size_t)ranks,
           hi = test->n * (size_t)(rank + 1) / (size_t)ranks;
    nn_dataset part = nn_dataset_slice(test, lo, hi - lo);
    nn_error err;
    *ev = (nn_eval){0};
    if (ok && part.n > 0 &&
        nn_model_evaluate(m, &part, ev, NULL, &err) != NN_OK) {
        cli_nn_error(&err);
        ok = false;
    }
    if (!cli_mpi_agree(ok))
        return false;
    if (ranks == 1)
        return true;
    /* sums of the loss and of the correct rows (a whole number) */
    double sums[3] = {ev->loss * (double)ev->n,
                      rint(ev->accuracy * (double)ev->n), (double)ev->n};
    if (cli_mpi_allreduce(NULL, 0, sums, 3, &err) != NN_OK) {
        cli_nn_error(&err);
        return false;
    }
    *ev = (nn_eval){.loss = sums[0] / sums[2], .accuracy = sums[1] / sums[2],
                    .n = (size_t)sums[2]};
    return true;
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
                    .batch = 128, .seed = 42, .threads = -1,
                    .ckpt_every = 60};
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
        a.threads = 0;     /* nn_set_threads(0): all cores */
        if (ranks > 1) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            a.threads = cores / cli_mpi_local_size();
            if (a.threads < 1)
                a.threads = 1;
        }
    }
    char *ckpt = NULL;
    if (!a.checkpoint && !a.no_ckpt) {
        size_t n = strlen(a.out) + sizeof ".ckpt";
        if (!(ckpt = malloc(n)))
            return cli_error("out of memory");
        snprintf(ckpt, n, "%s.ckpt", a.out);
        a.checkpoint = ckpt;
    }
    /* Only rank 0 writes: the outputs are its to check. */
    if (!cli_mpi_agree(rank > 0 || !check_outputs(&a))) {
        free(ckpt);
        return 1;
    }
    struct stat lst;
    if (a.checkpoint && lstat(a.checkpoint, &lst) == 0 &&
        S_ISLNK(lst.st_mode)) {
        /* a link: the checkpoint is the file it points to */
        char *real = realpath(a.checkpoint, NULL);
        if (!real)
            return cli_error("--checkpoint: %s: %s", a.checkpoint,
                             strerror(errno));
        free(ckpt);
        a.checkpoint = ckpt = real;
    }
    nn_set_threads((int)a.threads);

    const char *dir = cli_data_dir(a.data);
    nn_dataset train = {0}, test = {0};
    nn_model *m = NULL;
    nn_history hist = {0};
    nn_error err;
    rc = 1;
    /* Only rank 0 fetches MNIST; every rank needs the same data. Under
     * mpirun the images stay in their files: a rank reads its shard's
     * rows of each batch, and only rank 0 evaluates the test set. */
    int (*get)(const char *, const char *, bool, int, nn_dataset *) =
        ranks > 1 ? cli_open_split : cli_load_split;
    uint64_t dh = 0;
    bool ok = !get(dir, "train", rank == 0 && cli_data_fetch(a.data),
                   (int)a.classes, &train) &&
              !get(dir, "t10k", false, (int)a.classes, &test) &&
              (rank > 0 || !check_inputs(&a, dir));
    if (ok && memcmp(&train.shape, &test.shape, sizeof train.shape) != 0)
        ok = !cli_error("%s: training and test images differ in shape", dir);
    if (ok && ranks > 1)
        ok = data_hash(&train, &dh);
    if (!cli_mpi_agree(ok) || !cli_mpi_same(dh, "the training data"))
        goto done;
    nn_dataset used = train;
    if (a.limit > 0 && (size_t)a.limit < train.n)
        used = nn_dataset_slice(&train, 0, (size_t)a.limit);
    int classes = a.classes ? (int)a.classes
                : train.num_classes > test.num_classes ? train.num_classes
                                                       : test.num_classes;
    if (a.resume) {
        /* The checkpoint carries the model, its optimizer and position. */
        if (!(m = load_checkpoint(a.checkpoint)))
            goto done;
        if (!check_resume(&a, m, train.shape, classes, dir))
            goto done;
    } else if (a.init) {
        if (!(m = init_model(&a, train.shape, dir)))
            goto done;
        a.model = a.init;
    } else if (!(m = fresh_model(&a, train.shape, classes))) {
        goto done;
    }
    if (!check_classes(&a, m, classes, &train, dir))
        goto done;
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
                  .checkpoint = a.checkpoint, .every = a.ckpt_every,
                  .last_ckpt = now(), .writer = rank == 0,
                  .mpi = ranks > 1};
    if (a.resume && rank == 0)
        ckpt_mark(&p);   /* the checkpoint we continue is ours to replace */
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
        /* all ranks on this machine: a two-layer perceptron's units split
         * over the ranks, or one shared copy of the weights, each rank
         * updating its part of it (docs/distributed.md) */
        fo.split_units = cli_mpi_split_units(m, fo.batch_size,
                                             &fo.split_rows,
                                             &fo.split_claims);
        fo.gather = cli_mpi_share_weights(m) ? gather : NULL;
    }
    fo.on_batch = on_batch;
    fo.on_epoch = on_epoch;
    fo.user = &p;
    catch_signals();
    if (ranks > 1)
        lost_watch(a.checkpoint);
    double t0 = now();
    nn_status fs = nn_model_fit(m, &used, &fo, &hist, &err);
    lost_disarm();
    if (fs != NN_OK) {
        if (err.code == NN_ERR_INTERRUPTED && p.diverged) {
            float lr = nn_model_optimizer(m).lr;
            nn_model_fit_position(m, NULL, &lr);
            char why[64];
            if (isfinite(p.div_loss))
                snprintf(why, sizeof why, "weights not finite");
            else
                snprintf(why, sizeof why, "loss %g", p.div_loss);
            /* an earlier checkpoint stays: it was finite, and is the
             * user's to resume or remove */
            bool kept = p.checkpoint && p.ours && ckpt_is_ours(&p);
            cli_error("epoch %d: training diverged (%s); %s not written; "
                      "try a lower --lr than %g%s%s%s", p.diverged, why,
                      a.out, (double)lr, kept ? " (the checkpoint of an "
                      "earlier epoch stays in " : "",
                      kept ? p.checkpoint : "", kept ? ")" : "");
        } else if (err.code == NN_ERR_INTERRUPTED &&
                   (stop_signal || p.stopped)) {
            rc = interrupted(&p, argc, argv);
        } else if (!p.failed) {
            cli_nn_error_as(a.resume ? "--resume" : "train", &err);
        }
        goto done;
    }
    double secs = now() - t0;
    wh = cli_hash(0, nn_model_params(m),
                  sizeof(float) * nn_model_param_count(m));
    if (!cli_mpi_same(wh, "the weights after training"))
        goto done;
    /* rank 0 writes the model while the others start on the test set */
    bool wrote = true;
    if (rank == 0) {
        if (hist.epochs < fo.epochs)
            fprintf(human, "early stopping after epoch %d: no lower loss "
                    "for %ld epoch%s; kept the weights of the best epoch\n",
                    hist.epochs, a.patience, a.patience == 1 ? "" : "s");
        if (nn_model_save(m, a.out, false, &err) != NN_OK) {
            cli_nn_error(&err);
            wrote = false;
        } else {
            ckpt_remove(&p);   /* the model is safe: our checkpoint goes */
            wrote = !(a.plot && plot_history(a.plot, &hist));
        }
    }
    nn_eval ev;
    if (!evaluate_part(m, &test, wrote, &ev))
        goto done;
    if (rank > 0) {   /* rank 0 reports */
        rc = 0;
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
