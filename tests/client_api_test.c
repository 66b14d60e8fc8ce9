/*  client_api_test.c: drives the zjq client library from the caller's own
    poll () loop (zjq_client_fd, zjq_client_timeout, zjq_client_process),
    against a live broker with an echo worker on queue "api".

    Usage: client_api_test ENDPOINT DEAD_ENDPOINT
    Run by tests/test_client_api.py. Prints "ok" and exits 0 on success;
    prints what went wrong and exits 1 otherwise.                          */

#include "zjq.h"
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOBS 200

static int s_failures = 0;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf (stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf (stderr, __VA_ARGS__);                                  \
            fprintf (stderr, "\n");                                         \
            s_failures++;                                                   \
        }                                                                   \
    } while (0)

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  The caller's event loop: poll the client's fd with its timeout and call
//  process until *counter reaches target or timeout_ms passes. Returns 0,
//  or -1 on time out. The poll timeout is never shortened artificially, so
//  a client that does not drain its edge-triggered fd hangs here (and the
//  test fails by time out) instead of being rescued by polling.
static int
s_loop_until (zjq_client_t *client, const int *counter, int target, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    int fd = zjq_client_fd (client);
    CHECK (fd >= 0, "zjq_client_fd returned %d", fd);
    if (fd < 0)
        return -1;
    while (true) {
        int rc = zjq_client_process (client);
        CHECK (rc >= 0, "zjq_client_process returned %d (%s)", rc, zjq_strerror (rc));
        if (rc < 0)
            return -1;
        if (*counter >= target)
            return 0;
        int64_t left = deadline - s_now_ms ();
        if (left <= 0) {
            fprintf (stderr, "loop timed out: %d of %d callbacks, %d pending\n",
                     *counter, target, zjq_client_pending (client));
            return -1;
        }
        int wait_ms = zjq_client_timeout (client);
        CHECK (wait_ms >= -1, "zjq_client_timeout returned %d", wait_ms);
        if (wait_ms < 0 || wait_ms > left)
            wait_ms = (int) left;
        struct pollfd item = { .fd = fd, .events = POLLIN };
        poll (&item, 1, wait_ms);
    }
}

