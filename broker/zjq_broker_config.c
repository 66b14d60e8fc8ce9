/*  zjq_broker_config.c: zjq-broker settings. See zjq_broker_config.h.

    One option table (common/zjq_options.h) serves the command line, the
    config file and --help: a new setting is a field in zjq_broker_config_t,
    its default in zjq_broker_config_new, and a row here.                  */

#include "zjq_broker_config.h"
#include "zjq_options.h"
#include "zjq_error.h"
#include "zjq_util.h"
#include "zjq_journal.h"
#include "zjq_log.h"
#include "zjq_metrics.h"
#include <czmq.h>
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZJQ_MAX_PAYLOAD_LIMIT (2LL << 30)   //  ZMQ_MAXMSGSIZE must stay sane


//  --------------------------------------------------------------------------
//  The option table

//  --fsync: a zjq_fsync_policy_t by name
static int
s_parse_fsync (const zjq_option_t *option, void *settings, const char *value,
               char *error, size_t error_size)
{
    (void) option, (void) error, (void) error_size;
    zjq_fsync_policy_t policy;
    if (zjq_journal_policy_parse (value, &policy))
        return -1;
    ((zjq_broker_config_t *) settings)->fsync_policy = policy;
    return 0;
}

//  --log-format: a zjq_log_format_t by name
static int
s_parse_log_format (const zjq_option_t *option, void *settings, const char *value,
                    char *error, size_t error_size)
{
    (void) option, (void) error, (void) error_size;
    zjq_log_format_t format;
    if (zjq_log_format_parse (value, &format))
        return -1;
    ((zjq_broker_config_t *) settings)->log_format = format;
    return 0;
}

//  --metrics: a HOST:PORT the metrics listener can use
static int
s_parse_metrics (const zjq_option_t *option, void *settings, const char *value,
                 char *error, size_t error_size)
{
    (void) option;
    char reason [256];
    if (zjq_metrics_address_check (value, reason, sizeof (reason)))
        return zjq_set_error (error, error_size, "metrics: %s", reason);
    zjq_broker_config_t *self = (zjq_broker_config_t *) settings;
    free (self->metrics);
    self->metrics = strdup (value);
    if (!self->metrics)
        return zjq_set_error (error, error_size, "out of memory");
    return 0;
}

#define S_FIELD(field) ZJQ_OPTION_FIELD (zjq_broker_config_t, field)
#define S_HINT "(seconds, or 250ms, 5m, 1h)"

