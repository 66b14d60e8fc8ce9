/*  zjq_cli.c: the zjq command-line client (binary `zjq`): its core.

    Thin layer over the client library: parse the command line, issue one
    request (or a window of submits for `batch`), drive the client from a
    poll () loop on its fd and timeout, print the answer, and map the
    outcome to an exit code (one table, in zjq_cli.h, also printed by
    --help). This file holds the option and command tables, parsing, help,
    connecting, the loop and the output helpers; the commands are in
    zjq_cli_jobs.c and zjq_cli_ops.c (see zjq_cli.h).                      */

#include "zjq_cli.h"
#include "zjq_json.h"
#include "zjq_options.h"
#include "zjq_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


//  --------------------------------------------------------------------------
//  Exit codes, options and commands

//  The exit code for a zjq error code. from_call: the library refused the
//  call itself (bad arguments are a usage error), rather than the broker.
int
zjq_cli_exit_code (int code, bool from_call)
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
        case ZJQ_EQUOTA:
        case ZJQ_EDENIED:       return CLI_EXIT_REJECTED;
        default:                return CLI_EXIT_OTHER;
    }
}

//  A queue name check for --queue (stores nothing; the row stores it)
static int
s_check_queue (const zjq_option_t *option, void *settings, const char *value, char *error,
               size_t error_size)
{
    return zjq_proto_queue_name_valid (value)? 0: -1;
}

#define s_FIELD(field) ZJQ_OPTION_FIELD (cli_t, field)

