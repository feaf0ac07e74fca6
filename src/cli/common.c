/*
 * common.c - helpers shared by the subcommands.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

void (*cli_error_hook)(const char *msg);

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cli_error_hook) {
        char msg[1024];
        vsnprintf(msg, sizeof msg, fmt, ap);
        cli_error_hook(msg);
    } else {
        fflush(stdout);   /* what was printed before the error comes first */
        fputs("digits: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
    return 1;
}

int cli_nn_error(const nn_error *err)
{
    return cli_error("%s", err->msg[0] ? err->msg : nn_status_str(err->code));
}

int cli_nn_error_as(const char *what, const nn_error *err)
{
    static const char *const steps[] = {"fit: ", "compile: ", "init: "};
    const char *msg = err->msg[0] ? err->msg : nn_status_str(err->code);
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (!strncmp(msg, steps[i], strlen(steps[i])))
            msg += strlen(steps[i]);
    return cli_error("%s: %s", what, msg);
}

int cli_usage_error(const char *cmd, int opt, const char *arg)
{
    if (opt == ':')
        return cli_error("%s: option '%s' needs a value (see 'digits %s "
                         "--help')", cmd, arg, cmd);
    return cli_error("%s: unknown option '%s' (see 'digits %s --help')", cmd,
                     arg, cmd);
}

bool cli_int(const char *opt, const char *val, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        cli_error("%s: expected an integer from %ld to %ld, got '%s'", opt, lo,
                  hi, val);
        return false;
    }
    *out = v;
    return true;
}

bool cli_float(const char *opt, const char *val, double lo, double hi,
               double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v >= lo && v <= hi)) {
        cli_error("%s: expected a number from %g to %g, got '%s'", opt, lo, hi,
                  val);
        return false;
    }
    *out = v;
    return true;
}

const char *cli_data_dir(const char *opt)
{
    if (opt)
        return opt;
    const char *env = getenv("DIGITS_DATA");
    return env && *env ? env : "data/mnist";
}

/* "dir/name" or "dir/name.gz", whichever exists; 0 if neither. */
static int find_file(const char *dir, const char *name, char *out,
                     size_t size)
{
    struct stat st;
    snprintf(out, size, "%s/%s", dir, name);
    if (stat(out, &st) == 0)
        return 1;
    snprintf(out, size, "%s/%s.gz", dir, name);
    if (stat(out, &st) == 0)
        return 1;
    snprintf(out, size, "%s/%s", dir, name);
    return 0;
}

bool cli_data_fetch(const char *opt)
{
    return opt == NULL;
}

/* Both files of split; false when either is missing. */
static bool split_files(const char *dir, const char *split, char *img,
                        char *lab, size_t size)
{
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    int have = find_file(dir, name, img, size);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    have &= find_file(dir, name, lab, size);
    return have;
}

void cli_split_paths(const char *dir, const char *split, char *img,
                     char *lab, size_t size)
{
    split_files(dir, split, img, lab, size);
}

bool cli_check_shape(const nn_model *m, nn_shape data, const char *what,
                     const char *dir)
{
    nn_shape in = nn_model_input_shape(m);
    bool ok = in.rank == 1 ? nn_shape_size(in) == nn_shape_size(data)
                           : in.rank == data.rank &&
                             !memcmp(in.dim, data.dim,
                                     sizeof in.dim[0] * (size_t)in.rank);
    if (!ok) {
        char a[64], b[64];
        int na = 0, nb = 0;
        for (int i = 0; i < in.rank; i++)
            na += snprintf(a + na, sizeof a - (size_t)na, "%s%d",
                           i ? "x" : "", in.dim[i]);
        for (int i = 0; i < data.rank; i++)
            nb += snprintf(b + nb, sizeof b - (size_t)nb, "%s%d",
                           i ? "x" : "", data.dim[i]);
        cli_error("%s: the model takes %s inputs, not the %s images of %s",
                  what, a, b, dir);
    }
    return ok;
}

static int load_split(const char *dir, const char *split, bool fetch,
                      bool by_offset, int max_classes, nn_dataset *out)
{
    char img[4096], lab[4096];
    struct stat st;
    bool have = split_files(dir, split, img, lab, sizeof img);
    if (!have && !fetch && stat(dir, &st) != 0)
        return cli_error("%s: no such folder%s", dir,
                         errno == ENOENT ? " (run 'digits fetch' for MNIST, "
                         "or give --data DIR)" : "");
    if (!have && !fetch && !S_ISDIR(st.st_mode))
        return cli_error("%s: not a folder", dir);
    if (!have && fetch) {
        fprintf(stderr, "digits: MNIST not found in %s; fetching it\n", dir);
        if (cli_run_fetch(dir) != 0)
            return cli_error("%s: could not fetch MNIST (run "
                             "scripts/fetch-mnist, or pass --data DIR)", dir);
        return load_split(dir, split, false, by_offset, max_classes, out);
    }
    nn_error err;
    if ((by_offset ? nn_idx_open_pair : nn_idx_load_pair)(img, lab,
                                                          max_classes, out,
                                                          &err) != NN_OK)
        return cli_nn_error(&err);
    return 0;
}

int cli_load_split(const char *dir, const char *split, bool fetch,
                   int max_classes, nn_dataset *out)
{
    return load_split(dir, split, fetch, false, max_classes, out);
}

