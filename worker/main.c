/*  main.c: zjq-worker, serves queues with a built-in handler or a command.
    Parses options (one table, common/zjq_options.h), builds a worker
    (zjq_worker.h) and runs it.

    The table gives every option its kind, range, error text and help; the
    command line is read with getopt_long, built from the same table, so
    the syntax is getopt's (--name value, --name=value, -x value, -xVALUE,
    unique abbreviations such as --conc, flags bundled as -vh, options and
    arguments in any order).                                                */

#include "zjq_worker.h"
#include "zjq_handlers.h"
#include "zjq_log.h"
#include "zjq_options.h"
#include "zjq_util.h"

#include <czmq.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define s_DEFAULT_BROKER "tcp://127.0.0.1:5555"
#define s_MAX_QUEUES     64
#define s_MAX_QUEUES_TEXT "64"

//  What the command line says
typedef struct {
    const char *broker;         //  endpoint ($ZJQ_BROKER, else the default)
    const char *queues [s_MAX_QUEUES];  //  --queue, in order
    int queue_count;            //  how many
    const char *builtin;        //  --builtin NAME, or NULL
    const char *command;        //  --exec COMMAND, or NULL
    int64_t concurrency;        //  1..1000; 0 until --concurrency is given
    int64_t prefetch;           //  0..1000; -1: adaptive
    bool inline_handlers;       //  --inline
    int64_t heartbeat;          //  ms
    int64_t grace_ms;           //  grace period
    uint64_t max_result;        //  bytes
    const char *curve_secret;   //  --curve-secret ($ZJQ_CURVE_SECRET), or NULL
    const char *broker_key;     //  --broker-key ($ZJQ_BROKER_KEY), or NULL
    int log_format;             //  zjq_log_format_t, applied as it is parsed
    bool verbose;               //  -v
    bool help;                  //  --help: print the usage, exit 0
    bool version;               //  --version
} s_settings_t;

//  --queue: up to s_MAX_QUEUES, in order (the names are checked later)
static int
s_parse_queue (const zjq_option_t *option, void *arg, const char *value, char *error,
               size_t error_size)
{
    s_settings_t *settings = (s_settings_t *) arg;
    if (settings->queue_count == s_MAX_QUEUES)
        return -1;
    settings->queues [settings->queue_count++] = value;
    return 0;
}

//  --builtin and --exec: one of them, once (a check; the row stores it)
static int
s_check_handler (const zjq_option_t *option, void *arg, const char *value, char *error,
                 size_t error_size)
{
    s_settings_t *settings = (s_settings_t *) arg;
    return settings->builtin || settings->command ? -1 : 0;
}

//  --max-result: any size that fits a size_t
static int
s_parse_max_result (const zjq_option_t *option, void *arg, const char *value, char *error,
                    size_t error_size)
{
    s_settings_t *settings = (s_settings_t *) arg;
    uint64_t bytes;
    if (zjq_parse_size (value, &bytes) != 0 || bytes > SIZE_MAX)
        return -1;
    settings->max_result = bytes;
    return 0;
}

//  --log-format: applied at once, so that what follows logs in it
static int
s_parse_log_format (const zjq_option_t *option, void *arg, const char *value, char *error,
                    size_t error_size)
{
    s_settings_t *settings = (s_settings_t *) arg;
    zjq_log_format_t format;
    if (zjq_log_format_parse (value, &format) != 0)
        return -1;
    settings->log_format = (int) format;
    zjq_log_set_format (format);
    return 0;
}

#define s_FIELD(field) ZJQ_OPTION_FIELD (s_settings_t, field)

