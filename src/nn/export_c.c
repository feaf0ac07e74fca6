/*
 * export_c.c - a model as C source for devices (nn_model_export_c): NAME.h
 * with the interface, NAME.c with the weights as static const arrays, the
 * kernels it needs copied from plan_kernels.h, and NAME_predict calling
 * them step by step (plan.h) with the caller's scratch memory:
 *   scratch: max over steps of (input + output) values; a step reads from
 *   one end and writes to the other, the ends taking turns.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal.h"
#include "nn/model.h"
#include "nn/plan.h"

/* plan_kernels.h as one string (made by the Makefile). */
static const char kernel_text[] =
#include "plan_kernels.inc"
    ;

/* ------------------------------------------------------------ text buffer */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool nomem;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->nomem)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->nomem = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->nomem = true;
            return;
        }
        b->s = s, b->cap = cap;
    }
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_printf(b, "%.*s", (int)n, s);
}

/* Copies the kernel section NAME ("/" "*@ NAME *" "/" up to the next). */
static void sb_section(sbuf *b, const char *name)
{
    char mark[64];
    snprintf(mark, sizeof mark, "/*@ %s */\n", name);
    const char *s = strstr(kernel_text, mark);
    if (!s)
        return;
    s += strlen(mark);
    const char *e = strstr(s, "/*@ ");
    sb_put(b, s, e ? (size_t)(e - s) : strlen(s));
}

/* A float literal that reads back as the same float. */
static void sb_float(sbuf *b, float v)
{
    char t[40];
    snprintf(t, sizeof t, "%.9g", (double)v);
    bool dot = strpbrk(t, ".e") != NULL;
    sb_printf(b, "%s%sf", t, dot ? "" : ".0");
}

static void sb_floats(sbuf *b, const char *type_name, const float *v,
                      size_t n)
{
    sb_printf(b, "static const float %s[%zu] = {", type_name, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        sb_printf(b, "%s", i % 8 ? " " : "\n    ");
        sb_float(b, v[i]);
        sb_printf(b, ",");
    }
    sb_printf(b, "%s\n};\n", n ? "" : "0");
}

static void sb_i8(sbuf *b, const char *name, const int8_t *v, size_t n)
{
    sb_printf(b, "static const int8_t %s[%zu] = {", name, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%d,", i % 16 ? " " : "\n    ", v[i]);
    sb_printf(b, "%s\n};\n", n ? "" : "0");
}

static void sb_i32(sbuf *b, const char *name, const int32_t *v, size_t n)
{
    sb_printf(b, "static const int32_t %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%ld,", i % 8 ? " " : "\n    ", (long)v[i]);
    sb_printf(b, "\n};\n");
}

static void sb_u32(sbuf *b, const char *name, const uint32_t *v, size_t n)
{
    sb_printf(b, "static const uint32_t %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%luu,", i % 8 ? " " : "\n    ", (unsigned long)v[i]);
    sb_printf(b, "\n};\n");
}

static void sb_geom(sbuf *b, const nnk_geom *g)
{
    sb_printf(b, "        static const nnk_geom g = {%d, %d, %d, %d, %d, %d, "
              "%d, %d, %d, %d, %d, %d, %d, %d, %d};\n",
              g->H, g->W, g->C, g->OH, g->OW, g->F, g->k, g->s, g->pt, g->pl,
              g->pool, g->pk, g->ps, g->PH, g->PW);
}

/* --------------------------------------------------------------- checks */

static bool c_identifier(const char *s)
{
    static const char *const keywords[] = {
        "auto", "break", "case", "char", "const", "continue", "default",
        "do", "double", "else", "enum", "extern", "float", "for", "goto",
        "if", "inline", "int", "long", "register", "restrict", "return",
        "short", "signed", "sizeof", "static", "struct", "switch",
        "typedef", "union", "unsigned", "void", "volatile", "while",
        "_Bool", "_Complex", "_Imaginary",
    };
    size_t n = strlen(s);
    if (n == 0 || n > NN_EXPORT_MAX_NAME)
        return false;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_') ||
            (unsigned char)s[i] >= 128)
            return false;
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (!strcmp(s, keywords[i]))
            return false;
    return true;
}

