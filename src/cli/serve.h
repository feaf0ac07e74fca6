/*
 * serve.h - what cmd_serve.c (options, socket, signals, start and stop)
 * and serve_http.c (the routes, the compute pool, the answers) share.
 */
#ifndef DIGITS_SERVE_H
#define DIGITS_SERVE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "cli/cli.h"

/* Limits a client cannot raise (README "digits serve"). */
#define SERVE_MAX_BODY      (8u << 20)  /* bytes of one POST body: 413 */
#define SERVE_PP_BUFFER     (32u << 10) /* multipart parser's buffer */

struct request;

/* One compute thread: libnn keeps its workspace in the model, so each
 * thread has its own copy; x and y are its input and output rows,
 * allocated once. */
typedef struct serve_worker {
    nn_model *model;
    float *x;      /* (784) */
    float *y;      /* (K) */
    pthread_t thread;
    struct serve_state *s;
} serve_worker;

/* libmicrohttpd's one thread reads requests and writes answers; a
 * prediction (decode, preprocess, predict, the JSON) is suspended there
 * and queued, first in first out, to n_workers compute threads, which
 * resume the connection with the answer made. */
typedef struct serve_state {
    const char *model_path;
    int K;                       /* classes: the model's outputs */
    int n_workers;
    int n_running;               /* compute threads started */
    serve_worker *workers;       /* (n_workers) */
    struct request *head, *tail; /* the queue, under mu */
    bool stopping;               /* under mu: run the queue dry and end */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *model_json;            /* GET /model, built once */
    size_t model_json_len;
    atomic_long in_flight;       /* requests begun and not completed */
    atomic_long served;          /* requests completed */
} serve_state;

/* Loads `threads` copies of the model at path (checked to be the same
 * file), warms each workspace with one prediction and builds the /model
 * answer. Returns 0, or 1 after one error line. */
int serve_state_init(serve_state *s, const char *path, int threads);
/* Starts the compute threads (after the caller has blocked the signals
 * they must not take). Returns 0, or 1 after one error line. */
int serve_pool_start(serve_state *s);
/* Answers every queued prediction and ends the compute threads: before
 * MHD_stop_daemon, which must find no connection suspended. */
void serve_pool_stop(serve_state *s);
/* Stops the pool if it runs, and frees everything. */
void serve_state_free(serve_state *s);

/* libmicrohttpd callbacks; cls is the serve_state. */
enum MHD_Result serve_handle(void *cls, struct MHD_Connection *c,
                             const char *url, const char *method,
                             const char *version, const char *upload,
                             size_t *upload_size, void **con_cls);
void serve_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe);

/* The page (web/index.html), embedded at build time by web/embed.sh, and
 * the Content-Security-Policy that lets exactly its inline script and
 * style run. */
extern const unsigned char serve_page[];
extern const size_t serve_page_len;
extern const char serve_page_csp[];

#endif