static const zjq_option_t s_options [] = {
    { "broker", 'b', ZJQ_OPT_ARG, s_FIELD (broker), .metavar = "ENDPOINT",
      .help = "broker to connect to (default $ZJQ_BROKER, else " s_DEFAULT_BROKER ")" },
    { "queue", 'q', ZJQ_OPT_CUSTOM, s_FIELD (queues), .metavar = "NAME",
      .parse = s_parse_queue, .error = "too many queues (at most " s_MAX_QUEUES_TEXT "): %s",
      .help = "queue to serve (1-128 of A-Za-z0-9_.:-); repeat for\n"
              "more, up to " s_MAX_QUEUES_TEXT },
    { "concurrency", 'c', ZJQ_OPT_INT, s_FIELD (concurrency), 1, 1000, .metavar = "N",
      .def = "1", .error = "--concurrency must be a whole number from 1 to 1000, not '%s'",
      .help = "jobs run at once, 1..1000 (default 1): N handler\n"
              "threads in this one process; with --exec, up to N\n"
              "child processes at once" },
    { "inline", 0, ZJQ_OPT_FLAG, s_FIELD (inline_handlers),
      .help = "run the handler on the thread that talks to the\n"
              "broker, one job at a time, instead of on handler\n"
              "threads: the least overhead per job, for --builtin\n"
              "echo or sha256 jobs of microseconds to a few ms\n"
              "(nothing is read or sent while one runs, and it\n"
              "cannot be cancelled). Not with --exec" },
    { "prefetch", 'p', ZJQ_OPT_INT, s_FIELD (prefetch), 0, 1000, .metavar = "N",
      .error = "--prefetch must be a whole number from 0 to 1000, not '%s'",
      .help = "jobs taken on beyond those running, 0..1000,\n"
              "fixed (default: adaptive, sized from the measured\n"
              "job time and round trip: deep for jobs of\n"
              "microseconds, 0 for jobs much longer than a round\n"
              "trip; see README). They wait here, so a slot that\n"
              "finishes starts its next job without a round trip\n"
              "to the broker. The broker sees capacity\n"
              "concurrency + prefetch" },
    { "builtin", 0, ZJQ_OPT_ARG, s_FIELD (builtin), .metavar = "NAME",
      .parse = s_check_handler, .error = "give one handler: --builtin or --exec, once (%s)",
      .help = "echo:   the result is the payload\n"
              "sleep:  payload = milliseconds (0..86400000) to sleep;\n"
              "        the result is that number\n"
              "sha256: payload = N:DATA; hashes DATA, then the digest\n"
              "        N-1 more times (N 1..1000000000); the result\n"
              "        is the last digest in hex" },
    { "exec", 'e', ZJQ_OPT_ARG, s_FIELD (command), .metavar = "'COMMAND'",
      .parse = s_check_handler, .error = "give one handler: --builtin or --exec, once (%s)",
      .help = "run /bin/sh -c COMMAND per job, in its own process\n"
              "group: payload on stdin, stdout is the result, exit\n"
              "status 0 means success (otherwise the error names\n"
              "the status and the end of stderr). Environment:\n"
              "ZJQ_JOB_ID, ZJQ_QUEUE, ZJQ_ATTEMPT. On cancel or\n"
              "timeout the process group is killed (SIGKILL), and\n"
              "so is whatever is left in it when the command exits" },
    { "heartbeat", 0, ZJQ_OPT_INT, s_FIELD (heartbeat), 100, 60000, .metavar = "MS",
      .def = "1000", .error = "--heartbeat must be milliseconds from 100 to 60000, not '%s'",
      .help = "heartbeat interval, 100..60000 (default 1000); the\n"
              "broker is presumed gone after 3 silent intervals" },
    { "grace", 'g', ZJQ_OPT_DURATION, s_FIELD (grace_ms), 0, INT_MAX, .metavar = "SECONDS",
      .def = "30", .error = "--grace must be a duration such as 30, 0.5 or 250ms, not '%s'",
      .help = "on SIGTERM/SIGINT, time running jobs get to finish\n"
              "(default 30; also 250ms, 5m); a second signal aborts\n"
              "them at once, and the broker requeues them" },
    { "max-result", 'm', ZJQ_OPT_CUSTOM, s_FIELD (max_result), .metavar = "BYTES",
      .def = "16M", .parse = s_parse_max_result,
      .error = "--max-result must be a size such as 1048576, 512k or 16M, not '%s'",
      .help = "largest result (default 16M; k, m, g suffixes)" },
    { "curve-secret", 0, ZJQ_OPT_ARG, s_FIELD (curve_secret), .metavar = "FILE",
      .help = "talk CURVE with this secret certificate (zjq keygen\n"
              "NAME writes NAME.key_secret; default $ZJQ_CURVE_SECRET)" },
    { "broker-key", 0, ZJQ_OPT_ARG, s_FIELD (broker_key), .metavar = "FILE",
      .help = "the broker's public certificate (default\n"
              "$ZJQ_BROKER_KEY); both or neither" },
    { "log-format", 0, ZJQ_OPT_CUSTOM, s_FIELD (log_format), .metavar = "FORMAT",
      .def = "text", .parse = s_parse_log_format,
      .error = "--log-format must be text or json, not '%s'",
      .help = "text (time level=.. event=.. key=value, default) or\n"
              "json (one JSON object per line)" },
    { "verbose", 'v', ZJQ_OPT_FLAG, s_FIELD (verbose),
      .help = "log every job's start and end" },
    { "help", 'h', ZJQ_OPT_FLAG, s_FIELD (help), .flags = ZJQ_OPTION_CLI_ONLY,
      .help = "show this help" },
    { "version", 0, ZJQ_OPT_FLAG, s_FIELD (version), .flags = ZJQ_OPTION_CLI_ONLY,
      .help = "show the version" },
    { .name = NULL }
};