static bool
s_streq (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

// --- callbacks ---------------------------------------------------------------

typedef struct {
    int index;
    char payload [32];
    char job_id [64];
    int accepted_calls;
    int done_calls;
    int done_status;
    bool result_ok;
} s_job_t;

static int s_accepted = 0;
static int s_done = 0;

static void
s_on_accepted (zjq_client_t *client, int status, const char *job_id, void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    job->accepted_calls++;
    CHECK (status == 0, "job %d not accepted: %s", job->index, zjq_strerror (status));
    CHECK (job_id && strlen (job_id) < sizeof (job->job_id), "job %d: bad id", job->index);
    if (status == 0 && job_id)
        snprintf (job->job_id, sizeof (job->job_id), "%s", job_id);
    s_accepted++;
}

static void
s_on_done (zjq_client_t *client, int status, const zjq_result_t *result, void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    job->done_calls++;
    job->done_status = status;
    CHECK (status == 0, "job %d done with %s", job->index, zjq_strerror (status));
    if (status == 0) {
        CHECK (result != NULL, "job %d: NULL result", job->index);
        if (result) {
            CHECK (result->state == ZJQ_STATE_SUCCEEDED, "job %d state %d", job->index, result->state);
            CHECK (result->attempt == 1, "job %d attempt %d", job->index, result->attempt);
            CHECK (result->id && s_streq (result->id, job->job_id),
                   "job %d: result id %s, accepted id %s", job->index,
                   result->id ? result->id : "(null)", job->job_id);
            job->result_ok = result->size == strlen (job->payload)
                          && memcmp (result->data, job->payload, result->size) == 0;
            CHECK (job->result_ok, "job %d: result %.*s, expected %s", job->index,
                   (int) result->size, (const char *) result->data, job->payload);
        }
    }
    s_done++;
}

static int s_status_calls = 0;
static int s_last_status = 1;
static zjq_job_info_t s_last_info;
static char s_last_info_id [64];

static void
s_on_status (zjq_client_t *client, int status, const zjq_job_info_t *info, void *arg)
{
    s_status_calls++;
    s_last_status = status;
    memset (&s_last_info, 0, sizeof (s_last_info));
    s_last_info_id [0] = 0;
    if (status == 0) {
        CHECK (info != NULL, "status 0 with NULL info");
        if (info) {
            s_last_info = *info;
            snprintf (s_last_info_id, sizeof (s_last_info_id), "%s", info->id ? info->id : "");
            s_last_info.id = s_last_info_id;
            s_last_info.queue = NULL;       //  only valid during the call
            s_last_info.error = NULL;
            s_last_info.worker = NULL;
            s_last_info.progress_message = NULL;
        }
    }
    else
        CHECK (info == NULL, "status %d with non-NULL info", status);
}

static int s_stats_calls = 0;
static void
s_on_stats (zjq_client_t *client, int status, const char *json, void *arg)
{
    s_stats_calls++;
    CHECK (status == 0, "stats failed: %s", zjq_strerror (status));
    CHECK (json && strstr (json, "\"broker\"") && strstr (json, "\"queues\"")
           && strstr (json, "\"workers\""), "stats JSON: %s", json ? json : "(null)");
}

static int s_ping_calls = 0;
static int s_ping_status = 1;
static void
s_on_ping (zjq_client_t *client, int status, void *arg)
{
    s_ping_calls++;
    s_ping_status = status;
}

static int s_result_calls = 0;
static int s_result_status = 1;
static void
s_on_result (zjq_client_t *client, int status, const zjq_result_t *result, void *arg)
{
    s_result_calls++;
    s_result_status = status;
}

static int s_submit_calls = 0;
static int s_submit_status = 1;
static char s_submit_id [64];
static void
s_on_submit (zjq_client_t *client, int status, const char *job_id, void *arg)
{
    s_submit_calls++;
    s_submit_status = status;
    snprintf (s_submit_id, sizeof (s_submit_id), "%s", job_id ? job_id : "");
}

// --- options that grow (zjq_client.h) -----------------------------------------

//  zjq_submit_opts_t as an older header might have declared it, before
//  result_ttl_ms and key were added
typedef struct {
    size_t size;
    int priority;
    int max_attempts;
    int64_t job_timeout_ms;
} s_old_submit_opts_t;

//  ... and as a newer one might, with an option this library does not know
typedef struct {
    zjq_submit_opts_t known;
    int64_t future_option;
} s_new_submit_opts_t;

//  Submit to the queue without workers with opts; returns the job id in
//  s_submit_id, or the call's code.
static int
s_submit_idle (zjq_client_t *client, const void *opts)
{
    int calls = s_submit_calls;
    int rc = zjq_submit (client, "api-nobody", "x", 1, (const zjq_submit_opts_t *) opts,
                         s_on_submit, NULL, NULL);
    if (rc != 0)
        return rc;
    s_loop_until (client, &s_submit_calls, calls + 1, 30000);
    return s_submit_status;
}

//  The job just submitted: its status, then cancel it
static void
s_status_and_cancel (zjq_client_t *client)
{
    int calls = s_status_calls;
    CHECK (zjq_status (client, s_submit_id, s_on_status, NULL) == 0, "zjq_status");
    s_loop_until (client, &s_status_calls, calls + 1, 30000);
    zjq_job_info_t info = s_last_info;
    CHECK (zjq_cancel (client, s_submit_id, s_on_status, NULL) == 0, "zjq_cancel");
    s_loop_until (client, &s_status_calls, calls + 2, 30000);
    s_last_info = info;
}

static void
s_test_options_abi (zjq_client_t *client, const char *endpoint)
{
    //  An older caller: the library reads what its size covers, and takes
    //  the defaults for the rest
    s_old_submit_opts_t old = { sizeof (old), 7, 3, 60000 };
    CHECK (s_submit_idle (client, &old) == 0, "older options refused: %s",
           zjq_strerror (s_submit_status));
    s_status_and_cancel (client);
    CHECK (s_last_info.priority == 7 && s_last_info.max_attempts == 3,
           "older options: priority %d, max_attempts %d", s_last_info.priority,
           s_last_info.max_attempts);

    //  The initialisers set the size as compiled
    zjq_submit_opts_t fixed = ZJQ_SUBMIT_OPTS_INIT;
    CHECK (fixed.size == sizeof (zjq_submit_opts_t) && fixed.priority == 0 && !fixed.key,
           "ZJQ_SUBMIT_OPTS_INIT: size %zu", fixed.size);
    zjq_submit_opts_t opts;
    memset (&opts, 0xff, sizeof (opts));
    zjq_submit_opts_init (&opts);
    CHECK (opts.size == sizeof (opts) && opts.priority == 0 && opts.result_ttl_ms == 0
           && !opts.key, "zjq_submit_opts_init: size %zu", opts.size);
    opts.priority = -5;
    CHECK (s_submit_idle (client, &opts) == 0, "options refused: %s",
           zjq_strerror (s_submit_status));
    s_status_and_cancel (client);
    CHECK (s_last_info.priority == -5, "priority %d", s_last_info.priority);

    //  A newer caller that leaves the newer option at its default works;
    //  one that sets it is refused
    s_new_submit_opts_t newer;
    CHECK (zjq_submit_opts_init_sized (&newer.known, sizeof (newer)) == 0, "init_sized");
    CHECK (newer.known.size == sizeof (newer) && newer.future_option == 0, "init_sized zeroes");
    CHECK (s_submit_idle (client, &newer) == 0, "newer options with defaults refused: %s",
           zjq_strerror (s_submit_status));
    s_status_and_cancel (client);
    newer.future_option = 1;
    int calls = s_submit_calls;
    CHECK (zjq_submit (client, "api-nobody", "x", 1, &newer.known, s_on_submit, NULL, NULL)
           == ZJQ_EVERSION, "an option this library does not know was accepted");

    //  Sizes it cannot read: not initialised (0), too small, not aligned
    size_t bad_sizes [] = { 0, 4, 13 };
    for (size_t index = 0; index < sizeof (bad_sizes) / sizeof (bad_sizes [0]); index++) {
        zjq_submit_opts_init (&opts);
        opts.size = bad_sizes [index];
        CHECK (zjq_submit (client, "api-nobody", "x", 1, &opts, s_on_submit, NULL, NULL)
               == ZJQ_EVERSION, "submit options of size %zu accepted", bad_sizes [index]);
        CHECK (zjq_submit_opts_init_sized (&opts, bad_sizes [index]) == ZJQ_EVERSION,
               "init_sized %zu", bad_sizes [index]);
    }
    zjq_client_process (client);
    CHECK (s_submit_calls == calls, "callback of a refused submit was called");
    CHECK (zjq_submit_opts_init_sized (NULL, sizeof (opts)) == ZJQ_EINVAL, "init_sized NULL");

    //  Client options: the same rules
    zjq_client_opts_t client_opts;
    memset (&client_opts, 0, sizeof (client_opts));
    zjq_client_t *other = NULL;
    char error [256] = "";
    CHECK (zjq_client_new_ex (&other, endpoint, &client_opts, error, sizeof (error))
           == ZJQ_EVERSION && !other && strstr (error, "zjq_client_opts_init"),
           "uninitialised client options: %s", error);
    struct { size_t size; } old_client_opts = { sizeof (old_client_opts) };
    CHECK (zjq_client_new_ex (&other, endpoint, (const zjq_client_opts_t *) &old_client_opts,
                              error, sizeof (error)) == 0 && other,
           "older client options refused: %s", error);
    zjq_client_destroy (&other);
    zjq_client_opts_t client_fixed = ZJQ_CLIENT_OPTS_INIT;
    CHECK (zjq_client_new_ex (&other, endpoint, &client_fixed, error, sizeof (error)) == 0,
           "ZJQ_CLIENT_OPTS_INIT refused: %s", error);
    zjq_client_destroy (&other);
}

int
main (int argc, char *argv [])
{
    if (argc != 3) {
        fprintf (stderr, "usage: client_api_test ENDPOINT DEAD_ENDPOINT\n");
        return 2;
    }
    const char *endpoint = argv [1];
    const char *dead_endpoint = argv [2];

    CHECK (strcmp (zjq_strerror (ZJQ_EQUEUEFULL), "queue full") == 0, "strerror");
    CHECK (zjq_strerror (12345) != NULL, "strerror of unknown code");

    zjq_client_t *client = zjq_client_new (endpoint);
    CHECK (client != NULL, "zjq_client_new (%s)", endpoint);
    if (!client)
        return 1;
    zjq_client_t *invalid = zjq_client_new ("not an endpoint");
    CHECK (invalid == NULL, "bad endpoint accepted");
    zjq_client_destroy (&invalid);

    //  Ping
    CHECK (zjq_ping (client, s_on_ping, NULL) == 0, "zjq_ping");
    s_loop_until (client, &s_ping_calls, 1, 30000);
    CHECK (s_ping_calls == 1 && s_ping_status == 0, "ping: %d calls, status %d",
           s_ping_calls, s_ping_status);

    //  200 jobs with on_done callbacks, all in flight at once
    static s_job_t jobs [JOBS];
    for (int index = 0; index < JOBS; index++) {
        jobs [index].index = index;
        snprintf (jobs [index].payload, sizeof (jobs [index].payload), "payload-%d", index);
        zjq_submit_opts_t opts;
        zjq_submit_opts_init (&opts);
        opts.priority = index % 3;
        int rc = zjq_submit (client, "api", jobs [index].payload, strlen (jobs [index].payload),
                             &opts, s_on_accepted, s_on_done, &jobs [index]);
        CHECK (rc == 0, "zjq_submit %d: %s", index, zjq_strerror (rc));
    }
    s_loop_until (client, &s_done, JOBS, 300000);
    int results_ok = 0;
    for (int index = 0; index < JOBS; index++) {
        CHECK (jobs [index].accepted_calls == 1, "job %d: on_accepted called %d times",
               index, jobs [index].accepted_calls);
        CHECK (jobs [index].done_calls == 1, "job %d: on_done called %d times",
               index, jobs [index].done_calls);
        results_ok += jobs [index].result_ok;
    }
    CHECK (results_ok == JOBS, "%d of %d results correct", results_ok, JOBS);
    for (int index = 0; index < JOBS; index++)
        for (int other = index + 1; other < JOBS; other++)
            CHECK (strcmp (jobs [index].job_id, jobs [other].job_id) != 0,
                   "duplicate id %s", jobs [index].job_id);

    //  Status of a finished job
    CHECK (zjq_status (client, jobs [0].job_id, s_on_status, NULL) == 0, "zjq_status");
    s_loop_until (client, &s_status_calls, 1, 30000);
    CHECK (s_last_status == 0, "status: %s", zjq_strerror (s_last_status));
    CHECK (s_streq (s_last_info.id, jobs [0].job_id), "status id %s", s_last_info.id);
    CHECK (s_last_info.state == ZJQ_STATE_SUCCEEDED, "status state %d", s_last_info.state);
    CHECK (s_last_info.attempt == 1, "status attempt %d", s_last_info.attempt);
    CHECK (s_last_info.result_size == (int64_t) strlen (jobs [0].payload), "result_size %lld",
           (long long) s_last_info.result_size);

    //  Status of an id never issued, and of a bad id
    CHECK (zjq_status (client, "1-1", s_on_status, NULL) == 0, "zjq_status 1-1");
    s_loop_until (client, &s_status_calls, 2, 30000);
    CHECK (s_last_status == ZJQ_ENOTFOUND, "status 1-1: %s", zjq_strerror (s_last_status));

    //  Stats
    CHECK (zjq_stats (client, s_on_stats, NULL) == 0, "zjq_stats");
    s_loop_until (client, &s_stats_calls, 1, 30000);
    CHECK (s_stats_calls == 1, "stats callback calls %d", s_stats_calls);

    //  A job on a queue without workers: not ready, then cancelled
    CHECK (zjq_submit (client, "api-nobody", "x", 1, NULL, s_on_submit, NULL, NULL) == 0,
           "zjq_submit nobody");
    s_loop_until (client, &s_submit_calls, 1, 30000);
    CHECK (s_submit_status == 0 && s_submit_id [0], "submit nobody: %s",
           zjq_strerror (s_submit_status));
    CHECK (zjq_result (client, s_submit_id, 0, s_on_result, NULL) == 0, "zjq_result");
    s_loop_until (client, &s_result_calls, 1, 30000);
    CHECK (s_result_status == ZJQ_ENOTREADY, "result of queued job: %s",
           zjq_strerror (s_result_status));
    CHECK (zjq_cancel (client, s_submit_id, s_on_status, NULL) == 0, "zjq_cancel");
    s_loop_until (client, &s_status_calls, 3, 30000);
    CHECK (s_last_status == 0 && s_last_info.state == ZJQ_STATE_CANCELLED,
           "cancel: status %s, state %d", zjq_strerror (s_last_status), s_last_info.state);
    CHECK (zjq_cancel (client, s_submit_id, s_on_status, NULL) == 0, "zjq_cancel again");
    s_loop_until (client, &s_status_calls, 4, 30000);
    CHECK (s_last_status == ZJQ_ESTATE, "second cancel: %s", zjq_strerror (s_last_status));
    CHECK (zjq_result (client, s_submit_id, 0, s_on_result, NULL) == 0, "zjq_result cancelled");
    s_loop_until (client, &s_result_calls, 2, 30000);
    CHECK (s_result_status == ZJQ_ECANCELLED, "result of cancelled job: %s",
           zjq_strerror (s_result_status));

    //  Invalid requests fail at once and never call back
    int calls_before = s_submit_calls;
    CHECK (zjq_submit (client, "bad queue!", "x", 1, NULL, s_on_submit, NULL, NULL) == ZJQ_EINVAL,
           "submit to a bad queue name");
    zjq_client_process (client);
    CHECK (s_submit_calls == calls_before, "callback of a refused request was called");

    //  Options that grow: older and newer callers, sizes refused
    s_test_options_abi (client, endpoint);

    CHECK (zjq_client_pending (client) == 0, "pending %d at the end",
           zjq_client_pending (client));
    zjq_client_destroy (&client);
    CHECK (client == NULL, "destroy did not null the pointer");
    zjq_client_destroy (&client);

    //  A broker that is not there: EUNREACHABLE after the request timeout
    zjq_client_t *lonely = zjq_client_new (dead_endpoint);
    CHECK (lonely != NULL, "zjq_client_new (%s)", dead_endpoint);
    if (lonely) {
        CHECK (zjq_client_set_request_timeout (lonely, 500) == 0, "set_request_timeout");
        s_ping_calls = 0;
        s_submit_calls = 0;
        CHECK (zjq_ping (lonely, s_on_ping, NULL) == 0, "zjq_ping dead");
        CHECK (zjq_submit (lonely, "api", "x", 1, NULL, s_on_submit, NULL, NULL) == 0,
               "zjq_submit dead");
        s_loop_until (lonely, &s_ping_calls, 1, 30000);
        s_loop_until (lonely, &s_submit_calls, 1, 30000);
        CHECK (s_ping_status == ZJQ_EUNREACHABLE, "ping dead: %s", zjq_strerror (s_ping_status));
        CHECK (s_submit_status == ZJQ_EUNREACHABLE, "submit dead: %s",
               zjq_strerror (s_submit_status));
        //  Destroying with a request pending calls back with ECLOSED
        s_ping_calls = 0;
        CHECK (zjq_ping (lonely, s_on_ping, NULL) == 0, "zjq_ping dead again");
        zjq_client_destroy (&lonely);
        CHECK (s_ping_calls == 1 && s_ping_status == ZJQ_ECLOSED,
               "destroy with pending ping: %d calls, %s", s_ping_calls,
               zjq_strerror (s_ping_status));
    }

    if (s_failures) {
        fprintf (stderr, "%d checks failed\n", s_failures);
        return 1;
    }
    printf ("ok\n");
    return 0;
}
