/*  zjq_metrics.c: Prometheus metrics over HTTP. See zjq_metrics.h.
    The exposition format: prometheus.io/docs/instrumenting/exposition_formats */

#include "zjq_metrics.h"
#include "zjq_log.h"
#include "zjq_proto.h"
#include "zjq_util.h"
#include <czmq.h>
#include <microhttpd.h>
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ZJQ_METRICS_CONNECTIONS  16     //  open HTTP connections at most
#define ZJQ_METRICS_PER_IP       8      //  from one address
#define ZJQ_METRICS_TIMEOUT_S    10     //  an idle or slow connection is closed
#define ZJQ_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct _zjq_metrics_t {
    struct MHD_Daemon *daemon;
    zjq_metrics_stats_fn *stats;    //  packs the STATS map
    void *arg;
    int port;                       //  bound port
};


//  --------------------------------------------------------------------------
//  Rendering: one table of metrics, read from the STATS map

typedef enum { S_GAUGE, S_COUNTER, S_HISTOGRAM, S_INFO } s_type_t;
typedef enum { S_BROKER, S_JOURNAL, S_QUEUE } s_scope_t;

typedef struct {
    s_scope_t scope;            //  where the field is: broker, broker.journal, queues.NAME
    const char *field;          //  its key
    const char *name;           //  the metric's name
    s_type_t type;
    double divisor;             //  divide by this (ms -> s: 1000)
    const char *label;          //  an extra label="value", or NULL
    const char *help;
} s_metric_t;

