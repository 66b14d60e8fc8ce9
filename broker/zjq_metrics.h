/*  zjq_metrics.h: Prometheus metrics over HTTP for the broker.

    `zjq-broker --metrics 127.0.0.1:9555` serves GET /metrics in the
    Prometheus text exposition format (version 0.0.4); any other path is
    404, any other method 405. The HTTP server is libmicrohttpd in external
    epoll mode, driven from the broker's own loop: the broker polls
    zjq_metrics_fd () with its other sockets and calls zjq_metrics_process ()
    when it is readable or zjq_metrics_timeout () has passed. So the page is
    rendered in the broker's thread from the same map as STATS_REPLY, and
    nothing is shared between threads. Sockets are non-blocking, connections
    are limited in number and time out, so a slow or hostile client costs a
    connection slot, never the broker's time.                              */

#ifndef ZJQ_METRICS_H_INCLUDED
#define ZJQ_METRICS_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _zjq_metrics_t zjq_metrics_t;

//  Pack the broker's STATS map, histograms included (docs/protocol.md,
//  Stats), into packer. Called from zjq_metrics_process, per scrape.
typedef void (zjq_metrics_stats_fn) (void *arg, msgpack_packer *packer);

//  Check an address for --metrics: HOST:PORT, with HOST an IPv4 address, a
//  name, or [IPv6]. Returns 0, or -1 with the reason in error.
int
    zjq_metrics_address_check (const char *address, char *error, size_t error_size);

//  Start serving on address (HOST:PORT; port 0 picks a free one). stats
//  is called with arg for each scrape. Returns NULL with the reason in
//  error if the address cannot be used or bound.
zjq_metrics_t *
    zjq_metrics_new (const char *address, zjq_metrics_stats_fn *stats, void *arg,
                     char *error, size_t error_size);

//  Stop serving and close every connection; idempotent; nulls the pointer.
void
    zjq_metrics_destroy (zjq_metrics_t **self_p);

//  The port it listens on.
int
    zjq_metrics_port (zjq_metrics_t *self);

//  The file descriptor to poll for input (an epoll fd).
int
    zjq_metrics_fd (zjq_metrics_t *self);

//  Milliseconds until zjq_metrics_process must run even without input,
//  or -1 if there is no such deadline.
int64_t
    zjq_metrics_timeout (zjq_metrics_t *self);

//  Serve what is ready: accept, read requests, answer, write, time out.
//  Never blocks.
void
    zjq_metrics_process (zjq_metrics_t *self);

//  Render a STATS map (with histograms) as Prometheus text. Returns a
//  malloc'd NUL-terminated text and its length in *size, or NULL if out
//  of memory. Fields the map lacks are left out.
char *
    zjq_metrics_render (const msgpack_object *stats, size_t *size);

//  Self test
void
    zjq_metrics_test (bool verbose);

#endif