bool nn_export_name_ok(const char *name)
{
    return name && c_identifier(name);
}

static void upper(char *dst, const char *src)
{
    for (; *src; src++)
        *dst++ = (char)toupper((unsigned char)*src);
    *dst = '\0';
}

/* ------------------------------------------------------------- the text */

static const char *const act_c[] = {"NNK_LINEAR", "NNK_RELU", "NNK_SIGMOID",
                                    "NNK_TANH", "NNK_SOFTMAX"};

static void header_text(sbuf *h, const nn_model *m, const nn_plan *p,
                        bool int8, const char *name, const char *NAME,
                        const char *tool, size_t scratch, size_t weights)
{
    size_t sn = nn_model_summary(m, NULL, 0);
    char *sum = malloc(sn + 1);
    sb_printf(h, "/*\n * %s.h - a digit recogniser for devices, %s, written "
              "by %s\n * (export-c). Plain C99; see %s.c.\n *\n",
              name, int8 ? "int8 (post-training quantization, "
                           "docs/quantization.md)" : "float32",
              tool ? tool : "libnn " NN_VERSION_STRING, name);
    if (sum) {
        nn_model_summary(m, sum, sn + 1);
        for (char *line = sum; *line;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            sb_printf(h, " *%s%.*s\n", len ? "   " : "", (int)len, line);
            line += len + (nl != NULL);
        }
    }
    free(sum);
    sb_printf(h, " *\n * Steps: %d (batch normalization folded where it "
              "follows a layer without\n * activation, pooling fused into "
              "the convolution before it).\n"
              " * Test accuracy: not recorded in the model file (run "
              "`digits evaluate%s`).\n"
              " * Tables: %zu bytes of static const data; scratch: %zu "
              "bytes.\n */\n", p->n_steps, int8 ? " --int8" : "", weights,
              scratch);
    sb_printf(h, "#ifndef %s_H\n#define %s_H\n\n#include <stdint.h>\n\n"
              "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", NAME, NAME);
    sb_printf(h, "#define %s_INPUT_SIZE   %zu   /* values per input, H*W*C, "
              "channels-last */\n", NAME, p->in_size);
    sb_printf(h, "#define %s_OUTPUTS      %zu\n", NAME, p->outputs);
    sb_printf(h, "#define %s_SCRATCH_BYTES %zu  /* bytes of working memory "
              "predict needs */\n\n", NAME, scratch);
    sb_printf(h, "/* pixels: H*W*C bytes 0..255 as in the training data "
              "(MNIST: white ink on black),\n   scratch: %s_SCRATCH_BYTES "
              "bytes, aligned to 16; scores: %s_OUTPUTS values\n   "
              "(probabilities for softmax models), may be NULL. Returns the "
              "class index. */\n", NAME, NAME);
    sb_printf(h, "int %s_predict(const uint8_t *pixels, void *scratch, "
              "float *scores);\n\n#ifdef __cplusplus\n}\n#endif\n\n"
              "#endif\n", name);
}

static size_t weight_bytes(const nn_plan *p, bool int8)
{
    size_t n = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const nn_step *s = &p->step[i];
        if (s->kind == NN_STEP_POOL || s->kind == NN_STEP_GAP)
            continue;
        if (s->kind == NN_STEP_LEAKY) {
            n += int8 ? 256 : 0;
            continue;
        }
        if (!int8) {
            n += 4 * (s->n_w + (size_t)s->n_b);
            continue;
        }
        n += s->n_w + 9 * (size_t)s->n_b + (s->has_lut ? 256 : 0) +
             (s->act == NNK_SOFTMAX ? 1024 : 0);
    }
    return n;
}

