/*  zjq_cli.c: the zjq command-line client (binary `zjq`).

    Thin layer over the client library: parse the command line, issue one
    request (or a window of submits for `batch`), drive the client from a
    poll () loop on its fd and timeout, print the answer, and map the
    outcome to an exit code (one table below, also printed by --help).     */

#include "zjq_client.h"
#include "zjq_client_private.h"
#include "zjq_cert.h"
#include "zjq_json.h"
#include "zjq_proto.h"
#include "zjq_stats_view.h"
#include "zjq_top.h"
#include "zjq_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZJQ_CLI_DEFAULT_BROKER   "tcp://127.0.0.1:5555"
#define ZJQ_CLI_MAX_PAYLOAD      (256u * 1024 * 1024)   //  read from stdin
#define ZJQ_CLI_MAX_POSITIONAL   4
#define ZJQ_CLI_DEFAULT_WINDOW   1000
#define ZJQ_CLI_QUEUE_HINT       "queue names are 1 to 128 of A-Z a-z 0-9 _ . : -"

//  Exit codes: XX (NAME, value, meaning). The only place they are defined.
#define ZJQ_CLI_EXIT_MAP(XX)                                                   \
    XX (OK,          0, "success")                                             \
    XX (FAILED,      1, "the job failed (batch: not every job succeeded)")     \
    XX (USAGE,       2, "usage error")                                         \
    XX (CANCELLED,   3, "the job was cancelled")                               \
    XX (NOTFOUND,    4, "job not found, expired, or not a job id")             \
    XX (TIMEDOUT,    5, "timed out waiting, or the job has not finished yet")  \
    XX (UNREACHABLE, 6, "broker unreachable")                                  \
    XX (REJECTED,    7, "rejected by the broker (queue full, too big, "        \
                        "invalid, unavailable, draining; access denied: key, " \
                        "role, queue or job not allowed)")                     \
    XX (OTHER,       8, "any other error")

typedef enum {
#define ZJQ_CLI_EXIT_ENUM(name, value, text) CLI_EXIT_##name = value,
    ZJQ_CLI_EXIT_MAP (ZJQ_CLI_EXIT_ENUM)
#undef ZJQ_CLI_EXIT_ENUM
} cli_exit_t;

//  The exit code for a zjq error code. from_call: the library refused the
//  call itself (bad arguments are a usage error), rather than the broker.
static int
s_exit_code (int code, bool from_call)
{
    switch (code) {
        case 0:                 return CLI_EXIT_OK;
        case ZJQ_EFAILED:       return CLI_EXIT_FAILED;
        case ZJQ_ECANCELLED:    return CLI_EXIT_CANCELLED;
        case ZJQ_ENOTFOUND:
        case ZJQ_EEXPIRED:
        case ZJQ_EBADID:        return CLI_EXIT_NOTFOUND;
        case ZJQ_ETIMEDOUT:
        case ZJQ_ENOTREADY:     return CLI_EXIT_TIMEDOUT;
        case ZJQ_EUNREACHABLE:  return CLI_EXIT_UNREACHABLE;
        case ZJQ_EINVAL:        return from_call? CLI_EXIT_USAGE: CLI_EXIT_REJECTED;
        case ZJQ_EQUEUEFULL:
        case ZJQ_ETOOBIG:
        case ZJQ_EUNAVAILABLE:
        case ZJQ_EDRAINING:
        case ZJQ_EDENIED:       return CLI_EXIT_REJECTED;
        default:                return CLI_EXIT_OTHER;
    }
}


//  --------------------------------------------------------------------------
//  Options and commands

typedef enum {
    OPT_BROKER          = 1 << 0,
    OPT_REQUEST_TIMEOUT = 1 << 1,
    OPT_HELP            = 1 << 2,
    OPT_VERSION         = 1 << 3,
    OPT_WAIT            = 1 << 4,
    OPT_TIMEOUT         = 1 << 5,
    OPT_PRIORITY        = 1 << 6,
    OPT_MAX_ATTEMPTS    = 1 << 7,
    OPT_JOB_TIMEOUT     = 1 << 8,
    OPT_RESULT_TTL      = 1 << 9,
    OPT_KEY             = 1 << 10,
    OPT_JSON            = 1 << 11,
    OPT_FILE            = 1 << 12,
    OPT_WINDOW          = 1 << 13,
    OPT_CURVE_SECRET    = 1 << 14,
    OPT_BROKER_KEY      = 1 << 15,
    OPT_QUEUES          = 1 << 16,
    OPT_PROGRESS        = 1 << 17,
    OPT_QUEUE           = 1 << 18,
    OPT_OFF             = 1 << 19,
    OPT_LIMIT           = 1 << 20
} option_bit_t;

#define OPT_GLOBAL (OPT_BROKER | OPT_REQUEST_TIMEOUT | OPT_CURVE_SECRET | OPT_BROKER_KEY \
                    | OPT_HELP | OPT_VERSION)

typedef struct {
    const char *name;           //  without the leading --
    unsigned bit;
    const char *value;          //  metavariable, NULL for a flag
    const char *help;
} option_t;

static const option_t s_options [] = {
    { "broker", OPT_BROKER, "ENDPOINT",
      "broker endpoint (default: $ZJQ_BROKER, else " ZJQ_CLI_DEFAULT_BROKER ")" },
    { "request-timeout", OPT_REQUEST_TIMEOUT, "SECONDS",
      "how long the broker has to answer a request (default 5)" },
    { "curve-secret", OPT_CURVE_SECRET, "FILE",
      "talk CURVE with this secret certificate (default: $ZJQ_CURVE_SECRET)" },
    { "broker-key", OPT_BROKER_KEY, "FILE",
      "the broker's public certificate, for CURVE (default: $ZJQ_BROKER_KEY)" },
    { "help", OPT_HELP, NULL, "show help and exit" },
    { "version", OPT_VERSION, NULL, "print the version and exit" },
    { "wait", OPT_WAIT, NULL, "wait for the job to end and print its result" },
    { "timeout", OPT_TIMEOUT, "SECONDS", "give up waiting after this long (default: no limit)" },
    { "priority", OPT_PRIORITY, "N", "-1000..1000, higher runs first (default 0)" },
    { "max-attempts", OPT_MAX_ATTEMPTS, "N",
      "attempts before the job fails, 1..1000 (default: broker's)" },
    { "job-timeout", OPT_JOB_TIMEOUT, "SECONDS", "time limit of one attempt (default: broker's)" },
    { "result-ttl", OPT_RESULT_TTL, "SECONDS",
      "how long the broker keeps the outcome (default: broker's)" },
    { "key", OPT_KEY, "KEY", "idempotency key: resubmitting with it returns the same job" },
    { "json", OPT_JSON, NULL, "print JSON" },
    { "file", OPT_FILE, "FILE", "read payloads from FILE, one per line (default: stdin)" },
    { "window", OPT_WINDOW, "N", "jobs in flight at most (default 1000)" },
    { "queues", OPT_QUEUES, "LIST",
      "queues the key may use, comma-separated (default: all)" },
    { "progress", OPT_PROGRESS, NULL,
      "while waiting, print the job's progress reports on standard error" },
    { "queue", OPT_QUEUE, "QUEUE", "every failed job of QUEUE" },
    { "off", OPT_OFF, NULL, "stop draining: accept new jobs again" },
    { "limit", OPT_LIMIT, "N", "list at most N jobs (default: all)" },
};
#define OPTION_COUNT (sizeof (s_options) / sizeof (s_options [0]))

typedef struct _cli_t cli_t;
typedef int (command_fn) (cli_t *cli);

typedef struct {
    const char *name;
    command_fn *run;
    const char *args;           //  positional arguments, for usage
    int min_args, max_args;
    unsigned options;           //  besides the global ones
    const char *summary;        //  one line for the command list
    const char *description;    //  more, for `zjq help COMMAND`
} command_t;

struct _cli_t {
    const command_t *command;
    unsigned given;             //  option bits seen
    const char *broker;
    const char *curve_secret;   //  --curve-secret or $ZJQ_CURVE_SECRET, or NULL
    const char *broker_key;     //  --broker-key or $ZJQ_BROKER_KEY, or NULL
    const char *queues;         //  keygen --queues
    int request_timeout_ms;
    int64_t timeout_ms;         //  --timeout
    int priority;
    int max_attempts;
    int64_t job_timeout_ms;
    int64_t result_ttl_ms;
    const char *key;
    const char *file;
    int window;
    const char *queue;          //  retry --queue
    int64_t limit;              //  failed --limit, 0: all
    const char *args [ZJQ_CLI_MAX_POSITIONAL];
    int arg_count;
    zjq_client_t *client;
    char *broker_message;       //  `message` of the last error reply
};

static int s_cmd_submit (cli_t *cli);
static int s_cmd_status (cli_t *cli);
static int s_cmd_result (cli_t *cli);
static int s_cmd_cancel (cli_t *cli);
static int s_cmd_stats (cli_t *cli);
static int s_cmd_top (cli_t *cli);
static int s_cmd_ping (cli_t *cli);
static int s_cmd_batch (cli_t *cli);
static int s_cmd_keygen (cli_t *cli);
static int s_cmd_reload (cli_t *cli);
static int s_cmd_failed (cli_t *cli);
static int s_cmd_retry (cli_t *cli);
static int s_cmd_pause (cli_t *cli);
static int s_cmd_drain (cli_t *cli);
static int s_cmd_help (cli_t *cli);

