/*  zjq_cli_jobs.c: the zjq CLI's job commands: submit, batch, status,
    cancel, result. See zjq_cli.h.                                         */

#include "zjq_cli.h"
#include "zjq_json.h"
#include "zjq_util.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

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


//  --------------------------------------------------------------------------
//  Job outcomes (submit --wait, result)

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
        zjq_cli_keep_broker_message (outcome->cli);
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
        zjq_cli_json_str (&buf, &len, "id", job_id, strlen (job_id));
        zjq_json_append (&buf, &len, ",\"state\":\"%s\",\"attempt\":%d,",
                         zjq_state_name (outcome->state), outcome->attempt);
        zjq_cli_json_str (&buf, &len, "error", outcome->error,
                          outcome->error? strlen (outcome->error): 0);
        zjq_json_append (&buf, &len, ",");
        const char *data = outcome->data? outcome->data: "";
        zjq_cli_json_str (&buf, &len, "result", status == 0? data: NULL, outcome->size);
        zjq_json_append (&buf, &len, "}");
        int rc = zjq_cli_json_print (buf);
        return rc? rc: zjq_cli_exit_code (status, false);
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
        zjq_cli_error (cli, what, status);
        return zjq_cli_exit_code (status, false);
    }
    zjq_cli_error (cli, what, status);
    return zjq_cli_exit_code (status, false);
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
        zjq_cli_keep_broker_message (submit->outcome.cli);
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

