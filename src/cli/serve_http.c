/*
 * serve_http.c - the routes of `digits serve` (a table), the compute pool
 * and the answers. libmicrohttpd calls serve_handle for a request first
 * with its headers, then once per piece of body, then with no data:
 * routing and the header checks happen in the first call (an early 404,
 * 405, 413, 415 never reads the body), the body is capped as it arrives,
 * and the answer is made in the last call. A prediction is not made on
 * libmicrohttpd's thread: the last call suspends the connection and
 * queues the request; a compute thread makes the answer and resumes the
 * connection, and libmicrohttpd calls the handler once more to send it.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/serve.h"

enum { SIDE = NN_DIGIT_SIDE, PIXELS = NN_DIGIT_SIDE * NN_DIGIT_SIDE };

/* One request's state, from its first call to serve_completed. */
typedef struct request {
    const struct route *route;
    bool answered;              /* a response is queued */
    bool too_large;             /* body over SERVE_MAX_BODY */
    struct MHD_PostProcessor *pp;  /* multipart/form-data, else NULL */
    int file_parts;             /* multipart: file parts seen */
    size_t part_len;            /* multipart: bytes of the current one */
    char *body;                 /* image bytes, (len) of (cap) */
    size_t len, cap, received;  /* received: raw body bytes */
    /* a prediction, from its queueing to its answer */
    struct MHD_Connection *conn;
    struct request *next;       /* in the queue */
    bool queued;                /* suspended, waiting for its answer */
    bool ready;                 /* out holds the answer (set before resume) */
    unsigned status;
    char *out;                  /* the JSON answer, (out_len); NULL: OOM */
    size_t out_len;
} request;

/* ------------------------------------------------------------ responses */

static const char json_csp[] = "default-src 'none'; frame-ancestors 'none'";

/* Queues `len` bytes of `body` (copied) with status and content type, the
 * headers every answer carries, and the CSP (NULL: the JSON one). */
static enum MHD_Result respond(struct MHD_Connection *c, request *rq,
                               unsigned status, const char *type,
                               const char *body, size_t len, const char *csp,
                               const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    bool ok = MHD_add_response_header(r, "Content-Type", type) &&
              MHD_add_response_header(r, "X-Content-Type-Options",
                                      "nosniff") &&
              MHD_add_response_header(r, "Content-Security-Policy",
                                      csp ? csp : json_csp) &&
              MHD_add_response_header(r, "Referrer-Policy", "no-referrer") &&
              MHD_add_response_header(r, "Cache-Control", "no-store") &&
              (!allow || MHD_add_response_header(r, "Allow", allow));
    enum MHD_Result res = ok ? MHD_queue_response(c, status, r) : MHD_NO;
    MHD_destroy_response(r);
    if (rq)
        rq->answered = true;
    return res;
}

enum { ERROR_JSON = 1300 };   /* room for error_json's answer */

/* {"error": "..."} into out (ERROR_JSON bytes); the message is plain ASCII
 * we wrote, or a library message, escaped by hand (no quotes or control
 * bytes pass). Returns its length. */