static const command_t s_commands [] = {
    { "submit", s_cmd_submit, "QUEUE [PAYLOAD | -]", 1, 2,
      OPT_WAIT | OPT_TIMEOUT | OPT_PRIORITY | OPT_MAX_ATTEMPTS | OPT_JOB_TIMEOUT
      | OPT_RESULT_TTL | OPT_KEY | OPT_JSON | OPT_PROGRESS,
      "submit a job and print its id",
      "Submits PAYLOAD (or standard input, when it is omitted or '-') as a job to\n"
      "QUEUE and prints the job id. With --wait, waits for the job to end and\n"
      "writes its result to standard output, byte for byte, instead (--timeout\n"
      "implies --wait). With --progress, the job's progress reports go to\n"
      "standard error as they come: 'zjq: job ID attempt N: 50.0% MESSAGE'.\n"
      "--json prints {\"id\":..,\"duplicate\":..}, or with --wait\n"
      "{\"id\":..,\"state\":..,\"attempt\":..,\"error\":..,\"result\":..}.\n" },
    { "status", s_cmd_status, "JOB_ID", 1, 1, OPT_JSON,
      "show a job's state",
      "Prints the job's queue, state, attempts, times (UTC), worker, progress\n"
      "and error, and each failed attempt (error, exit status, duration).\n" },
    { "result", s_cmd_result, "JOB_ID", 1, 1, OPT_WAIT | OPT_TIMEOUT | OPT_PROGRESS,
      "write a finished job's result to stdout",
      "Writes the result of a succeeded job to standard output, byte for byte.\n"
      "A failed job's error goes to standard error (exit 1); a cancelled job\n"
      "exits 3. Without --wait (or --timeout), a job that has not ended exits 5.\n"
      "With --progress (and --wait), prints the job's progress reports on\n"
      "standard error while it runs.\n" },
    { "cancel", s_cmd_cancel, "JOB_ID", 1, 1, OPT_JSON,
      "cancel a queued or running job",
      "Removes a queued job, or stops a running one on its worker, and prints\n"
      "the job's new state. A job that has already ended cannot be cancelled.\n" },
    { "stats", s_cmd_stats, "", 0, 0, OPT_JSON,
      "show broker statistics",
      "Prints the broker (uptime, memory, journal, job counts, rates over the\n"
      "last minute, error counters), one line per queue (queued, running,\n"
      "succeeded, failed and cancelled since the broker started, submitted and\n"
      "completed per second over the last minute, age of the oldest queued job,\n"
      "workers, mean and p99 run time over the last minute) and one line per\n"
      "worker (host, pid, running/capacity, completed, time since it was last\n"
      "heard from, version, queues). Large numbers are shortened (12.3k);\n"
      "--json prints every field exactly (see docs/protocol.md, Stats).\n" },
    { "top", s_cmd_top, "", 0, 0, 0,
      "show broker statistics live, refreshed every second",
      "The view of 'zjq stats' on the whole terminal, redrawn every second and\n"
      "cut to the window's size. q or Ctrl-C quits and gives the terminal back.\n"
      "If the broker stops answering, the screen says so and keeps asking.\n" },
    { "ping", s_cmd_ping, "", 0, 0, 0,
      "check that the broker answers",
      "Prints the broker's instance, its version and the round-trip time.\n" },
    { "batch", s_cmd_batch, "QUEUE", 1, 1,
      OPT_FILE | OPT_WINDOW | OPT_TIMEOUT | OPT_PRIORITY | OPT_MAX_ATTEMPTS
      | OPT_JOB_TIMEOUT | OPT_JSON,
      "submit one job per input line and report each outcome",
      "Reads one payload per line (FILE or standard input) and submits them\n"
      "all, with at most --window jobs in flight. Prints a line per job as it\n"
      "ends: LINE<tab>JOB_ID<tab>STATE<tab>RESULT-OR-ERROR, with tab, newline,\n"
      "carriage return and backslash escaped (--json: one JSON object per\n"
      "line), then a summary on standard error. --timeout bounds the whole\n"
      "batch. Exits 0 if every job succeeded, 6 if the broker was unreachable,\n"
      "5 if time ran out, else 1.\n" },
    { "keygen", s_cmd_keygen, "NAME", 1, 1, OPT_QUEUES,
      "write a CURVE key pair: NAME.key and NAME.key_secret",
      "Writes a new CURVE certificate pair in czmq's format: NAME.key, the\n"
      "public certificate, to share (copy it into the broker's allow-list\n"
      "directory for the role: clients, workers or admins), and\n"
      "NAME.key_secret, the secret one, readable by its owner only (mode\n"
      "0600). --queues a,b limits the key to those queues (metadata 'queues'\n"
      "in the certificate; '*' or none: all). Refuses to overwrite. Needs no\n"
      "broker.\n" },
    { "reload", s_cmd_reload, "", 0, 0, 0,
      "make a CURVE broker re-read its allow-lists (admin key)",
      "Asks the broker to read its --curve-clients, --curve-workers and\n"
      "--curve-admins directories again, as SIGHUP does. New connections use\n"
      "the new lists, and a removed key is refused from its next message on.\n"
      "If the new lists cannot be used, the old ones stay (exit 7).\n" },
    { "failed", s_cmd_failed, "[QUEUE]", 0, 1, OPT_JSON | OPT_LIMIT,
      "list failed jobs (dead letters) kept by the broker (admin key)",
      "Lists the jobs that failed their last attempt, oldest failure first:\n"
      "id, queue, attempts made, when it failed (UTC) and the last error. The\n"
      "broker keeps them, with their payload and every attempt's error, exit\n"
      "status and duration, for --dead-letter-ttl (default 7 days); 'zjq\n"
      "status ID' shows one in full. --json prints {\"total\":..,\"jobs\":[..]}\n"
      "with each job's history.\n" },
    { "retry", s_cmd_retry, "[JOB_ID]", 0, 1, OPT_QUEUE,
      "requeue a failed job, or with --queue every failed job of a queue",
      "Puts failed jobs back in their queue, in their old place, each with a\n"
      "fresh attempt budget (its --max-attempts again; attempt numbers go on,\n"
      "and the history keeps the earlier attempts). Prints the job id, or the\n"
      "number of jobs requeued. Admin key; refused while the broker drains.\n" },
    { "pause", s_cmd_pause, "QUEUE", 1, 1, 0,
      "stop dispatching a queue's jobs; submits are still accepted",
      "The broker keeps the queue's jobs, accepts new ones, and gives none\n"
      "to workers until 'zjq resume QUEUE'; jobs already running go on. With\n"
      "--journal the pause survives a broker restart. Admin key.\n" },
    { "resume", s_cmd_pause, "QUEUE", 1, 1, 0,
      "dispatch a paused queue again", "" },
    { "drain", s_cmd_drain, "", 0, 0, OPT_WAIT | OPT_TIMEOUT | OPT_OFF,
      "stop accepting jobs and finish the ones held, e.g. for an upgrade",
      "The broker rejects new submits (and retries) with EDRAINING, exit 7,\n"
      "while it goes on dispatching and finishing the jobs it holds and\n"
      "answering status and result. It stays up: once drained (nothing\n"
      "running, nothing queued but in paused queues) stop it (SIGTERM) and\n"
      "start the new version. --wait waits until drained (--timeout bounds\n"
      "it: exit 5). --off accepts jobs again; a restart does too. Admin key.\n" },
    { "help", s_cmd_help, "[COMMAND]", 0, 1, 0,
      "show help for a command", "" },
};
#define COMMAND_COUNT (sizeof (s_commands) / sizeof (s_commands [0]))

static const command_t *
s_command_lookup (const char *name)
{
    for (size_t index = 0; index < COMMAND_COUNT; index++)
        if (strcmp (s_commands [index].name, name) == 0)
            return &s_commands [index];
    return NULL;
}

static const option_t *
s_option_lookup (const char *name, size_t len)
{
    for (size_t index = 0; index < OPTION_COUNT; index++)
        if (strlen (s_options [index].name) == len
        &&  memcmp (s_options [index].name, name, len) == 0)
            return &s_options [index];
    return NULL;
}

static void
s_print_options (FILE *out, unsigned bits)
{
    for (size_t index = 0; index < OPTION_COUNT; index++) {
        const option_t *option = &s_options [index];
        if (!(option->bit & bits))
            continue;
        char left [64];
        snprintf (left, sizeof (left), "%s--%s%s%s", option->bit == OPT_HELP? "-h, ": "",
                  option->name, option->value? " ": "", option->value? option->value: "");
        fprintf (out, "  %-27s %s\n", left, option->help);
    }
}

static void
s_print_usage (FILE *out)
{
    fprintf (out, "Usage: zjq [--broker ENDPOINT] [--request-timeout SECONDS]\n"
                  "           [--curve-secret FILE --broker-key FILE] COMMAND [ARGS]\n\n"
                  "Talks to a zjq broker: submits jobs and asks about them.\n\nCommands:\n");
    for (size_t index = 0; index < COMMAND_COUNT; index++) {
        char left [64];
        snprintf (left, sizeof (left), "%s %s", s_commands [index].name, s_commands [index].args);
        fprintf (out, "  %-27s %s\n", left, s_commands [index].summary);
    }
    fprintf (out, "\nGlobal options (before or after the command):\n");
    s_print_options (out, OPT_GLOBAL);
    fprintf (out, "\nDurations are seconds, fractions allowed (0.5), or take a unit: 250ms, 5m,"
                  " 1h.\n"
                  "Run 'zjq help COMMAND' or 'zjq COMMAND --help' for a command's options.\n\n"
                  "Exit codes:\n");
#define ZJQ_CLI_EXIT_HELP(name, value, text) fprintf (out, "  %d  %s\n", value, text);
    ZJQ_CLI_EXIT_MAP (ZJQ_CLI_EXIT_HELP)
#undef ZJQ_CLI_EXIT_HELP
}

static void
s_print_command_help (FILE *out, const command_t *command)
{
    fprintf (out, "Usage: zjq %s %s%s[options]\n\n%c%s.\n", command->name, command->args,
             *command->args? " ": "", toupper ((unsigned char) command->summary [0]),
             command->summary + 1);
    if (*command->description)
        fprintf (out, "\n%s", command->description);
    if (command->options) {
        fprintf (out, "\nOptions:\n");
        s_print_options (out, command->options);
    }
    fprintf (out, "\nGlobal options:\n");
    s_print_options (out, OPT_GLOBAL);
    fprintf (out, "\nExit codes: see zjq --help.\n");
}