static void tables(sbuf *c, const nn_plan *p, bool int8)
{
    char nm[32];
    for (int i = 0; i < p->n_steps; i++) {
        const nn_step *s = &p->step[i];
        if (s->kind == NN_STEP_POOL || s->kind == NN_STEP_GAP ||
            (s->kind == NN_STEP_LEAKY && !int8))
            continue;
        sb_printf(c, "\n/* step %d: layers %d..%d */\n", i + 1, s->first + 1,
                  s->last + 1);
        if (s->kind == NN_STEP_LEAKY) {
            snprintf(nm, sizeof nm, "s%d_lut", i + 1);
            sb_i8(c, nm, s->lut, 256);
            continue;
        }
        if (!int8) {
            snprintf(nm, sizeof nm, "s%d_w", i + 1);
            sb_floats(c, nm, s->w, s->n_w);
            snprintf(nm, sizeof nm, "s%d_b", i + 1);
            sb_floats(c, nm, s->b, (size_t)s->n_b);
            continue;
        }
        snprintf(nm, sizeof nm, "s%d_w", i + 1);
        sb_i8(c, nm, s->wq, s->n_w);
        snprintf(nm, sizeof nm, "s%d_b", i + 1);
        sb_i32(c, nm, s->bq, (size_t)s->n_b);
        snprintf(nm, sizeof nm, "s%d_mult", i + 1);
        sb_i32(c, nm, s->mult, (size_t)s->n_b);
        snprintf(nm, sizeof nm, "s%d_shift", i + 1);
        sb_i8(c, nm, s->shift, (size_t)s->n_b);
        if (s->has_lut) {
            snprintf(nm, sizeof nm, "s%d_lut", i + 1);
            sb_i8(c, nm, s->lut, 256);
        }
        if (s->act == NNK_SOFTMAX) {
            snprintf(nm, sizeof nm, "s%d_exp", i + 1);
            sb_u32(c, nm, s->etab, 256);
        }
    }
}

static void kernels(sbuf *c, const nn_plan *p, bool int8)
{
    bool used[NN_STEP_LEAKY + 1] = {false};   /* by kind; [0]: softmax */
    for (int i = 0; i < p->n_steps; i++) {
        used[p->step[i].kind] = true;
        if (p->step[i].act == NNK_SOFTMAX)
            used[0] = true;
    }
    sb_section(c, "common");
    if (!int8) {
        sb_section(c, "act1_f32");
        sb_section(c, "softmax_f32");
        if (used[NN_STEP_DENSE])
            sb_section(c, "dense_f32");
        if (used[NN_STEP_CONV])
            sb_section(c, "conv_f32");
        if (used[NN_STEP_POOL])
            sb_section(c, "pool_f32");
        if (used[NN_STEP_AFFINE])
            sb_section(c, "affine_f32");
        if (used[NN_STEP_GAP])
            sb_section(c, "gap_f32");
        if (used[NN_STEP_LEAKY])
            sb_section(c, "leaky_f32");
        sb_section(c, "argmax_f32");
        return;
    }
    sb_section(c, "argmax_i8");
    if (used[NN_STEP_DENSE] || used[NN_STEP_CONV] || used[NN_STEP_AFFINE])
        sb_section(c, "requant");
    if (used[NN_STEP_DENSE])
        sb_section(c, "dense_i8");
    if (used[NN_STEP_CONV] || used[NN_STEP_POOL] || used[NN_STEP_GAP])
        sb_section(c, "avg_i8");
    if (used[NN_STEP_CONV])
        sb_section(c, "conv_i8");
    if (used[NN_STEP_POOL])
        sb_section(c, "pool_i8");
    if (used[NN_STEP_AFFINE])
        sb_section(c, "affine_i8");
    if (used[NN_STEP_GAP])
        sb_section(c, "gap_i8");
    if (used[NN_STEP_LEAKY])
        sb_section(c, "lut_i8");
    const nn_step *last = p->n_steps ? &p->step[p->n_steps - 1] : NULL;
    if (used[0])
        sb_section(c, "softmax_i8");
    if (!last || last->act != NNK_SOFTMAX)
        sb_section(c, "dequant");
}

