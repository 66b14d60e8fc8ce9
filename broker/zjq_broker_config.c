/*  zjq_broker_config.c: zjq-broker settings. See zjq_broker_config.h.     */

#include "zjq_broker_config.h"
#include "zjq_error.h"
#include "zjq_util.h"
#include "zjq_journal.h"
#include "zjq_log.h"
#include "zjq_metrics.h"
#include <czmq.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ZJQ_MAX_PAYLOAD_LIMIT (2ULL << 30)  //  ZMQ_MAXMSGSIZE must stay sane

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
    self->fsync_policy = ZJQ_FSYNC_INTERVAL;
    self->fsync_interval_ms = 5;
    self->journal_compact_size = 64ULL << 20;
    return self;
}

static void
s_clear_binds (zjq_broker_config_t *self)
{
    for (size_t index = 0; index < self->bind_count; index++)
        free (self->binds [index]);
    free (self->binds);
    self->binds = NULL;
    self->bind_count = 0;
}

void
zjq_broker_config_destroy (zjq_broker_config_t **self_p)
{
    assert (self_p);
    zjq_broker_config_t *self = *self_p;
    if (!self)
        return;
    s_clear_binds (self);
    free (self->endpoint_file);
    free (self->journal);
    free (self->curve_secret);
    free (self->curve_clients);
    free (self->curve_workers);
    free (self->curve_admins);
    free (self->metrics);
    free (self);
    *self_p = NULL;
}

static int
s_add_bind (zjq_broker_config_t *self, const char *endpoint)
{
    char **binds = (char **) realloc (self->binds, (self->bind_count + 1) * sizeof (char *));
    if (!binds)
        return -1;
    self->binds = binds;
    self->binds [self->bind_count] = strdup (endpoint);
    if (!self->binds [self->bind_count])
        return -1;
    self->bind_count++;
    return 0;
}

static int
s_parse_bool (const char *value, bool *flag)
{
    if (!strcasecmp (value, "true") || !strcasecmp (value, "yes")
    ||  !strcasecmp (value, "on") || !strcmp (value, "1"))
        *flag = true;
    else
    if (!strcasecmp (value, "false") || !strcasecmp (value, "no")
    ||  !strcasecmp (value, "off") || !strcmp (value, "0"))
        *flag = false;
    else
        return -1;
    return 0;
}