static int
s_usage_error (const cli_t *cli, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_usage_error (const cli_t *cli, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "zjq: ");
    if (cli->command)
        fprintf (stderr, "%s: ", cli->command->name);
    vfprintf (stderr, format, args);
    va_end (args);
    if (cli->command)
        fprintf (stderr, " (see zjq %s --help)\n", cli->command->name);
    else
        fprintf (stderr, " (see zjq --help)\n");
    return CLI_EXIT_USAGE;
}

//  A duration option in ms; max bounds it. Returns 0 or -1.
static int
s_parse_ms (const char *text, int64_t min, int64_t max, int64_t *ms)
{
    return zjq_parse_duration (text, ms) == 0 && *ms >= min && *ms <= max? 0: -1;
}

//  Take one option's value. Returns 0 or an exit code.
static int
s_option_apply (cli_t *cli, const option_t *option, const char *value)
{
    int64_t number;
    switch (option->bit) {
        case OPT_BROKER:
            if (!*value)
                return s_usage_error (cli, "--broker needs an endpoint");
            cli->broker = value;
            break;
        case OPT_REQUEST_TIMEOUT:
            if (s_parse_ms (value, 1, INT_MAX, &number))
                return s_usage_error (cli, "--request-timeout: '%s' is not a duration above zero",
                                      value);
            cli->request_timeout_ms = (int) number;
            break;
        case OPT_TIMEOUT:
            if (s_parse_ms (value, 0, INT_MAX, &number))
                return s_usage_error (cli, "--timeout: '%s' is not a duration", value);
            cli->timeout_ms = number;
            break;
        case OPT_PRIORITY:
            if (zjq_parse_int (value, -1000, 1000, &number))
                return s_usage_error (cli, "--priority: '%s' is not a number in -1000..1000",
                                      value);
            cli->priority = (int) number;
            break;
        case OPT_MAX_ATTEMPTS:
            if (zjq_parse_int (value, 1, 1000, &number))
                return s_usage_error (cli, "--max-attempts: '%s' is not a number in 1..1000",
                                      value);
            cli->max_attempts = (int) number;
            break;
        case OPT_JOB_TIMEOUT:
            if (s_parse_ms (value, 1, INT64_MAX, &cli->job_timeout_ms))
                return s_usage_error (cli, "--job-timeout: '%s' is not a duration above zero",
                                      value);
            break;
        case OPT_RESULT_TTL:
            if (s_parse_ms (value, 1, INT64_MAX, &cli->result_ttl_ms))
                return s_usage_error (cli, "--result-ttl: '%s' is not a duration above zero",
                                      value);
            break;
        case OPT_KEY:
            if (!*value || strlen (value) > 256)
                return s_usage_error (cli, "--key must be 1 to 256 bytes");
            cli->key = value;
            break;
        case OPT_FILE:
            cli->file = value;
            break;
        case OPT_CURVE_SECRET:
        case OPT_BROKER_KEY:
            if (!*value)
                return s_usage_error (cli, "--%s needs a file name", option->name);
            if (option->bit == OPT_CURVE_SECRET)
                cli->curve_secret = value;
            else
                cli->broker_key = value;
            break;
        case OPT_QUEUES:
            cli->queues = value;
            break;
        case OPT_QUEUE:
            if (!zjq_proto_queue_name_valid (value))
                return s_usage_error (cli, "--queue: '%s' is not a queue name (%s)", value,
                                      ZJQ_CLI_QUEUE_HINT);
            cli->queue = value;
            break;
        case OPT_LIMIT:
            if (zjq_parse_int (value, 1, INT64_MAX, &cli->limit))
                return s_usage_error (cli, "--limit: '%s' is not a number above zero", value);
            break;
        case OPT_WINDOW:
            if (zjq_parse_int (value, 1, 1000000, &number))
                return s_usage_error (cli, "--window: '%s' is not a number in 1..1000000", value);
            cli->window = (int) number;
            break;
        default:
            break;
    }
    cli->given |= option->bit;
    return 0;
}

//  Parse the command line into cli. Returns 0, or an exit code (-1 when
//  help or the version was printed: exit 0).
static int
s_parse_args (cli_t *cli, int argc, char **argv)
{
    //  The command is the first argument that is not an option or an
    //  option's value; options may come before or after it.
    int command_at = 0;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv [index];
        if (strcmp (arg, "--") == 0) {
            command_at = index + 1 < argc? index + 1: 0;
            break;
        }
        if (arg [0] == '-' && arg [1] == '-') {
            const char *equals = strchr (arg, '=');
            size_t len = equals? (size_t) (equals - arg - 2): strlen (arg + 2);
            const option_t *option = s_option_lookup (arg + 2, len);
            if (option && option->value && !equals)
                index++;        //  skip its value
            continue;
        }
        if (arg [0] == '-' && arg [1])
            continue;
        command_at = index;
        break;
    }
    if (command_at) {
        cli->command = s_command_lookup (argv [command_at]);
        if (!cli->command)
            return s_usage_error (cli, "unknown command '%s'", argv [command_at]);
    }
    unsigned allowed = OPT_GLOBAL | (cli->command? cli->command->options: 0);
    bool options_done = false;
    for (int index = 1; index < argc; index++) {
        if (index == command_at)
            continue;
        const char *arg = argv [index];
        if (!options_done && strcmp (arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && strcmp (arg, "-h") == 0)
            arg = "--help";
        if (!options_done && arg [0] == '-' && arg [1] == '-') {
            const char *equals = strchr (arg, '=');
            size_t len = equals? (size_t) (equals - arg - 2): strlen (arg + 2);
            const option_t *option = s_option_lookup (arg + 2, len);
            if (!option)
                return s_usage_error (cli, "unknown option '%.*s'", (int) len + 2, arg);
            if (!(option->bit & allowed))
                return s_usage_error (cli, "option --%s does not apply here", option->name);
            const char *value = NULL;
            if (option->value) {
                if (equals)
                    value = equals + 1;
                else
                if (index + 1 < argc)
                    value = argv [++index];
                else
                    return s_usage_error (cli, "option --%s needs a value (%s)", option->name,
                                          option->value);
            }
            else
            if (equals)
                return s_usage_error (cli, "option --%s takes no value", option->name);
            int rc = s_option_apply (cli, option, value);
            if (rc)
                return rc;
            continue;
        }
        if (!options_done && arg [0] == '-' && arg [1])
            return s_usage_error (cli, "unknown option '%s'", arg);
        if (!cli->command)
            return s_usage_error (cli, "unexpected argument '%s'", arg);
        if (cli->arg_count == ZJQ_CLI_MAX_POSITIONAL || cli->arg_count >= cli->command->max_args)
            return s_usage_error (cli, "too many arguments");
        cli->args [cli->arg_count++] = arg;
    }
    if (cli->given & OPT_HELP) {
        if (cli->command && cli->command->run != s_cmd_help)
            s_print_command_help (stdout, cli->command);
        else
            s_print_usage (stdout);
        return -1;
    }
    if (cli->given & OPT_VERSION) {
        printf ("zjq %s\n", zjq_version ());
        return -1;
    }
    if (!cli->command) {
        s_print_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli->arg_count < cli->command->min_args)
        return s_usage_error (cli, "missing %s", cli->command->args);
    return 0;
}


//  --------------------------------------------------------------------------
//  Shared helpers

//  Print an error: zjq: WHAT: MESSAGE (NAME)[: broker message]
//  Why the connection failed, if a CURVE handshake said so, else NULL.
static const char *
s_handshake_hint (cli_t *cli, int code)
{
    if (!cli->client || cli->broker_message
    ||  (code != ZJQ_EUNREACHABLE && code != ZJQ_EDENIED))
        return NULL;
    return zjq_client_handshake_error (cli->client);
}

static void
s_error (cli_t *cli, const char *what, int code)
{
    const char *name = zjq_errname (code);
    const char *hint = s_handshake_hint (cli, code);
    const char *detail = cli->broker_message? cli->broker_message: hint;
    fprintf (stderr, "zjq: %s: %s (%s)%s%s\n", what, zjq_strerror (code), name? name: "?",
             detail? ": ": "", detail? detail: "");
}

//  In a callback: keep the broker's message of an error reply for s_error.
static void
s_keep_broker_message (cli_t *cli)
{
    zjq_msg_t *reply = zjq_client_reply (cli->client);
    const char *message = reply? zjq_msg_get_str (reply, "message"): NULL;
    free (cli->broker_message);
    cli->broker_message = message && *message? strdup (message): NULL;
}

static int
s_connect (cli_t *cli)
{
    if (!cli->curve_secret != !cli->broker_key) {
        fprintf (stderr, "zjq: CURVE needs both --curve-secret (or $ZJQ_CURVE_SECRET) and "
                 "--broker-key (or $ZJQ_BROKER_KEY)\n");
        return CLI_EXIT_USAGE;
    }
    zjq_client_opts_t opts;
    zjq_client_opts_init (&opts);
    opts.curve_secret_file = cli->curve_secret;
    opts.broker_key_file = cli->broker_key;
    char error [512] = "";
    int rc = zjq_client_new_ex (&cli->client, cli->broker, &opts, error, sizeof (error));
    if (rc == ZJQ_EKEY) {
        fprintf (stderr, "zjq: %s\n", error);
        return CLI_EXIT_USAGE;
    }
    if (rc) {
        fprintf (stderr, "zjq: cannot use broker endpoint '%s' (expected e.g. "
                 ZJQ_CLI_DEFAULT_BROKER " or ipc:///path): %s\n", cli->broker, error);
        return CLI_EXIT_USAGE;
    }
    zjq_client_set_request_timeout (cli->client, cli->request_timeout_ms);
    return 0;
}

//  Drive the client from a poll () loop on its fd and timeout until *done
//  or the deadline (mono ms, -1: none). Returns 0, ZJQ_ETIMEDOUT, or a
//  fatal client error.
static int
s_run_until (cli_t *cli, const bool *done, int64_t deadline)
{
    while (true) {
        int rc = zjq_client_process (cli->client);
        if (rc < 0)
            return rc;
        if (*done)
            return 0;
        int wait = zjq_client_timeout (cli->client);
        if (deadline >= 0) {
            int64_t left = deadline - zjq_mono_ms ();
            if (left <= 0)
                return ZJQ_ETIMEDOUT;
            if (wait < 0 || wait > left)
                wait = (int) left;
        }
        struct pollfd item = { .fd = zjq_client_fd (cli->client), .events = POLLIN };
        if (wait != 0 && poll (&item, 1, wait) == -1 && errno != EINTR)
            return ZJQ_ESYS;
    }
}