#define s_OPTION_COUNT (sizeof (s_options) / sizeof (s_options [0]) - 1)

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: zjq-worker [--broker ENDPOINT] --queue NAME [--queue NAME]...\n"
"                  (--builtin echo|sleep|sha256 | --exec 'COMMAND ARGS')\n"
"                  [--concurrency N | --inline] [--prefetch N] [--heartbeat MS]\n"
"                  [--grace SECONDS]\n"
"                  [--max-result BYTES] [--curve-secret FILE --broker-key FILE]\n"
"                  [--log-format text|json] [-v] [--help] [--version]\n"
"\n"
"Connects to a zjq broker and runs the jobs of the given queues, all with the\n"
"one handler chosen.\n"
"\n");
    zjq_options_help (s_options, 0, out, 23, ZJQ_OPTIONS_HELP_SHORT_COLUMN);
    fprintf (out,
"\n"
"Exit status: 0 after a clean stop, 1 if the worker could not start, 2 on a\n"
"usage error (including a key file that cannot be used).\n");
}

static void
s_usage_error (const char *format, const char *value)
{
    fprintf (stderr, "zjq-worker: ");
    fprintf (stderr, format, value);
    fprintf (stderr, "\nTry 'zjq-worker --help' for more information.\n");
    exit (2);
}

//  getopt_long's view of the table: every row as a long option whose val
//  is 256 + its index, and the short names as "x:" or "x".
static void
s_getopt_table (struct option *longs, char *shorts)
{
    size_t used = 0;
    shorts [used++] = ':';          //  ':' for a missing value, not '?'
    for (size_t index = 0; index < s_OPTION_COUNT; index++) {
        const zjq_option_t *option = &s_options [index];
        bool flag = option->kind == ZJQ_OPT_FLAG;
        longs [index] = (struct option) { option->name, flag ? no_argument : required_argument,
                                          NULL, 256 + (int) index };
        if (option->short_name) {
            shorts [used++] = option->short_name;
            if (!flag)
                shorts [used++] = ':';
        }
    }
    longs [s_OPTION_COUNT] = (struct option) { NULL, 0, NULL, 0 };
    shorts [used] = 0;
}

