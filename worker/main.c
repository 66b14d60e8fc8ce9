/*  main.c: zjq-worker, serves queues with a built-in handler or a command.
    Parses options, builds a worker (zjq_worker.h) and runs it.            */

#include "zjq_worker.h"
#include "zjq_handlers.h"
#include "zjq_log.h"
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
"\n"
"  -b, --broker ENDPOINT   broker to connect to (default $ZJQ_BROKER, else %s)\n"
"  -q, --queue NAME        queue to serve (1-128 of A-Za-z0-9_.:-); repeat for\n"
"                          more, up to %d\n"
"  -c, --concurrency N     jobs run at once, 1..1000 (default 1): N handler\n"
"                          threads in this one process; with --exec, up to N\n"
"                          child processes at once\n"
"      --inline            run the handler on the thread that talks to the\n"
"                          broker, one job at a time, instead of on handler\n"
"                          threads: the least overhead per job, for --builtin\n"
"                          echo or sha256 jobs of microseconds to a few ms\n"
"                          (nothing is read or sent while one runs, and it\n"
"                          cannot be cancelled). Not with --exec. Use a large\n"
"                          --prefetch with it (e.g. 256) for tiny jobs\n"
"  -p, --prefetch N        jobs taken on beyond those running, 0..1000\n"
"                          (default: N of --concurrency): they wait here, so a\n"
"                          slot that finishes starts its next job without a\n"
"                          round trip to the broker. The broker sees capacity\n"
"                          concurrency + prefetch. 0 for long jobs that other\n"
"                          workers might start sooner\n"
"      --builtin NAME      echo:   the result is the payload\n"
"                          sleep:  payload = milliseconds (0..86400000) to sleep;\n"
"                                  the result is that number\n"
"                          sha256: payload = N:DATA; hashes DATA, then the digest\n"
"                                  N-1 more times (N 1..1000000000); the result\n"
"                                  is the last digest in hex\n"
"  -e, --exec 'COMMAND'    run /bin/sh -c COMMAND per job, in its own process\n"
"                          group: payload on stdin, stdout is the result, exit\n"
"                          status 0 means success (otherwise the error names\n"
"                          the status and the end of stderr). Environment:\n"
"                          ZJQ_JOB_ID, ZJQ_QUEUE, ZJQ_ATTEMPT. On cancel or\n"
"                          timeout the process group is killed (SIGKILL), and\n"
"                          so is whatever is left in it when the command exits\n"
"      --heartbeat MS      heartbeat interval, 100..60000 (default 1000); the\n"
"                          broker is presumed gone after 3 silent intervals\n"
"  -g, --grace SECONDS     on SIGTERM/SIGINT, time running jobs get to finish\n"
"                          (default 30; also 250ms, 5m); a second signal aborts\n"
"                          them at once, and the broker requeues them\n"
"  -m, --max-result BYTES  largest result (default 16M; k, m, g suffixes)\n"
"      --curve-secret FILE talk CURVE with this secret certificate (zjq keygen\n"
"                          NAME writes NAME.key_secret; default $ZJQ_CURVE_SECRET)\n"
"      --broker-key FILE   the broker's public certificate (default\n"
"                          $ZJQ_BROKER_KEY); both or neither\n"
"      --log-format FORMAT text (time level=.. event=.. key=value, default) or\n"
"                          json (one JSON object per line)\n"
"  -v, --verbose           log every job's start and end\n"
"  -h, --help              show this help\n"
"      --version           show the version\n"
"\n"
"Exit status: 0 after a clean stop, 1 if the worker could not start, 2 on a\n"
"usage error (including a key file that cannot be used).\n",
             s_DEFAULT_BROKER, s_MAX_QUEUES);
}