//  "2024-05-01T12:00:00.123Z" for Unix ms
static const char *
s_iso_time (int64_t ms, char *buf, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r (&seconds, &tm)) {
        snprintf (buf, size, "%" PRId64, ms);
        return buf;
    }
    char date [32];
    strftime (date, sizeof (date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%s.%03dZ", date, (int) (ms % 1000));
    return buf;
}

//  Write bytes with tab, newline, carriage return, backslash and NUL
//  escaped, so a result fits on one tab-separated line.
static void
s_write_escaped (FILE *out, const char *data, size_t size)
{
    for (size_t index = 0; index < size; index++) {
        char c = data [index];
        switch (c) {
            case '\t': fputs ("\\t", out); break;
            case '\n': fputs ("\\n", out); break;
            case '\r': fputs ("\\r", out); break;
            case '\\': fputs ("\\\\", out); break;
            case '\0': fputs ("\\0", out); break;
            default:   fputc (c, out);
        }
    }
}

//  Append "key":"text" or "key":null to a JSON buffer
static void
s_json_str (char **buf, size_t *len, const char *key, const char *text, size_t text_len)
{
    zjq_json_append (buf, len, "\"%s\":", key);
    if (text)
        zjq_json_append_string (buf, len, text, text_len);
    else
        zjq_json_append (buf, len, "null");
}

static void
s_json_ms (char **buf, size_t *len, const char *key, int64_t ms)
{
    if (ms)
        zjq_json_append (buf, len, ",\"%s\":%" PRId64, key, ms);
    else
        zjq_json_append (buf, len, ",\"%s\":null", key);
}

//  Print a JSON text and a newline; out of memory (buf NULL) is an error.
static int
s_json_print (char *buf)
{
    if (!buf) {
        fprintf (stderr, "zjq: out of memory\n");
        return CLI_EXIT_OTHER;
    }
    puts (buf);
    free (buf);
    return CLI_EXIT_OK;
}

//  Read all of a stream into a buffer, at most ZJQ_CLI_MAX_PAYLOAD bytes.
//  Returns 0, or a zjq error code.
static int
s_read_all (FILE *in, char **data_p, size_t *size_p)
{
    size_t size = 0, capacity = 65536;
    char *data = (char *) malloc (capacity);
    if (!data)
        return ZJQ_ENOMEM;
    while (true) {
        if (size == capacity) {
            if (capacity >= ZJQ_CLI_MAX_PAYLOAD) {
                free (data);
                return ZJQ_ETOOBIG;
            }
            capacity *= 2;
            char *bigger = (char *) realloc (data, capacity);
            if (!bigger) {
                free (data);
                return ZJQ_ENOMEM;
            }
            data = bigger;
        }
        size_t got = fread (data + size, 1, capacity - size, in);
        size += got;
        if (got == 0) {
            if (ferror (in)) {
                free (data);
                return ZJQ_ESYS;
            }
            break;
        }
    }
    *data_p = data;
    *size_p = size;
    return 0;
}


//  --------------------------------------------------------------------------
//  Job outcomes (submit --wait, result)

typedef struct {
    cli_t *cli;
    bool done;
    int status;
    int state;
    int attempt;
    char *error;
    char *data;
    size_t size;
} outcome_t;

static void
s_outcome_keep (outcome_t *outcome, int status, const zjq_result_t *result)
{
    outcome->done = true;
    outcome->status = status;
    if (result) {
        outcome->state = result->state;
        outcome->attempt = result->attempt;
        outcome->error = result->error? strdup (result->error): NULL;
        if (result->size) {
            outcome->data = (char *) malloc (result->size);
            if (outcome->data) {
                memcpy (outcome->data, result->data, result->size);
                outcome->size = result->size;
            }
            else
                outcome->status = ZJQ_ENOMEM;
        }
    }
    else
        s_keep_broker_message (outcome->cli);
}

static void
s_outcome_cb (zjq_client_t *client, int status, const zjq_result_t *result, void *arg)
{
    s_outcome_keep ((outcome_t *) arg, status, result);
}

static void
s_outcome_free (outcome_t *outcome)
{
    free (outcome->error);
    free (outcome->data);
}

//  Report an outcome: the result bytes on stdout, or the error on stderr;
//  with json an object instead. Returns the exit code.
static int
s_outcome_report (cli_t *cli, const char *job_id, outcome_t *outcome, bool json)
{
    int status = outcome->status;
    bool ended = status == 0 || status == ZJQ_EFAILED || status == ZJQ_ECANCELLED;
    char what [128];
    snprintf (what, sizeof (what), "job %s", job_id);
    if (json && ended) {
        char *buf = NULL;
        size_t len = 0;
        zjq_json_append (&buf, &len, "{");
        s_json_str (&buf, &len, "id", job_id, strlen (job_id));
        zjq_json_append (&buf, &len, ",\"state\":\"%s\",\"attempt\":%d,",
                         zjq_state_name (outcome->state), outcome->attempt);
        s_json_str (&buf, &len, "error", outcome->error,
                    outcome->error? strlen (outcome->error): 0);
        zjq_json_append (&buf, &len, ",");
        s_json_str (&buf, &len, "result", status == 0? (outcome->data? outcome->data: ""): NULL,
                    outcome->size);
        zjq_json_append (&buf, &len, "}");
        int rc = s_json_print (buf);
        return rc? rc: s_exit_code (status, false);
    }
    if (status == 0) {
        if (outcome->size && fwrite (outcome->data, 1, outcome->size, stdout) != outcome->size) {
            fprintf (stderr, "zjq: writing the result: %s\n", strerror (errno));
            return CLI_EXIT_OTHER;
        }
        return CLI_EXIT_OK;
    }
    if (ended) {
        //  Same shape as other errors, with the job's reason at the end
        free (cli->broker_message);
        cli->broker_message = outcome->error? strdup (outcome->error): NULL;
        s_error (cli, what, status);
        return s_exit_code (status, false);
    }
    s_error (cli, what, status);
    return s_exit_code (status, false);
}


//  --------------------------------------------------------------------------
//  submit

//  on_accepted and on_done share one arg: the outcome comes first, so the
//  same pointer serves s_outcome_cb.
typedef struct {
    outcome_t outcome;          //  on_done (must be first)
    bool accepted;              //  on_accepted was called
    int status;                 //  its status
    char *id;                   //  job id when accepted
    bool duplicate;             //  the idempotency key matched a job
} submit_t;

static void
s_submit_accepted (zjq_client_t *client, int status, const char *job_id, void *arg)
{
    submit_t *submit = (submit_t *) arg;
    submit->accepted = true;
    submit->status = status;
    if (status == 0) {
        submit->id = strdup (job_id);
        zjq_msg_t *reply = zjq_client_reply (client);
        if (reply)
            zjq_msg_get_bool (reply, "duplicate", &submit->duplicate);
        if (!submit->id)
            submit->status = ZJQ_ENOMEM;
    }
    else
        s_keep_broker_message (submit->outcome.cli);
}

//  --progress: one line on stderr per report
static void
s_print_progress (zjq_client_t *client, const char *job_id, int attempt, double progress,
                  const char *message, void *arg)
{
    fprintf (stderr, "zjq: job %s attempt %d: %.1f%%%s%s\n", job_id, attempt, progress * 100,
             message? " ": "", message? message: "");
}

static void
s_fill_submit_opts (cli_t *cli, zjq_submit_opts_t *opts)
{
    zjq_submit_opts_init (opts);
    opts->priority = cli->priority;
    opts->max_attempts = cli->max_attempts;
    opts->job_timeout_ms = cli->job_timeout_ms;
    opts->result_ttl_ms = cli->result_ttl_ms;
    opts->key = cli->key;
}

static int
s_cmd_submit (cli_t *cli)
{
    const char *queue = cli->args [0];
    bool wait = cli->given & (OPT_WAIT | OPT_TIMEOUT);
    bool json = cli->given & OPT_JSON;
    char *payload = NULL;
    size_t size = 0;
    if (cli->arg_count < 2 || strcmp (cli->args [1], "-") == 0) {
        int rc = s_read_all (stdin, &payload, &size);
        if (rc) {
            s_error (cli, "reading the payload from standard input", rc);
            return rc == ZJQ_ETOOBIG? CLI_EXIT_REJECTED: CLI_EXIT_OTHER;
        }
    }
    int exit_code = s_connect (cli);
    if (exit_code) {
        free (payload);
        return exit_code;
    }
    zjq_submit_opts_t opts;
    s_fill_submit_opts (cli, &opts);
    if (wait && (cli->given & OPT_PROGRESS))
        zjq_on_progress (cli->client, s_print_progress, cli);
    submit_t submit = { .outcome = { .cli = cli } };
    const char *data = payload? payload: cli->args [1];
    if (!payload)
        size = strlen (data);
    int64_t deadline = (cli->given & OPT_TIMEOUT)? zjq_mono_ms () + cli->timeout_ms: -1;
    int rc = zjq_submit (cli->client, queue, data, size, &opts, s_submit_accepted,
                         wait? s_outcome_cb: NULL, &submit);
    free (payload);
    if (rc != 0) {
        //  The options were checked when parsed: it is the queue name
        if (rc == ZJQ_EINVAL)
            cli->broker_message = strdup (ZJQ_CLI_QUEUE_HINT);
        s_error (cli, "submit", rc);
        return s_exit_code (rc, true);
    }
    rc = s_run_until (cli, &submit.accepted, -1);
    if (rc == 0)
        rc = submit.status;
    if (rc != 0) {
        s_error (cli, "submit", rc);
        exit_code = s_exit_code (rc, false);
    }
    else
    if (!wait) {
        if (json) {
            char *buf = NULL;
            size_t len = 0;
            zjq_json_append (&buf, &len, "{");
            s_json_str (&buf, &len, "id", submit.id, strlen (submit.id));
            zjq_json_append (&buf, &len, ",\"duplicate\":%s}", submit.duplicate? "true": "false");
            exit_code = s_json_print (buf);
        }
        else
            puts (submit.id);
    }
    else {
        rc = s_run_until (cli, &submit.outcome.done, deadline);
        if (rc != 0)
            submit.outcome.status = rc;
        exit_code = s_outcome_report (cli, submit.id, &submit.outcome, json);
    }
    //  Destroying the client calls what is still pending (ZJQ_ECLOSED);
    //  submit is still in scope then.
    zjq_client_destroy (&cli->client);
    s_outcome_free (&submit.outcome);
    free (submit.id);
    return exit_code;
}


//  --------------------------------------------------------------------------
//  status and cancel

//  Look a key up in a msgpack map; NULL if absent or not a map.
static const msgpack_object *
s_mp_get (const msgpack_object *map, const char *key)
{
    return zjq_mp_map_get (map, key);
}

//  A number in a msgpack map as an integer; 0 if absent or not a number.
static int64_t
s_mp_int (const msgpack_object *map, const char *key)
{
    double value = 0;
    if (!zjq_mp_number (zjq_mp_map_get (map, key), &value))
        return 0;
    return value >= 9.2e18? INT64_MAX: value <= -9.2e18? INT64_MIN: (int64_t) value;
}

//  Print a job's state as JSON; reply (or NULL) is the JOB_STATUS, for the
//  attempt history
static void
s_print_info_json (const zjq_job_info_t *info, zjq_msg_t *reply)
{
    char *buf = NULL;
    size_t len = 0;
    bool ended = info->state == ZJQ_STATE_FAILED || info->state == ZJQ_STATE_CANCELLED;
    zjq_json_append (&buf, &len, "{");
    s_json_str (&buf, &len, "id", info->id, strlen (info->id));
    zjq_json_append (&buf, &len, ",");
    s_json_str (&buf, &len, "queue", info->queue, strlen (info->queue));
    zjq_json_append (&buf, &len,
                     ",\"state\":\"%s\",\"attempt\":%d,\"max_attempts\":%d,\"priority\":%d,",
                     zjq_state_name (info->state), info->attempt, info->max_attempts,
                     info->priority);
    const char *error = ended? info->error: NULL;
    s_json_str (&buf, &len, "error", error, error? strlen (error): 0);
    zjq_json_append (&buf, &len, ",");
    const char *last_error = ended? NULL: info->error;
    s_json_str (&buf, &len, "last_error", last_error, last_error? strlen (last_error): 0);
    if (info->progress >= 0)
        zjq_json_append (&buf, &len, ",\"progress\":%g,", info->progress);
    else
        zjq_json_append (&buf, &len, ",\"progress\":null,");
    s_json_str (&buf, &len, "progress_message", info->progress_message,
                info->progress_message? strlen (info->progress_message): 0);
    zjq_json_append (&buf, &len, ",");
    s_json_str (&buf, &len, "worker", info->worker, info->worker? strlen (info->worker): 0);
    zjq_json_append (&buf, &len, ",\"created_ms\":%" PRId64, info->created_ms);
    s_json_ms (&buf, &len, "started_ms", info->started_ms);
    s_json_ms (&buf, &len, "finished_ms", info->finished_ms);
    s_json_ms (&buf, &len, "expires_ms", info->expires_ms);
    zjq_json_append (&buf, &len, ",\"result_size\":%" PRId64, info->result_size);
    const msgpack_object *history = reply? zjq_msg_get (reply, "history"): NULL;
    if (history) {
        int64_t retries = 0;
        zjq_msg_get_int (reply, "retries", &retries);
        zjq_json_append (&buf, &len, ",\"retries\":%" PRId64 ",\"history\":", retries);
        zjq_json_append_msgpack (&buf, &len, history);
    }
    zjq_json_append (&buf, &len, "}");
    s_json_print (buf);
}

static void
s_print_info (const zjq_job_info_t *info)
{
    char time [48];
    printf ("id:        %s\n", info->id);
    printf ("queue:     %s\n", info->queue);
    printf ("state:     %s\n", zjq_state_name (info->state));
    printf ("attempt:   %d of %d\n", info->attempt, info->max_attempts);
    printf ("priority:  %d\n", info->priority);
    printf ("created:   %s\n", s_iso_time (info->created_ms, time, sizeof (time)));
    if (info->started_ms)
        printf ("started:   %s\n", s_iso_time (info->started_ms, time, sizeof (time)));
    if (info->finished_ms)
        printf ("finished:  %s\n", s_iso_time (info->finished_ms, time, sizeof (time)));
    if (info->worker)
        printf ("worker:    %s\n", info->worker);
    if (info->progress >= 0 || info->progress_message) {
        printf ("progress:  ");
        if (info->progress >= 0)
            printf ("%.0f%%%s", info->progress * 100, info->progress_message? " ": "");
        printf ("%s\n", info->progress_message? info->progress_message: "");
    }
    if (info->error) {
        bool ended = info->state == ZJQ_STATE_FAILED || info->state == ZJQ_STATE_CANCELLED;
        printf ("%s%s\n", ended? "error:     ": "last error: ", info->error);
    }
    if (info->state == ZJQ_STATE_SUCCEEDED)
        printf ("result:    %" PRId64 " bytes\n", info->result_size);
    if (info->expires_ms)
        printf ("expires:   %s\n", s_iso_time (info->expires_ms, time, sizeof (time)));
}

//  One failed attempt of a history (a msgpack map) on a line
static void
s_print_attempt (const msgpack_object *attempt)
{
    char text [512], worker [300];
    int64_t duration = s_mp_int (attempt, "duration_ms");
    printf ("  attempt %" PRId64 ": %s", s_mp_int (attempt, "attempt"),
            zjq_mp_text (s_mp_get (attempt, "error"), text, sizeof (text)));
    if (s_mp_get (attempt, "exit_code"))
        printf ("; exit status %" PRId64, s_mp_int (attempt, "exit_code"));
    if (s_mp_get (attempt, "signal"))
        printf ("; signal %" PRId64, s_mp_int (attempt, "signal"));
    if (duration >= 0)
        printf ("; %" PRId64 " ms", duration);
    if (s_mp_get (attempt, "worker"))
        printf ("; worker %s", zjq_mp_text (s_mp_get (attempt, "worker"), worker, sizeof (worker)));
    printf ("\n");
}

//  The failed attempts of a JOB_STATUS, if any
static void
s_print_history (zjq_msg_t *reply)
{
    const msgpack_object *history = reply? zjq_msg_get (reply, "history"): NULL;
    if (!history || history->type != MSGPACK_OBJECT_ARRAY || !history->via.array.size)
        return;
    int64_t dropped = 0, retries = 0;
    zjq_msg_get_int (reply, "history_dropped", &dropped);
    zjq_msg_get_int (reply, "retries", &retries);
    printf ("failed attempts:");
    if (retries)
        printf (" (retried %" PRId64 " time%s)", retries, retries == 1? "": "s");
    if (dropped)
        printf (" (%" PRId64 " older not kept)", dropped);
    printf ("\n");
    for (uint32_t index = 0; index < history->via.array.size; index++)
        s_print_attempt (&history->via.array.ptr [index]);
}

typedef struct {
    cli_t *cli;
    bool done;
    int status;
} reply_t;

static void
s_status_cb (zjq_client_t *client, int status, const zjq_job_info_t *info, void *arg)
{
    reply_t *reply = (reply_t *) arg;
    reply->done = true;
    reply->status = status;
    if (status != 0) {
        s_keep_broker_message (reply->cli);
        return;
    }
    if (reply->cli->given & OPT_JSON)
        s_print_info_json (info, zjq_client_reply (client));
    else
    if (reply->cli->command->run == s_cmd_cancel)
        printf ("%s\n", zjq_state_name (info->state));
    else {
        s_print_info (info);
        s_print_history (zjq_client_reply (client));
    }
}

//  Issue one request, wait for it, report a failure. Returns the exit code.
static int
s_one_request (cli_t *cli, reply_t *reply, int rc, const char *what)
{
    if (rc == 0)
        rc = s_run_until (cli, &reply->done, -1);
    else {
        s_error (cli, what, rc);
        zjq_client_destroy (&cli->client);
        return s_exit_code (rc, true);
    }
    if (rc == 0)
        rc = reply->status;
    if (rc != 0)
        s_error (cli, what, rc);
    zjq_client_destroy (&cli->client);
    return s_exit_code (rc, false);
}

//  status and cancel: one request about a job, answered with its state
typedef int (s_job_request_fn) (zjq_client_t *client, const char *job_id,
                                zjq_status_cb *callback, void *arg);

static int
s_job_request (cli_t *cli, const char *name, s_job_request_fn *request)
{
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    reply_t reply = { .cli = cli };
    char what [128];
    snprintf (what, sizeof (what), "%s %s", name, cli->args [0]);
    int rc = request (cli->client, cli->args [0], s_status_cb, &reply);
    return s_one_request (cli, &reply, rc, what);
}

static int
s_cmd_status (cli_t *cli)
{
    return s_job_request (cli, "status", zjq_status);
}

static int
s_cmd_cancel (cli_t *cli)
{
    return s_job_request (cli, "cancel", zjq_cancel);
}


//  --------------------------------------------------------------------------
//  result

static int
s_cmd_result (cli_t *cli)
{
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    const char *job_id = cli->args [0];
    int timeout_ms = 0;
    if (cli->given & OPT_TIMEOUT)
        timeout_ms = cli->timeout_ms > 0? (int) cli->timeout_ms: 1;
    else
    if (cli->given & OPT_WAIT)
        timeout_ms = -1;
    outcome_t outcome = { .cli = cli };
    if (cli->given & OPT_PROGRESS)
        zjq_on_progress (cli->client, s_print_progress, cli);
    int rc = zjq_result (cli->client, job_id, timeout_ms, s_outcome_cb, &outcome);
    if (rc != 0) {
        char what [128];
        snprintf (what, sizeof (what), "result %s", job_id);
        s_error (cli, what, rc);
        exit_code = s_exit_code (rc, true);
    }
    else {
        rc = s_run_until (cli, &outcome.done, -1);
        if (rc != 0)
            outcome.status = rc;
        exit_code = s_outcome_report (cli, job_id, &outcome, false);
    }
    zjq_client_destroy (&cli->client);
    s_outcome_free (&outcome);
    return exit_code;
}


//  --------------------------------------------------------------------------
//  stats

static void
s_print_stats (const msgpack_object *stats)
{
    char *text = stats? zjq_stats_view_render (stats, 0, 0): NULL;
    if (text)
        fputs (text, stdout);
    else
        fprintf (stderr, "zjq: stats: no stats in the reply, or out of memory\n");
    free (text);
}

static void
s_stats_cb (zjq_client_t *client, int status, const char *json, void *arg)
{
    reply_t *reply = (reply_t *) arg;
    reply->done = true;
    reply->status = status;
    if (status != 0) {
        s_keep_broker_message (reply->cli);
        return;
    }
    if (reply->cli->given & OPT_JSON)
        puts (json);
    else {
        zjq_msg_t *msg = zjq_client_reply (client);
        s_print_stats (msg? zjq_msg_get (msg, "stats"): NULL);
    }
}

static int
s_cmd_stats (cli_t *cli)
{
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    reply_t reply = { .cli = cli };
    return s_one_request (cli, &reply, zjq_stats (cli->client, s_stats_cb, &reply), "stats");
}


//  --------------------------------------------------------------------------
//  top

static void s_error_text (cli_t *cli, int code, char *buf, size_t size);

typedef struct {
    cli_t *cli;
    zjq_top_t *top;
    bool done;                  //  the request in flight was answered
} top_state_t;

static void
s_top_draw (top_state_t *state, const char *body)
{
    char stamp [16];
    time_t now = time (NULL);
    struct tm tm;
    strftime (stamp, sizeof (stamp), "%H:%M:%S", localtime_r (&now, &tm));
    char *screen = NULL;
    size_t len = 0;
    zjq_json_append (&screen, &len, "zjq top  %s  %s  (q quits)\n%s", state->cli->broker, stamp,
                     body);
    if (screen)
        zjq_top_draw (state->top, screen);
    free (screen);
}

static void
s_top_cb (zjq_client_t *client, int status, const char *json, void *arg)
{
    top_state_t *state = (top_state_t *) arg;
    state->done = true;
    if (status != 0) {
        s_keep_broker_message (state->cli);
        char text [600];
        s_error_text (state->cli, status, text, sizeof (text));
        char body [700];
        snprintf (body, sizeof (body), "\nno stats: %s\nasking again every second\n", text);
        s_top_draw (state, body);
        return;
    }
    zjq_msg_t *msg = zjq_client_reply (client);
    const msgpack_object *stats = msg? zjq_msg_get (msg, "stats"): NULL;
    int rows, columns;
    zjq_top_size (state->top, &rows, &columns);
    char *body = stats? zjq_stats_view_render (stats, columns, rows - 1): NULL;
    s_top_draw (state, body? body: "\nno stats in the reply\n");
    free (body);
}

static int
s_cmd_top (cli_t *cli)
{
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    top_state_t state = { .cli = cli, .top = zjq_top_new (STDIN_FILENO, STDOUT_FILENO) };
    if (!state.top) {
        fprintf (stderr, "zjq: top: out of memory\n");
        return CLI_EXIT_OTHER;
    }
    int error = 0;
    bool pending = false;
    int64_t next = 0;           //  when to ask again (mono ms)
    while (!zjq_top_quit (state.top)) {
        if (zjq_top_resized (state.top) && !pending)
            next = 0;
        int64_t now = zjq_mono_ms ();
        if (!pending && now >= next) {
            int rc = zjq_stats (cli->client, s_top_cb, &state);
            if (rc != 0) {
                error = rc;
                break;
            }
            pending = true;
            next = now + 1000;
        }
        int rc = zjq_client_process (cli->client);
        if (rc < 0) {
            error = rc;
            break;
        }
        if (state.done) {
            state.done = false;
            pending = false;
        }
        int wait = pending? zjq_client_timeout (cli->client): (int) (next - zjq_mono_ms ());
        if (wait < 0 || wait > 1000)
            wait = 1000;
        struct pollfd items [2] = {
            { .fd = zjq_client_fd (cli->client), .events = POLLIN },
            { .fd = zjq_top_input_fd (state.top), .events = POLLIN }
        };
        poll (items, items [1].fd >= 0? 2: 1, wait);
    }
    zjq_top_destroy (&state.top);
    if (error) {
        s_error (cli, "top", error);
        return s_exit_code (error, false);
    }
    return CLI_EXIT_OK;
}


//  --------------------------------------------------------------------------
//  ping

typedef struct {
    reply_t reply;              //  must be first
    struct timespec start;
} ping_t;

static void
s_ping_cb (zjq_client_t *client, int status, void *arg)
{
    ping_t *ping = (ping_t *) arg;
    ping->reply.done = true;
    ping->reply.status = status;
    if (status != 0) {
        s_keep_broker_message (ping->reply.cli);
        return;
    }
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    double ms = (double) (now.tv_sec - ping->start.tv_sec) * 1000
              + (double) (now.tv_nsec - ping->start.tv_nsec) / 1e6;
    zjq_msg_t *msg = zjq_client_reply (client);
    const char *instance = msg? zjq_msg_get_str (msg, "instance"): NULL;
    const char *version = msg? zjq_msg_get_str (msg, "version"): NULL;
    printf ("pong from %s (version %s) in %.1f ms\n", instance? instance: "?",
            version? version: "?", ms);
}

static int
s_cmd_ping (cli_t *cli)
{
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    ping_t ping = { .reply = { .cli = cli } };
    clock_gettime (CLOCK_MONOTONIC, &ping.start);
    return s_one_request (cli, &ping.reply, zjq_ping (cli->client, s_ping_cb, &ping), "ping");
}


//  --------------------------------------------------------------------------
//  reload

static void
s_reload_cb (zjq_client_t *client, int status, void *arg)
{
    reply_t *reply = (reply_t *) arg;
    reply->done = true;
    reply->status = status;
    if (status != 0) {
        s_keep_broker_message (reply->cli);
        return;
    }
    zjq_msg_t *msg = zjq_client_reply (client);
    int64_t clients = 0, workers = 0, admins = 0;
    if (msg) {
        zjq_msg_get_int (msg, "clients", &clients);
        zjq_msg_get_int (msg, "workers", &workers);
        zjq_msg_get_int (msg, "admins", &admins);
    }
    printf ("reloaded: %" PRId64 " client, %" PRId64 " worker, %" PRId64 " admin key(s)\n",
            clients, workers, admins);
}

static int
s_cmd_reload (cli_t *cli)
{
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    reply_t reply = { .cli = cli };
    return s_one_request (cli, &reply, zjq_reload (cli->client, s_reload_cb, &reply), "reload");
}


//  --------------------------------------------------------------------------
//  keygen

//  True if every comma-separated name is a queue name (or "*")
static bool
s_queue_list_valid (const char *list)
{
    const char *start = list;
    while (true) {
        size_t len = strcspn (start, ",");
        bool ok = (len == 1 && *start == '*') || zjq_proto_queue_name_validn (start, len);
        if (!ok)
            return false;
        if (!start [len])
            return true;
        start += len + 1;
    }
}

static int
s_cmd_keygen (cli_t *cli)
{
    const char *name = cli->args [0];
    if (!*name)
        return s_usage_error (cli, "NAME must not be empty");
    if (cli->queues && !s_queue_list_valid (cli->queues))
        return s_usage_error (cli, "--queues: '%s' is not '*' or queue names separated by "
                              "commas (" ZJQ_CLI_QUEUE_HINT ")", cli->queues);
    char public_path [4096], secret_path [4096];
    if (snprintf (public_path, sizeof (public_path), "%s.key", name) >= (int) sizeof (public_path)
    ||  snprintf (secret_path, sizeof (secret_path), "%s.key_secret", name)
        >= (int) sizeof (secret_path))
        return s_usage_error (cli, "NAME is too long");
    struct stat info;
    if (stat (public_path, &info) == 0 || stat (secret_path, &info) == 0) {
        fprintf (stderr, "zjq: keygen: %s or %s exists already; not overwriting it\n",
                 public_path, secret_path);
        return CLI_EXIT_USAGE;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "zjq: keygen: cannot make a key pair (libzmq without CURVE?)\n");
        return CLI_EXIT_OTHER;
    }
    const char *base = strrchr (name, '/');
    zcert_set_meta (cert, "name", "%s", base? base + 1: name);
    if (cli->queues && strcmp (cli->queues, "*") != 0)
        zcert_set_meta (cert, "queues", "%s", cli->queues);
    //  zcert_save writes the secret file with a private umask (0600)
    int rc = zcert_save (cert, public_path);
    if (rc == 0)
        rc = chmod (secret_path, 0600);
    if (rc != 0) {
        fprintf (stderr, "zjq: keygen: cannot write %s and %s: %s\n", public_path, secret_path,
                 strerror (errno));
        zcert_destroy (&cert);
        unlink (secret_path);
        return CLI_EXIT_OTHER;
    }
    printf ("%s\n", zcert_public_txt (cert));
    fprintf (stderr, "zjq: wrote %s (public, to share) and %s (secret, mode 0600)\n",
             public_path, secret_path);
    zcert_destroy (&cert);
    return CLI_EXIT_OK;
}