//  In --help order. The rows without a field (config, help, version) are
//  command line only and handled by zjq_broker_config_parse itself.
static const zjq_option_t s_options [] = {
    { "bind", 0, ZJQ_OPT_LIST, S_FIELD (binds), 1, 0, .metavar = "ENDPOINT",
      .count_offset = offsetof (zjq_broker_config_t, bind_count),
      .help = "bind a ZeroMQ endpoint (repeatable; default " ZJQ_BROKER_DEFAULT_BIND ")" },
    { "config", 0, ZJQ_OPT_ARG, 0, 0, .metavar = "FILE", .flags = ZJQ_OPTION_CLI_ONLY,
      .help = "read 'option = value' lines (long names, no --);\n"
              "command-line options override the file" },
    { "endpoint-file", 0, ZJQ_OPT_TEXT, S_FIELD (endpoint_file), 1, 0, .metavar = "FILE",
      .help = "write the bound endpoints, one per line, atomically" },
    { "max-payload", 0, ZJQ_OPT_SIZE, S_FIELD (max_payload), 0, ZJQ_MAX_PAYLOAD_LIMIT,
      .metavar = "BYTES", .def = "16M", .help = "largest job payload and stored result" },
    { "max-jobs", 0, ZJQ_OPT_INT, S_FIELD (max_jobs), 1, INT64_MAX, .metavar = "N",
      .def = "2000000", .help = "queued + running jobs at once" },
    { "max-queues", 0, ZJQ_OPT_INT, S_FIELD (max_queues), 1, INT64_MAX, .metavar = "N",
      .def = "10000", .help = "distinct queue names at once" },
    { "max-queued-bytes", 0, ZJQ_OPT_SIZE, S_FIELD (max_queued_bytes), 0, 0,
      .metavar = "BYTES", .def = "1G", .help = "payload bytes of queued + running jobs" },
    { "max-jobs-per-client", 0, ZJQ_OPT_INT, S_FIELD (max_jobs_per_client), 0, INT64_MAX,
      .metavar = "N", .def = "0",
      .help = "queued + running jobs one client may have (its\n"
              "CURVE key; in plaintext its connection); past it\n"
              "its submits get EQUOTA; 0: no share" },
    { "max-queued-bytes-per-client", 0, ZJQ_OPT_SIZE, S_FIELD (max_queued_bytes_per_client),
      0, 0, .metavar = "BYTES", .def = "0",
      .help = "payload bytes of one client's queued + running\njobs; 0: no share" },
    { "max-result-bytes", 0, ZJQ_OPT_SIZE, S_FIELD (max_result_bytes), 0, 0,
      .metavar = "BYTES", .def = "256M",
      .help = "bytes of stored results; beyond it the results\n"
              "closest to expiry are dropped early" },
    { "result-ttl", 0, ZJQ_OPT_DURATION, S_FIELD (result_ttl_ms), 1, 0, .metavar = "SECONDS",
      .def = "3600", .help = "how long outcomes are kept" },
    { "job-timeout", 0, ZJQ_OPT_DURATION, S_FIELD (job_timeout_ms), 1, 0,
      .metavar = "SECONDS", .def = "1800", .help = "default per-attempt job timeout" },
    { "max-attempts", 0, ZJQ_OPT_INT, S_FIELD (max_attempts), 1, 1000, .metavar = "N",
      .def = "3", .help = "default attempts per job, 1..1000" },
    { "dead-letter-ttl", 0, ZJQ_OPT_DURATION, S_FIELD (dead_letter_ttl_ms), 1, 0,
      .metavar = "SECONDS", .def = "7d",
      .accepts = "a positive duration (seconds, or 5m, 1h, 7d)",
      .help = "how long a failed job (a dead letter: zjq failed,\n"
              "zjq retry) is kept, at least" },
    { "max-dead-letters", 0, ZJQ_OPT_INT, S_FIELD (max_dead_letters), 0, INT64_MAX,
      .metavar = "N", .def = "100000",
      .help = "failed jobs kept at most; past it the oldest are\ndropped" },
    { "max-dead-letter-bytes", 0, ZJQ_OPT_SIZE, S_FIELD (max_dead_letter_bytes), 0, 0,
      .metavar = "BYTES", .def = "256M",
      .help = "payload and history bytes of the failed jobs kept\nat most" },
    { "max-peer-outbound-bytes", 0, ZJQ_OPT_SIZE, S_FIELD (max_peer_outbound_bytes), 65536, 0,
      .metavar = "BYTES", .def = "8M",
      .help = "bytes sent to one connection and not read yet:\n"
              "past it a client is told its results are ready\n"
              "(and fetches them) instead of being sent them; a\n"
              "worker holds at most this many payload bytes (and\n"
              "always one job)" },
    { "max-outbound-bytes", 0, ZJQ_OPT_SIZE, S_FIELD (max_outbound_bytes), 65536, 0,
      .metavar = "BYTES", .def = "256M",
      .help = "bytes sent to all clients and not read yet" },
    { "journal", 0, ZJQ_OPT_TEXT, S_FIELD (journal), 1, 0, .metavar = "DIR",
      .help = "keep an append-only journal in DIR and replay it\n"
              "on start; without it every job is in memory\n"
              "only and lost when the broker stops" },
    { "fsync", 0, ZJQ_OPT_CUSTOM, S_FIELD (fsync_policy), .metavar = "POLICY",
      .parse = s_parse_fsync, .accepts = "always, interval or never",
      .help = "when the journal is fdatasync'ed; replies wait:\n"
              "always (default): group commit, a sync starts as\n"
              "soon as the disk is free and covers all written;\n"
              "interval: the same, syncs at least --fsync-interval\n"
              "apart (fewer syncs, slower replies; both survive\n"
              "power loss); never: replies follow write () and\n"
              "survive a broker crash, not power loss" },
    { "fsync-interval", 0, ZJQ_OPT_MS, S_FIELD (fsync_interval_ms), 1, 60000, .metavar = "MS",
      .def = "5", .help = "least time between two syncs for 'interval'" },
    { "journal-compact-size", 0, ZJQ_OPT_SIZE, S_FIELD (journal_compact_size), 4096, 0,
      .metavar = "BYTES", .def = "64M",
      .help = "rewrite the journal to its live state once it is\n"
              "this big and twice the last rewrite" },
    { "journal-salvage", 0, ZJQ_OPT_FLAG, S_FIELD (journal_salvage),
      .help = "start even if the journal is corrupt in the\n"
              "middle: skip bad records (logged), keep the rest" },
    { "curve-secret", 0, ZJQ_OPT_TEXT, S_FIELD (curve_secret), 1, 0, .metavar = "FILE",
      .help = "serve CURVE only (encrypted, authenticated), with\n"
              "this secret certificate (zjq keygen NAME writes\n"
              "NAME.key_secret; mode 0600)" },
    { "curve-clients", 0, ZJQ_OPT_TEXT, S_FIELD (curve_clients), 1, 0, .metavar = "DIR",
      .accepts = "file name", .help = "public certificates of the keys that may submit" },
    { "curve-workers", 0, ZJQ_OPT_TEXT, S_FIELD (curve_workers), 1, 0, .metavar = "DIR",
      .accepts = "file name", .help = "... that may serve as workers" },
    { "curve-admins", 0, ZJQ_OPT_TEXT, S_FIELD (curve_admins), 1, 0, .metavar = "DIR",
      .accepts = "file name",
      .help = "... that may use stats, reload, and see or cancel\n"
              "any job (without it, no key may)" },
    { "metrics", 0, ZJQ_OPT_CUSTOM, S_FIELD (metrics), .metavar = "HOST:PORT",
      .parse = s_parse_metrics,
      .help = "serve Prometheus metrics at http://HOST:PORT/metrics\n"
              "(e.g. 127.0.0.1:9555; port 0 picks a free one)" },
    { "log-format", 0, ZJQ_OPT_CUSTOM, S_FIELD (log_format), .metavar = "FORMAT",
      .parse = s_parse_log_format, .accepts = "text or json",
      .help = "text (time level=.. event=.. key=value, default)\n"
              "or json (one JSON object per line)" },
    { "no-shed-connections", 0, ZJQ_OPT_FLAG, S_FIELD (no_shed),
      .help = "out of descriptors, leave pending connections to\n"
              "libzmq, which retries them at full CPU (default:\n"
              "accept and close them with a reserve descriptor)" },
    { "verbose", 'v', ZJQ_OPT_FLAG, S_FIELD (verbose), .help = "log every message (debug)" },
    { "help", 'h', ZJQ_OPT_FLAG, 0, 0, .flags = ZJQ_OPTION_CLI_ONLY,
      .help = "show this help" },
    { "version", 0, ZJQ_OPT_FLAG, 0, 0, .flags = ZJQ_OPTION_CLI_ONLY,
      .help = "show the version" },
    { .name = NULL }
};