//  Entries of one metric name must be adjacent (a family is one block).
//  A new STATS field is exported by one line here.
static const s_metric_t s_metrics [] = {
    { S_BROKER, "version", "zjq_broker_info", S_INFO, 1, NULL,
      "The broker's version and instance (generation), as labels." },
    { S_BROKER, "uptime_ms", "zjq_broker_uptime_seconds", S_GAUGE, 1000, NULL,
      "Seconds since the broker started." },
    { S_BROKER, "rss_bytes", "zjq_broker_resident_memory_bytes", S_GAUGE, 1, NULL,
      "Resident memory of the broker process." },
    { S_BROKER, "jobs", "zjq_broker_jobs", S_GAUGE, 1, NULL,
      "Jobs in the broker's table: queued, running, or ended with a stored outcome." },
    { S_BROKER, "results", "zjq_broker_stored_results", S_GAUGE, 1, NULL,
      "Ended jobs whose outcome is still stored." },
    { S_BROKER, "result_bytes", "zjq_broker_result_bytes", S_GAUGE, 1, NULL,
      "Bytes of stored results." },
    { S_BROKER, "queued_bytes", "zjq_broker_queued_bytes", S_GAUGE, 1, NULL,
      "Payload bytes of queued and running jobs." },
    { S_BROKER, "workers", "zjq_broker_workers", S_GAUGE, 1, NULL,
      "Connected workers." },
    { S_BROKER, "queues", "zjq_broker_queues", S_GAUGE, 1, NULL,
      "Queue names the broker holds." },
    { S_BROKER, "draining", "zjq_broker_draining", S_GAUGE, 1, NULL,
      "1 while the broker is draining (zjq drain: submits are rejected), else 0." },
    { S_BROKER, "dead_letters", "zjq_broker_dead_letters", S_GAUGE, 1, NULL,
      "Failed jobs kept as dead letters (zjq failed)." },
    { S_BROKER, "dead_letter_bytes", "zjq_broker_dead_letter_bytes", S_GAUGE, 1, NULL,
      "Bytes of the dead letters' payloads and attempt histories." },
    { S_BROKER, "expired", "zjq_broker_outcomes_expired_total", S_COUNTER, 1, NULL,
      "Stored outcomes dropped (TTL or result memory bound) since the broker started." },
    { S_BROKER, "rejected", "zjq_broker_submits_rejected_total", S_COUNTER, 1, NULL,
      "Submits rejected since the broker started." },
    { S_BROKER, "malformed", "zjq_broker_malformed_messages_total", S_COUNTER, 1, NULL,
      "Malformed or misdirected messages received since the broker started." },
    { S_BROKER, "stale_results", "zjq_broker_stale_results_total", S_COUNTER, 1, NULL,
      "Results dropped because their attempt was no longer current." },
    { S_BROKER, "workers_lost", "zjq_broker_workers_lost_total", S_COUNTER, 1, NULL,
      "Workers declared dead (silent) or unreachable since the broker started." },
    { S_BROKER, "refused_handshakes", "zjq_broker_refused_total", S_COUNTER, 1,
      "reason=\"handshake\"", "Refused connections and messages (CURVE), by reason." },
    { S_BROKER, "refused_unknown_key", "zjq_broker_refused_total", S_COUNTER, 1,
      "reason=\"unknown_key\"", NULL },
    { S_BROKER, "refused_role", "zjq_broker_refused_total", S_COUNTER, 1,
      "reason=\"role\"", NULL },
    { S_BROKER, "denied_queue", "zjq_broker_refused_total", S_COUNTER, 1,
      "reason=\"queue\"", NULL },
    { S_BROKER, "outbound_bytes", "zjq_broker_outbound_bytes", S_GAUGE, 1, NULL,
      "Bytes sent to client connections and not acknowledged (their backlog), all of them." },
    { S_BROKER, "outbound_peer_max_bytes", "zjq_broker_outbound_peer_max_bytes", S_GAUGE, 1, NULL,
      "The largest backlog of one client connection." },
    { S_BROKER, "worker_outbound_bytes", "zjq_broker_worker_outbound_bytes", S_GAUGE, 1, NULL,
      "Payload bytes of the jobs workers hold and have not answered." },
    { S_BROKER, "results_withheld", "zjq_broker_results_withheld_total", S_COUNTER, 1, NULL,
      "Results not sent with their DONE (the client's backlog was full), since start." },
    { S_BROKER, "outbound_refused", "zjq_broker_outbound_refused_total", S_COUNTER, 1, NULL,
      "Replies refused with EUNAVAILABLE for a client connection's backlog, since start." },
    { S_BROKER, "rejected_quota", "zjq_broker_submits_over_quota_total", S_COUNTER, 1, NULL,
      "Submits rejected with EQUOTA (the client's share was taken)." },
    { S_BROKER, "fd_limit", "zjq_broker_fd_limit", S_GAUGE, 1, NULL,
      "The broker's descriptor limit (soft RLIMIT_NOFILE, raised to the hard one)." },
    { S_BROKER, "accept_failed", "zjq_broker_accept_failed_total", S_COUNTER, 1, NULL,
      "Connections libzmq could not accept (ZMQ_EVENT_ACCEPT_FAILED), e.g. out of descriptors." },
    { S_BROKER, "connections_shed", "zjq_broker_connections_shed_total", S_COUNTER, 1, NULL,
      "Pending connections accepted and closed at once because descriptors ran out." },
    { S_JOURNAL, "bytes", "zjq_journal_bytes", S_GAUGE, 1, NULL,
      "Size of the journal file." },
    { S_JOURNAL, "live_bytes", "zjq_journal_live_bytes", S_GAUGE, 1, NULL,
      "Size of the journal after its last rewrite." },
    { S_JOURNAL, "healthy", "zjq_journal_healthy", S_GAUGE, 1, NULL,
      "1 while the journal can be written, else 0 (submits are rejected)." },
    { S_JOURNAL, "compactions", "zjq_journal_compactions_total", S_COUNTER, 1, NULL,
      "Journal rewrites since the broker started." },
    { S_JOURNAL, "records", "zjq_journal_records_total", S_COUNTER, 1, NULL,
      "Journal records appended since the broker started." },
    { S_JOURNAL, "held_replies", "zjq_journal_held_replies", S_GAUGE, 1, NULL,
      "Replies waiting for the journal to be durable." },
    { S_QUEUE, "queued", "zjq_queue_jobs", S_GAUGE, 1, "state=\"queued\"",
      "Jobs in the queue now, by state." },
    { S_QUEUE, "running", "zjq_queue_jobs", S_GAUGE, 1, "state=\"running\"", NULL },
    { S_QUEUE, "paused", "zjq_queue_paused", S_GAUGE, 1, NULL,
      "1 while the queue is paused (zjq pause: nothing is dispatched), else 0." },
    { S_QUEUE, "submitted", "zjq_jobs_submitted_total", S_COUNTER, 1, NULL,
      "Jobs accepted into the queue since the broker started." },
    { S_QUEUE, "succeeded", "zjq_jobs_finished_total", S_COUNTER, 1, "state=\"succeeded\"",
      "Jobs that ended since the broker started, by final state." },
    { S_QUEUE, "failed", "zjq_jobs_finished_total", S_COUNTER, 1, "state=\"failed\"", NULL },
    { S_QUEUE, "cancelled", "zjq_jobs_finished_total", S_COUNTER, 1, "state=\"cancelled\"",
      NULL },
    { S_QUEUE, "requeued", "zjq_job_attempts_requeued_total", S_COUNTER, 1, NULL,
      "Failed attempts that put their job back in the queue (retries)." },
    { S_QUEUE, "workers", "zjq_queue_workers", S_GAUGE, 1, NULL,
      "Connected workers that serve the queue." },
    { S_QUEUE, "oldest_queued_ms", "zjq_queue_oldest_job_age_seconds", S_GAUGE, 1000, NULL,
      "Age of the oldest queued job (since its submit); 0 if none is queued." },
    { S_QUEUE, "wait_ms", "zjq_queue_wait_seconds", S_HISTOGRAM, 1000, NULL,
      "Time from submit to the first start of a job." },
    { S_QUEUE, "run_ms", "zjq_job_run_seconds", S_HISTOGRAM, 1000, NULL,
      "Time from start to end of each attempt that ran." },
};
#define S_METRIC_COUNT (sizeof (s_metrics) / sizeof (s_metrics [0]))

