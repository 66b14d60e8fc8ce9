/*  zjq_client_watch.c: the client library's watches. See zjq_client.h and,
    for how the library is split, zjq_client_private.h.

    A watch waits for a job's DONE notice (zjq_result with a timeout, or
    zjq_submit with on_done). Watches are grouped by job id in a table, so
    one DONE completes all of them. The broker keeps DONE registrations per
    connection and per generation, so while any watch exists the core pings
    every second, and every watched job is registered again (a RESULT
    wait) when the client reconnects, when the broker's instance changes,
    or when a ping was lost. Progress updates of watched jobs come here
    too, and zjq_wait blocks on a watch.                                   */

#include "zjq_client_private.h"
#include "zjq_util.h"


//  --------------------------------------------------------------------------
//  Watched jobs and their watches

//  A job id and its hash: ids of one broker share their generation's
//  prefix, so the hash is compared first
typedef struct {
    uint64_t hash;
    const char *id;
} s_job_key_t;

static bool
s_jobwatch_match (const void *item, const void *key)
{
    const zjq_jobwatch_t *job = (const zjq_jobwatch_t *) item;
    const s_job_key_t *job_key = (const s_job_key_t *) key;
    return job->hash == job_key->hash && streq (job->id, job_key->id);
}

zjq_jobwatch_t *
zjq_client_job_lookup (zjq_client_t *self, const char *job_id)
{
    s_job_key_t key = { zjq_client_id_hash (job_id), job_id };
    return (zjq_jobwatch_t *) zjq_hashtab_lookup (&self->jobs, key.hash, s_jobwatch_match,
                                                  &key);
}

//  Recycle a watch (out of every structure).
void
zjq_client_watch_free (zjq_client_t *self, zjq_watch_t *watch)
{
    if (self->spare_watch_count < ZJQ_CLIENT_FREE_LIST_MAX) {
        watch->next = self->spare_watches;
        self->spare_watches = watch;
        self->spare_watch_count++;
    }
    else
        free (watch);
}

//  Recycle a watched job (out of the table, no watches left).
static void
s_jobwatch_free (zjq_client_t *self, zjq_jobwatch_t *job)
{
    zjq_client_id_free (&job->id, job->id_buf);
    if (self->spare_job_count < ZJQ_CLIENT_FREE_LIST_MAX) {
        job->next_spare = self->spare_jobs;
        self->spare_jobs = job;
        self->spare_job_count++;
    }
    else
        free (job);
}

//  Add a watch on a job, with a deadline (mono ms) or -1. Returns 0, or
//  ZJQ_ENOMEM (nothing changed).
int
zjq_client_watch_add (zjq_client_t *self, const char *job_id, zjq_result_cb *callback,
                      void *arg, int64_t deadline)
{
    zjq_watch_t *watch = self->spare_watches;
    if (watch) {
        self->spare_watches = watch->next;
        self->spare_watch_count--;
        memset (watch, 0, sizeof (*watch));
    }
    else
        watch = (zjq_watch_t *) calloc (1, sizeof (zjq_watch_t));
    if (!watch)
        return ZJQ_ENOMEM;
    watch->timer.index = ZJQ_HEAP_NONE;
    watch->callback = callback;
    watch->arg = arg;
    zjq_jobwatch_t *job = zjq_client_job_lookup (self, job_id);
    bool created = false;
    if (!job) {
        job = self->spare_jobs;
        if (job) {
            self->spare_jobs = job->next_spare;
            self->spare_job_count--;
            memset (job, 0, sizeof (*job));
        }
        else
            job = (zjq_jobwatch_t *) calloc (1, sizeof (zjq_jobwatch_t));
        if (job) {
            job->id = zjq_client_id_copy (job->id_buf, job_id);
            job->hash = zjq_client_id_hash (job_id);
        }
        if (!job || !job->id || zjq_hashtab_insert (&self->jobs, job->hash, job) != 0) {
            if (job)
                s_jobwatch_free (self, job);
            zjq_client_watch_free (self, watch);
            return ZJQ_ENOMEM;
        }
        created = true;
    }
    if (deadline >= 0 && zjq_client_timer_start (self, &watch->timer, TIMER_WATCH, deadline) != 0) {
        if (created) {
            zjq_hashtab_remove (&self->jobs, job->hash, job);
            s_jobwatch_free (self, job);
        }
        zjq_client_watch_free (self, watch);
        return ZJQ_ENOMEM;
    }
    //  Append, so watches on one job fire in the order they were made
    watch->job = job;
    if (job->first) {
        zjq_watch_t *last = job->first;
        while (last->next)
            last = last->next;
        last->next = watch;
        watch->prev = last;
    }
    else
        job->first = watch;
    job->count++;
    if (self->watches++ == 0)
        self->next_ping = zjq_mono_ms ();       //  learn the instance now
    return 0;
}