int
zjq_broker_config_set (zjq_broker_config_t *self, const char *name, const char *value,
                       char *error, size_t error_size)
{
    assert (self);
    assert (name && value && error);
    uint64_t bytes;
    int64_t number;
    if (streq (name, "bind")) {
        if (!*value)
            return zjq_set_error (error, error_size, "bind: empty endpoint");
        if (s_add_bind (self, value))
            return zjq_set_error (error, error_size, "out of memory");
    }
    else
    if (streq (name, "endpoint-file")) {
        if (!*value)
            return zjq_set_error (error, error_size, "endpoint-file: empty file name");
        free (self->endpoint_file);
        self->endpoint_file = strdup (value);
    }
    else
    if (streq (name, "max-payload")) {
        if (zjq_parse_size (value, &bytes) || bytes > ZJQ_MAX_PAYLOAD_LIMIT)
            return zjq_set_error (error, error_size,
                           "max-payload: '%s' is not a size up to 2G (e.g. 16M)", value);
        self->max_payload = bytes;
    }
    else
    if (streq (name, "max-jobs")) {
        if (zjq_parse_int (value, 1, INT64_MAX, &number))
            return zjq_set_error (error, error_size, "max-jobs: '%s' is not a positive number", value);
        self->max_jobs = (uint64_t) number;
    }
    else
    if (streq (name, "max-queues")) {
        if (zjq_parse_int (value, 1, INT64_MAX, &number))
            return zjq_set_error (error, error_size, "max-queues: '%s' is not a positive number", value);
        self->max_queues = (uint64_t) number;
    }
    else
    if (streq (name, "max-queued-bytes")) {
        if (zjq_parse_size (value, &bytes))
            return zjq_set_error (error, error_size,
                           "max-queued-bytes: '%s' is not a size (e.g. 1G)", value);
        self->max_queued_bytes = bytes;
    }
    else
    if (streq (name, "max-result-bytes")) {
        if (zjq_parse_size (value, &bytes))
            return zjq_set_error (error, error_size,
                           "max-result-bytes: '%s' is not a size (e.g. 256M)", value);
        self->max_result_bytes = bytes;
    }
    else
    if (streq (name, "result-ttl")) {
        if (zjq_parse_duration (value, &number) || number <= 0)
            return zjq_set_error (error, error_size,
                           "result-ttl: '%s' is not a positive duration "
                           "(seconds, or 250ms, 5m, 1h)", value);
        self->result_ttl_ms = number;
    }
    else
    if (streq (name, "job-timeout")) {
        if (zjq_parse_duration (value, &number) || number <= 0)
            return zjq_set_error (error, error_size,
                           "job-timeout: '%s' is not a positive duration "
                           "(seconds, or 250ms, 5m, 1h)", value);
        self->job_timeout_ms = number;
    }
    else
    if (streq (name, "max-attempts")) {
        if (zjq_parse_int (value, 1, 1000, &number))
            return zjq_set_error (error, error_size,
                           "max-attempts: '%s' is not a number from 1 to 1000", value);
        self->max_attempts = (int) number;
    }
    else
    if (streq (name, "dead-letter-ttl")) {
        if (zjq_parse_duration (value, &number) || number <= 0)
            return zjq_set_error (error, error_size,
                           "dead-letter-ttl: '%s' is not a positive duration "
                           "(seconds, or 5m, 1h, 7d)", value);
        self->dead_letter_ttl_ms = number;
    }
    else
    if (streq (name, "max-dead-letters")) {
        if (zjq_parse_int (value, 0, INT64_MAX, &number))
            return zjq_set_error (error, error_size,
                           "max-dead-letters: '%s' is not a number >= 0", value);
        self->max_dead_letters = (uint64_t) number;
    }
    else
    if (streq (name, "max-dead-letter-bytes")) {
        if (zjq_parse_size (value, &bytes))
            return zjq_set_error (error, error_size,
                           "max-dead-letter-bytes: '%s' is not a size (e.g. 256M)", value);
        self->max_dead_letter_bytes = bytes;
    }
    else
    if (streq (name, "curve-secret") || streq (name, "curve-clients")
    ||  streq (name, "curve-workers") || streq (name, "curve-admins")) {
        char **field = streq (name, "curve-secret")? &self->curve_secret:
                       streq (name, "curve-clients")? &self->curve_clients:
                       streq (name, "curve-workers")? &self->curve_workers: &self->curve_admins;
        if (!*value)
            return zjq_set_error (error, error_size, "%s: empty file name", name);
        free (*field);
        *field = strdup (value);
        if (!*field)
            return zjq_set_error (error, error_size, "out of memory");
    }
    else
    if (streq (name, "metrics")) {
        char reason [256];
        if (zjq_metrics_address_check (value, reason, sizeof (reason)))
            return zjq_set_error (error, error_size, "metrics: %s", reason);
        free (self->metrics);
        self->metrics = strdup (value);
        if (!self->metrics)
            return zjq_set_error (error, error_size, "out of memory");
    }
    else
    if (streq (name, "log-format")) {
        zjq_log_format_t format;
        if (zjq_log_format_parse (value, &format))
            return zjq_set_error (error, error_size, "log-format: '%s' is not text or json",
                                  value);
        self->log_format = format;
    }
    else
    if (streq (name, "verbose")) {
        if (s_parse_bool (value, &self->verbose))
            return zjq_set_error (error, error_size, "verbose: '%s' is not true or false", value);
    }
    else
    if (streq (name, "journal")) {
        if (!*value)
            return zjq_set_error (error, error_size, "journal: empty directory name");
        free (self->journal);
        self->journal = strdup (value);
    }
    else
    if (streq (name, "fsync")) {
        zjq_fsync_policy_t policy;
        if (zjq_journal_policy_parse (value, &policy))
            return zjq_set_error (error, error_size,
                           "fsync: '%s' is not always, interval or never", value);
        self->fsync_policy = policy;
    }
    else
    if (streq (name, "fsync-interval")) {
        //  Plain numbers are milliseconds here; 5ms, 0.01s work too
        if (zjq_parse_int (value, 1, 60000, &number) == 0)
            self->fsync_interval_ms = number;
        else
        if (zjq_parse_duration (value, &number) == 0 && number >= 1 && number <= 60000)
            self->fsync_interval_ms = number;
        else
            return zjq_set_error (error, error_size,
                           "fsync-interval: '%s' is not a number of ms from 1 to 60000", value);
    }
    else
    if (streq (name, "journal-compact-size")) {
        if (zjq_parse_size (value, &bytes) || bytes < 4096)
            return zjq_set_error (error, error_size,
                           "journal-compact-size: '%s' is not a size of at least 4k", value);
        self->journal_compact_size = bytes;
    }
    else
    if (streq (name, "journal-salvage")) {
        if (s_parse_bool (value, &self->journal_salvage))
            return zjq_set_error (error, error_size,
                           "journal-salvage: '%s' is not true or false", value);
    }
    else
        return zjq_set_error (error, error_size, "unknown option '%s'", name);
    return 0;
}