//  The row getopt_long returned (a long option's 256 + index, or a short
//  name), or NULL.
static const zjq_option_t *
s_option_of (int opt)
{
    if (opt >= 256 && opt < 256 + (int) s_OPTION_COUNT)
        return &s_options [opt - 256];
    for (size_t index = 0; index < s_OPTION_COUNT; index++)
        if (s_options [index].short_name && s_options [index].short_name == opt)
            return &s_options [index];
    return NULL;
}

//  Read the command line into settings. Prints the help or the version
//  and exits 0 when asked; exits 2 on a usage error.
static void
s_parse_args (int argc, char *argv [], s_settings_t *settings)
{
    struct option longs [s_OPTION_COUNT + 1];
    char shorts [2 * s_OPTION_COUNT + 2];
    s_getopt_table (longs, shorts);
    opterr = 0;
    int opt;
    while ((opt = getopt_long (argc, argv, shorts, longs, NULL)) != -1) {
        const zjq_option_t *option = s_option_of (opt);
        if (opt == ':')
            s_usage_error ("option '%s' needs a value", argv [optind - 1]);
        if (!option)
            s_usage_error ("unknown option '%s'", argv [optind - 1]);
        char error [512];
        if (zjq_options_set (option, settings, optarg, error, sizeof error) != 0)
            s_usage_error ("%s", error);
        if (settings->help) {
            s_usage (stdout);
            exit (0);
        }
        if (settings->version) {
            printf ("zjq-worker %s\n", zjq_version ());
            exit (0);
        }
    }
    if (optind < argc)
        s_usage_error ("unexpected argument '%s'", argv [optind]);
}

//  What the options say together.
static void
s_check_settings (s_settings_t *settings)
{
    if (settings->queue_count == 0)
        s_usage_error ("%s", "give at least one --queue");
    if (!settings->builtin && !settings->command)
        s_usage_error ("%s", "give a handler: --builtin echo|sleep|sha256 or --exec 'COMMAND'");
    if (settings->command && !*settings->command)
        s_usage_error ("%s", "--exec needs a command");
    if (settings->inline_handlers && settings->command)
        s_usage_error ("%s", "--inline is for built-in handlers: an --exec job waits for its "
                       "process, which would stop the worker talking to the broker");
    if (settings->inline_handlers && settings->concurrency > 1)
        s_usage_error ("%s", "--inline runs one job at a time: leave out --concurrency");
    if (settings->concurrency == 0)
        settings->concurrency = 1;
    if (settings->curve_secret && !*settings->curve_secret)
        settings->curve_secret = NULL;
    if (settings->broker_key && !*settings->broker_key)
        settings->broker_key = NULL;
    if (!settings->curve_secret != !settings->broker_key)
        s_usage_error ("%s", "CURVE needs both --curve-secret (or $ZJQ_CURVE_SECRET) and "
                       "--broker-key (or $ZJQ_BROKER_KEY)");
}