//  Every option of every command: the mask is its bit, and a command takes
//  the options in its `options` bits and the global ones. Each message is
//  the CLI's own (tests pin them).
static const zjq_option_t s_options [] = {
    { "broker", 0, ZJQ_OPT_ARG, s_FIELD (broker), 1, 0, .metavar = "ENDPOINT",
      .help = "broker endpoint (default: $ZJQ_BROKER, else " ZJQ_CLI_DEFAULT_BROKER ")",
      .error = "--broker needs an endpoint", .mask = OPT_BROKER },
    { "request-timeout", 0, ZJQ_OPT_DURATION, s_FIELD (request_timeout_ms), 1, INT_MAX,
      .metavar = "SECONDS", .help = "how long the broker has to answer a request (default 5)",
      .error = "--request-timeout: '%s' is not a duration above zero",
      .mask = OPT_REQUEST_TIMEOUT },
    { "curve-secret", 0, ZJQ_OPT_ARG, s_FIELD (curve_secret), 1, 0, .metavar = "FILE",
      .help = "talk CURVE with this secret certificate (default: $ZJQ_CURVE_SECRET)",
      .error = "--curve-secret needs a file name", .mask = OPT_CURVE_SECRET },
    { "broker-key", 0, ZJQ_OPT_ARG, s_FIELD (broker_key), 1, 0, .metavar = "FILE",
      .help = "the broker's public certificate, for CURVE (default: $ZJQ_BROKER_KEY)",
      .error = "--broker-key needs a file name", .mask = OPT_BROKER_KEY },
    { "help", 'h', ZJQ_OPT_FLAG, s_FIELD (help), .help = "show help and exit",
      .mask = OPT_HELP },
    { "version", 0, ZJQ_OPT_FLAG, s_FIELD (version), .help = "print the version and exit",
      .mask = OPT_VERSION },
    { "wait", 0, ZJQ_OPT_FLAG, s_FIELD (wait),
      .help = "wait for the job to end and print its result", .mask = OPT_WAIT },
    { "timeout", 0, ZJQ_OPT_DURATION, s_FIELD (timeout_ms), 0, INT_MAX, .metavar = "SECONDS",
      .help = "give up waiting after this long (default: no limit)",
      .error = "--timeout: '%s' is not a duration", .mask = OPT_TIMEOUT },
    { "priority", 0, ZJQ_OPT_INT, s_FIELD (priority), -1000, 1000, .metavar = "N",
      .help = "-1000..1000, higher runs first (default 0)",
      .error = "--priority: '%s' is not a number in -1000..1000", .mask = OPT_PRIORITY },
    { "max-attempts", 0, ZJQ_OPT_INT, s_FIELD (max_attempts), 1, 1000, .metavar = "N",
      .help = "attempts before the job fails, 1..1000 (default: broker's)",
      .error = "--max-attempts: '%s' is not a number in 1..1000", .mask = OPT_MAX_ATTEMPTS },
    { "job-timeout", 0, ZJQ_OPT_DURATION, s_FIELD (job_timeout_ms), 1, 0, .metavar = "SECONDS",
      .help = "time limit of one attempt (default: broker's)",
      .error = "--job-timeout: '%s' is not a duration above zero", .mask = OPT_JOB_TIMEOUT },
    { "result-ttl", 0, ZJQ_OPT_DURATION, s_FIELD (result_ttl_ms), 1, 0, .metavar = "SECONDS",
      .help = "how long the broker keeps the outcome (default: broker's)",
      .error = "--result-ttl: '%s' is not a duration above zero", .mask = OPT_RESULT_TTL },
    { "key", 0, ZJQ_OPT_ARG, s_FIELD (key), 1, 256, .metavar = "KEY",
      .help = "idempotency key: resubmitting with it returns the same job",
      .error = "--key must be 1 to 256 bytes", .mask = OPT_KEY },
    { "json", 0, ZJQ_OPT_FLAG, s_FIELD (json), .help = "print JSON", .mask = OPT_JSON },
    { "file", 0, ZJQ_OPT_ARG, s_FIELD (file), .metavar = "FILE",
      .help = "read payloads from FILE, one per line (default: stdin)", .mask = OPT_FILE },
    { "window", 0, ZJQ_OPT_INT, s_FIELD (window), 1, 1000000, .metavar = "N",
      .help = "jobs in flight at most (default 1000)",
      .error = "--window: '%s' is not a number in 1..1000000", .mask = OPT_WINDOW },
    { "queues", 0, ZJQ_OPT_ARG, s_FIELD (queues), .metavar = "LIST",
      .help = "queues the key may use, comma-separated (default: all)", .mask = OPT_QUEUES },
    { "progress", 0, ZJQ_OPT_FLAG, s_FIELD (progress),
      .help = "while waiting, print the job's progress reports on standard error",
      .mask = OPT_PROGRESS },
    { "queue", 0, ZJQ_OPT_ARG, s_FIELD (queue), .metavar = "QUEUE",
      .help = "every failed job of QUEUE", .parse = s_check_queue,
      .error = "--queue: '%s' is not a queue name (" ZJQ_CLI_QUEUE_HINT ")", .mask = OPT_QUEUE },
    { "off", 0, ZJQ_OPT_FLAG, s_FIELD (off), .help = "stop draining: accept new jobs again",
      .mask = OPT_OFF },
    { "limit", 0, ZJQ_OPT_INT, s_FIELD (limit), 1, 0, .metavar = "N",
      .help = "list at most N jobs (default: all)",
      .error = "--limit: '%s' is not a number above zero", .mask = OPT_LIMIT },
    { .name = NULL }
};

static int s_cmd_help (cli_t *cli);