//  Trim leading and trailing white space in place
static char *
s_trim (char *text)
{
    while (isspace ((unsigned char) *text))
        text++;
    size_t len = strlen (text);
    while (len && isspace ((unsigned char) text [len - 1]))
        text [--len] = 0;
    return text;
}

int
zjq_broker_config_load (zjq_broker_config_t *self, const char *path,
                        char *error, size_t error_size)
{
    assert (self);
    assert (path && error);
    FILE *file = fopen (path, "r");
    if (!file)
        return zjq_set_error (error, error_size, "%s: %s", path, strerror (errno));
    char *line = NULL;
    size_t line_size = 0;
    int line_nbr = 0;
    int rc = 0;
    while (getline (&line, &line_size, file) != -1) {
        line_nbr++;
        //  A '#' at the start or after white space starts a comment
        for (char *hash = strchr (line, '#'); hash; hash = strchr (hash + 1, '#'))
            if (hash == line || isspace ((unsigned char) hash [-1])) {
                *hash = 0;
                break;
            }
        char *text = s_trim (line);
        if (!*text)
            continue;
        char *equals = strchr (text, '=');
        if (!equals) {
            rc = zjq_set_error (error, error_size, "%s:%d: expected 'option = value'", path, line_nbr);
            break;
        }
        *equals = 0;
        char *name = s_trim (text);
        char *value = s_trim (equals + 1);
        size_t len = strlen (value);
        if (len >= 2 && value [0] == '"' && value [len - 1] == '"') {
            value [len - 1] = 0;
            value++;
        }
        char reason [256];
        if (!*name)
            rc = zjq_set_error (error, error_size, "%s:%d: missing option name", path, line_nbr);
        else
        if (streq (name, "config") || streq (name, "help") || streq (name, "version"))
            rc = zjq_set_error (error, error_size, "%s:%d: unknown option '%s'", path, line_nbr, name);
        else
        if (zjq_broker_config_set (self, name, value, reason, sizeof (reason)))
            rc = zjq_set_error (error, error_size, "%s:%d: %s", path, line_nbr, reason);
        if (rc)
            break;
    }
    if (rc == 0 && ferror (file))
        rc = zjq_set_error (error, error_size, "%s: read error", path);
    free (line);
    fclose (file);
    return rc;
}