//  --------------------------------------------------------------------------
//  batch

typedef struct {
    cli_t *cli;
    bool json;
    bool closing;               //  timed out: callbacks only free
    size_t inflight;
    size_t total, succeeded, failed, cancelled, rejected;
    bool unreachable;           //  a submit could not reach the broker
} batch_t;

typedef struct {
    batch_t *batch;
    size_t line;                //  1-based input line
    char *id;                   //  job id once accepted
} batch_job_t;

static void
s_batch_job_end (batch_job_t *job)
{
    job->batch->inflight--;
    free (job->id);
    free (job);
}

//  One output line for a job: the result (status 0) or error text
static void
s_batch_print (batch_t *batch, batch_job_t *job, const char *state, const char *text, size_t size)
{
    if (batch->json) {
        char *buf = NULL;
        size_t len = 0;
        zjq_json_append (&buf, &len, "{\"line\":%zu,", job->line);
        s_json_str (&buf, &len, "id", job->id, job->id? strlen (job->id): 0);
        zjq_json_append (&buf, &len, ",\"state\":\"%s\",", state);
        bool ok = strcmp (state, "succeeded") == 0;
        s_json_str (&buf, &len, "error", ok? NULL: text, ok? 0: size);
        zjq_json_append (&buf, &len, ",");
        s_json_str (&buf, &len, "result", ok? text: NULL, ok? size: 0);
        zjq_json_append (&buf, &len, "}");
        s_json_print (buf);
        return;
    }
    printf ("%zu\t%s\t%s\t", job->line, job->id? job->id: "-", state);
    s_write_escaped (stdout, text, size);
    putchar ('\n');
}