static void predict_text(sbuf *c, const nn_model *m, const nn_qmodel *q,
                         const nn_plan *p, const char *name)
{
    bool int8 = q != NULL;
    const char *T = int8 ? "int8_t" : "float";
    sb_printf(c, "\nint %s_predict(const uint8_t *pixels, void *scratch, "
              "float *scores)\n{\n", name);
    sb_printf(c, "    %s *buf = (%s *)scratch, *x = buf, *y;\n    long i;\n",
              T, T);
    sb_printf(c, "    for (i = 0; i < %zu; i++)\n", p->in_size);
    if (int8)
        sb_printf(c, "        x[i] = (int8_t)(pixels[i] - 128);\n");
    else
        sb_printf(c, "        x[i] = (float)pixels[i] * (1.0f / 255.0f);\n");
    for (int i = 0; i < p->n_steps; i++) {
        const nn_step *s = &p->step[i];
        bool last = i == p->n_steps - 1;
        sb_printf(c, "    {   /* step %d: ", i + 1);
        for (int l = s->first; l <= s->last; l++)
            sb_printf(c, "%s%s", l > s->first ? " + " : "",
                      nn_layer_kind_name(m->layers[l].spec.kind));
        sb_printf(c, " */\n");
        sb_geom(c, &s->g);
        if (int8 && s->kind != NN_STEP_POOL && s->kind != NN_STEP_GAP &&
            s->kind != NN_STEP_LEAKY) {
            char lut[32] = "0";
            if (s->has_lut)
                snprintf(lut, sizeof lut, "s%d_lut", i + 1);
            sb_printf(c, "        static const nnk_qout q = {s%d_mult, "
                      "s%d_shift, %ld, %ld, %ld, %ld, %s};\n", i + 1, i + 1,
                      (long)s->zx, (long)s->zt, (long)s->lo, (long)s->hi,
                      lut);
        }
        if (i % 2 == 0)
            sb_printf(c, "        y = buf + %zu;\n", p->max_io - s->out_size);
        else
            sb_printf(c, "        y = buf;\n");
        const char *sfx = int8 ? "i8" : "f32";
        switch (s->kind) {
        case NN_STEP_DENSE:
            sb_printf(c, "        nnk_dense_%s(x, g.C, g.F, s%d_w, s%d_b, "
                      "%s, y);\n", sfx, i + 1, i + 1,
                      int8 ? "&q" : act_c[s->act]);
            break;
        case NN_STEP_CONV:
            sb_printf(c, "        nnk_conv_%s(&g, x, s%d_w, s%d_b, %s, y);\n",
                      sfx, i + 1, i + 1, int8 ? "&q" : act_c[s->act]);
            break;
        case NN_STEP_POOL:
            sb_printf(c, "        nnk_pool_%s(&g, x, y);\n", sfx);
            break;
        case NN_STEP_GAP:
            sb_printf(c, "        nnk_gap_%s(x, g.H, g.C, y);\n", sfx);
            break;
        case NN_STEP_LEAKY:
            if (int8) {
                sb_printf(c, "        nnk_lut_i8(x, g.H, s%d_lut, y);\n",
                          i + 1);
            } else {
                sb_printf(c, "        nnk_leaky_f32(x, g.H, ");
                sb_float(c, s->alpha);
                sb_printf(c, ", y);\n");
            }
            break;
        case NN_STEP_AFFINE:
            if (int8)
                sb_printf(c, "        nnk_affine_i8(x, g.H, g.C, s%d_w, "
                          "s%d_b, &q, y);\n", i + 1, i + 1);
            else
                sb_printf(c, "        nnk_affine_f32(x, g.H, g.C, s%d_w, "
                          "s%d_b, y);\n", i + 1, i + 1);
            break;
        }
        if (int8 && s->act == NNK_SOFTMAX && !last)
            sb_printf(c, "        nnk_softmax_i8(y, (long)g.PH * g.PW, g.F, "
                      "s%d_exp, 0, y);\n", i + 1);
        sb_printf(c, "        x = y;\n    }\n");
    }
    size_t K = p->outputs;
    const nn_step *ls = p->n_steps ? &p->step[p->n_steps - 1] : NULL;
    if (!int8) {
        sb_printf(c, "    if (scores)\n        for (i = 0; i < %zu; i++)\n"
                  "            scores[i] = x[i];\n", K);
        sb_printf(c, "    return nnk_argmax_f32(x, %zu);\n}\n", K);
        return;
    }
    sb_printf(c, "    if (scores)\n");
    if (ls && ls->act == NNK_SOFTMAX) {
        sb_printf(c, "        nnk_softmax_i8(x, %ld, %d, s%d_exp, scores, "
                  "0);\n", (long)ls->g.PH * ls->g.PW, ls->g.F, p->n_steps);
    } else {
        sb_printf(c, "        nnk_dequant(x, %zu, %ld, ", K,
                  (long)q->out_zp);
        sb_float(c, (float)q->out_scale);
        sb_printf(c, ", scores);\n");
    }
    sb_printf(c, "    return nnk_argmax_i8(x, %zu);\n}\n", K);
}