void
zjq_broker_config_usage (void *stream)
{
    fprintf ((FILE *) stream,
        "usage: zjq-broker [--bind ENDPOINT]... [--config FILE] [-v] [options]\n"
        "\n"
        "The zjq job queue broker: clients submit jobs, workers run them.\n"
        "\n"
        "  --bind ENDPOINT          bind a ZeroMQ endpoint (repeatable; default %s)\n"
        "  --config FILE            read 'option = value' lines (long names, no --);\n"
        "                           command-line options override the file\n"
        "  --endpoint-file FILE     write the bound endpoints, one per line, atomically\n"
        "  --max-payload BYTES      largest job payload and stored result (default 16M)\n"
        "  --max-jobs N             queued + running jobs at once (default 2000000)\n"
        "  --max-queues N           distinct queue names at once (default 10000)\n"
        "  --max-queued-bytes BYTES payload bytes of queued + running jobs (default 1G)\n"
        "  --max-result-bytes BYTES bytes of stored results; beyond it the results\n"
        "                           closest to expiry are dropped early (default 256M)\n"
        "  --result-ttl SECONDS     how long outcomes are kept (default 3600)\n"
        "  --job-timeout SECONDS    default per-attempt job timeout (default 1800)\n"
        "  --max-attempts N         default attempts per job, 1..1000 (default 3)\n"
        "  --dead-letter-ttl SECONDS\n"
        "                           how long a failed job (a dead letter: zjq failed,\n"
        "                           zjq retry) is kept, at least (default 7d)\n"
        "  --max-dead-letters N     failed jobs kept at most; past it the oldest are\n"
        "                           dropped (default 100000)\n"
        "  --max-dead-letter-bytes BYTES\n"
        "                           payload and history bytes of the failed jobs kept\n"
        "                           at most (default 256M)\n"
        "  --journal DIR            keep an append-only journal in DIR and replay it\n"
        "                           on start; without it every job is in memory\n"
        "                           only and lost when the broker stops\n"
        "  --fsync POLICY           when the journal is fdatasync'ed; replies wait:\n"
        "                           always: after every batch of messages;\n"
        "                           interval (default): at most every --fsync-interval,\n"
        "                           one sync for everything in between (both survive\n"
        "                           power loss); never: replies follow write () and\n"
        "                           survive a broker crash, not power loss\n"
        "  --fsync-interval MS      group commit interval for 'interval' (default 5)\n"
        "  --journal-compact-size BYTES\n"
        "                           rewrite the journal to its live state once it is\n"
        "                           this big and twice the last rewrite (default 64M)\n"
        "  --journal-salvage        start even if the journal is corrupt in the\n"
        "                           middle: skip bad records (logged), keep the rest\n"
        "  --curve-secret FILE      serve CURVE only (encrypted, authenticated), with\n"
        "                           this secret certificate (zjq keygen NAME writes\n"
        "                           NAME.key_secret; mode 0600)\n"
        "  --curve-clients DIR      public certificates of the keys that may submit\n"
        "  --curve-workers DIR      ... that may serve as workers\n"
        "  --curve-admins DIR       ... that may use stats, reload, and see or cancel\n"
        "                           any job (without it, no key may)\n"
        "  --metrics HOST:PORT      serve Prometheus metrics at http://HOST:PORT/metrics\n"
        "                           (e.g. 127.0.0.1:9555; port 0 picks a free one)\n"
        "  --log-format FORMAT      text (time level=.. event=.. key=value, default)\n"
        "                           or json (one JSON object per line)\n"
        "  -v, --verbose            log every message (debug)\n"
        "  -h, --help               show this help\n"
        "      --version            show the version\n"
        "\n"
        "Sizes take k, M or G suffixes; durations are seconds or take ms, s, m, h.\n"
        "With CURVE, SIGHUP (or 'zjq reload' from an admin key) re-reads the\n"
        "allow-list directories; a certificate's metadata 'queues = \"a,b\"' limits\n"
        "its key to those queues. Without CURVE, bind loopback or a private network.\n",
        ZJQ_BROKER_DEFAULT_BIND);
}

//  Options that take a value on the command line
static bool
s_takes_value (const char *name)
{
    return streq (name, "bind") || streq (name, "config") || streq (name, "endpoint-file")
        || streq (name, "max-payload") || streq (name, "max-jobs") || streq (name, "max-queues")
        || streq (name, "max-queued-bytes") || streq (name, "max-result-bytes")
        || streq (name, "result-ttl") || streq (name, "job-timeout")
        || streq (name, "max-attempts") || streq (name, "journal") || streq (name, "fsync")
        || streq (name, "dead-letter-ttl") || streq (name, "max-dead-letters")
        || streq (name, "max-dead-letter-bytes")
        || streq (name, "fsync-interval") || streq (name, "journal-compact-size")
        || streq (name, "curve-secret") || streq (name, "curve-clients")
        || streq (name, "curve-workers") || streq (name, "curve-admins")
        || streq (name, "metrics") || streq (name, "log-format");
}

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