//  "message (NAME)[: broker message]" for an error status
static void
s_error_text (cli_t *cli, int code, char *buf, size_t size)
{
    const char *name = zjq_errname (code);
    const char *hint = s_handshake_hint (cli, code);
    const char *detail = cli->broker_message? cli->broker_message: hint;
    snprintf (buf, size, "%s (%s)%s%s", zjq_strerror (code), name? name: "?",
              detail? ": ": "", detail? detail: "");
}

static void
s_batch_accepted (zjq_client_t *client, int status, const char *job_id, void *arg)
{
    batch_job_t *job = (batch_job_t *) arg;
    batch_t *batch = job->batch;
    if (status == 0) {
        job->id = strdup (job_id);
        if (job->id)
            return;             //  on_done follows
        status = ZJQ_ENOMEM;
    }
    if (!batch->closing) {
        s_keep_broker_message (batch->cli);
        char text [512];
        s_error_text (batch->cli, status, text, sizeof (text));
        s_batch_print (batch, job, "rejected", text, strlen (text));
        batch->rejected++;
        if (status == ZJQ_EUNREACHABLE)
            batch->unreachable = true;
    }
    s_batch_job_end (job);
}

static void
s_batch_done (zjq_client_t *client, int status, const zjq_result_t *result, void *arg)
{
    batch_job_t *job = (batch_job_t *) arg;
    batch_t *batch = job->batch;
    if (!batch->closing) {
        if (result) {
            const char *state = zjq_state_name (result->state);
            if (status == 0)
                s_batch_print (batch, job, state, (const char *) result->data, result->size);
            else
                s_batch_print (batch, job, state, result->error, strlen (result->error));
        }
        else {
            s_keep_broker_message (batch->cli);
            char text [512];
            s_error_text (batch->cli, status, text, sizeof (text));
            s_batch_print (batch, job, "error", text, strlen (text));
        }
        if (status == 0)
            batch->succeeded++;
        else
        if (status == ZJQ_ECANCELLED)
            batch->cancelled++;
        else
            batch->failed++;
    }
    s_batch_job_end (job);
}