//  Take one watch out of its job; frees the job when it was the last.
void
zjq_client_watch_unlink (zjq_client_t *self, zjq_watch_t *watch)
{
    zjq_jobwatch_t *job = watch->job;
    zjq_client_timer_stop (self, &watch->timer);
    if (watch->prev)
        watch->prev->next = watch->next;
    else
        job->first = watch->next;
    if (watch->next)
        watch->next->prev = watch->prev;
    watch->prev = watch->next = NULL;
    job->count--;
    self->watches--;
    if (!job->first) {
        zjq_hashtab_remove (&self->jobs, job->hash, job);
        s_jobwatch_free (self, job);
    }
    watch->job = NULL;
}

//  A job has ended (or can no longer be watched): complete every watch on
//  it. status and result as for zjq_result_cb.
void
zjq_client_job_complete (zjq_client_t *self, const char *job_id, int status,
                         const zjq_result_t *result)
{
    zjq_jobwatch_t *job = zjq_client_job_lookup (self, job_id);
    if (!job)
        return;                 //  nobody waits (late or duplicate DONE)
    //  Detach the whole chain first: callbacks may add watches on this id
    zjq_hashtab_remove (&self->jobs, job->hash, job);
    zjq_watch_t *watch = job->first;
    for (zjq_watch_t *item = watch; item; item = item->next) {
        zjq_client_timer_stop (self, &item->timer);
        self->watches--;
    }
    while (watch) {
        zjq_watch_t *next = watch->next;
        if (watch->callback)
            ZJQ_CLIENT_CALLBACK (self, watch->callback (self, status, result, watch->arg));
        zjq_client_watch_free (self, watch);
        watch = next;
    }
    s_jobwatch_free (self, job);
}

//  Register again with the broker for DONE on one watched job, unless a
//  registration is already waiting in the outbox.
void
zjq_client_rewatch (zjq_client_t *self, zjq_jobwatch_t *job)
{
    if (job->rewatch_req) {
        zjq_request_t *pending = zjq_client_request_lookup (self, job->rewatch_req);
        if (pending && pending->queued)
            return;
    }
    zjq_msg_t *msg = NULL;
    zjq_request_t *request =
        zjq_client_job_request_new (self, REQUEST_REWATCH, ZJQ_CMD_RESULT, job->id, true, &msg);
    if (!request)
        return;                 //  out of memory: the next trigger retries
    uint64_t req = request->req;
    if (zjq_client_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout) == 0)
        job->rewatch_req = req;
}

//  Fetch again the withheld results whose fetch the broker refused.
void
zjq_client_refetch (zjq_client_t *self)
{
    size_t cursor = 0;
    zjq_jobwatch_t *job;
    while ((job = (zjq_jobwatch_t *) zjq_hashtab_next (&self->jobs, &cursor)))
        if (job->fetch)
            zjq_client_rewatch (self, job);
}

void
zjq_client_rewatch_all (zjq_client_t *self)
{
    //  zjq_client_rewatch does not change self->jobs, so iterating is safe
    size_t cursor = 0;
    zjq_jobwatch_t *job;
    while ((job = (zjq_jobwatch_t *) zjq_hashtab_next (&self->jobs, &cursor)))
        zjq_client_rewatch (self, job);
}


//  --------------------------------------------------------------------------
//  Notices from the broker: progress and DONE