int cli_open_split(const char *dir, const char *split, bool fetch,
                   int max_classes, nn_dataset *out)
{
    return load_split(dir, split, fetch, true, max_classes, out);
}

/* The fetch script: $DIGITS_FETCH, else next to the executable
 * (build/../scripts, or PREFIX/bin/../share/digits). */
static bool fetch_script(char *out, size_t size)
{
    const char *env = getenv("DIGITS_FETCH");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return true;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    static const char *const rel[] = {"/../scripts/fetch-mnist",
                                      "/../share/digits/fetch-mnist"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(out, size, "%s%s", exe, rel[i]);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

int cli_run_fetch(const char *dir)
{
    char script[4200];
    if (!fetch_script(script, sizeof script))
        return cli_error("cannot find the fetch-mnist script (set "
                         "DIGITS_FETCH)");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return cli_error("cannot start %s: %s", script, strerror(errno));
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO); /* keep stdout for results */
        execl(script, script, dir, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* ONNX when the name ends in .onnx, or the file does not start with the
 * digits magic but with ModelProto's first field (ir_version, tag 0x08). */
static bool is_onnx(const char *path)
{
    size_t n = strlen(path);
    if (n >= 5 && !strcasecmp(path + n - 5, ".onnx"))
        return true;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char b[8] = {0};
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    return got == sizeof b && memcmp(b, "DIGITSNN", 8) != 0 && b[0] == 0x08;
}

nn_model *cli_model_load(const char *path, nn_error *err)
{
    if (is_onnx(path))
        return nn_onnx_load(path, NULL, err);
    return nn_model_load(path, err);
}

nn_model *cli_model_from_file_or_spec(const char *arg, nn_shape input,
                                      int classes, nn_optimizer *optimizer)
{
    nn_error err;
    struct stat st;
    nn_model *m;
    if (optimizer)
        memset(optimizer, 0, sizeof *optimizer);
    if (stat(arg, &st) == 0 || strchr(arg, '/') || strstr(arg, ".nn") ||
        strstr(arg, ".onnx"))
        m = cli_model_load(arg, &err);
    else
        m = nn_model_from_spec(arg, input, classes, optimizer, &err);
    if (!m)
        cli_nn_error(&err);
    return m;
}

void cli_label_counts(const nn_dataset *d, size_t count[256])
{
    memset(count, 0, sizeof(size_t) * 256);
    for (size_t i = 0; i < d->n; i++)
        count[d->labels[i]]++;
}

bool cli_class_count(const char *arg, long *k)
{
    if (!strchr(arg, ','))
        return cli_int("--classes", arg, 2, NN_MAX_CLASSES, k);
    long n = 1;   /* names, as evaluate and predict take them */
    for (const char *c = arg; *c; c++)
        n += *c == ',';
    if (n > NN_MAX_CLASSES)
        return !cli_error("--classes: %ld names given, at most %d", n,
                          NN_MAX_CLASSES);
    char **names;
    if (!cli_class_names(arg, (int)n, &names))
        return false;
    free(names);
    *k = n;
    return true;
}

bool cli_class_names(const char *arg, int K, char ***names)
{
    int n = 1;
    for (const char *c = arg; *c; c++)
        n += *c == ',';
    if (n != K) {
        cli_error("--classes: %d name%s given, the model has %d class%s", n,
                  n == 1 ? "" : "s", K, K == 1 ? "" : "es");
        return false;
    }
    size_t len = strlen(arg) + 1;
    char **v = malloc(sizeof(char *) * (size_t)K + len);
    if (!v) {
        cli_error("out of memory");
        return false;
    }
    char *text = (char *)(v + K);
    memcpy(text, arg, len);
    for (int i = 0; i < K; i++) {
        v[i] = text;
        char *comma = strchr(text, ',');
        if (comma)
            *comma = '\0';
        if (!*v[i]) {
            free(v);
            cli_error("--classes: name %d is empty", i + 1);
            return false;
        }
        text = comma ? comma + 1 : text + strlen(text);
    }
    *names = v;
    return true;
}

void cli_print_confusion(FILE *f, const uint32_t *cm, int K,
                         char *const *names)
{
    fprintf(f, "confusion matrix (rows: true class, columns: predicted)\n");
    fprintf(f, "%6s", "");
    for (int j = 0; j < K; j++)
        fprintf(f, " %5d", j);
    fprintf(f, "  accuracy\n");
    double *acc = malloc(sizeof(double) * (size_t)K);
    if (acc)
        nn_confusion_accuracy(cm, K, acc);
    for (int i = 0; i < K; i++) {
        fprintf(f, "%6d", i);
        for (int j = 0; j < K; j++)
            fprintf(f, " %5u", cm[(size_t)i * K + j]);
        if (acc && !isnan(acc[i]))
            fprintf(f, "  %.4f\n", acc[i]);
        else
            fprintf(f, "  -\n");
    }
    free(acc);
    if (names) {
        fprintf(f, "classes:");
        for (int i = 0; i < K; i++)
            fprintf(f, " %d=%s", i, names[i]);
        fprintf(f, "\n");
    }
}

void cli_optimizer_names(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 1; k < NN_OPT_KIND_COUNT; k++) {
        const char *sep = k == 1 ? "" : k + 1 < NN_OPT_KIND_COUNT ? ", "
                                                                 : " or ";
        int n = snprintf(buf + len, size - len, "%s%s", sep,
                         nn_optimizer_name((nn_optimizer_kind)k));
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
}
