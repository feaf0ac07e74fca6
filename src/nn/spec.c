/*
 * spec.c - model spec strings: presets and a Keras-like layer list,
 *   "conv2d(32,3,relu) maxpool(2) flatten dropout(0.5) dense(10,softmax)".
 * A layer is NAME or NAME(ARG,...); an ARG is a number, a word, or
 * key=value. Every number is range-checked before use.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/layer.h"

#define MAX_ARGS 8
#define MAX_TOKEN 32

typedef struct layer_text {
    char name[MAX_TOKEN];
    int argc;
    char key[MAX_ARGS][MAX_TOKEN];   /* "" for a positional argument */
    char val[MAX_ARGS][MAX_TOKEN];
} layer_text;

typedef struct preset {
    const char *name;
    const char *layers;     /* "%d" stands for the number of classes */
    nn_optimizer_kind optimizer;   /* with its defaults */
} preset;

static const preset presets[] = {
    {"mlp", "dense(512,relu) dense(%d,softmax)", NN_OPT_RMSPROP},
    {"cnn", "conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) "
            "flatten dropout(0.5) dense(%d,softmax)", NN_OPT_ADAM},
    {"lenet5", "conv2d(6,5,relu,padding=same) avgpool(2) conv2d(16,5,relu) "
               "avgpool(2) flatten dense(120,relu) dense(84,relu) "
               "dense(%d,softmax)", NN_OPT_ADAM},
};

/* Copies a token of [A-Za-z0-9_.+-] into out; returns chars consumed. */
static size_t word(const char *s, char out[MAX_TOKEN])
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || (s[n] && strchr("_.+-", s[n]))) {
        if (n + 1 < MAX_TOKEN)
            out[n] = (char)tolower((unsigned char)s[n]);
        n++;
    }
    out[n < MAX_TOKEN ? n : MAX_TOKEN - 1] = '\0';
    return n;
}

static const char *skip_space(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* Parses one layer at *sp; advances *sp. */
static nn_status parse_layer(const char **sp, layer_text *lt, nn_error *err)
{
    const char *s = *sp;
    memset(lt, 0, sizeof *lt);
    size_t n = word(s, lt->name);
    if (n == 0)
        return nn_fail(err, NN_ERR_ARG, "model spec: expected a layer name "
                       "at '%.20s'", s);
    if (n >= MAX_TOKEN)
        return nn_fail(err, NN_ERR_ARG, "model spec: name too long at "
                       "'%.20s'", s);
    s = skip_space(s + n);
    if (*s == '(') {
        s = skip_space(s + 1);
        while (*s != ')') {
            if (lt->argc == MAX_ARGS)
                return nn_fail(err, NN_ERR_ARG, "model spec: %s: too many "
                               "arguments", lt->name);
            char tok[MAX_TOKEN];
            n = word(s, tok);
            if (n == 0 || n >= MAX_TOKEN)
                return nn_fail(err, NN_ERR_ARG, "model spec: %s: bad "
                               "argument at '%.20s'", lt->name, s);
            s = skip_space(s + n);
            if (*s == '=') {
                memcpy(lt->key[lt->argc], tok, MAX_TOKEN);
                s = skip_space(s + 1);
                n = word(s, tok);
                if (n == 0 || n >= MAX_TOKEN)
                    return nn_fail(err, NN_ERR_ARG, "model spec: %s: bad "
                                   "value at '%.20s'", lt->name, s);
                s = skip_space(s + n);
            }
            memcpy(lt->val[lt->argc++], tok, MAX_TOKEN);
            if (*s == ',')
                s = skip_space(s + 1);
            else if (*s != ')')
                return nn_fail(err, NN_ERR_ARG, "model spec: %s: expected "
                               "',' or ')' at '%.20s'", lt->name, s);
        }
        s++;
    }
    *sp = s;
    return NN_OK;
}

static bool parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi)
        return false;
    *out = (int)x;
    return true;
}

static bool parse_float(const char *v, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || *end || end == v || !(x >= lo && x <= hi))
        return false;
    *out = x;
    return true;
}

/* True when `name` is one of the space-separated words in `names`. */
static bool among(const char *name, const char *names)
{
    size_t n = strlen(name);
    for (const char *w = names; *w;) {
        size_t len = strcspn(w, " ");
        if (len == n && !strncmp(w, name, n))
            return true;
        w += len;
        w += *w == ' ';
    }
    return false;
}

/* The registry row whose spec names include `name`, or NULL. */
static const nn_layer_kind_info *find_kind(const char *name)
{
    for (int k = 1; k < NN_LAYER_KIND_COUNT; k++) {
        const nn_layer_kind_info *in = nn_layer_kind_info_for(k);
        if (in && among(name, in->spec_names))
            return in;
    }
    return NULL;
}