//  The command-line-only rows, by name
#define S_IS(option, text) (streq ((option)->name, text))


//  --------------------------------------------------------------------------
//  Settings

zjq_broker_config_t *
zjq_broker_config_new (void)
{
    zjq_broker_config_t *self = (zjq_broker_config_t *) calloc (1, sizeof (zjq_broker_config_t));
    if (!self)
        return NULL;
    self->max_payload = 16ULL << 20;
    self->max_jobs = 2000000;
    self->max_queues = 10000;
    self->max_queued_bytes = 1ULL << 30;
    self->max_result_bytes = 256ULL << 20;
    self->result_ttl_ms = 3600 * 1000;
    self->job_timeout_ms = 1800 * 1000;
    self->max_attempts = 3;
    self->dead_letter_ttl_ms = 7LL * 24 * 3600 * 1000;
    self->max_dead_letters = 100000;
    self->max_dead_letter_bytes = 256ULL << 20;
    self->max_peer_outbound_bytes = 8ULL << 20;
    self->max_outbound_bytes = 256ULL << 20;
    self->fsync_policy = ZJQ_FSYNC_ALWAYS;
    self->fsync_interval_ms = 5;
    self->journal_compact_size = 64ULL << 20;
    return self;
}

void
zjq_broker_config_destroy (zjq_broker_config_t **self_p)
{
    assert (self_p);
    zjq_broker_config_t *self = *self_p;
    if (!self)
        return;
    zjq_options_free (s_options, self);
    free (self->metrics);       //  (a CUSTOM row: not the table's to free)
    free (self);
    *self_p = NULL;
}

int
zjq_broker_config_set (zjq_broker_config_t *self, const char *name, const char *value,
                       char *error, size_t error_size)
{
    assert (self);
    assert (name && value && error);
    return zjq_options_set_by_name (s_options, self, name, value, error, error_size);
}

int
zjq_broker_config_load (zjq_broker_config_t *self, const char *path,
                        char *error, size_t error_size)
{
    assert (self);
    assert (path && error);
    return zjq_options_load (s_options, self, path, error, error_size);
}

