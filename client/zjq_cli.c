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
        case ZJQ_EDENIED:       return CLI_EXIT_REJECTED;
        default:                return CLI_EXIT_OTHER;
    }
}

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
                return zjq_cli_usage_error (cli, "--broker needs an endpoint");
            cli->broker = value;
            break;
        case OPT_REQUEST_TIMEOUT:
            if (s_parse_ms (value, 1, INT_MAX, &number))
                return zjq_cli_usage_error (cli, "--request-timeout: '%s' is not a duration above zero",
                                            value);
            cli->request_timeout_ms = (int) number;
            break;
        case OPT_TIMEOUT:
            if (s_parse_ms (value, 0, INT_MAX, &number))
                return zjq_cli_usage_error (cli, "--timeout: '%s' is not a duration", value);
            cli->timeout_ms = number;
            break;
        case OPT_PRIORITY:
            if (zjq_parse_int (value, -1000, 1000, &number))
                return zjq_cli_usage_error (cli, "--priority: '%s' is not a number in -1000..1000",
                                            value);
            cli->priority = (int) number;
            break;
        case OPT_MAX_ATTEMPTS:
            if (zjq_parse_int (value, 1, 1000, &number))
                return zjq_cli_usage_error (cli, "--max-attempts: '%s' is not a number in 1..1000",
                                            value);
            cli->max_attempts = (int) number;
            break;
        case OPT_JOB_TIMEOUT:
            if (s_parse_ms (value, 1, INT64_MAX, &cli->job_timeout_ms))
                return zjq_cli_usage_error (cli, "--job-timeout: '%s' is not a duration above zero",
                                            value);
            break;
        case OPT_RESULT_TTL:
            if (s_parse_ms (value, 1, INT64_MAX, &cli->result_ttl_ms))
                return zjq_cli_usage_error (cli, "--result-ttl: '%s' is not a duration above zero",
                                            value);
            break;
        case OPT_KEY:
            if (!*value || strlen (value) > 256)
                return zjq_cli_usage_error (cli, "--key must be 1 to 256 bytes");
            cli->key = value;
            break;
        case OPT_FILE:
            cli->file = value;
            break;
        case OPT_CURVE_SECRET:
        case OPT_BROKER_KEY:
            if (!*value)
                return zjq_cli_usage_error (cli, "--%s needs a file name", option->name);
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
                return zjq_cli_usage_error (cli, "--queue: '%s' is not a queue name (%s)", value,
                                            ZJQ_CLI_QUEUE_HINT);
            cli->queue = value;
            break;
        case OPT_LIMIT:
            if (zjq_parse_int (value, 1, INT64_MAX, &cli->limit))
                return zjq_cli_usage_error (cli, "--limit: '%s' is not a number above zero", value);
            break;
        case OPT_WINDOW:
            if (zjq_parse_int (value, 1, 1000000, &number))
                return zjq_cli_usage_error (cli, "--window: '%s' is not a number in 1..1000000", value);
            cli->window = (int) number;
            break;
        default:
            break;
    }
    cli->given |= option->bit;
    return 0;
}


//  --------------------------------------------------------------------------
//  Parsing the command line

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
            return zjq_cli_usage_error (cli, "unknown command '%s'", argv [command_at]);
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
                return zjq_cli_usage_error (cli, "unknown option '%.*s'", (int) len + 2, arg);
            if (!(option->bit & allowed))
                return zjq_cli_usage_error (cli, "option --%s does not apply here", option->name);
            const char *value = NULL;
            if (option->value) {
                if (equals)
                    value = equals + 1;
                else
                if (index + 1 < argc)
                    value = argv [++index];
                else
                    return zjq_cli_usage_error (cli, "option --%s needs a value (%s)", option->name,
                                                option->value);
            }
            else
            if (equals)
                return zjq_cli_usage_error (cli, "option --%s takes no value", option->name);
            int rc = s_option_apply (cli, option, value);
            if (rc)
                return rc;
            continue;
        }
        if (!options_done && arg [0] == '-' && arg [1])
            return zjq_cli_usage_error (cli, "unknown option '%s'", arg);
        if (!cli->command)
            return zjq_cli_usage_error (cli, "unexpected argument '%s'", arg);
        if (cli->arg_count == ZJQ_CLI_MAX_POSITIONAL || cli->arg_count >= cli->command->max_args)
            return zjq_cli_usage_error (cli, "too many arguments");
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