/* ------------------------------------------------------------------ API */

void nn_export_c_free(nn_export_c *e)
{
    if (!e)
        return;
    free(e->header);
    free(e->source);
    memset(e, 0, sizeof *e);
}

nn_status nn_model_export_c(const nn_model *m, const nn_qmodel *q,
                            const char *name, const char *tool,
                            nn_export_c *out, nn_error *err)
{
    if (!m || !out)
        return nn_fail(err, NN_ERR_ARG, "export: model or result is NULL");
    memset(out, 0, sizeof *out);
    if (!name || !c_identifier(name))
        return nn_fail(err, NN_ERR_ARG, "export: name '%.80s' is not a C "
                       "identifier of 1..%d characters (letters, digits, "
                       "'_', not a keyword)", name ? name : "",
                       NN_EXPORT_MAX_NAME);
    if (!m->params)
        return nn_fail(err, NN_ERR_STATE, "export: model is not initialised");
    if (m->n_params > NN_EXPORT_MAX_PARAMS)
        return nn_fail(err, NN_ERR_LIMIT, "export: the model has %zu "
                       "parameters; export-c takes at most %u",
                       m->n_params, NN_EXPORT_MAX_PARAMS);
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i]))
            return nn_fail(err, NN_ERR_ARG, "export: parameter %zu is not "
                           "finite", i);
    nn_plan own;
    const nn_plan *p;
    if (q) {
        p = &q->plan;
        if (p->in_size != m->in_size || p->outputs !=
            nn_shape_size(nn_model_output_shape(m)))
            return nn_fail(err, NN_ERR_ARG, "export: the int8 model was not "
                           "made from this model");
    } else {
        nn_status st = nn_plan_build(m, &own, err);
        if (st != NN_OK)
            return st;
        p = &own;
    }
    bool int8 = q != NULL;
    char NAME[NN_EXPORT_MAX_NAME + 1];
    upper(NAME, name);
    size_t scratch = (p->max_io * (int8 ? 1 : sizeof(float)) + 15) / 16 * 16;
    size_t wbytes = weight_bytes(p, int8);
    sbuf h = {0}, c = {0};
    header_text(&h, m, p, int8, name, NAME, tool, scratch, wbytes);
    sb_printf(&c, "/*\n * %s.c - written by %s (export-c) for %s.h; do not "
              "edit.\n * Kernels: libnn's src/nn/plan_kernels.h.\n */\n",
              name, tool ? tool : "libnn " NN_VERSION_STRING, name);
    if (!int8)
        sb_printf(&c, "#include <math.h>\n");
    sb_printf(&c, "#include <stdint.h>\n\n#include \"%s.h\"\n\n", name);
    kernels(&c, p, int8);
    tables(&c, p, int8);
    predict_text(&c, m, q, p, name);
    if (!q)
        nn_plan_free(&own);
    if (h.nomem || c.nomem) {
        free(h.s), free(c.s);
        return nn_fail(err, NN_ERR_NOMEM, "export: out of memory");
    }
    out->header = h.s;
    out->source = c.s;
    out->scratch_bytes = scratch;
    out->weight_bytes = wbytes;
    return NN_OK;
}