void
zjq_broker_config_usage (void *stream)
{
    FILE *out = (FILE *) stream;
    fprintf (out,
        "usage: zjq-broker [--bind ENDPOINT]... [--config FILE] [-v] [options]\n"
        "\n"
        "The zjq job queue broker: clients submit jobs, workers run them.\n"
        "\n");
    zjq_options_help (s_options, 0, out, 24, ZJQ_OPTIONS_HELP_DEFAULTS);
    fprintf (out,
        "\n"
        "Sizes take k, M or G suffixes; durations are seconds or take ms, s, m, h.\n"
        "With CURVE, SIGHUP (or 'zjq reload' from an admin key) re-reads the\n"
        "allow-list directories; a certificate's metadata 'queues = \"a,b\"' limits\n"
        "its key to those queues. Without CURVE, bind loopback or a private network.\n");
}


//  --------------------------------------------------------------------------
//  The command line

static zjq_config_result_t
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "zjq-broker: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\nTry 'zjq-broker --help'.\n");
    va_end (args);
    return ZJQ_CONFIG_USAGE;
}

//  The next option of argv: its row and value (NULL for a flag). Returns
//  0, 1 at the end, or -1 after printing a usage error.
static int
s_next (int argc, char *argv [], int *arg_p, const zjq_option_t **option_p,
        const char **value_p)
{
    zjq_options_status_t status = zjq_options_next (s_options, 0, argc, argv, arg_p,
                                                    option_p, value_p);
    if (status == ZJQ_OPTIONS_END)
        return 1;
    if (status == ZJQ_OPTIONS_OPTION)
        return 0;
    const char *arg = argv [*arg_p];
    if (status == ZJQ_OPTIONS_UNKNOWN && strncmp (arg, "--", 2) != 0)
        status = ZJQ_OPTIONS_POSITIONAL;    //  "-x" is an argument, not an option
    char error [512];
    zjq_options_status_error (status, arg, *option_p, error, sizeof (error));
    s_usage_error ("%s", error);
    return -1;
}

//  The settings must name a CURVE secret and allow-lists together, and bind
//  somewhere. Returns ZJQ_CONFIG_RUN or a usage error.
static zjq_config_result_t
s_check (zjq_broker_config_t *self)
{
    bool any_dir = self->curve_clients || self->curve_workers || self->curve_admins;
    if (any_dir && !self->curve_secret)
        return s_usage_error ("--curve-clients, --curve-workers and --curve-admins need "
                              "--curve-secret (the broker's secret certificate)");
    if (self->curve_secret && !any_dir)
        return s_usage_error ("--curve-secret needs at least one allow-list: "
                              "--curve-clients, --curve-workers or --curve-admins");
    char error [256];
    if (self->bind_count == 0
    &&  zjq_options_set (&s_options [0], self, ZJQ_BROKER_DEFAULT_BIND, error, sizeof (error))) {
        fprintf (stderr, "zjq-broker: out of memory\n");
        return ZJQ_CONFIG_USAGE;
    }
    return ZJQ_CONFIG_RUN;
}

zjq_config_result_t
zjq_broker_config_parse (zjq_broker_config_t *self, int argc, char *argv [])
{
    assert (self);
    assert (S_IS (&s_options [0], "bind"));
    const zjq_option_t *option;
    const char *value;
    const char *config_file = NULL;
    //  First pass: syntax, --help, --version and --config
    int rc;
    for (int arg = 0; (rc = s_next (argc, argv, &arg, &option, &value)) == 0;) {
        if (S_IS (option, "help")) {
            zjq_broker_config_usage (stdout);
            return ZJQ_CONFIG_EXIT;
        }
        if (S_IS (option, "version")) {
            printf ("zjq-broker %s\n", zjq_version ());
            return ZJQ_CONFIG_EXIT;
        }
        if (S_IS (option, "config"))
            config_file = value;
    }
    if (rc < 0)
        return ZJQ_CONFIG_USAGE;
    char error [512];
    if (config_file && zjq_broker_config_load (self, config_file, error, sizeof (error))) {
        fprintf (stderr, "zjq-broker: %s\n", error);
        return ZJQ_CONFIG_USAGE;
    }
    //  Second pass: the command line overrides the file; its first --bind
    //  replaces the file's binds
    bool cli_binds = false;
    for (int arg = 0; s_next (argc, argv, &arg, &option, &value) == 0;) {
        if (S_IS (option, "config"))
            continue;
        if (S_IS (option, "bind") && !cli_binds) {
            zjq_options_clear (option, self);
            cli_binds = true;
        }
        if (zjq_options_set (option, self, value, error, sizeof (error)))
            return s_usage_error ("--%s", error);
    }
    return s_check (self);
}
