/*  zjq_relay.c: zjq-relay, the yardstick of the zjq benchmark suite.

    The raw limit of a request/reply relay on this machine, in plain libzmq:
    no job table, no encoding, no credit, no heartbeats. Two roles:

      zjq-relay --frontend EP --backend EP [--endpoint-file FILE]
          the relay: a ROUTER for clients and a DEALER for workers, joined
          by zmq_proxy (ROUTER-DEALER, as in the zguide's rrbroker). A
          request goes client -> relay -> worker -> relay -> client: the same
          4 message hops as a zjq job (SUBMIT, JOB, WORK_RESULT, DONE).
      zjq-relay --echo EP
          an echo worker: a DEALER that sends every message back as it came
          (the envelope and the payload, zero copy).

    zjq-bench --relay is its client. High-water marks are off (0) on every
    socket: the client's window bounds what is in flight. Both roles run
    until SIGTERM or SIGINT (the default action ends the process).
    With tcp://127.0.0.1:* endpoints, --endpoint-file gets the two bound
    endpoints, frontend first, one per line, written atomically.            */

#include <zmq.h>

#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: zjq-relay --frontend EP --backend EP [--endpoint-file FILE]\n"
        "       zjq-relay --echo EP\n");
}

static void *
s_socket (void *context, int type)
{
    void *socket = zmq_socket (context, type);
    if (socket) {
        int zero = 0;
        zmq_setsockopt (socket, ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt (socket, ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt (socket, ZMQ_LINGER, &zero, sizeof zero);
    }
    return socket;
}

//  Write the bound endpoints of both sockets to path (via a temporary file
//  and rename). Returns 0 or -1.
static int
s_write_endpoints (const char *path, void *frontend, void *backend)
{
    char tmp [4096];
    char endpoint [2][256];
    void *sockets [2] = { frontend, backend };
    for (int i = 0; i < 2; i++) {
        size_t size = sizeof endpoint [i];
        if (zmq_getsockopt (sockets [i], ZMQ_LAST_ENDPOINT, endpoint [i], &size) == -1)
            return -1;
    }
    if (snprintf (tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp)
        return -1;
    FILE *file = fopen (tmp, "w");
    if (!file)
        return -1;
    fprintf (file, "%s\n%s\n", endpoint [0], endpoint [1]);
    if (fclose (file) != 0)
        return -1;
    return rename (tmp, path);
}

//  The relay: returns only on error (1).
static int
s_relay (void *context, const char *front_ep, const char *back_ep, const char *endpoint_file)
{
    void *frontend = s_socket (context, ZMQ_ROUTER);
    void *backend = s_socket (context, ZMQ_DEALER);
    if (!frontend || !backend
    ||  zmq_bind (frontend, front_ep) == -1 || zmq_bind (backend, back_ep) == -1) {
        fprintf (stderr, "zjq-relay: cannot bind: %s\n", zmq_strerror (errno));
        return 1;
    }
    if (endpoint_file && s_write_endpoints (endpoint_file, frontend, backend) != 0) {
        fprintf (stderr, "zjq-relay: cannot write %s\n", endpoint_file);
        return 1;
    }
    zmq_proxy (frontend, backend, NULL);
    fprintf (stderr, "zjq-relay: proxy stopped: %s\n", zmq_strerror (errno));
    return 1;
}

//  An echo worker: returns only on error (1).
static int
s_echo (void *context, const char *endpoint)
{
    void *socket = s_socket (context, ZMQ_DEALER);
    if (!socket || zmq_connect (socket, endpoint) == -1) {
        fprintf (stderr, "zjq-relay: cannot connect to %s\n", endpoint);
        return 1;
    }
    zmq_msg_t part;
    zmq_msg_init (&part);
    while (true) {
        if (zmq_msg_recv (&part, socket, 0) == -1)
            break;
        int more = zmq_msg_more (&part);
        if (zmq_msg_send (&part, socket, more ? ZMQ_SNDMORE : 0) == -1)
            break;
    }
    fprintf (stderr, "zjq-relay: echo stopped: %s\n", zmq_strerror (errno));
    zmq_msg_close (&part);
    return 1;
}

int
main (int argc, char **argv)
{
    const char *frontend = NULL, *backend = NULL, *echo = NULL, *endpoint_file = NULL;
    static const struct option options [] = {
        { "frontend", required_argument, NULL, 'f' },
        { "backend", required_argument, NULL, 'b' },
        { "echo", required_argument, NULL, 'e' },
        { "endpoint-file", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
            case 'f': frontend = optarg; break;
            case 'b': backend = optarg; break;
            case 'e': echo = optarg; break;
            case 'o': endpoint_file = optarg; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc || (echo ? frontend || backend : !frontend || !backend)) {
        s_usage (stderr);
        return 2;
    }
    void *context = zmq_ctx_new ();
    if (!context)
        return 1;
    int rc = echo ? s_echo (context, echo) : s_relay (context, frontend, backend, endpoint_file);
    zmq_ctx_term (context);
    return rc;
}