//  A label value, escaped (backslash, quote, newline)
static void
s_put_label_value (FILE *out, const char *text, size_t len)
{
    for (size_t index = 0; index < len; index++) {
        char c = text [index];
        if (c == '\\' || c == '"')
            fprintf (out, "\\%c", c);
        else
        if (c == '\n')
            fputs ("\\n", out);
        else
            fputc (c, out);
    }
}

static void
s_put_value (FILE *out, double value)
{
    if (value == (double) (int64_t) value && value < 9e15 && value > -9e15)
        fprintf (out, "%lld\n", (long long) value);
    else
        fprintf (out, "%.15g\n", value);
}

//  name{queue="NAME",extra} value
static void
s_put_sample (FILE *out, const char *name, const char *suffix, const msgpack_object *queue,
              const char *extra, const char *le, double value)
{
    fprintf (out, "%s%s", name, suffix);
    bool any = queue || extra || le;
    if (any)
        fputc ('{', out);
    bool first = true;
    if (queue) {
        fputs ("queue=\"", out);
        s_put_label_value (out, queue->via.str.ptr, queue->via.str.size);
        fputc ('"', out);
        first = false;
    }
    if (extra) {
        fprintf (out, "%s%s", first? "": ",", extra);
        first = false;
    }
    if (le)
        fprintf (out, "%sle=\"%s\"", first? "": ",", le);
    if (any)
        fputc ('}', out);
    fputc (' ', out);
    s_put_value (out, value);
}

static void
s_put_histogram (FILE *out, const s_metric_t *metric, const msgpack_object *queue,
                 const msgpack_object *histogram, const msgpack_object *bounds)
{
    const msgpack_object *buckets = zjq_mp_map_get (histogram, "buckets");
    double count, sum;
    if (!buckets || buckets->type != MSGPACK_OBJECT_ARRAY || !bounds
    ||  bounds->type != MSGPACK_OBJECT_ARRAY
    ||  buckets->via.array.size != bounds->via.array.size + 1
    ||  !zjq_mp_number (zjq_mp_map_get (histogram, "count"), &count)
    ||  !zjq_mp_number (zjq_mp_map_get (histogram, "sum"), &sum))
        return;
    double cumulative = 0;
    for (uint32_t index = 0; index < buckets->via.array.size; index++) {
        double n = 0, bound = 0;
        zjq_mp_number (&buckets->via.array.ptr [index], &n);
        cumulative += n;
        char le [32] = "+Inf";
        if (index < bounds->via.array.size && zjq_mp_number (&bounds->via.array.ptr [index], &bound))
            snprintf (le, sizeof (le), "%g", bound / metric->divisor);
        s_put_sample (out, metric->name, "_bucket", queue, metric->label, le, cumulative);
    }
    s_put_sample (out, metric->name, "_sum", queue, metric->label, NULL, sum / metric->divisor);
    s_put_sample (out, metric->name, "_count", queue, metric->label, NULL, count);
}