int
zjq_cli_cmd_submit (cli_t *cli)
{
    const char *queue = cli->args [0];
    bool wait = cli->given & (OPT_WAIT | OPT_TIMEOUT);
    bool json = cli->given & OPT_JSON;
    char *payload = NULL;
    size_t size = 0;
    if (cli->arg_count < 2 || strcmp (cli->args [1], "-") == 0) {
        int rc = s_read_all (stdin, &payload, &size);
        if (rc) {
            zjq_cli_error (cli, "reading the payload from standard input", rc);
            return rc == ZJQ_ETOOBIG? CLI_EXIT_REJECTED: CLI_EXIT_OTHER;
        }
    }
    int exit_code = zjq_cli_connect (cli);
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
        zjq_cli_error (cli, "submit", rc);
        return zjq_cli_exit_code (rc, true);
    }
    rc = zjq_cli_run_until (cli, &submit.accepted, -1);
    if (rc == 0)
        rc = submit.status;
    if (rc != 0) {
        zjq_cli_error (cli, "submit", rc);
        exit_code = zjq_cli_exit_code (rc, false);
    }
    else
    if (!wait) {
        if (json) {
            char *buf = NULL;
            size_t len = 0;
            zjq_json_append (&buf, &len, "{");
            zjq_cli_json_str (&buf, &len, "id", submit.id, strlen (submit.id));
            zjq_json_append (&buf, &len, ",\"duplicate\":%s}", submit.duplicate? "true": "false");
            exit_code = zjq_cli_json_print (buf);
        }
        else
            puts (submit.id);
    }
    else {
        rc = zjq_cli_run_until (cli, &submit.outcome.done, deadline);
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

//  Print a job's state as JSON; reply (or NULL) is the JOB_STATUS, for the
//  attempt history
static void
s_print_info_json (const zjq_job_info_t *info, zjq_msg_t *reply)
{
    char *buf = NULL;
    size_t len = 0;
    bool ended = info->state == ZJQ_STATE_FAILED || info->state == ZJQ_STATE_CANCELLED;
    zjq_json_append (&buf, &len, "{");
    zjq_cli_json_str (&buf, &len, "id", info->id, strlen (info->id));
    zjq_json_append (&buf, &len, ",");
    zjq_cli_json_str (&buf, &len, "queue", info->queue, strlen (info->queue));
    zjq_json_append (&buf, &len,
                     ",\"state\":\"%s\",\"attempt\":%d,\"max_attempts\":%d,\"priority\":%d,",
                     zjq_state_name (info->state), info->attempt, info->max_attempts,
                     info->priority);
    const char *error = ended? info->error: NULL;
    zjq_cli_json_str (&buf, &len, "error", error, error? strlen (error): 0);
    zjq_json_append (&buf, &len, ",");
    const char *last_error = ended? NULL: info->error;
    zjq_cli_json_str (&buf, &len, "last_error", last_error, last_error? strlen (last_error): 0);
    if (info->progress >= 0)
        zjq_json_append (&buf, &len, ",\"progress\":%g,", info->progress);
    else
        zjq_json_append (&buf, &len, ",\"progress\":null,");
    zjq_cli_json_str (&buf, &len, "progress_message", info->progress_message,
                      info->progress_message? strlen (info->progress_message): 0);
    zjq_json_append (&buf, &len, ",");
    zjq_cli_json_str (&buf, &len, "worker", info->worker, info->worker? strlen (info->worker): 0);
    zjq_json_append (&buf, &len, ",\"created_ms\":%" PRId64, info->created_ms);
    zjq_cli_json_ms (&buf, &len, "started_ms", info->started_ms);
    zjq_cli_json_ms (&buf, &len, "finished_ms", info->finished_ms);
    zjq_cli_json_ms (&buf, &len, "expires_ms", info->expires_ms);
    zjq_json_append (&buf, &len, ",\"result_size\":%" PRId64, info->result_size);
    const msgpack_object *history = reply? zjq_msg_get (reply, "history"): NULL;
    if (history) {
        int64_t retries = 0;
        zjq_msg_get_int (reply, "retries", &retries);
        zjq_json_append (&buf, &len, ",\"retries\":%" PRId64 ",\"history\":", retries);
        zjq_json_append_msgpack (&buf, &len, history);
    }
    zjq_json_append (&buf, &len, "}");
    zjq_cli_json_print (buf);
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
    printf ("created:   %s\n", zjq_cli_iso_time (info->created_ms, time, sizeof (time)));
    if (info->started_ms)
        printf ("started:   %s\n", zjq_cli_iso_time (info->started_ms, time, sizeof (time)));
    if (info->finished_ms)
        printf ("finished:  %s\n", zjq_cli_iso_time (info->finished_ms, time, sizeof (time)));
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
        printf ("expires:   %s\n", zjq_cli_iso_time (info->expires_ms, time, sizeof (time)));
}

//  One failed attempt of a history (a msgpack map) on a line
static void
s_print_attempt (const msgpack_object *attempt)
{
    char text [512], worker [300];
    int64_t duration = zjq_cli_mp_int (attempt, "duration_ms");
    printf ("  attempt %" PRId64 ": %s", zjq_cli_mp_int (attempt, "attempt"),
            zjq_mp_text (zjq_mp_map_get (attempt, "error"), text, sizeof (text)));
    if (zjq_mp_map_get (attempt, "exit_code"))
        printf ("; exit status %" PRId64, zjq_cli_mp_int (attempt, "exit_code"));
    if (zjq_mp_map_get (attempt, "signal"))
        printf ("; signal %" PRId64, zjq_cli_mp_int (attempt, "signal"));
    if (duration >= 0)
        printf ("; %" PRId64 " ms", duration);
    if (zjq_mp_map_get (attempt, "worker"))
        printf ("; worker %s", zjq_mp_text (zjq_mp_map_get (attempt, "worker"), worker,
                                            sizeof (worker)));
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

static void
s_status_cb (zjq_client_t *client, int status, const zjq_job_info_t *info, void *arg)
{
    reply_t *reply = (reply_t *) arg;
    if (!zjq_cli_reply_answered (reply, status))
        return;
    if (reply->cli->given & OPT_JSON)
        s_print_info_json (info, zjq_client_reply (client));
    else
    if (reply->cli->command->run == zjq_cli_cmd_cancel)
        printf ("%s\n", zjq_state_name (info->state));
    else {
        s_print_info (info);
        s_print_history (zjq_client_reply (client));
    }
}

//  status and cancel: one request about a job, answered with its state
typedef int (s_job_request_fn) (zjq_client_t *client, const char *job_id,
                                zjq_status_cb *callback, void *arg);

static int
s_job_request (cli_t *cli, const char *name, s_job_request_fn *request)
{
    int exit_code = zjq_cli_connect (cli);
    if (exit_code)
        return exit_code;
    reply_t reply = { .cli = cli };
    char what [128];
    snprintf (what, sizeof (what), "%s %s", name, cli->args [0]);
    int rc = request (cli->client, cli->args [0], s_status_cb, &reply);
    return zjq_cli_one_request (cli, &reply, rc, what);
}

int
zjq_cli_cmd_status (cli_t *cli)
{
    return s_job_request (cli, "status", zjq_status);
}

int
zjq_cli_cmd_cancel (cli_t *cli)
{
    return s_job_request (cli, "cancel", zjq_cancel);
}


//  --------------------------------------------------------------------------
//  result

int
zjq_cli_cmd_result (cli_t *cli)
{
    int exit_code = zjq_cli_connect (cli);
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
        zjq_cli_error (cli, what, rc);
        exit_code = zjq_cli_exit_code (rc, true);
    }
    else {
        rc = zjq_cli_run_until (cli, &outcome.done, -1);
        if (rc != 0)
            outcome.status = rc;
        exit_code = s_outcome_report (cli, job_id, &outcome, false);
    }
    zjq_client_destroy (&cli->client);
    s_outcome_free (&outcome);
    return exit_code;
}

typedef struct {
    cli_t *cli;
    bool json;
    bool closing;               //  timed out: callbacks only free
    size_t inflight;
    size_t total, succeeded, failed, cancelled, rejected;
    bool unreachable;           //  a submit could not reach the broker
    //  The input and the loop
    FILE *in;
    zjq_submit_opts_t opts;
    size_t window;              //  jobs in flight at most
    char *line;                 //  getline's buffer
    size_t line_size;
    size_t line_no;
    bool eof;                   //  no more input (or a fatal error)
    bool timed_out;
    int error;                  //  a zjq code that ended the batch, or 0
    int exit_code;              //  of a submit the library refused, or 0
    int64_t start;              //  mono ms
    int64_t deadline;           //  mono ms, or -1
} batch_t;

typedef struct {
    batch_t *batch;
    size_t line;                //  1-based input line
    char *id;                   //  job id once accepted
} batch_job_t;


//  --------------------------------------------------------------------------
//  batch

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
        zjq_cli_json_str (&buf, &len, "id", job->id, job->id? strlen (job->id): 0);
        zjq_json_append (&buf, &len, ",\"state\":\"%s\",", state);
        bool ok = strcmp (state, "succeeded") == 0;
        zjq_cli_json_str (&buf, &len, "error", ok? NULL: text, ok? 0: size);
        zjq_json_append (&buf, &len, ",");
        zjq_cli_json_str (&buf, &len, "result", ok? text: NULL, ok? size: 0);
        zjq_json_append (&buf, &len, "}");
        zjq_cli_json_print (buf);
        return;
    }
    printf ("%zu\t%s\t%s\t", job->line, job->id? job->id: "-", state);
    zjq_cli_write_escaped (stdout, text, size);
    putchar ('\n');
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
        zjq_cli_keep_broker_message (batch->cli);
        char text [512];
        zjq_cli_error_text (batch->cli, status, text, sizeof (text));
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
            zjq_cli_keep_broker_message (batch->cli);
            char text [512];
            zjq_cli_error_text (batch->cli, status, text, sizeof (text));
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