static const command_t s_commands [] = {
    { "submit", zjq_cli_cmd_submit, "QUEUE [PAYLOAD | -]", 1, 2,
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
    { "status", zjq_cli_cmd_status, "JOB_ID", 1, 1, OPT_JSON,
      "show a job's state",
      "Prints the job's queue, state, attempts, times (UTC), worker, progress\n"
      "and error, and each failed attempt (error, exit status, duration).\n" },
    { "result", zjq_cli_cmd_result, "JOB_ID", 1, 1, OPT_WAIT | OPT_TIMEOUT | OPT_PROGRESS,
      "write a finished job's result to stdout",
      "Writes the result of a succeeded job to standard output, byte for byte.\n"
      "A failed job's error goes to standard error (exit 1); a cancelled job\n"
      "exits 3. Without --wait (or --timeout), a job that has not ended exits 5.\n"
      "With --progress (and --wait), prints the job's progress reports on\n"
      "standard error while it runs.\n" },
    { "cancel", zjq_cli_cmd_cancel, "JOB_ID", 1, 1, OPT_JSON,
      "cancel a queued or running job",
      "Removes a queued job, or stops a running one on its worker, and prints\n"
      "the job's new state. A job that has already ended cannot be cancelled.\n" },
    { "stats", zjq_cli_cmd_stats, "", 0, 0, OPT_JSON,
      "show broker statistics",
      "Prints the broker (uptime, memory, journal, job counts, rates over the\n"
      "last minute, error counters), one line per queue (queued, running,\n"
      "succeeded, failed and cancelled since the broker started, submitted and\n"
      "completed per second over the last minute, age of the oldest queued job,\n"
      "workers, mean and p99 run time over the last minute) and one line per\n"
      "worker (host, pid, running/capacity, completed, time since it was last\n"
      "heard from, version, queues). Large numbers are shortened (12.3k);\n"
      "--json prints every field exactly (see docs/protocol.md, Stats).\n" },
    { "top", zjq_cli_cmd_top, "", 0, 0, 0,
      "show broker statistics live, refreshed every second",
      "The view of 'zjq stats' on the whole terminal, redrawn every second and\n"
      "cut to the window's size. q or Ctrl-C quits and gives the terminal back.\n"
      "If the broker stops answering, the screen says so and keeps asking.\n" },
    { "ping", zjq_cli_cmd_ping, "", 0, 0, 0,
      "check that the broker answers",
      "Prints the broker's instance, its version and the round-trip time.\n" },
    { "batch", zjq_cli_cmd_batch, "QUEUE", 1, 1,
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
    { "keygen", zjq_cli_cmd_keygen, "NAME", 1, 1, OPT_QUEUES,
      "write a CURVE key pair: NAME.key and NAME.key_secret",
      "Writes a new CURVE certificate pair in czmq's format: NAME.key, the\n"
      "public certificate, to share (copy it into the broker's allow-list\n"
      "directory for the role: clients, workers or admins), and\n"
      "NAME.key_secret, the secret one, readable by its owner only (mode\n"
      "0600). --queues a,b limits the key to those queues (metadata 'queues'\n"
      "in the certificate; '*' or none: all). Refuses to overwrite. Needs no\n"
      "broker.\n" },
    { "reload", zjq_cli_cmd_reload, "", 0, 0, 0,
      "make a CURVE broker re-read its allow-lists (admin key)",
      "Asks the broker to read its --curve-clients, --curve-workers and\n"
      "--curve-admins directories again, as SIGHUP does. New connections use\n"
      "the new lists, and a removed key is refused from its next message on.\n"
      "If the new lists cannot be used, the old ones stay (exit 7).\n" },
    { "failed", zjq_cli_cmd_failed, "[QUEUE]", 0, 1, OPT_JSON | OPT_LIMIT,
      "list failed jobs (dead letters) kept by the broker (admin key)",
      "Lists the jobs that failed their last attempt, oldest failure first:\n"
      "id, queue, attempts made, when it failed (UTC) and the last error. The\n"
      "broker keeps them, with their payload and every attempt's error, exit\n"
      "status and duration, for --dead-letter-ttl (default 7 days); 'zjq\n"
      "status ID' shows one in full. --json prints {\"total\":..,\"jobs\":[..]}\n"
      "with each job's history.\n" },
    { "retry", zjq_cli_cmd_retry, "[JOB_ID]", 0, 1, OPT_QUEUE,
      "requeue a failed job, or with --queue every failed job of a queue",
      "Puts failed jobs back in their queue, in their old place, each with a\n"
      "fresh attempt budget (its --max-attempts again; attempt numbers go on,\n"
      "and the history keeps the earlier attempts). Prints the job id, or the\n"
      "number of jobs requeued. Admin key; refused while the broker drains.\n" },
    { "pause", zjq_cli_cmd_pause, "QUEUE", 1, 1, 0,
      "stop dispatching a queue's jobs; submits are still accepted",
      "The broker keeps the queue's jobs, accepts new ones, and gives none\n"
      "to workers until 'zjq resume QUEUE'; jobs already running go on. With\n"
      "--journal the pause survives a broker restart. Admin key.\n" },
    { "resume", zjq_cli_cmd_pause, "QUEUE", 1, 1, 0,
      "dispatch a paused queue again", "" },
    { "drain", zjq_cli_cmd_drain, "", 0, 0, OPT_WAIT | OPT_TIMEOUT | OPT_OFF,
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

static void
s_print_options (FILE *out, unsigned bits)
{
    zjq_options_help (s_options, bits, out, 27, 0);
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

int
zjq_cli_usage_error (const cli_t *cli, const char *format, ...)
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

//  --------------------------------------------------------------------------
//  Parsing the command line

//  The command is the first argument that is not an option or an
//  option's value (options may come before or after it), or the one after
//  "--". Returns its index, or 0 if there is none.
static int
s_find_command (int argc, char **argv)
{
    int arg = 0;
    const zjq_option_t *option;
    const char *value;
    while (true) {
        switch (zjq_options_next (s_options, 0, argc, argv, &arg, &option, &value)) {
            case ZJQ_OPTIONS_END:
                return 0;
            case ZJQ_OPTIONS_DASHDASH:
                return arg + 1 < argc? arg + 1: 0;
            case ZJQ_OPTIONS_POSITIONAL:
                return arg;
            default:
                break;          //  an option (with its value), or a bad one
        }
    }
}

//  A positional argument of the command. Returns 0 or an exit code.
static int
s_positional (cli_t *cli, const char *arg)
{
    if (!cli->command)
        return zjq_cli_usage_error (cli, "unexpected argument '%s'", arg);
    if (cli->arg_count == ZJQ_CLI_MAX_POSITIONAL || cli->arg_count >= cli->command->max_args)
        return zjq_cli_usage_error (cli, "too many arguments");
    cli->args [cli->arg_count++] = arg;
    return 0;
}

//  An option zjq_options_next found (status and the culprit arg). Returns
//  0 or an exit code.
static int
s_option (cli_t *cli, zjq_options_status_t status, const zjq_option_t *option,
          const char *arg, const char *value)
{
    if (status == ZJQ_OPTIONS_UNKNOWN) {
        if (arg [1] != '-')
            return zjq_cli_usage_error (cli, "unknown option '%s'", arg);
        return zjq_cli_usage_error (cli, "unknown option '%.*s'", (int) strcspn (arg, "="), arg);
    }
    unsigned allowed = OPT_GLOBAL | (cli->command? cli->command->options: 0);
    if (!(option->mask & allowed))
        return zjq_cli_usage_error (cli, "option --%s does not apply here", option->name);
    if (status == ZJQ_OPTIONS_NEEDS_VALUE)
        return zjq_cli_usage_error (cli, "option --%s needs a value (%s)", option->name,
                                    option->metavar);
    if (status == ZJQ_OPTIONS_NO_VALUE)
        return zjq_cli_usage_error (cli, "option --%s takes no value", option->name);
    char error [256];
    if (zjq_options_set (option, cli, value, error, sizeof (error)) != 0)
        return zjq_cli_usage_error (cli, "%s", error);
    cli->given |= option->mask;
    return 0;
}

//  Every argument but the command: options, then after "--" positional
//  arguments only. Returns 0 or an exit code.
static int
s_parse_options (cli_t *cli, int argc, char **argv, int command_at)
{
    int arg = 0, rc = 0;
    while (rc == 0) {
        const zjq_option_t *option;
        const char *value;
        zjq_options_status_t status =
            zjq_options_next (s_options, 0, argc, argv, &arg, &option, &value);
        if (status == ZJQ_OPTIONS_END)
            break;
        if (status == ZJQ_OPTIONS_DASHDASH) {
            while (rc == 0 && ++arg < argc)
                rc = arg == command_at? 0: s_positional (cli, argv [arg]);
            break;
        }
        if (status == ZJQ_OPTIONS_POSITIONAL)
            rc = arg == command_at? 0: s_positional (cli, argv [arg]);
        else
            rc = s_option (cli, status, option, argv [arg], value);
    }
    return rc;
}

//  Parse the command line into cli. Returns 0, or an exit code (-1 when
//  help or the version was printed: exit 0).
static int
s_parse_args (cli_t *cli, int argc, char **argv)
{
    int command_at = s_find_command (argc, argv);
    if (command_at) {
        cli->command = s_command_lookup (argv [command_at]);
        if (!cli->command)
            return zjq_cli_usage_error (cli, "unknown command '%s'", argv [command_at]);
    }
    int rc = s_parse_options (cli, argc, argv, command_at);
    if (rc)
        return rc;
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
        return zjq_cli_usage_error (cli, "missing %s", cli->command->args);
    return 0;
}


//  --------------------------------------------------------------------------
//  Shared helpers: errors, connecting, the loop, output

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

void
zjq_cli_error (cli_t *cli, const char *what, int code)
{
    const char *name = zjq_errname (code);
    const char *hint = s_handshake_hint (cli, code);
    const char *detail = cli->broker_message? cli->broker_message: hint;
    fprintf (stderr, "zjq: %s: %s (%s)%s%s\n", what, zjq_strerror (code), name? name: "?",
             detail? ": ": "", detail? detail: "");
}

//  In a callback: keep the broker's message of an error reply for zjq_cli_error.
void
zjq_cli_keep_broker_message (cli_t *cli)
{
    zjq_msg_t *reply = zjq_client_reply (cli->client);
    const char *message = reply? zjq_msg_get_str (reply, "message"): NULL;
    free (cli->broker_message);
    cli->broker_message = message && *message? strdup (message): NULL;
}

int
zjq_cli_connect (cli_t *cli)
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
int
zjq_cli_run_until (cli_t *cli, const bool *done, int64_t deadline)
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
const char *
zjq_cli_iso_time (int64_t ms, char *buf, size_t size)
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
void
zjq_cli_write_escaped (FILE *out, const char *data, size_t size)
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
void
zjq_cli_json_str (char **buf, size_t *len, const char *key, const char *text, size_t text_len)
{
    zjq_json_append (buf, len, "\"%s\":", key);
    if (text)
        zjq_json_append_string (buf, len, text, text_len);
    else
        zjq_json_append (buf, len, "null");
}

void
zjq_cli_json_ms (char **buf, size_t *len, const char *key, int64_t ms)
{
    if (ms)
        zjq_json_append (buf, len, ",\"%s\":%" PRId64, key, ms);
    else
        zjq_json_append (buf, len, ",\"%s\":null", key);
}

//  Print a JSON text and a newline; out of memory (buf NULL) is an error.
int
zjq_cli_json_print (char *buf)
{
    if (!buf) {
        fprintf (stderr, "zjq: out of memory\n");
        return CLI_EXIT_OTHER;
    }
    puts (buf);
    free (buf);
    return CLI_EXIT_OK;
}

//  A number in a msgpack map as an integer; 0 if absent or not a number.
int64_t
zjq_cli_mp_int (const msgpack_object *map, const char *key)
{
    double value = 0;
    if (!zjq_mp_number (zjq_mp_map_get (map, key), &value))
        return 0;
    return value >= 9.2e18? INT64_MAX: value <= -9.2e18? INT64_MIN: (int64_t) value;
}

bool
zjq_cli_reply_answered (reply_t *reply, int status)
{
    reply->done = true;
    reply->status = status;
    if (status != 0)
        zjq_cli_keep_broker_message (reply->cli);
    return status == 0;
}

//  Issue one request, wait for it, report a failure. Returns the exit code.
int
zjq_cli_one_request (cli_t *cli, reply_t *reply, int rc, const char *what)
{
    if (rc == 0)
        rc = zjq_cli_run_until (cli, &reply->done, -1);
    else {
        zjq_cli_error (cli, what, rc);
        zjq_client_destroy (&cli->client);
        return zjq_cli_exit_code (rc, true);
    }
    if (rc == 0)
        rc = reply->status;
    if (rc != 0)
        zjq_cli_error (cli, what, rc);
    zjq_client_destroy (&cli->client);
    return zjq_cli_exit_code (rc, false);
}

//  "message (NAME)[: broker message]" for an error status
void
zjq_cli_error_text (cli_t *cli, int code, char *buf, size_t size)
{
    const char *name = zjq_errname (code);
    const char *hint = s_handshake_hint (cli, code);
    const char *detail = cli->broker_message? cli->broker_message: hint;
    snprintf (buf, size, "%s (%s)%s%s", zjq_strerror (code), name? name: "?",
              detail? ": ": "", detail? detail: "");
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
        return zjq_cli_usage_error (cli, "unknown command '%s'", cli->args [0]);
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