//  PROGRESS_UPDATE: a job we asked about reports progress. Returns false if
//  malformed.
bool
zjq_client_handle_progress (zjq_client_t *self, zjq_msg_t *msg)
{
    const char *job_id = zjq_msg_get_str (msg, "id");
    double progress = -1;
    int64_t attempt = 0;
    if (!job_id || !zjq_msg_get_double (msg, "progress", &progress)
    ||  !zjq_msg_get_int (msg, "attempt", &attempt))
        return false;
    if (self->progress_cb)
        ZJQ_CLIENT_CALLBACK (self, self->progress_cb (self, job_id,
                                                      zjq_client_clamp_int (attempt), progress,
                                                      zjq_msg_get_str (msg, "message"),
                                                      self->progress_arg));
    return true;
}

//  DONE: a watched job has ended. A DONE `withheld` (the broker did not
//  send the result, to keep its backlog for us bounded) is followed by
//  fetching the result with RESULT wait, as a re-registration: the watch
//  completes with its JOB_RESULT (or EEXPIRED if it was dropped meanwhile).
bool
zjq_client_handle_done (zjq_client_t *self, zjq_msg_t *msg)
{
    bool withheld = false;
    if (zjq_msg_get_bool (msg, "withheld", &withheld) && withheld) {
        const char *id = zjq_msg_get_str (msg, "id");
        if (!id)
            return false;
        zjq_jobwatch_t *job = zjq_client_job_lookup (self, id);
        if (job) {
            job->fetch = true;
            zjq_client_rewatch (self, job);
        }
        return true;
    }
    zjq_result_t result;
    int status;
    if (!zjq_client_reply_result (msg, &result, &status))
        return false;
    zjq_client_job_complete (self, result.id, status, &result);
    return true;
}

int
zjq_on_progress (zjq_client_t *self, zjq_progress_cb *callback, void *arg)
{
    if (!self)
        return ZJQ_EINVAL;
    self->progress_cb = callback;
    self->progress_arg = arg;
    return 0;
}

typedef struct {
    zjq_result_cb *callback;    //  the caller's, or NULL
    void *arg;
    bool done;
    int status;
} s_wait_t;


//  --------------------------------------------------------------------------
//  Blocking wait

static void
s_wait_done (zjq_client_t *client, int status, const zjq_result_t *result, void *arg)
{
    s_wait_t *wait = (s_wait_t *) arg;
    wait->done = true;
    wait->status = status;
    if (wait->callback)
        wait->callback (client, status, result, wait->arg);
}

//  Drop, without calling it, whatever request or watch still points at a
//  wait that is being abandoned.
static void
s_forget_wait (zjq_client_t *self, s_wait_t *wait)
{
    //  Each walk stops at the change it makes
    size_t cursor = 0;
    zjq_request_t *request;
    while ((request = (zjq_request_t *) zjq_hashtab_next (&self->requests, &cursor)))
        if (request->kind == REQUEST_RESULT && request->arg == wait) {
            zjq_client_request_detach (self, request);
            zjq_client_request_free (self, &request);
            break;
        }
    cursor = 0;
    zjq_jobwatch_t *job;
    while ((job = (zjq_jobwatch_t *) zjq_hashtab_next (&self->jobs, &cursor)))
        for (zjq_watch_t *watch = job->first; watch; watch = watch->next)
            if (watch->arg == wait && watch->callback == s_wait_done) {
                zjq_client_watch_unlink (self, watch);
                zjq_client_watch_free (self, watch);
                return;
            }
}

int
zjq_wait (zjq_client_t *self, const char *job_id, int timeout_ms,
          zjq_result_cb *callback, void *arg)
{
    s_wait_t wait = { callback, arg, false, 0 };
    int rc = zjq_result (self, job_id, timeout_ms, s_wait_done, &wait);
    if (rc != 0)
        return rc;
    //  Each request and watch ends by its reply or its deadline, so this
    //  loop ends.
    while (!wait.done) {
        rc = zjq_client_process (self);
        if (rc < 0) {
            s_forget_wait (self, &wait);
            return rc;
        }
        if (!wait.done)
            zjq_client_poll (self, zjq_client_timeout (self));
    }
    return wait.status;
}