//  Submit the next input line. Returns false at the end of the input or
//  on an error (batch->eof set).
static bool
s_batch_submit_line (batch_t *batch)
{
    cli_t *cli = batch->cli;
    ssize_t len = getline (&batch->line, &batch->line_size, batch->in);
    if (len < 0) {
        if (ferror (batch->in)) {
            fprintf (stderr, "zjq: batch: reading input: %s\n", strerror (errno));
            batch->error = ZJQ_ESYS;
        }
        batch->eof = true;
        return false;
    }
    char *line = batch->line;
    batch->line_no++;
    if (len > 0 && line [len - 1] == '\n')
        line [--len] = 0;
    if (len > 0 && line [len - 1] == '\r')
        line [--len] = 0;
    batch_job_t *job = (batch_job_t *) calloc (1, sizeof (batch_job_t));
    if (!job) {
        batch->error = ZJQ_ENOMEM;
        batch->eof = true;
        return false;
    }
    job->batch = batch;
    job->line = batch->line_no;
    int rc = zjq_submit (cli->client, cli->args [0], line, (size_t) len, &batch->opts,
                         s_batch_accepted, s_batch_done, job);
    if (rc != 0) {
        free (job);
        if (rc == ZJQ_EINVAL) {
            free (cli->broker_message);
            cli->broker_message = strdup (ZJQ_CLI_QUEUE_HINT);
        }
        zjq_cli_error (cli, "batch: submit", rc);
        batch->exit_code = zjq_cli_exit_code (rc, true);
        batch->eof = true;
        batch->error = rc;
        return false;
    }
    batch->inflight++;
    batch->total++;
    return true;
}