char *
zjq_metrics_render (const msgpack_object *stats, size_t *size)
{
    assert (stats);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&text, &len);
    if (!out)
        return NULL;
    const msgpack_object *broker = zjq_mp_map_get (stats, "broker");
    const msgpack_object *journal = zjq_mp_map_get (broker, "journal");
    const msgpack_object *queues = zjq_mp_map_get (stats, "queues");
    const msgpack_object *bounds = zjq_mp_map_get (stats, "histogram_bounds_ms");
    if (queues && queues->type != MSGPACK_OBJECT_MAP)
        queues = NULL;
    const char *family = NULL;
    for (size_t index = 0; index < S_METRIC_COUNT; index++) {
        const s_metric_t *metric = &s_metrics [index];
        const msgpack_object *scope = metric->scope == S_BROKER? broker:
                                      metric->scope == S_JOURNAL? journal: queues;
        if (!scope)
            continue;
        if (!family || strcmp (family, metric->name) != 0) {
            family = metric->name;
            //  Help from the family's first entry
            fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", metric->name,
                     metric->help? metric->help: "", metric->name,
                     metric->type == S_COUNTER? "counter":
                     metric->type == S_HISTOGRAM? "histogram": "gauge");
        }
        double value;
        if (metric->type == S_INFO) {
            const msgpack_object *version = zjq_mp_map_get (broker, "version");
            const msgpack_object *instance = zjq_mp_map_get (broker, "instance");
            if (!version || version->type != MSGPACK_OBJECT_STR
            ||  !instance || instance->type != MSGPACK_OBJECT_STR)
                continue;
            fprintf (out, "%s{version=\"", metric->name);
            s_put_label_value (out, version->via.str.ptr, version->via.str.size);
            fputs ("\",instance=\"", out);
            s_put_label_value (out, instance->via.str.ptr, instance->via.str.size);
            fputs ("\"} 1\n", out);
        }
        else
        if (metric->scope != S_QUEUE) {
            if (zjq_mp_number (zjq_mp_map_get (scope, metric->field), &value))
                s_put_sample (out, metric->name, "", NULL, metric->label, NULL,
                              value / metric->divisor);
        }
        else
        for (uint32_t item = 0; item < queues->via.map.size; item++) {
            const msgpack_object *name = &queues->via.map.ptr [item].key;
            const msgpack_object *queue = &queues->via.map.ptr [item].val;
            if (name->type != MSGPACK_OBJECT_STR)
                continue;
            if (metric->type == S_HISTOGRAM)
                s_put_histogram (out, metric, name, zjq_mp_map_get (queue, metric->field), bounds);
            else
            if (zjq_mp_number (zjq_mp_map_get (queue, metric->field), &value))
                s_put_sample (out, metric->name, "", name, metric->label, NULL,
                              value / metric->divisor);
        }
    }
    if (fclose (out) != 0) {
        free (text);
        return NULL;
    }
    if (size)
        *size = len;
    return text;
}


//  --------------------------------------------------------------------------
//  HTTP

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned int status, char *body, size_t size)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (size, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (body);
        return MHD_NO;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, ZJQ_METRICS_CONTENT_TYPE);
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_respond_text (struct MHD_Connection *connection, unsigned int status, const char *text)
{
    char *body = strdup (text);
    return body? s_respond (connection, status, body, strlen (body)): MHD_NO;
}

