/*  zjq_cli_ops.c: the zjq CLI's operations commands: stats, top, ping,
    reload, keygen, failed (dead letters), retry, pause/resume, drain.
    See zjq_cli.h.                                                         */

#include "zjq_cli.h"
#include "zjq_json.h"
#include "zjq_stats_view.h"
#include "zjq_top.h"
#include "zjq_util.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


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
    if (!zjq_cli_reply_answered (reply, status))
        return;
    if (reply->cli->given & OPT_JSON)
        puts (json);
    else {
        zjq_msg_t *msg = zjq_client_reply (client);
        s_print_stats (msg? zjq_msg_get (msg, "stats"): NULL);
    }
}

int
zjq_cli_cmd_stats (cli_t *cli)
{
    int exit_code = zjq_cli_connect (cli);
    if (exit_code)
        return exit_code;
    reply_t reply = { .cli = cli };
    return zjq_cli_one_request (cli, &reply, zjq_stats (cli->client, s_stats_cb, &reply), "stats");
}

typedef struct {
    cli_t *cli;
    zjq_top_t *top;
    bool done;                  //  the request in flight was answered
} top_state_t;


//  --------------------------------------------------------------------------
//  top

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
        zjq_cli_keep_broker_message (state->cli);
        char text [600];
        zjq_cli_error_text (state->cli, status, text, sizeof (text));
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

int
zjq_cli_cmd_top (cli_t *cli)
{
    int exit_code = zjq_cli_connect (cli);
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
        zjq_cli_error (cli, "top", error);
        return zjq_cli_exit_code (error, false);
    }
    return CLI_EXIT_OK;
}

typedef struct {
    reply_t reply;              //  must be first
    struct timespec start;
} ping_t;


//  --------------------------------------------------------------------------
//  ping