//  One round of the event loop, waiting only when the window is full or
//  the input is done. Returns false when the batch must end (a fatal
//  error, or time ran out).
static bool
s_batch_round (batch_t *batch)
{
    cli_t *cli = batch->cli;
    int rc = zjq_client_process (cli->client);
    fflush (stdout);
    if (rc < 0) {
        zjq_cli_error (cli, "batch", rc);
        batch->error = rc;
        return false;
    }
    int64_t left = batch->deadline >= 0? batch->deadline - zjq_mono_ms (): -1;
    if (batch->deadline >= 0 && left <= 0 && (batch->inflight || !batch->eof)) {
        batch->timed_out = true;
        return false;
    }
    if (batch->inflight == 0
    || (!batch->eof && !batch->unreachable && batch->inflight < batch->window))
        return true;
    int wait = zjq_client_timeout (cli->client);
    if (batch->deadline >= 0 && (wait < 0 || wait > left))
        wait = (int) left;
    struct pollfd item = { .fd = zjq_client_fd (cli->client), .events = POLLIN };
    if (wait != 0)
        poll (&item, 1, wait);
    return true;
}

//  The summary on stderr, and the exit code
static int
s_batch_report (batch_t *batch, size_t unfinished)
{
    double seconds = (double) (zjq_mono_ms () - batch->start) / 1000;
    fprintf (stderr, "%zu jobs: %zu succeeded, %zu failed, %zu cancelled, %zu rejected",
             batch->total, batch->succeeded, batch->failed, batch->cancelled, batch->rejected);
    if (unfinished)
        fprintf (stderr, ", %zu unfinished", unfinished);
    fprintf (stderr, " in %.2f s (%.0f jobs/s)\n", seconds,
             seconds > 0? (double) (batch->total - unfinished) / seconds: 0.0);
    if (batch->timed_out)
        fprintf (stderr, "zjq: batch: %s (%s)\n", zjq_strerror (ZJQ_ETIMEDOUT),
                 zjq_errname (ZJQ_ETIMEDOUT));
    if (batch->exit_code)
        return batch->exit_code;
    if (batch->unreachable)
        return CLI_EXIT_UNREACHABLE;
    if (batch->error)
        return CLI_EXIT_OTHER;
    if (batch->timed_out)
        return CLI_EXIT_TIMEDOUT;
    //  Nothing accepted at all (a refused key, a draining broker): say so
    if (batch->total && batch->rejected == batch->total)
        return CLI_EXIT_REJECTED;
    return batch->succeeded == batch->total? CLI_EXIT_OK: CLI_EXIT_FAILED;
}

int
zjq_cli_cmd_batch (cli_t *cli)
{
    batch_t batch = { .cli = cli, .json = cli->given & OPT_JSON, .in = stdin };
    if (cli->file && strcmp (cli->file, "-") != 0) {
        batch.in = fopen (cli->file, "rb");
        if (!batch.in) {
            fprintf (stderr, "zjq: batch: cannot open '%s': %s\n", cli->file, strerror (errno));
            return CLI_EXIT_USAGE;
        }
    }
    int exit_code = zjq_cli_connect (cli);
    if (exit_code) {
        if (batch.in != stdin)
            fclose (batch.in);
        return exit_code;
    }
    s_fill_submit_opts (cli, &batch.opts);
    batch.window = cli->window > 0? (size_t) cli->window: ZJQ_CLI_DEFAULT_WINDOW;
    batch.start = zjq_mono_ms ();
    batch.deadline = (cli->given & OPT_TIMEOUT)? batch.start + cli->timeout_ms: -1;
    while (true) {
        //  Fill the window; stop reading once the broker proved unreachable
        while (!batch.eof && !batch.unreachable && batch.inflight < batch.window
           &&  s_batch_submit_line (&batch))
            ;
        if (batch.inflight == 0 && (batch.eof || batch.unreachable))
            break;
        if (!s_batch_round (&batch))
            break;
    }
    size_t unfinished = batch.inflight;
    batch.closing = true;
    zjq_client_destroy (&cli->client);      //  frees the unfinished jobs
    fflush (stdout);
    free (batch.line);
    if (batch.in != stdin)
        fclose (batch.in);
    return s_batch_report (&batch, unfinished);
}