static int
s_cmd_batch (cli_t *cli)
{
    const char *queue = cli->args [0];
    FILE *in = stdin;
    if (cli->file && strcmp (cli->file, "-") != 0) {
        in = fopen (cli->file, "rb");
        if (!in) {
            fprintf (stderr, "zjq: batch: cannot open '%s': %s\n", cli->file, strerror (errno));
            return CLI_EXIT_USAGE;
        }
    }
    int exit_code = s_connect (cli);
    if (exit_code) {
        if (in != stdin)
            fclose (in);
        return exit_code;
    }
    zjq_submit_opts_t opts;
    s_fill_submit_opts (cli, &opts);
    batch_t batch = { .cli = cli, .json = cli->given & OPT_JSON };
    size_t window = cli->window > 0? (size_t) cli->window: ZJQ_CLI_DEFAULT_WINDOW;
    int64_t start = zjq_mono_ms ();
    int64_t deadline = (cli->given & OPT_TIMEOUT)? start + cli->timeout_ms: -1;
    char *line = NULL;
    size_t line_size = 0;
    size_t line_no = 0;
    bool eof = false;
    bool timed_out = false;
    int error = 0;

    while (true) {
        //  Fill the window; stop reading once the broker proved unreachable
        while (!eof && !batch.unreachable && batch.inflight < window) {
            ssize_t len = getline (&line, &line_size, in);
            if (len < 0) {
                if (ferror (in)) {
                    fprintf (stderr, "zjq: batch: reading input: %s\n", strerror (errno));
                    error = ZJQ_ESYS;
                }
                eof = true;
                break;
            }
            line_no++;
            if (len > 0 && line [len - 1] == '\n')
                line [--len] = 0;
            if (len > 0 && line [len - 1] == '\r')
                line [--len] = 0;
            batch_job_t *job = (batch_job_t *) calloc (1, sizeof (batch_job_t));
            if (!job) {
                error = ZJQ_ENOMEM;
                eof = true;
                break;
            }
            job->batch = &batch;
            job->line = line_no;
            int rc = zjq_submit (cli->client, queue, line, (size_t) len, &opts,
                                 s_batch_accepted, s_batch_done, job);
            if (rc != 0) {
                free (job);
                if (rc == ZJQ_EINVAL) {
                    free (cli->broker_message);
                    cli->broker_message = strdup (ZJQ_CLI_QUEUE_HINT);
                }
                s_error (cli, "batch: submit", rc);
                exit_code = s_exit_code (rc, true);
                eof = true;
                error = rc;
                break;
            }
            batch.inflight++;
            batch.total++;
        }
        if (batch.inflight == 0 && (eof || batch.unreachable))
            break;
        //  One round of the event loop
        int rc = zjq_client_process (cli->client);
        fflush (stdout);
        if (rc < 0) {
            s_error (cli, "batch", rc);
            error = rc;
            break;
        }
        int64_t left = deadline >= 0? deadline - zjq_mono_ms (): -1;
        if (deadline >= 0 && left <= 0 && (batch.inflight || !eof)) {
            timed_out = true;
            break;
        }
        if (batch.inflight == 0 || (!eof && !batch.unreachable && batch.inflight < window))
            continue;
        int wait = zjq_client_timeout (cli->client);
        if (deadline >= 0 && (wait < 0 || wait > left))
            wait = (int) left;
        struct pollfd item = { .fd = zjq_client_fd (cli->client), .events = POLLIN };
        if (wait != 0)
            poll (&item, 1, wait);
    }
    size_t unfinished = batch.inflight;
    batch.closing = true;
    zjq_client_destroy (&cli->client);      //  frees the unfinished jobs
    fflush (stdout);
    free (line);
    if (in != stdin)
        fclose (in);

    double seconds = (double) (zjq_mono_ms () - start) / 1000;
    fprintf (stderr, "%zu jobs: %zu succeeded, %zu failed, %zu cancelled, %zu rejected",
             batch.total, batch.succeeded, batch.failed, batch.cancelled, batch.rejected);
    if (unfinished)
        fprintf (stderr, ", %zu unfinished", unfinished);
    fprintf (stderr, " in %.2f s (%.0f jobs/s)\n", seconds,
             seconds > 0? (double) (batch.total - unfinished) / seconds: 0.0);
    if (timed_out)
        fprintf (stderr, "zjq: batch: %s (%s)\n", zjq_strerror (ZJQ_ETIMEDOUT),
                 zjq_errname (ZJQ_ETIMEDOUT));

    if (exit_code)
        return exit_code;
    if (batch.unreachable)
        return CLI_EXIT_UNREACHABLE;
    if (error)
        return CLI_EXIT_OTHER;
    if (timed_out)
        return CLI_EXIT_TIMEDOUT;
    //  Nothing accepted at all (a refused key, a draining broker): say so
    if (batch.total && batch.rejected == batch.total)
        return CLI_EXIT_REJECTED;
    return batch.succeeded == batch.total? CLI_EXIT_OK: CLI_EXIT_FAILED;
}


//  --------------------------------------------------------------------------
//  Operations: failed, retry, pause, resume, drain (admin)

typedef struct _op_t op_t;
//  Print an operation's answer: the raw reply and its JSON
typedef void (s_op_print_fn) (op_t *op, zjq_msg_t *reply, const char *json);

struct _op_t {
    cli_t *cli;
    bool done;
    int status;
    s_op_print_fn *print;       //  or NULL
    void *data;                 //  the command's own
};

static void
s_op_cb (zjq_client_t *client, int status, const char *json, void *arg)
{
    op_t *op = (op_t *) arg;
    op->done = true;
    op->status = status;
    if (status != 0)
        s_keep_broker_message (op->cli);
    else
    if (op->print)
        op->print (op, zjq_client_reply (client), json);
}

//  Wait for an operation issued with rc; report a failure. Returns 0 or
//  the exit code. The client stays.
static int
s_op_wait (cli_t *cli, op_t *op, int rc, const char *what)
{
    op->done = false;
    if (rc == 0)
        rc = s_run_until (cli, &op->done, -1);
    else {
        s_error (cli, what, rc);
        return s_exit_code (rc, true);
    }
    if (rc == 0)
        rc = op->status;
    if (rc != 0)
        s_error (cli, what, rc);
    return s_exit_code (rc, false);
}

//  failed: one page of dead letters
typedef struct {
    char *after;                //  cursor for the next page, or NULL at the end
    int64_t after_ms;
    int64_t listed;             //  jobs printed so far
    int64_t total;              //  dead letters the broker holds
    char *json;                 //  --json: the jobs so far, "[...," style
    size_t json_len;
} failed_t;