/* "dense, conv2d, ...": each kind's first spec name. */
static void known_kinds(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 1; k < NN_LAYER_KIND_COUNT; k++) {
        const nn_layer_kind_info *in = nn_layer_kind_info_for(k);
        if (!in)
            continue;
        int n = snprintf(buf + len, size - len, "%s%.*s", len ? ", " : "",
                         (int)strcspn(in->spec_names, " "), in->spec_names);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
}

/* Turns parsed text into a spec: positional arguments by kind, then
 * key=value options (activation, stride, padding, rate). */
static nn_status to_spec(const layer_text *lt, nn_layer_spec *sp,
                         nn_error *err)
{
    const char *nm = lt->name;
    const nn_layer_kind_info *in = find_kind(nm);
    if (!in) {
        char known[256];
        known_kinds(known, sizeof known);
        return nn_fail(err, NN_ERR_ARG, "model spec: unknown layer '%s' "
                       "(known: %s)", nm, known);
    }
    nn_layer_spec s = in->defaults;
    const char *roles = in->roles;
    int required = in->required;
    int pos = 0;
    for (int i = 0; i < lt->argc; i++) {
        const char *k = lt->key[i], *v = lt->val[i];
        char role;
        if (!*k) {
            if (!roles[pos])
                return nn_fail(err, NN_ERR_ARG, "model spec: %s: too many "
                               "arguments", nm);
            role = roles[pos++];
        } else if (!strcmp(k, "activation")) {
            role = 'a';
        } else if (!strcmp(k, "stride") || !strcmp(k, "strides")) {
            role = 's';
        } else if (!strcmp(k, "padding")) {
            role = 'p';
        } else if (!strcmp(k, "units") || !strcmp(k, "filters")) {
            role = 'u';
        } else if (!strcmp(k, "kernel") || !strcmp(k, "pool")) {
            role = 'k';
        } else if (!strcmp(k, "rate") || !strcmp(k, "momentum") ||
                   !strcmp(k, "alpha")) {
            role = 'r';
        } else {
            return nn_fail(err, NN_ERR_ARG, "model spec: %s: unknown option "
                           "'%s'", nm, k);
        }
        bool ok = true;
        switch (role) {
        case 'u': ok = parse_int(v, 1, NN_MAX_DIM, &s.units); break;
        case 'k': ok = parse_int(v, 1, 1024, &s.kernel); break;
        case 's': ok = parse_int(v, 1, 1024, &s.stride); break;
        case 'r': ok = parse_float(v, 0.0f, 0.999f, &s.rate); break;
        case 'a': ok = nn_activation_parse(v, &s.activation); break;
        case 'p':
            if (!strcmp(v, "same"))
                s.padding = NN_PAD_SAME;
            else if (!strcmp(v, "valid"))
                s.padding = NN_PAD_VALID;
            else
                ok = false;
            break;
        }
        if (!ok)
            return nn_fail(err, NN_ERR_ARG, "model spec: %s: invalid value "
                           "'%s'", nm, v);
    }
    if (pos < required)
        return nn_fail(err, NN_ERR_ARG, "model spec: %s needs %d "
                       "argument%s", nm, required, required > 1 ? "s" : "");
    *sp = s;
    return NN_OK;
}

nn_model *nn_model_from_spec(const char *spec, nn_shape input,
                             int num_classes, nn_optimizer *optimizer_out,
                             nn_error *err)
{
    char buf[512];
    if (optimizer_out)
        memset(optimizer_out, 0, sizeof *optimizer_out);
    if (!spec) {
        nn_fail(err, NN_ERR_ARG, "nn_model_from_spec: spec is NULL");
        return NULL;
    }
    if (!spec) {
        nn_fail(err, NN_ERR_ARG, "model spec: NULL");
        return NULL;
    }
    if (num_classes <= 0)
        num_classes = 10;
    if (num_classes > NN_MAX_CLASSES) {
        nn_fail(err, NN_ERR_LIMIT, "too many classes: %d", num_classes);
        return NULL;
    }
    const char *s = skip_space(spec);
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (!strcmp(s, presets[i].name)) {
            snprintf(buf, sizeof buf, presets[i].layers, num_classes);
            s = buf;
            if (optimizer_out)
                nn_optimizer_parse(nn_optimizer_name(presets[i].optimizer),
                                   optimizer_out);
            break;
        }
    nn_model *m = nn_model_create(input, err);
    if (!m)
        return NULL;
    s = skip_space(s);
    if (!*s) {
        nn_fail(err, NN_ERR_ARG, "model spec: no layers");
        goto fail;
    }
    while (*s) {
        layer_text lt;
        nn_layer_spec ls;
        if (parse_layer(&s, &lt, err) || to_spec(&lt, &ls, err) ||
            nn_model_add(m, ls, err))
            goto fail;
        s = skip_space(s);
        if (*s == ',')
            s = skip_space(s + 1);
    }
    return m;
fail:
    nn_model_free(m);
    return NULL;
}