//  One option from argv: its name (without dashes) and value. Returns 0,
//  or -1 after printing a usage error. Advances *arg_p past a value.
static int
s_next_option (int argc, char *argv [], int *arg_p, char *name, size_t name_size,
               const char **value_p)
{
    const char *arg = argv [*arg_p];
    *value_p = NULL;
    if (streq (arg, "-v"))
        arg = "--verbose";
    else
    if (streq (arg, "-h"))
        arg = "--help";
    if (strncmp (arg, "--", 2) != 0 || !arg [2]) {
        s_usage_error ("unexpected argument '%s'", arg);
        return -1;
    }
    const char *equals = strchr (arg + 2, '=');
    size_t len = equals? (size_t) (equals - arg - 2): strlen (arg + 2);
    if (len >= name_size) {
        s_usage_error ("unknown option '%s'", arg);
        return -1;
    }
    memcpy (name, arg + 2, len);
    name [len] = 0;
    if (s_takes_value (name)) {
        if (equals)
            *value_p = equals + 1;
        else
        if (*arg_p + 1 < argc)
            *value_p = argv [++*arg_p];
        else {
            s_usage_error ("option '--%s' needs a value", name);
            return -1;
        }
    }
    else
    if (streq (name, "verbose") || streq (name, "help") || streq (name, "version")
    ||  streq (name, "journal-salvage")) {
        if (equals) {
            s_usage_error ("option '--%s' takes no value", name);
            return -1;
        }
    }
    else {
        s_usage_error ("unknown option '--%s'", name);
        return -1;
    }
    return 0;
}

zjq_config_result_t
zjq_broker_config_parse (zjq_broker_config_t *self, int argc, char *argv [])
{
    assert (self);
    char name [64];
    const char *value;
    const char *config_file = NULL;
    //  First pass: syntax, --help, --version and --config
    for (int arg = 1; arg < argc; arg++) {
        if (s_next_option (argc, argv, &arg, name, sizeof (name), &value))
            return ZJQ_CONFIG_USAGE;
        if (streq (name, "help")) {
            zjq_broker_config_usage (stdout);
            return ZJQ_CONFIG_EXIT;
        }
        if (streq (name, "version")) {
            printf ("zjq-broker %s\n", zjq_version ());
            return ZJQ_CONFIG_EXIT;
        }
        if (streq (name, "config"))
            config_file = value;
    }
    char error [512];
    if (config_file && zjq_broker_config_load (self, config_file, error, sizeof (error))) {
        fprintf (stderr, "zjq-broker: %s\n", error);
        return ZJQ_CONFIG_USAGE;
    }
    //  Second pass: the command line overrides the file
    bool cli_binds = false;
    for (int arg = 1; arg < argc; arg++) {
        if (s_next_option (argc, argv, &arg, name, sizeof (name), &value))
            return ZJQ_CONFIG_USAGE;
        if (streq (name, "config"))
            continue;
        if (streq (name, "bind") && !cli_binds) {
            s_clear_binds (self);
            cli_binds = true;
        }
        if (zjq_broker_config_set (self, name, value? value: "true", error, sizeof (error)))
            return s_usage_error ("--%s", error);
    }
    bool any_dir = self->curve_clients || self->curve_workers || self->curve_admins;
    if (any_dir && !self->curve_secret)
        return s_usage_error ("--curve-clients, --curve-workers and --curve-admins need "
                              "--curve-secret (the broker's secret certificate)");
    if (self->curve_secret && !any_dir)
        return s_usage_error ("--curve-secret needs at least one allow-list: "
                              "--curve-clients, --curve-workers or --curve-admins");
    if (self->bind_count == 0 && s_add_bind (self, ZJQ_BROKER_DEFAULT_BIND)) {
        fprintf (stderr, "zjq-broker: out of memory\n");
        return ZJQ_CONFIG_USAGE;
    }
    return ZJQ_CONFIG_RUN;
}