static void
s_failed_page (op_t *op, zjq_msg_t *reply, const char *json)
{
    failed_t *failed = (failed_t *) op->data;
    cli_t *cli = op->cli;
    const msgpack_object *jobs = zjq_msg_get (reply, "jobs");
    zjq_msg_get_int (reply, "total", &failed->total);
    free (failed->after);
    failed->after = NULL;
    const char *next = zjq_msg_get_str (reply, "next");
    if (next) {
        failed->after = strdup (next);
        zjq_msg_get_int (reply, "next_ms", &failed->after_ms);
    }
    uint32_t count = jobs && jobs->type == MSGPACK_OBJECT_ARRAY? jobs->via.array.size: 0;
    for (uint32_t index = 0; index < count; index++) {
        if (cli->limit && failed->listed >= cli->limit)
            break;
        const msgpack_object *job = &jobs->via.array.ptr [index];
        failed->listed++;
        if (cli->given & OPT_JSON) {
            zjq_json_append (&failed->json, &failed->json_len, failed->listed > 1? ",": "");
            zjq_json_append_msgpack (&failed->json, &failed->json_len, job);
            continue;
        }
        char id [64], queue [160], error [1200], time [48];
        printf ("%-22s %-20s %8" PRId64 "  %-24s  %s\n",
                zjq_mp_text (s_mp_get (job, "id"), id, sizeof (id)),
                zjq_mp_text (s_mp_get (job, "queue"), queue, sizeof (queue)),
                s_mp_int (job, "attempts"),
                s_iso_time (s_mp_int (job, "failed_ms"), time, sizeof (time)),
                zjq_mp_text (s_mp_get (job, "error"), error, sizeof (error)));
    }
    if (cli->limit && failed->listed >= cli->limit) {
        free (failed->after);
        failed->after = NULL;
    }
}

static int
s_cmd_failed (cli_t *cli)
{
    const char *queue = cli->arg_count? cli->args [0]: NULL;
    if (queue && !zjq_proto_queue_name_valid (queue))
        return s_usage_error (cli, "'%s' is not a queue name (%s)", queue, ZJQ_CLI_QUEUE_HINT);
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    failed_t failed = { .after = NULL };
    op_t op = { .cli = cli, .print = s_failed_page, .data = &failed };
    bool json = cli->given & OPT_JSON;
    if (!json)
        printf ("%-22s %-20s %8s  %-24s  %s\n", "ID", "QUEUE", "ATTEMPTS", "FAILED AT",
                "LAST ERROR");
    do {
        int rc = zjq_dead_letters (cli->client, queue, failed.after, failed.after_ms, 0,
                                   s_op_cb, &op);
        exit_code = s_op_wait (cli, &op, rc, "failed");
    } while (exit_code == 0 && failed.after);
    if (exit_code == 0 && json) {
        char *buf = NULL;
        size_t len = 0;
        zjq_json_append (&buf, &len, "{\"total\":%" PRId64 ",\"jobs\":[%s]}", failed.total,
                         failed.json? failed.json: "");
        exit_code = s_json_print (buf);
    }
    else
    if (exit_code == 0)
        fprintf (stderr, "%" PRId64 " failed job(s)%s%s listed; the broker holds %" PRId64
                 " in all\n", failed.listed, queue? " of queue ": "", queue? queue: "",
                 failed.total);
    free (failed.after);
    free (failed.json);
    zjq_client_destroy (&cli->client);
    return exit_code;
}

static void
s_retry_done (op_t *op, zjq_msg_t *reply, const char *json)
{
    int64_t count = 0;
    zjq_msg_get_int (reply, "count", &count);
    const char *stopped = zjq_msg_get_str (reply, "stopped");
    if (op->cli->queue)
        printf ("%" PRId64 " job(s) of queue %s requeued\n", count, op->cli->queue);
    else
        printf ("%s\n", op->cli->args [0]);
    if (stopped)
        fprintf (stderr, "zjq: retry: stopped part way: %s\n", stopped);
}

static int
s_cmd_retry (cli_t *cli)
{
    if ((cli->arg_count == 1) == (cli->queue != NULL))
        return s_usage_error (cli, "give a JOB_ID or --queue QUEUE (one of them)");
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    op_t op = { .cli = cli, .print = s_retry_done };
    const char *job_id = cli->arg_count? cli->args [0]: NULL;
    char what [160];
    snprintf (what, sizeof (what), "retry %s", job_id? job_id: cli->queue);
    int rc = zjq_retry (cli->client, job_id, cli->queue, s_op_cb, &op);
    exit_code = s_op_wait (cli, &op, rc, what);
    zjq_client_destroy (&cli->client);
    return exit_code;
}

static void
s_queue_state (op_t *op, zjq_msg_t *reply, const char *json)
{
    bool paused = false;
    int64_t queued = 0, running = 0, workers = 0;
    zjq_msg_get_bool (reply, "paused", &paused);
    zjq_msg_get_int (reply, "queued", &queued);
    zjq_msg_get_int (reply, "running", &running);
    zjq_msg_get_int (reply, "workers", &workers);
    printf ("queue %s %s: %" PRId64 " queued, %" PRId64 " running, %" PRId64 " worker(s)\n",
            op->cli->args [0], paused? "paused": "dispatching", queued, running, workers);
}

//  pause and resume
static int
s_cmd_pause (cli_t *cli)
{
    const char *queue = cli->args [0];
    if (!zjq_proto_queue_name_valid (queue))
        return s_usage_error (cli, "'%s' is not a queue name (%s)", queue, ZJQ_CLI_QUEUE_HINT);
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    op_t op = { .cli = cli, .print = s_queue_state };
    bool pause = streq (cli->command->name, "pause");
    char what [160];
    snprintf (what, sizeof (what), "%s %s", cli->command->name, queue);
    int rc = pause? zjq_pause (cli->client, queue, s_op_cb, &op)
                  : zjq_resume (cli->client, queue, s_op_cb, &op);
    exit_code = s_op_wait (cli, &op, rc, what);
    zjq_client_destroy (&cli->client);
    return exit_code;
}

//  drain: the state after one DRAIN
typedef struct {
    bool draining;
    bool drained;
    int64_t queued, running, paused_queued;
} drain_t;

static void
s_drain_state (op_t *op, zjq_msg_t *reply, const char *json)
{
    drain_t *drain = (drain_t *) op->data;
    zjq_msg_get_bool (reply, "draining", &drain->draining);
    zjq_msg_get_bool (reply, "drained", &drain->drained);
    zjq_msg_get_int (reply, "queued", &drain->queued);
    zjq_msg_get_int (reply, "running", &drain->running);
    zjq_msg_get_int (reply, "paused_queued", &drain->paused_queued);
}

static void
s_print_drain (const drain_t *drain)
{
    if (!drain->draining)
        printf ("accepting jobs: %" PRId64 " queued, %" PRId64 " running\n",
                drain->queued, drain->running);
    else
        printf ("%s: %" PRId64 " queued (%" PRId64 " in paused queues), %" PRId64 " running\n",
                drain->drained? "drained": "draining", drain->queued, drain->paused_queued,
                drain->running);
}

static int
s_cmd_drain (cli_t *cli)
{
    bool off = cli->given & OPT_OFF;
    bool wait = cli->given & (OPT_WAIT | OPT_TIMEOUT);
    if (off && wait)
        return s_usage_error (cli, "--off and --wait do not go together");
    int exit_code = s_connect (cli);
    if (exit_code)
        return exit_code;
    drain_t drain = { .draining = false };
    op_t op = { .cli = cli, .print = s_drain_state, .data = &drain };
    int64_t deadline = (cli->given & OPT_TIMEOUT)? zjq_mono_ms () + cli->timeout_ms: -1;
    while (true) {
        int rc = zjq_drain (cli->client, off, s_op_cb, &op);
        exit_code = s_op_wait (cli, &op, rc, "drain");
        if (exit_code || !wait || drain.drained)
            break;
        if (deadline >= 0 && zjq_mono_ms () >= deadline) {
            s_print_drain (&drain);
            s_error (cli, "drain --wait", ZJQ_ETIMEDOUT);
            exit_code = s_exit_code (ZJQ_ETIMEDOUT, false);
            break;
        }
        //  Ask again in a while
        int64_t pause = deadline >= 0 && deadline - zjq_mono_ms () < 250?
                        deadline - zjq_mono_ms (): 250;
        poll (NULL, 0, (int) (pause > 0? pause: 0));
    }
    if (exit_code == 0)
        s_print_drain (&drain);
    zjq_client_destroy (&cli->client);
    return exit_code;
}


//  --------------------------------------------------------------------------
//  help and main

static int
s_cmd_help (cli_t *cli)
{
    if (cli->arg_count == 0) {
        s_print_usage (stdout);
        return CLI_EXIT_OK;
    }
    const command_t *command = s_command_lookup (cli->args [0]);
    if (!command)
        return s_usage_error (cli, "unknown command '%s'", cli->args [0]);
    s_print_command_help (stdout, command);
    return CLI_EXIT_OK;
}

int
main (int argc, char **argv)
{
    cli_t cli = {
        .broker = getenv ("ZJQ_BROKER"),
        .curve_secret = getenv ("ZJQ_CURVE_SECRET"),
        .broker_key = getenv ("ZJQ_BROKER_KEY"),
        .request_timeout_ms = 5000,
        .window = ZJQ_CLI_DEFAULT_WINDOW
    };
    if (!cli.broker || !*cli.broker)
        cli.broker = ZJQ_CLI_DEFAULT_BROKER;
    if (cli.curve_secret && !*cli.curve_secret)
        cli.curve_secret = NULL;
    if (cli.broker_key && !*cli.broker_key)
        cli.broker_key = NULL;
    int exit_code = s_parse_args (&cli, argc, argv);
    if (exit_code == -1)
        return CLI_EXIT_OK;
    if (exit_code == 0)
        exit_code = cli.command->run (&cli);
    zjq_client_destroy (&cli.client);
    free (cli.broker_message);
    if (fflush (stdout) != 0 || ferror (stdout)) {
        fprintf (stderr, "zjq: writing output: %s\n", strerror (errno));
        if (exit_code == CLI_EXIT_OK)
            exit_code = CLI_EXIT_OTHER;
    }
    return exit_code;
}