static void
s_usage_error (const char *format, const char *value)
{
    fprintf (stderr, "zjq-worker: ");
    fprintf (stderr, format, value);
    fprintf (stderr, "\nTry 'zjq-worker --help' for more information.\n");
    exit (2);
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

    const char *broker = getenv ("ZJQ_BROKER");
    if (!broker || !*broker)
        broker = s_DEFAULT_BROKER;
    const char *queues [s_MAX_QUEUES];
    int queue_count = 0;
    const char *builtin = NULL;
    const char *command = NULL;
    int64_t concurrency = 1;
    int64_t prefetch = -1;              //  -1: equal to concurrency
    int64_t heartbeat = 1000;
    int64_t grace_ms = 30000;
    uint64_t max_result = 16 * 1024 * 1024;
    bool verbose = false;
    const char *curve_secret = getenv ("ZJQ_CURVE_SECRET");
    const char *broker_key = getenv ("ZJQ_BROKER_KEY");

    enum { OPT_BUILTIN = 256, OPT_HEARTBEAT, OPT_VERSION, OPT_CURVE_SECRET, OPT_BROKER_KEY,
           OPT_LOG_FORMAT, OPT_INLINE };
    bool inline_handlers = false;
    bool concurrency_given = false;
    static const struct option options [] = {
        { "broker",      required_argument, NULL, 'b' },
        { "queue",       required_argument, NULL, 'q' },
        { "concurrency", required_argument, NULL, 'c' },
        { "prefetch",    required_argument, NULL, 'p' },
        { "inline",      no_argument,       NULL, OPT_INLINE },
        { "builtin",     required_argument, NULL, OPT_BUILTIN },
        { "exec",        required_argument, NULL, 'e' },
        { "heartbeat",   required_argument, NULL, OPT_HEARTBEAT },
        { "grace",       required_argument, NULL, 'g' },
        { "max-result",  required_argument, NULL, 'm' },
        { "curve-secret", required_argument, NULL, OPT_CURVE_SECRET },
        { "broker-key",  required_argument, NULL, OPT_BROKER_KEY },
        { "log-format",  required_argument, NULL, OPT_LOG_FORMAT },
        { "verbose",     no_argument,       NULL, 'v' },
        { "help",        no_argument,       NULL, 'h' },
        { "version",     no_argument,       NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };
    opterr = 0;
    int opt;
    while ((opt = getopt_long (argc, argv, ":b:q:c:p:e:g:m:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'b':
                broker = optarg;
                break;
            case 'q':
                if (queue_count == s_MAX_QUEUES)
                    s_usage_error ("too many queues (at most 64): %s", optarg);
                queues [queue_count++] = optarg;
                break;
            case 'c':
                if (zjq_parse_int (optarg, 1, 1000, &concurrency) != 0)
                    s_usage_error ("--concurrency must be a whole number from 1 to 1000, "
                                   "not '%s'", optarg);
                concurrency_given = true;
                break;
            case OPT_INLINE:
                inline_handlers = true;
                break;
            case 'p':
                if (zjq_parse_int (optarg, 0, 1000, &prefetch) != 0)
                    s_usage_error ("--prefetch must be a whole number from 0 to 1000, "
                                   "not '%s'", optarg);
                break;
            case OPT_BUILTIN:
                if (builtin || command)
                    s_usage_error ("give one handler: --builtin or --exec, once (%s)", optarg);
                builtin = optarg;
                break;
            case 'e':
                if (builtin || command)
                    s_usage_error ("give one handler: --builtin or --exec, once (%s)", optarg);
                command = optarg;
                break;
            case OPT_HEARTBEAT:
                if (zjq_parse_int (optarg, 100, 60000, &heartbeat) != 0)
                    s_usage_error ("--heartbeat must be milliseconds from 100 to 60000, "
                                   "not '%s'", optarg);
                break;
            case 'g':
                if (zjq_parse_duration (optarg, &grace_ms) != 0 || grace_ms > INT_MAX)
                    s_usage_error ("--grace must be a duration such as 30, 0.5 or 250ms, "
                                   "not '%s'", optarg);
                break;
            case 'm':
                if (zjq_parse_size (optarg, &max_result) != 0 || max_result > SIZE_MAX)
                    s_usage_error ("--max-result must be a size such as 1048576, 512k or 16M, "
                                   "not '%s'", optarg);
                break;
            case OPT_CURVE_SECRET:
                curve_secret = optarg;
                break;
            case OPT_BROKER_KEY:
                broker_key = optarg;
                break;
            case OPT_LOG_FORMAT: {
                zjq_log_format_t format;
                if (zjq_log_format_parse (optarg, &format) != 0)
                    s_usage_error ("--log-format must be text or json, not '%s'", optarg);
                zjq_log_set_format (format);
                break;
            }
            case 'v':
                verbose = true;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case OPT_VERSION:
                printf ("zjq-worker %s\n", zjq_version ());
                return 0;
            case ':':
                s_usage_error ("option '%s' needs a value", argv [optind - 1]);
                break;
            default:
                s_usage_error ("unknown option '%s'", argv [optind - 1]);
        }
    }
    if (optind < argc)
        s_usage_error ("unexpected argument '%s'", argv [optind]);
    if (queue_count == 0)
        s_usage_error ("%s", "give at least one --queue");
    if (!builtin && !command)
        s_usage_error ("%s", "give a handler: --builtin echo|sleep|sha256 or --exec 'COMMAND'");
    if (command && !*command)
        s_usage_error ("%s", "--exec needs a command");
    if (inline_handlers && command)
        s_usage_error ("%s", "--inline is for built-in handlers: an --exec job waits for its "
                       "process, which would stop the worker talking to the broker");
    if (inline_handlers && concurrency_given && concurrency != 1)
        s_usage_error ("%s", "--inline runs one job at a time: leave out --concurrency");
    if (curve_secret && !*curve_secret)
        curve_secret = NULL;
    if (broker_key && !*broker_key)
        broker_key = NULL;
    if (!curve_secret != !broker_key)
        s_usage_error ("%s", "CURVE needs both --curve-secret (or $ZJQ_CURVE_SECRET) and "
                       "--broker-key (or $ZJQ_BROKER_KEY)");

    zjq_handlers_t *handlers = builtin ? zjq_handlers_new_builtin (builtin)
                                       : zjq_handlers_new_exec (command, (size_t) max_result);
    if (!handlers) {
        if (builtin)
            s_usage_error ("unknown built-in handler '%s' (echo, sleep, sha256)", builtin);
        fprintf (stderr, "zjq-worker: cannot set up the handler\n");
        return 1;
    }
    zjq_handlers_set_verbose (handlers, verbose);

    zjq_worker_t *worker = zjq_worker_new (broker);
    if (!worker)
        s_usage_error ("invalid broker endpoint '%s' (e.g. tcp://127.0.0.1:5555)", broker);
    if (curve_secret) {
        char error [600];
        if (zjq_worker_set_curve (worker, curve_secret, broker_key, error, sizeof error) != 0) {
            fprintf (stderr, "zjq-worker: %s\n", error);
            zjq_worker_destroy (&worker);
            zjq_handlers_destroy (&handlers);
            return 2;
        }
    }
    for (int i = 0; i < queue_count; i++)
        if (zjq_worker_handle (worker, queues [i], zjq_handlers_run, handlers) != 0)
            s_usage_error ("invalid or repeated queue name '%s' (1-128 of A-Za-z0-9_.:-)",
                           queues [i]);
    int rc = zjq_worker_set_concurrency (worker, (int) concurrency);
    if (rc == 0)
        rc = zjq_worker_set_inline (worker, inline_handlers);
    if (rc == 0 && prefetch >= 0)
        rc = zjq_worker_set_prefetch (worker, (int) prefetch);
    if (rc == 0)
        rc = zjq_worker_set_heartbeat (worker, (int) heartbeat);
    if (rc == 0)
        rc = zjq_worker_set_grace (worker, (int) grace_ms);
    if (rc == 0)
        rc = zjq_worker_set_max_result (worker, (size_t) max_result);
    if (rc == 0) {
        zjq_log_info ("started", "version=%s worker=%s queues=%d handler=%s inline=%s "
                      "concurrency=%d prefetch=%d curve=%s", zjq_version (),
                      zjq_worker_id (worker), queue_count, zjq_handlers_name (handlers),
                      inline_handlers ? "on" : "off", (int) concurrency,
                      (int) (prefetch < 0 ? concurrency : prefetch),
                      curve_secret ? "on" : "off");
        rc = zjq_worker_run (worker);
    }
    if (rc != 0)
        fprintf (stderr, "zjq-worker: %s\n", zjq_strerror (rc));
    zjq_worker_destroy (&worker);
    zjq_handlers_destroy (&handlers);
    return rc == 0 ? 0 : 1;
}
