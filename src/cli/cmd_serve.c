/*
 * cmd_serve.c - `digits serve --model FILE`: a page to draw digits on and
 * an HTTP API (POST /predict) on libmicrohttpd. This file holds the
 * options, the listening socket, the signals and a clean stop; the routes
 * are in serve_http.c.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/serve.h"

static void usage(void)
{
    puts("usage: digits serve [--model FILE] [--host ADDR] [--port N]\n"
         "                    [--threads N] [--max-connections N]\n"
         "                    [--timeout S]\n\n"
         "Serves a page to draw digits on, and an HTTP API, with the same\n"
         "preprocessing and answers as 'digits predict':\n"
         "  GET  /          the page (draw with mouse, pen or touch)\n"
         "  POST /predict   body: an image file (Content-Type image/*), or\n"
         "                  multipart/form-data with one file part; answer:\n"
         "                  {\"digit\": D or null, \"probabilities\": [...],\n"
         "                  \"input\": [784 values 0..255, the 28x28 seen]}\n"
         "  GET  /model     the model: layers, parameters, classes\n"
         "  GET  /healthz   {\"status\": \"ok\"}\n"
         "Prints the URL it serves; Ctrl-C or SIGTERM stops it after the\n"
         "requests in flight are answered.\n\n"
         "  --model FILE         model file with 784 inputs (default model.nn)\n"
         "  --host ADDR          address to listen on (default 127.0.0.1:\n"
         "                       this machine only; 0.0.0.0 or :: for every\n"
         "                       network, only when you mean it)\n"
         "  --port N             TCP port (default 8080; 0 picks a free one)\n"
         "  --threads N          threads that decode and predict, each with\n"
         "                       its own copy of the model (default: the\n"
         "                       number of cores; one more does the network)\n"
         "  --max-connections N  open connections at most (default 64); more\n"
         "                       wait in the listen queue\n"
         "  --timeout S          close a connection idle for S seconds\n"
         "                       (default 10)\n"
         "Bodies over 8 MiB get 413; wrong methods 405; other content types\n"
         "415; pictures that cannot be read 400; other paths 404.");
}

typedef struct serve_args {
    const char *model, *host;
    long port, threads, max_conn, timeout;
} serve_args;

/* A listening TCP socket on host:port; returns it, or -1 after one error
 * line. *v6 tells whether it is IPv6. */
static int listen_on(const char *host, long port, bool *v6)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%ld", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        cli_error("--host: cannot use '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                    a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 ||
            listen(fd, 128) != 0) {
            e = errno;
            close(fd);
            fd = -1;
            continue;
        }
        *v6 = a->ai_family == AF_INET6;
    }
    freeaddrinfo(res);
    if (fd < 0)
        cli_error("cannot listen on %s port %ld: %s", host, port,
                  strerror(e));
    return fd;
}

/* The port fd is bound to. */
static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t n = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &n) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"host", required_argument, 0, 'H'},
        {"port", required_argument, 0, 'p'},
        {"threads", required_argument, 0, 't'},
        {"max-connections", required_argument, 0, 'c'},
        {"timeout", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    serve_args a = {.model = "model.nn", .host = "127.0.0.1", .port = 8080,
                    .threads = cores < 1 ? 1 : cores > 64 ? 64 : cores,
                    .max_conn = 64, .timeout = 10};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a.model = optarg; break;
        case 'H': a.host = optarg; break;
        case 'p':
            if (!cli_int("--port", optarg, 0, 65535, &a.port))
                return 1;
            break;
        case 't':
            if (!cli_int("--threads", optarg, 1, 64, &a.threads))
                return 1;
            break;
        case 'c':
            if (!cli_int("--max-connections", optarg, 1, 10000, &a.max_conn))
                return 1;
            break;
        case 'T':
            if (!cli_int("--timeout", optarg, 1, 3600, &a.timeout))
                return 1;
            break;
        case 'h': usage(); return 0;
        default: return cli_usage_error("serve", c, argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_error("serve: unexpected argument '%s'", argv[optind]);

    /* Each prediction runs on one compute thread with its own model;
     * libnn's own threads would only compete with them. */
    nn_set_threads(1);
    serve_state st;
    if (serve_state_init(&st, a.model, (int)a.threads) != 0) {
        serve_state_free(&st);
        return 1;
    }
    bool v6 = false;
    int fd = listen_on(a.host, a.port, &v6);
    if (fd < 0) {
        serve_state_free(&st);
        return 1;
    }
    /* SIGINT and SIGTERM are taken by sigwait below: blocked here, before
     * the server's threads start, so that they inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (serve_pool_start(&st) != 0) {
        close(fd);
        serve_state_free(&st);
        return 1;
    }
    /* One thread polls every connection (reads requests, writes answers);
     * predictions are suspended there and queued to the compute threads,
     * so that they share the work whichever connection it comes on. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0) |
                     (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                          ? MHD_USE_EPOLL : MHD_USE_AUTO);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, serve_handle, &st,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)a.max_conn,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)a.timeout,
        MHD_OPTION_NOTIFY_COMPLETED, serve_completed, &st,
        MHD_OPTION_END);
    if (!d) {
        close(fd);
        serve_state_free(&st);
        return cli_error("cannot start the HTTP server on %s port %ld",
                         a.host, a.port);
    }
    int port = bound_port(fd);
    const char *h = a.host;
    if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::"))
        h = v6 ? "::1" : "127.0.0.1";   /* a URL that works from here */
    printf("serving http://%s%s%s:%d/ (model %s, %ld threads); Ctrl-C "
           "stops\n", v6 ? "[" : "", h, v6 ? "]" : "", port, a.model,
           a.threads);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    /* Stop accepting, let the requests in flight finish (up to 10 s),
     * then close every connection. */
    MHD_socket lfd = MHD_quiesce_daemon(d);
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 1000 && atomic_load(&st.in_flight) > 0; i++)
        nanosleep(&pause, NULL);
    long unfinished = atomic_load(&st.in_flight);
    serve_pool_stop(&st);         /* no connection is left suspended */
    MHD_stop_daemon(d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    printf("stopped (%s) after %ld requests%s\n",
           sig == SIGINT ? "SIGINT" : "SIGTERM", atomic_load(&st.served),
           unfinished > 0 ? "; some were cut off" : "");
    serve_state_free(&st);
    return 0;
}