static size_t error_json(char *out, const char *fmt, va_list ap)
{
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = (size_t)snprintf(out, ERROR_JSON, "{\"error\": \"");
    for (const char *p = msg; *p && n < ERROR_JSON - 8; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            n += (size_t)snprintf(out + n, ERROR_JSON - n, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            n += (size_t)snprintf(out + n, ERROR_JSON - n, "?");
        else
            out[n++] = (char)ch;
    }
    n += (size_t)snprintf(out + n, ERROR_JSON - n, "\"}\n");
    return n;
}

/* Answers {"error": "..."} with status. */
static enum MHD_Result respond_error(struct MHD_Connection *c, request *rq,
                                     unsigned status, const char *allow,
                                     const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result respond_error(struct MHD_Connection *c, request *rq,
                                     unsigned status, const char *allow,
                                     const char *fmt, ...)
{
    char out[ERROR_JSON];
    va_list ap;
    va_start(ap, fmt);
    size_t n = error_json(out, fmt, ap);
    va_end(ap);
    return respond(c, rq, status, "application/json", out, n, NULL, allow);
}

/* Appends to a buffer sized in advance (never overflows: callers size it
 * from the counts they print). */
typedef struct outbuf {
    char *p;
    size_t n, cap;
} outbuf;

static void put(outbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(outbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n = b->n + (size_t)k < b->cap ? b->n + (size_t)k : b->cap - 1;
}

/* s as the inside of a JSON string (quotes and backslashes escaped,
 * newlines as \n, other control bytes as '?'). */
static void put_json_text(outbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            put(b, "\\%c", *s);
        else if (*s == '\n')
            put(b, "\\n");
        else if ((unsigned char)*s < 0x20)
            put(b, "?");
        else
            put(b, "%c", *s);
    }
}

/* ---------------------------------------------------------------- routes */

static enum MHD_Result page(serve_state *s, struct MHD_Connection *c,
                            request *rq)
{
    (void)s;
    return respond(c, rq, MHD_HTTP_OK, "text/html; charset=utf-8",
                   (const char *)serve_page, serve_page_len, serve_page_csp,
                   NULL);
}

static enum MHD_Result model(serve_state *s, struct MHD_Connection *c,
                             request *rq)
{
    return respond(c, rq, MHD_HTTP_OK, "application/json", s->model_json,
                   s->model_json_len, NULL, NULL);
}

static enum MHD_Result healthz(serve_state *s, struct MHD_Connection *c,
                               request *rq)
{
    char out[96];
    int n = snprintf(out, sizeof out, "{\"status\": \"ok\", \"served\": %ld}\n",
                     (long)atomic_load(&s->served));
    return respond(c, rq, MHD_HTTP_OK, "application/json", out, (size_t)n,
                   NULL, NULL);
}

/* The answer of a compute thread: status and {"error": "..."}. */
static void answer_error(request *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void answer_error(request *rq, unsigned status, const char *fmt, ...)
{
    rq->status = status;
    rq->out = malloc(ERROR_JSON);
    if (!rq->out)
        return;
    va_list ap;
    va_start(ap, fmt);
    rq->out_len = error_json(rq->out, fmt, ap);
    va_end(ap);
}

/* A prediction, on a compute thread with worker w: the same decoder and
 * preprocessing as `digits predict`, and the same numbers. Leaves the
 * answer in rq->status and rq->out. */
static void predict_compute(serve_state *s, serve_worker *w, request *rq)
{
    nn_image img;
    nn_error err;
    if (nn_image_load_mem(rq->body, rq->len, "request body", &img, &err) !=
        NN_OK) {
        answer_error(rq, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
        return;
    }
    uint8_t px[PIXELS];
    nn_preprocess_info info;
    nn_status st = nn_preprocess_digit(&img, NULL, px, &info, &err);
    nn_image_free(&img);
    if (st != NN_OK) {
        answer_error(rq, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
        return;
    }

    /* {"digit": D, "probabilities": [K x 0.dddddd], "input": [784 x ddd]} */
    size_t cap = 128 + (size_t)s->K * 12 + (size_t)PIXELS * 5;
    outbuf b = {malloc(cap), 0, cap};
    if (!b.p) {
        rq->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        return;
    }
    if (!info.found) {
        put(&b, "{\"digit\": null, \"probabilities\": null");
    } else {
        for (int i = 0; i < PIXELS; i++)
            w->x[i] = px[i] / 255.0f;
        if (nn_model_predict(w->model, w->x, 1, w->y, &err) != NN_OK) {
            free(b.p);
            answer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
            return;
        }
        int best = 0;
        for (int k = 1; k < s->K; k++)
            if (w->y[k] > w->y[best])
                best = k;
        put(&b, "{\"digit\": %d, \"probabilities\": [", best);
        for (int k = 0; k < s->K; k++)
            put(&b, "%s%.6f", k ? ", " : "", w->y[k]);
        put(&b, "]");
    }
    put(&b, ", \"input\": [");
    for (int i = 0; i < PIXELS; i++) {   /* by hand: 784 printf calls cost */
        char *q = b.p + b.n;             /* room: sized above, 5 a pixel */
        int v = px[i];
        if (i)
            *q++ = ',';
        if (v >= 100)
            *q++ = (char)('0' + v / 100);
        if (v >= 10)
            *q++ = (char)('0' + v / 10 % 10);
        *q++ = (char)('0' + v % 10);
        b.n = (size_t)(q - b.p);
    }
    put(&b, "]}\n");
    rq->status = MHD_HTTP_OK;
    rq->out = b.p;
    rq->out_len = b.n;
}

/* -------------------------------------------------------------- the pool */

/* A compute thread: takes the oldest queued request, answers it, resumes
 * its connection; once stopping, it runs the queue dry and ends. */
static void *worker_run(void *arg)
{
    serve_worker *w = arg;
    serve_state *s = w->s;
    /* libnn's thread count is OpenMP's, kept per thread: each compute
     * thread runs its predictions on itself alone */
    nn_set_threads(1);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        request *rq = s->head;
        if (rq && !(s->head = rq->next))
            s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        if (!rq)
            return NULL;
        predict_compute(s, w, rq);
        rq->ready = true;          /* published by the resume's lock */
        MHD_resume_connection(rq->conn);
    }
}

/* On libmicrohttpd's thread, in the handler: suspends c and queues rq. */
static void enqueue(serve_state *s, struct MHD_Connection *c, request *rq)
{
    rq->conn = c;
    rq->queued = true;
    rq->next = NULL;
    MHD_suspend_connection(c);
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = rq;
    else
        s->head = rq;
    s->tail = rq;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int serve_pool_start(serve_state *s)
{
    for (; s->n_running < s->n_workers; s->n_running++) {
        serve_worker *w = &s->workers[s->n_running];
        w->s = s;
        int e = pthread_create(&w->thread, NULL, worker_run, w);
        if (e != 0)
            return cli_error("serve: cannot start a compute thread: %s",
                             strerror(e));
    }
    return 0;
}

void serve_pool_stop(serve_state *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (; s->n_running > 0; s->n_running--)
        pthread_join(s->workers[s->n_running - 1].thread, NULL);
}

/* POST /predict, once the body is complete: the checks that need no
 * decoding here, then the request goes to the queue; when its answer is
 * ready, libmicrohttpd calls again and it is sent. */
static enum MHD_Result predict(serve_state *s, struct MHD_Connection *c,
                               request *rq)
{
    if (rq->ready) {
        if (!rq->out)
            return respond_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                                 "out of memory");
        return respond(c, rq, rq->status, "application/json", rq->out,
                       rq->out_len, NULL, NULL);
    }
    if (rq->queued)
        return MHD_YES;          /* not reached: suspended until ready */
    if (rq->too_large)
        return respond_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                             "request body over %u bytes", SERVE_MAX_BODY);
    if (rq->pp && MHD_post_process(rq->pp, NULL, 0) != MHD_YES)
        return respond_error(c, rq, MHD_HTTP_BAD_REQUEST, NULL,
                             "malformed multipart/form-data");
    if (rq->pp && rq->file_parts != 1)
        return respond_error(c, rq, MHD_HTTP_BAD_REQUEST, NULL,
                             "multipart/form-data: expected one file part, "
                             "got %d", rq->file_parts);
    if (rq->len == 0)
        return respond_error(c, rq, MHD_HTTP_BAD_REQUEST, NULL,
                             "empty body: send the image file's bytes");
    enqueue(s, c, rq);
    return MHD_YES;
}

/* The routes: a path, the methods it takes, what answers it. Anything
 * else is 404; nothing is ever read from the file system. */
typedef struct route {
    const char *path;
    const char *allow;   /* the Allow header of a 405 */
    bool post;           /* POST with a body, else GET and HEAD */
    enum MHD_Result (*run)(serve_state *, struct MHD_Connection *,
                           request *);
} route;

static const route routes[] = {
    {"/", "GET, HEAD", false, page},
    {"/predict", "POST", true, predict},
    {"/model", "GET, HEAD", false, model},
    {"/healthz", "GET, HEAD", false, healthz},
};

/* ------------------------------------------------------------- the body */

/* Appends n bytes to the body, up to SERVE_MAX_BODY (then marks it too
 * large and keeps nothing more). */
static void body_add(request *rq, const char *data, size_t n)
{
    if (rq->too_large)
        return;
    if (n > SERVE_MAX_BODY - rq->len) {
        rq->too_large = true;
        free(rq->body);
        rq->body = NULL;
        rq->len = rq->cap = 0;
        return;
    }
    if (rq->len + n > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 16384;
        while (cap < rq->len + n)
            cap *= 2;
        if (cap > SERVE_MAX_BODY)
            cap = SERVE_MAX_BODY;
        char *p = realloc(rq->body, cap);
        if (!p) {             /* answered as too large: nothing kept */
            rq->too_large = true;
            free(rq->body);
            rq->body = NULL;
            rq->len = rq->cap = 0;
            return;
        }
        rq->body = p;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
}

/* multipart/form-data: keeps the bytes of file parts (those with a file
 * name), counting them; plain fields are ignored. */
static enum MHD_Result part(void *cls, enum MHD_ValueKind kind,
                            const char *key, const char *filename,
                            const char *content_type,
                            const char *transfer_encoding, const char *data,
                            uint64_t off, size_t size)
{
    (void)kind, (void)key, (void)content_type, (void)transfer_encoding;
    request *rq = cls;
    if (!filename)
        return MHD_YES;
    if (off == 0 && (rq->file_parts == 0 || rq->part_len > 0)) {
        rq->file_parts++;     /* a new part (an empty one may merge) */
        rq->part_len = 0;
    }
    rq->part_len += size;
    if (rq->file_parts > 1)
        return MHD_YES;       /* answered 400 at the end */
    body_add(rq, data, size);
    return MHD_YES;
}

/* Is the header value `v` the media type `type` (case-insensitive, maybe
 * with parameters)? With a trailing '/', any subtype of it. */
static bool media_is(const char *v, const char *type)
{
    size_t n = strlen(type);
    if (strncasecmp(v, type, n))
        return false;
    if (type[n - 1] == '/')
        return v[n] && v[n] != ';' && v[n] != ' ';
    return !v[n] || v[n] == ';' || v[n] == ' ';
}

/* First call of a request: route it, check method and headers. Returns
 * MHD_YES with a queued answer (an error), or MHD_YES and rq->route set
 * to answer when the request is complete. */
static enum MHD_Result begin(struct MHD_Connection *c,
                             request *rq, const char *url, const char *method)
{
    const route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (!strcmp(url, routes[i].path))
            r = &routes[i];
    if (!r)
        return respond_error(c, rq, MHD_HTTP_NOT_FOUND, NULL,
                             "no such page; try / or POST /predict");
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (r->post ? strcmp(method, "POST") != 0 : !get)
        return respond_error(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, r->allow,
                             "%s takes %s", r->path, r->allow);
    rq->route = r;
    if (!r->post)
        return MHD_YES;       /* answered in the next call: keeps alive */
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "Content-Length");
    if (len) {
        char *end;
        unsigned long long n = strtoull(len, &end, 10);
        if (end == len || *end || len[0] == '-')
            return respond_error(c, rq, MHD_HTTP_BAD_REQUEST, NULL,
                                 "bad Content-Length");
        if (n > SERVE_MAX_BODY)
            return respond_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                 "request body over %u bytes",
                                 SERVE_MAX_BODY);
    }
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Content-Type");
    if (!type)
        return respond_error(c, rq, MHD_HTTP_BAD_REQUEST, NULL,
                             "missing Content-Type: send an image/* body "
                             "or multipart/form-data");
    if (media_is(type, "multipart/form-data")) {
        rq->pp = MHD_create_post_processor(c, SERVE_PP_BUFFER, part, rq);
        if (!rq->pp)
            return respond_error(c, rq, MHD_HTTP_BAD_REQUEST, NULL,
                                 "multipart/form-data without a boundary");
    } else if (!media_is(type, "image/")) {
        return respond_error(c, rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                             "Content-Type must be image/* or "
                             "multipart/form-data");
    }
    return MHD_YES;
}

enum MHD_Result serve_handle(void *cls, struct MHD_Connection *c,
                             const char *url, const char *method,
                             const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
    (void)version;
    serve_state *s = cls;
    request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;    /* closes the connection */
        *con_cls = rq;
        atomic_fetch_add(&s->in_flight, 1);
        return begin(c, rq, url, method);
    }
    if (rq->answered) {       /* the body of a request already refused */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        rq->received += n;
        /* A body without Content-Length (chunked) over the limit: kept
         * no more, read on to answer 413 at its end (libmicrohttpd sends
         * no answer in the middle of a body), dropped past twice it. */
        if (rq->received > SERVE_MAX_BODY || rq->received < n) {
            rq->too_large = true;
            return rq->received > 2 * (size_t)SERVE_MAX_BODY ||
                           rq->received < n
                       ? MHD_NO
                       : MHD_YES;
        }
        if (!rq->route->post)
            return MHD_YES;   /* a body sent with GET: read, not kept */
        if (rq->pp) {
            if (MHD_post_process(rq->pp, upload, n) != MHD_YES)
                return respond_error(c, rq, MHD_HTTP_BAD_REQUEST, NULL,
                                     "malformed multipart/form-data");
        } else {
            body_add(rq, upload, n);
        }
        return MHD_YES;
    }
    return rq->route->run(s, c, rq);
}

void serve_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    serve_state *s = cls;
    request *rq = *con_cls;
    if (!rq)
        return;
    if (rq->pp)
        MHD_destroy_post_processor(rq->pp);
    free(rq->body);
    free(rq->out);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_add(&s->served, 1);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ------------------------------------------------------------- the state */

/* GET /model: {"file", "input": [h, w, c], "classes", "parameters",
 * "layers": [{"kind", "activation", "units", "output", "parameters"}],
 * "accuracy": null (model files record none), "summary"}. */
static char *describe(nn_model *m, const char *path, size_t *len)
{
    int L = nn_model_layer_count(m);
    size_t sum = nn_model_summary(m, NULL, 0);
    size_t cap = 512 + 2 * strlen(path) + (size_t)L * 200 + 2 * sum;
    outbuf b = {malloc(cap), 0, cap};
    char *text = malloc(sum + 1);
    if (!b.p || !text) {
        free(b.p);
        free(text);
        return NULL;
    }
    nn_model_summary(m, text, sum + 1);
    nn_shape in = nn_model_input_shape(m);
    put(&b, "{\"file\": \"");
    put_json_text(&b, path);
    put(&b, "\", \"input\": [");
    for (int i = 0; i < in.rank; i++)
        put(&b, "%s%d", i ? ", " : "", in.dim[i]);
    put(&b, "], \"classes\": %zu, \"parameters\": %zu, \"layers\": [",
        nn_shape_size(nn_model_output_shape(m)), nn_model_param_count(m));
    for (int i = 0; i < L; i++) {
        nn_layer_spec sp = nn_model_layer(m, i);
        nn_shape o = nn_model_layer_output_shape(m, i);
        put(&b, "%s{\"kind\": \"%s\", \"activation\": \"%s\", \"units\": %d, "
            "\"output\": [", i ? ", " : "", nn_layer_kind_name(sp.kind),
            nn_activation_name(sp.activation), sp.units);
        for (int k = 0; k < o.rank; k++)
            put(&b, "%s%d", k ? ", " : "", o.dim[k]);
        put(&b, "], \"parameters\": %zu}", nn_model_layer_param_count(m, i));
    }
    put(&b, "], \"accuracy\": null, \"summary\": \"");
    put_json_text(&b, text);
    put(&b, "\"}\n");
    free(text);
    *len = b.n;
    return b.p;
}

void serve_state_free(serve_state *s)
{
    serve_pool_stop(s);
    for (int i = 0; s->workers && i < s->n_workers; i++) {
        nn_model_free(s->workers[i].model);
        free(s->workers[i].x);
        free(s->workers[i].y);
    }
    free(s->workers);
    free(s->model_json);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

int serve_state_init(serve_state *s, const char *path, int threads)
{
    *s = (serve_state){.model_path = path, .n_workers = threads};
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->workers = calloc((size_t)threads, sizeof *s->workers);
    if (!s->workers)
        return cli_error("out of memory");
    nn_error err;
    size_t np = 0;
    for (int i = 0; i < threads; i++) {
        serve_worker *w = &s->workers[i];
        if (!(w->model = cli_model_load(path, &err)))
            return cli_nn_error(&err);
        if (i == 0) {
            size_t in = nn_shape_size(nn_model_input_shape(w->model));
            if (in != PIXELS)
                return cli_error("%s: the model takes %zu inputs per "
                                 "sample; serve needs a 28x28 (784-input) "
                                 "model", path, in);
            s->K = (int)nn_shape_size(nn_model_output_shape(w->model));
            np = nn_model_param_count(w->model);
        } else if (nn_model_param_count(w->model) != np ||
                   memcmp(nn_model_params(w->model),
                          nn_model_params(s->workers[0].model),
                          np * sizeof(float))) {
            return cli_error("%s: the file changed while it was loaded",
                             path);
        }
        w->x = calloc(PIXELS, sizeof *w->x);
        w->y = calloc((size_t)s->K, sizeof *w->y);
        if (!w->x || !w->y)
            return cli_error("out of memory");
        /* warm-up: the workspace is allocated here, not per request */
        if (nn_model_predict(w->model, w->x, 1, w->y, &err) != NN_OK)
            return cli_error("%s: %s", path, err.msg);
    }
    if (!(s->model_json = describe(s->workers[0].model, path,
                                   &s->model_json_len)))
        return cli_error("out of memory");
    return 0;
}