static enum MHD_Result
s_handle_request (void *cls, struct MHD_Connection *connection, const char *url,
                  const char *method, const char *version, const char *upload_data,
                  size_t *upload_data_size, void **request_state)
{
    zjq_metrics_t *self = (zjq_metrics_t *) cls;
    if (strcmp (method, MHD_HTTP_METHOD_GET) != 0 && strcmp (method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_respond_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "only GET /metrics is served\n");
    if (strcmp (url, "/metrics") != 0)
        return s_respond_text (connection, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    self->stats (self->arg, &packer);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    char *text = NULL;
    size_t size = 0;
    if (msgpack_unpack_next (&unpacked, buffer.data, buffer.size, &offset)
        == MSGPACK_UNPACK_SUCCESS)
        text = zjq_metrics_render (&unpacked.data, &size);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    if (!text)
        return s_respond_text (connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return s_respond (connection, MHD_HTTP_OK, text, size);
}

static void
s_mhd_log (void *cls, const char *format, va_list args)
{
    char text [512];
    vsnprintf (text, sizeof (text), format, args);
    size_t len = strlen (text);
    while (len && (text [len - 1] == '\n' || text [len - 1] == ' '))
        text [--len] = 0;
    zjq_log_warning ("metrics_http", "msg=%s", text);
}

//  Split HOST:PORT into a host (brackets dropped) and a port. Returns 0 or
//  -1 with the reason in error.
static int
s_split_address (const char *address, char *host, size_t host_size, int *port,
                 char *error, size_t error_size)
{
    const char *colon = strrchr (address, ':');
    const char *host_start = address, *host_end = colon;
    if (!colon)
        return zjq_set_error (error, error_size, "'%s' is not HOST:PORT "
                              "(e.g. 127.0.0.1:9555)", address);
    if (*address == '[') {
        host_start = address + 1;
        if (colon == address || colon [-1] != ']')
            return zjq_set_error (error, error_size, "'%s': an IPv6 address goes in "
                                  "brackets: [::1]:9555", address);
        host_end = colon - 1;
    }
    int64_t number;
    if (zjq_parse_int (colon + 1, 0, 65535, &number))
        return zjq_set_error (error, error_size, "'%s': the port must be 0..65535", address);
    size_t len = (size_t) (host_end - host_start);
    if (len == 0 || len >= host_size)
        return zjq_set_error (error, error_size, "'%s': missing or too long host "
                              "(e.g. 127.0.0.1:9555)", address);
    memcpy (host, host_start, len);
    host [len] = 0;
    *port = (int) number;
    return 0;
}

int
zjq_metrics_address_check (const char *address, char *error, size_t error_size)
{
    char host [256];
    int port;
    return s_split_address (address, host, sizeof (host), &port, error, error_size);
}

zjq_metrics_t *
zjq_metrics_new (const char *address, zjq_metrics_stats_fn *stats, void *arg,
                 char *error, size_t error_size)
{
    assert (address && stats);
    char host [256];
    int port;
    if (s_split_address (address, host, sizeof (host), &port, error, error_size))
        return NULL;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *found = NULL;
    char service [16];
    snprintf (service, sizeof (service), "%d", port);
    int rc = getaddrinfo (host, service, &hints, &found);
    if (rc != 0) {
        zjq_set_error (error, error_size, "metrics address %s: %s", address, gai_strerror (rc));
        return NULL;
    }
    zjq_metrics_t *self = (zjq_metrics_t *) calloc (1, sizeof (zjq_metrics_t));
    if (!self) {
        freeaddrinfo (found);
        zjq_set_error (error, error_size, "out of memory");
        return NULL;
    }
    self->stats = stats;
    self->arg = arg;
    unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (found->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (
        flags, (uint16_t) port, NULL, NULL, s_handle_request, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, found->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) ZJQ_METRICS_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) ZJQ_METRICS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) ZJQ_METRICS_TIMEOUT_S,
        MHD_OPTION_END);
    freeaddrinfo (found);
    if (!self->daemon) {
        zjq_set_error (error, error_size, "cannot serve metrics on %s (address in use, "
                       "or not an address of this host?)", address);
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
    self->port = info? (int) info->port: port;
    return self;
}

void
zjq_metrics_destroy (zjq_metrics_t **self_p)
{
    assert (self_p);
    zjq_metrics_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}

int
zjq_metrics_port (zjq_metrics_t *self)
{
    assert (self);
    return self->port;
}

int
zjq_metrics_fd (zjq_metrics_t *self)
{
    assert (self);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon,
                                                            MHD_DAEMON_INFO_EPOLL_FD);
    return info? info->epoll_fd: -1;
}

int64_t
zjq_metrics_timeout (zjq_metrics_t *self)
{
    assert (self);
    MHD_UNSIGNED_LONG_LONG timeout = 0;
    if (MHD_get_timeout (self->daemon, &timeout) != MHD_YES)
        return -1;
    return timeout > INT64_MAX? INT64_MAX: (int64_t) timeout;
}

void
zjq_metrics_process (zjq_metrics_t *self)
{
    assert (self);
    MHD_run (self->daemon);
}


//  --------------------------------------------------------------------------
//  Self test

static void
s_test_stats (void *arg, msgpack_packer *packer)
{
    int *calls = (int *) arg;
    (*calls)++;
    //  {broker: {version, instance, uptime_ms, jobs, curve, journal: {healthy}},
    //   queues: {"q.1": {queued, succeeded, oldest_queued_ms, run_ms: {...}}},
    //   histogram_bounds_ms: [1, 2]}  (a toy histogram of three buckets)
    msgpack_pack_map (packer, 3);
    msgpack_pack_str_with_body (packer, "broker", 6);
    msgpack_pack_map (packer, 5);
    msgpack_pack_str_with_body (packer, "version", 7);
    msgpack_pack_str_with_body (packer, "0.1\"x", 5);
    msgpack_pack_str_with_body (packer, "instance", 8);
    msgpack_pack_str_with_body (packer, "abc", 3);
    msgpack_pack_str_with_body (packer, "uptime_ms", 9);
    msgpack_pack_uint64 (packer, 1500);
    msgpack_pack_str_with_body (packer, "jobs", 4);
    msgpack_pack_uint64 (packer, 7);
    msgpack_pack_str_with_body (packer, "journal", 7);
    msgpack_pack_map (packer, 1);
    msgpack_pack_str_with_body (packer, "healthy", 7);
    msgpack_pack_true (packer);
    msgpack_pack_str_with_body (packer, "queues", 6);
    msgpack_pack_map (packer, 1);
    msgpack_pack_str_with_body (packer, "q.1", 3);
    msgpack_pack_map (packer, 4);
    msgpack_pack_str_with_body (packer, "queued", 6);
    msgpack_pack_uint64 (packer, 3);
    msgpack_pack_str_with_body (packer, "succeeded", 9);
    msgpack_pack_uint64 (packer, 10);
    msgpack_pack_str_with_body (packer, "oldest_queued_ms", 16);
    msgpack_pack_uint64 (packer, 2500);
    msgpack_pack_str_with_body (packer, "run_ms", 6);
    msgpack_pack_map (packer, 3);
    msgpack_pack_str_with_body (packer, "buckets", 7);
    msgpack_pack_array (packer, 3);
    msgpack_pack_uint64 (packer, 4);
    msgpack_pack_uint64 (packer, 5);
    msgpack_pack_uint64 (packer, 1);
    msgpack_pack_str_with_body (packer, "count", 5);
    msgpack_pack_uint64 (packer, 10);
    msgpack_pack_str_with_body (packer, "sum", 3);
    msgpack_pack_uint64 (packer, 14);
    msgpack_pack_str_with_body (packer, "histogram_bounds_ms", 19);
    msgpack_pack_array (packer, 2);
    msgpack_pack_uint64 (packer, 1);
    msgpack_pack_uint64 (packer, 2);
}

void
zjq_metrics_test (bool verbose)
{
    //  Rendering
    int calls = 0;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    s_test_stats (&calls, &packer);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    assert (msgpack_unpack_next (&unpacked, buffer.data, buffer.size, &offset)
            == MSGPACK_UNPACK_SUCCESS);
    size_t size = 0;
    char *text = zjq_metrics_render (&unpacked.data, &size);
    assert (text && size == strlen (text));
    if (verbose)
        printf ("\n%s", text);
    assert (strstr (text, "# TYPE zjq_broker_info gauge\n"
                          "zjq_broker_info{version=\"0.1\\\"x\",instance=\"abc\"} 1\n"));
    assert (strstr (text, "\nzjq_broker_uptime_seconds 1.5\n"));
    assert (strstr (text, "\nzjq_broker_jobs 7\n"));
    assert (!strstr (text, "\nzjq_broker_workers "));       //  not in the map
    assert (strstr (text, "\nzjq_journal_healthy 1\n"));
    assert (strstr (text, "\nzjq_queue_jobs{queue=\"q.1\",state=\"queued\"} 3\n"));
    assert (strstr (text, "# TYPE zjq_jobs_finished_total counter\n"
                          "zjq_jobs_finished_total{queue=\"q.1\",state=\"succeeded\"} 10\n"));
    assert (strstr (text, "\nzjq_queue_oldest_job_age_seconds{queue=\"q.1\"} 2.5\n"));
    assert (strstr (text, "# TYPE zjq_job_run_seconds histogram\n"
                          "zjq_job_run_seconds_bucket{queue=\"q.1\",le=\"0.001\"} 4\n"
                          "zjq_job_run_seconds_bucket{queue=\"q.1\",le=\"0.002\"} 9\n"
                          "zjq_job_run_seconds_bucket{queue=\"q.1\",le=\"+Inf\"} 10\n"
                          "zjq_job_run_seconds_sum{queue=\"q.1\"} 0.014\n"
                          "zjq_job_run_seconds_count{queue=\"q.1\"} 10\n"));
    assert (!strstr (text, "zjq_queue_wait_seconds_bucket"));
    free (text);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);

    //  Addresses
    char error [256];
    assert (zjq_metrics_address_check ("127.0.0.1:9555", error, sizeof (error)) == 0);
    assert (zjq_metrics_address_check ("[::1]:0", error, sizeof (error)) == 0);
    assert (zjq_metrics_address_check ("localhost:80", error, sizeof (error)) == 0);
    assert (zjq_metrics_address_check ("9555", error, sizeof (error)) == -1);
    assert (zjq_metrics_address_check ("127.0.0.1:99999", error, sizeof (error)) == -1);
    assert (zjq_metrics_address_check (":9555", error, sizeof (error)) == -1);
    assert (!zjq_metrics_new ("no-such-host.invalid:1", s_test_stats, &calls,
                              error, sizeof (error)));

    //  Serving, driven by hand: a request over a plain socket
    zjq_metrics_t *metrics = zjq_metrics_new ("127.0.0.1:0", s_test_stats, &calls,
                                              error, sizeof (error));
    assert (metrics);
    int port = zjq_metrics_port (metrics);
    assert (port > 0 && zjq_metrics_fd (metrics) >= 0);
    const char *paths [] = { "/metrics", "/other" };
    for (size_t index = 0; index < 2; index++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                                    .sin_addr.s_addr = htonl (0x7f000001) };
        assert (fd >= 0 && connect (fd, (struct sockaddr *) &peer, sizeof (peer)) == 0);
        char request [128];
        snprintf (request, sizeof (request), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", paths [index]);
        assert (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
        char reply [8192];
        size_t got = 0;
        int64_t deadline = zjq_mono_ms () + 10000;
        while (zjq_mono_ms () < deadline) {
            zjq_metrics_process (metrics);
            struct pollfd item = { .fd = fd, .events = POLLIN };
            if (poll (&item, 1, 10) == 1) {
                ssize_t n = read (fd, reply + got, sizeof (reply) - 1 - got);
                if (n <= 0)
                    break;      //  HTTP/1.0: the server closes after the reply
                got += (size_t) n;
            }
        }
        close (fd);
        reply [got] = 0;
        if (index == 0) {
            assert (strncmp (reply, "HTTP/1.0 200", 12) == 0 || strncmp (reply, "HTTP/1.1 200", 12) == 0);
            assert (strstr (reply, ZJQ_METRICS_CONTENT_TYPE));
            assert (strstr (reply, "zjq_broker_jobs 7\n"));
        }
        else
            assert (strstr (reply, " 404 "));
    }
    assert (calls == 2);                //  the 404 rendered nothing
    zjq_metrics_destroy (&metrics);
    zjq_metrics_destroy (&metrics);
    assert (!metrics);
    if (verbose)
        printf ("(metrics ok) ");
}