static void
s_ping_cb (zjq_client_t *client, int status, void *arg)
{
    ping_t *ping = (ping_t *) arg;
    if (!zjq_cli_reply_answered (&ping->reply, status))
        return;
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

int
zjq_cli_cmd_ping (cli_t *cli)
{
    int exit_code = zjq_cli_connect (cli);
    if (exit_code)
        return exit_code;
    ping_t ping = { .reply = { .cli = cli } };
    clock_gettime (CLOCK_MONOTONIC, &ping.start);
    return zjq_cli_one_request (cli, &ping.reply, zjq_ping (cli->client, s_ping_cb, &ping), "ping");
}


//  --------------------------------------------------------------------------
//  reload

static void
s_reload_cb (zjq_client_t *client, int status, void *arg)
{
    reply_t *reply = (reply_t *) arg;
    if (!zjq_cli_reply_answered (reply, status))
        return;
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

int
zjq_cli_cmd_reload (cli_t *cli)
{
    int exit_code = zjq_cli_connect (cli);
    if (exit_code)
        return exit_code;
    reply_t reply = { .cli = cli };
    int rc = zjq_reload (cli->client, s_reload_cb, &reply);
    return zjq_cli_one_request (cli, &reply, rc, "reload");
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

int
zjq_cli_cmd_keygen (cli_t *cli)
{
    const char *name = cli->args [0];
    if (!*name)
        return zjq_cli_usage_error (cli, "NAME must not be empty");
    if (cli->queues && !s_queue_list_valid (cli->queues))
        return zjq_cli_usage_error (cli, "--queues: '%s' is not '*' or queue names separated by "
                                    "commas (" ZJQ_CLI_QUEUE_HINT ")", cli->queues);
    char public_path [4096], secret_path [4096];
    if (snprintf (public_path, sizeof (public_path), "%s.key", name) >= (int) sizeof (public_path)
    ||  snprintf (secret_path, sizeof (secret_path), "%s.key_secret", name)
        >= (int) sizeof (secret_path))
        return zjq_cli_usage_error (cli, "NAME is too long");
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


//  --------------------------------------------------------------------------
//  Operations: failed, retry, pause, resume, drain (admin)

static void
s_op_cb (zjq_client_t *client, int status, const char *json, void *arg)
{
    op_t *op = (op_t *) arg;
    op->done = true;
    op->status = status;
    if (status != 0)
        zjq_cli_keep_broker_message (op->cli);
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
        rc = zjq_cli_run_until (cli, &op->done, -1);
    else {
        zjq_cli_error (cli, what, rc);
        return zjq_cli_exit_code (rc, true);
    }
    if (rc == 0)
        rc = op->status;
    if (rc != 0)
        zjq_cli_error (cli, what, rc);
    return zjq_cli_exit_code (rc, false);
}

//  failed: one page of dead letters
typedef struct {
    char *after;                //  cursor for the next page, or NULL at the end
    int64_t after_ms;
    int64_t listed;             //  jobs printed so far
    int64_t total;              //  dead letters the broker holds
    char *json;                 //  --json: the jobs so far, "[...," style
    size_t json_len;
    bool header;                //  the table header is printed (on the first page)
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
    //  The header goes with the first reply, so an error prints no table
    if (!(cli->given & OPT_JSON) && !failed->header) {
        printf ("%-22s %-20s %8s  %-24s  %s\n", "ID", "QUEUE", "ATTEMPTS", "FAILED AT",
                "LAST ERROR");
        failed->header = true;
    }
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
                zjq_mp_text (zjq_mp_map_get (job, "id"), id, sizeof (id)),
                zjq_mp_text (zjq_mp_map_get (job, "queue"), queue, sizeof (queue)),
                zjq_cli_mp_int (job, "attempts"),
                zjq_cli_iso_time (zjq_cli_mp_int (job, "failed_ms"), time, sizeof (time)),
                zjq_mp_text (zjq_mp_map_get (job, "error"), error, sizeof (error)));
    }
    if (cli->limit && failed->listed >= cli->limit) {
        free (failed->after);
        failed->after = NULL;
    }
}

int
zjq_cli_cmd_failed (cli_t *cli)
{
    const char *queue = cli->arg_count? cli->args [0]: NULL;
    if (queue && !zjq_proto_queue_name_valid (queue))
        return zjq_cli_usage_error (cli, "'%s' is not a queue name (%s)", queue,
                                    ZJQ_CLI_QUEUE_HINT);
    int exit_code = zjq_cli_connect (cli);
    if (exit_code)
        return exit_code;
    failed_t failed = { .after = NULL };
    op_t op = { .cli = cli, .print = s_failed_page, .data = &failed };
    bool json = cli->given & OPT_JSON;
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
        exit_code = zjq_cli_json_print (buf);
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

int
zjq_cli_cmd_retry (cli_t *cli)
{
    if ((cli->arg_count == 1) == (cli->queue != NULL))
        return zjq_cli_usage_error (cli, "give a JOB_ID or --queue QUEUE (one of them)");
    int exit_code = zjq_cli_connect (cli);
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
int
zjq_cli_cmd_pause (cli_t *cli)
{
    const char *queue = cli->args [0];
    if (!zjq_proto_queue_name_valid (queue))
        return zjq_cli_usage_error (cli, "'%s' is not a queue name (%s)", queue,
                                    ZJQ_CLI_QUEUE_HINT);
    int exit_code = zjq_cli_connect (cli);
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

int
zjq_cli_cmd_drain (cli_t *cli)
{
    bool off = cli->given & OPT_OFF;
    bool wait = cli->given & (OPT_WAIT | OPT_TIMEOUT);
    if (off && wait)
        return zjq_cli_usage_error (cli, "--off and --wait do not go together");
    int exit_code = zjq_cli_connect (cli);
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
            zjq_cli_error (cli, "drain --wait", ZJQ_ETIMEDOUT);
            exit_code = zjq_cli_exit_code (ZJQ_ETIMEDOUT, false);
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