//  Make and configure the worker; exits 2 on a usage error (a bad endpoint
//  or queue name). Returns the worker, or NULL with the error printed and
//  *exit_p set (2: a key file cannot be used, 1: a setting failed).
static zjq_worker_t *
s_worker_new (s_settings_t *settings, zjq_handlers_t *handlers, int *exit_p)
{
    zjq_worker_t *worker = zjq_worker_new (settings->broker);
    if (!worker)
        s_usage_error ("invalid broker endpoint '%s' (e.g. tcp://127.0.0.1:5555)",
                       settings->broker);
    if (settings->curve_secret) {
        char error [600];
        if (zjq_worker_set_curve (worker, settings->curve_secret, settings->broker_key,
                                  error, sizeof error) != 0) {
            fprintf (stderr, "zjq-worker: %s\n", error);
            zjq_worker_destroy (&worker);
            *exit_p = 2;
            return NULL;
        }
    }
    for (int i = 0; i < settings->queue_count; i++)
        if (zjq_worker_handle (worker, settings->queues [i], zjq_handlers_run, handlers) != 0)
            s_usage_error ("invalid or repeated queue name '%s' (1-128 of A-Za-z0-9_.:-)",
                           settings->queues [i]);
    int rc = zjq_worker_set_concurrency (worker, (int) settings->concurrency);
    if (rc == 0)
        rc = zjq_worker_set_inline (worker, settings->inline_handlers);
    if (rc == 0 && settings->prefetch >= 0)
        rc = zjq_worker_set_prefetch (worker, (int) settings->prefetch);
    if (rc == 0)
        rc = zjq_worker_set_heartbeat (worker, (int) settings->heartbeat);
    if (rc == 0)
        rc = zjq_worker_set_grace (worker, (int) settings->grace_ms);
    if (rc == 0)
        rc = zjq_worker_set_max_result (worker, (size_t) settings->max_result);
    if (rc != 0) {
        fprintf (stderr, "zjq-worker: %s\n", zjq_strerror (rc));
        zjq_worker_destroy (&worker);
        *exit_p = 1;
    }
    return worker;
}

//  A child must be able to dup2 its pipes onto 0-2: make sure they are open.
static void
s_open_std_fds (void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl (fd, F_GETFD) < 0) {
            int null = open ("/dev/null", O_RDWR);
            if (null >= 0 && null != fd) {
                dup2 (null, fd);
                close (null);
            }
        }
}

int
main (int argc, char *argv [])
{
    zsys_handler_set (NULL);            //  zjq_worker_run handles the signals
    zjq_log_capture_zsys ("zjq-worker");
    s_open_std_fds ();
    signal (SIGPIPE, SIG_IGN);          //  a child may close its stdin early

    s_settings_t settings = {
        .broker = getenv ("ZJQ_BROKER"),
        .prefetch = -1,
        .heartbeat = 1000,
        .grace_ms = 30000,
        .max_result = 16 * 1024 * 1024,
        .curve_secret = getenv ("ZJQ_CURVE_SECRET"),
        .broker_key = getenv ("ZJQ_BROKER_KEY")
    };
    if (!settings.broker || !*settings.broker)
        settings.broker = s_DEFAULT_BROKER;
    s_parse_args (argc, argv, &settings);
    s_check_settings (&settings);

    zjq_handlers_t *handlers = settings.builtin
                             ? zjq_handlers_new_builtin (settings.builtin)
                             : zjq_handlers_new_exec (settings.command,
                                                      (size_t) settings.max_result);
    if (!handlers) {
        if (settings.builtin)
            s_usage_error ("unknown built-in handler '%s' (echo, sleep, sha256)",
                           settings.builtin);
        fprintf (stderr, "zjq-worker: cannot set up the handler\n");
        return 1;
    }
    zjq_handlers_set_verbose (handlers, settings.verbose);
    int exit_code = 0;
    zjq_worker_t *worker = s_worker_new (&settings, handlers, &exit_code);
    if (worker) {
        char prefetch [16] = "adaptive";
        if (settings.prefetch >= 0)
            snprintf (prefetch, sizeof prefetch, "%d", (int) settings.prefetch);
        zjq_log_info ("started", "version=%s worker=%s queues=%d handler=%s inline=%s "
                      "concurrency=%d prefetch=%s curve=%s", zjq_version (),
                      zjq_worker_id (worker), settings.queue_count, zjq_handlers_name (handlers),
                      settings.inline_handlers ? "on" : "off", (int) settings.concurrency,
                      prefetch,
                      settings.curve_secret ? "on" : "off");
        int rc = zjq_worker_run (worker);
        if (rc != 0)
            fprintf (stderr, "zjq-worker: %s\n", zjq_strerror (rc));
        exit_code = rc == 0 ? 0 : 1;
    }
    zjq_worker_destroy (&worker);
    zjq_handlers_destroy (&handlers);
    return exit_code;
}
