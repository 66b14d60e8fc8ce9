/*  zjq_broker_dispatch.c: dispatch and leases.

    Where a queued job becomes eligible (the eligibility seam), where the
    broker picks its worker (the worker-choice seam), the JOB that starts
    an attempt, and what ends one: a result, a timeout (the job table's
    deadline heap), a worker lost or gone. A failed attempt requeues the job
    while attempts are left; an ended job tells its waiters. Also the
    periodic scan of the workers: heartbeats out, silent ones forgotten.
    See zjq_broker_private.h.                                               */

#include "zjq_broker_private.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


//  --------------------------------------------------------------------------
//  Queues

//  True if holding a queue of that name would exceed --max-queues: queues
//  are never freed, so the cap is what bounds their memory.
bool
zjq_broker_queue_over_limit (zjq_broker_t *self, const char *name, size_t also_new)
{
    if (zhashx_lookup (self->queues, name))
        return false;
    return zhashx_size (self->queues) + also_new + 1 > self->max_queues;
}

//  The queue of that name, created if new; NULL if out of memory.
zjq_queue_t *
zjq_broker_queue_require (zjq_broker_t *self, const char *name)
{
    zjq_queue_t *queue = (zjq_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue) {
        queue = zjq_queue_new (name);
        if (queue && zhashx_insert (self->queues, zjq_queue_name (queue), queue) != 0)
            zjq_queue_destroy (&queue);
    }
    return queue;
}


//  --------------------------------------------------------------------------
//  Dispatch: the two seams


//  Keep the dead letters within --max-dead-letters and
//  --max-dead-letter-bytes: the oldest go.
void
zjq_broker_trim_dead_letters (zjq_broker_t *self)
{
    size_t dropped = zjq_jobtable_trim_dead (self->jobs, self->max_dead_letters,
                                             self->max_dead_letter_bytes);
    if (dropped)
        zjq_broker_warn (self, "dead_letters_dropped", "dropped=%zu max_dead_letters=%llu "
                         "max_dead_letter_bytes=%llu", dropped,
                         (unsigned long long) self->max_dead_letters,
                         (unsigned long long) self->max_dead_letter_bytes);
}

//  Record a failed attempt of a running job in its history: why (without
//  the attempt count), and what the worker measured (exit_code -1, signal
//  0 and duration_ms -1 when it did not say). Call before the attempt is
//  failed (the worker is still known then).
void
zjq_broker_record_attempt (zjq_broker_t *self, zjq_jobentry_t *entry, const char *reason,
                           int exit_code, int signal, int64_t duration_ms)
{
    int64_t started_ms = zjq_jobentry_started_ms (entry);
    int64_t now = zjq_wall_ms ();
    if (duration_ms < 0 && started_ms)
        duration_ms = now - started_ms;
    zjq_peer_t *peer = zjq_jobentry_peer (entry);
    zjq_attempt_t attempt = {
        .attempt = zjq_jobentry_attempt (entry), .exit_code = exit_code, .signal = signal,
        .started_ms = started_ms, .ended_ms = now, .duration_ms = duration_ms,
        .error = (char *) reason, .worker = peer? (char *) zjq_peer_worker_id (peer): NULL
    };
    zjq_jobtable_add_attempt (self->jobs, entry, &attempt);
}

//  Start the next attempt of a job (out of its queue heap) on a worker
//  with credit, and send it the JOB.
static void
s_dispatch (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_peer_t *peer)
{
    assert (zjq_peer_can_take (peer));
    zjq_jobtable_start (self->jobs, entry, self->now);
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    int attempt = zjq_jobentry_attempt (entry);
    zjq_queue_counters_t *counters = zjq_queue_counters (zjq_jobentry_queue (entry));
    counters->running++;
    zjq_stats_started (&counters->stats, attempt == 1?
                       zjq_jobentry_started_ms (entry) - zjq_jobentry_created_ms (entry): -1);
    int slot = zjq_peer_slot_take (peer, id.text, attempt);
    if (slot < 0)
        zjq_log_error ("out_of_memory", "what=tracking_job job=%s worker=%s", id.text,
                       zjq_peer_worker_id (peer));
    zjq_jobentry_set_peer (entry, peer, slot < 0? UINT32_MAX: (uint32_t) slot);
    if (slot >= 0)
        zjq_peer_slot_set_bytes (peer, slot, zjq_jobentry_payload (entry).size);
    if (!zjq_peer_can_take (peer))
        zjq_peer_unlist (peer);

    zjq_msg_t *msg = zjq_broker_msg_to_frame (zjq_peer_routing_id (peer), ZJQ_CMD_JOB);
    zjq_msg_put_str (msg, "id", id.text);
    zjq_msg_put_int (msg, "attempt", attempt);
    zjq_msg_put_str (msg, "queue", zjq_jobentry_queue_name (entry));
    zjq_msg_put_int (msg, "timeout_ms", zjq_jobentry_job_timeout_ms (entry));
    zjq_broker_attach_payload (msg, zjq_jobentry_payload (entry));
    zjq_log_debug ("job_dispatched", "job=%s attempt=%d worker=%s queue=%s", id.text,
                   attempt, zjq_peer_worker_id (peer), zjq_jobentry_queue_name (entry));
    zjq_broker_send_peer (self, peer, &msg);
}

//  SEAM (worker choice): the worker that gets the next job of a queue, or
//  NULL if none of its workers has credit. Of the first s_PICK_SCAN
//  workers with credit on the queue's list (longest waiting first), the
//  one with the fewest jobs in hand; on a tie, the one that waited
//  longest. The one chosen goes to the end of the list, so equal workers
//  take turns (fairness) and an idle one is preferred to a busy one (a
//  short job does not wait behind work another worker holds). The credit
//  itself (how much a worker may hold) is zjq_peer_can_take's.
#define s_PICK_SCAN 8

static zjq_peer_t *
s_pick_worker (zjq_broker_t *self, zjq_queue_t *queue)
{
    (void) self;
    void *handle, *best_handle = NULL;
    zjq_peer_t *best = NULL;
    zjq_peer_t *peer = (zjq_peer_t *) zjq_queue_worker_first (queue, &handle);
    for (int scanned = 0; peer && scanned < s_PICK_SCAN; scanned++) {
        if (!best || zjq_peer_outstanding (peer) < zjq_peer_outstanding (best)) {
            best = peer;
            best_handle = handle;
            if (zjq_peer_outstanding (best) == 0)
                break;              //  none holds fewer
        }
        peer = (zjq_peer_t *) zjq_queue_worker_next (queue, &handle);
    }
    if (best)
        zjq_queue_worker_rotate (queue, best_handle);
    return best;
}

//  Give waiting jobs of a queue to its available workers (none while the
//  queue is paused). Only the eligibility seam pumps a queue.
static void
s_queue_pump (zjq_broker_t *self, zjq_queue_t *queue)
{
    if (zjq_queue_paused (queue))
        return;
    zjq_peer_t *peer;
    while (zjq_queue_size (queue) && (peer = s_pick_worker (self, queue)))
        s_dispatch (self, zjq_queue_pop (queue), peer);
}

//  Fill a worker's free credit with the best jobs across all its queues;
//  with credit left over, it waits on its queues' worker lists.
void
zjq_broker_peer_pump (zjq_broker_t *self, zjq_peer_t *peer)
{
    size_t count = zjq_peer_queue_count (peer);
    while (zjq_peer_can_take (peer)) {
        zjq_queue_t *best = NULL;
        zjq_jobentry_t *best_entry = NULL;
        for (size_t index = 0; index < count; index++) {
            zjq_queue_t *queue = zjq_peer_queue (peer, index);
            if (zjq_queue_paused (queue))
                continue;
            zjq_jobentry_t *top = zjq_queue_top (queue);
            if (top && (!best_entry || zjq_queue_before (top, best_entry))) {
                best = queue;
                best_entry = top;
            }
        }
        if (!best)
            break;
        s_dispatch (self, zjq_queue_pop (best), peer);
    }
    if (zjq_peer_can_take (peer) && !zjq_peer_listed (peer))
        zjq_peer_list (peer);
}

//  SEAM (eligibility): the one place where queued jobs become eligible for
//  dispatch. With entry, a queued job (new, restored from the journal,
//  requeued after a failed attempt, handed back unstarted, retried from the
//  dead letters) goes into its queue's heap; then the queue is pumped. With
//  entry NULL the queue itself became eligible again (resumed) and is only
//  pumped. Returns 0, or -1 if out of memory (the job is in no heap; the
//  caller decides its fate). Delays, dependencies, rate limits and
//  fairness plug in here: a job not eligible yet waits elsewhere (a timer,
//  a dependency) and comes back through here when it is.
int
zjq_broker_make_eligible (zjq_broker_t *self, zjq_queue_t *queue, zjq_jobentry_t *entry)
{
    if (entry && zjq_queue_push (queue, entry) != 0)
        return -1;
    s_queue_pump (self, queue);
    return 0;
}

//  Put a queued job (new or retried) in its queue and dispatch if possible;
//  out of memory, it fails.
void
zjq_broker_enqueue (zjq_broker_t *self, zjq_jobentry_t *entry)
{
    if (zjq_broker_make_eligible (self, zjq_jobentry_queue (entry), entry) != 0) {
        zjq_log_error ("out_of_memory", "what=queueing_job job=%s", zjq_jobentry_id (entry).text);
        zjq_broker_job_end (self, entry, ZJQ_STATE_FAILED, "broker out of memory", NULL);
    }
}


//  --------------------------------------------------------------------------
//  Ends and failed attempts

//  End a queued or running job. Sends DONE to its waiters. The entry may be
//  gone when this returns (a stored result can push older ones, or itself,
//  out under the result memory bound): do not use it afterwards.
void
zjq_broker_job_end (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_state_t state,
                    const char *error, zframe_t **result_p)
{
    zjq_queue_counters_t *counters = zjq_queue_counters (zjq_jobentry_queue (entry));
    bool was_running = zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING;
    if (was_running)
        counters->running--;
    else
    if (zjq_jobentry_in_queue (entry))
        zjq_queue_remove (zjq_jobentry_queue (entry), entry);
    zjq_jobtable_finish (self->jobs, entry, state, error, result_p, self->now);
    zjq_stats_ended (&counters->stats, self->now,
                     was_running? zjq_jobentry_finished_ms (entry) - zjq_jobentry_started_ms (entry)
                                : -1, false);
    zjq_stats_ring_add (&self->counters.ends, self->now, 1);
    switch (state) {
        case ZJQ_STATE_SUCCEEDED:
            counters->succeeded++;
            self->counters.succeeded++;
            break;
        case ZJQ_STATE_FAILED:
            counters->failed++;
            self->counters.failed++;
            break;
        default:
            counters->cancelled++;
            self->counters.cancelled++;
            break;
    }
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    zjq_log_debug ("job_ended", "job=%s queue=%s state=%s attempts=%d error=%s", id.text,
                   zjq_jobentry_queue_name (entry), zjq_state_name (state),
                   zjq_jobentry_attempt (entry), error? error: "");
    for (uint32_t index = 0; index < zjq_jobentry_waiter_count (entry); index++) {
        size_t size;
        char key [ZJQ_CERT_KEY_TEXT];
        const byte *waiter = zjq_jobentry_waiter (entry, index, &size, key, sizeof (key));
        //  A key a reload has taken the client and admin roles from since
        //  it asked gets nothing more (its requests are refused already)
        if (self->auth && *key
        &&  !(zjq_auth_roles (self->auth, key) & (ZJQ_AUTH_CLIENT | ZJQ_AUTH_ADMIN))) {
            self->counters.refused_role++;
            zjq_log_info ("done_withheld", "job=%s key=%s reason=%s", id.text, key,
                          "access revoked");
            continue;
        }
        zjq_broker_send_done (self, entry, waiter, size);
    }
    zjq_jobentry_clear_waiters (entry);
    if (zhashx_size (self->progress_watchers))
        zhashx_delete (self->progress_watchers, id.text);
    if (zjq_jobentry_result (entry).size)
        zjq_jobtable_trim_results (self->jobs, self->max_result_bytes);
    else
    if (state == ZJQ_STATE_FAILED)
        zjq_broker_trim_dead_letters (self);
}

//  A running job's attempt failed (error says why, with the attempt count):
//  requeue it if attempts are left, else it fails.
void
zjq_broker_attempt_failed (zjq_broker_t *self, zjq_jobentry_t *entry, const char *error)
{
    assert (zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING);
    if (zjq_jobentry_attempt (entry) < zjq_jobentry_max_attempts (entry)) {
        zjq_queue_counters_t *counters = zjq_queue_counters (zjq_jobentry_queue (entry));
        zjq_log_debug ("job_requeued", "job=%s queue=%s attempt=%d error=%s",
                       zjq_jobentry_id (entry).text, zjq_jobentry_queue_name (entry),
                       zjq_jobentry_attempt (entry), error);
        counters->running--;
        zjq_stats_ended (&counters->stats, self->now,
                         zjq_wall_ms () - zjq_jobentry_started_ms (entry), true);
        zjq_jobtable_requeue (self->jobs, entry, error);
        zjq_broker_enqueue (self, entry);
    }
    else
        zjq_broker_job_end (self, entry, ZJQ_STATE_FAILED, error, NULL);
}

//  "<reason> (attempt n of m)" into buf
const char *
zjq_broker_attempt_error (char *buf, size_t size, zjq_jobentry_t *entry, const char *reason)
{
    snprintf (buf, size, "%s (attempt %d of %d)", reason,
              zjq_jobentry_attempt (entry), zjq_jobentry_max_attempts (entry));
    return buf;
}

//  Tell a worker to stop an attempt it no longer owns. Its slot stays busy
//  until it answers.
void
zjq_broker_send_job_cancel (zjq_broker_t *self, zjq_peer_t *peer, zjq_jobentry_t *entry,
                            const char *reason)
{
    zjq_msg_t *msg = zjq_broker_msg_to_frame (zjq_peer_routing_id (peer), ZJQ_CMD_JOB_CANCEL);
    zjq_msg_put_str (msg, "id", zjq_jobentry_id (entry).text);
    zjq_msg_put_int (msg, "attempt", zjq_jobentry_attempt (entry));
    zjq_msg_put_str (msg, "reason", reason);
    zjq_broker_send_peer (self, peer, &msg);
}

//  A running job's attempt timed out (it is out of the deadline heap).
void
zjq_broker_job_timeout (zjq_broker_t *self, zjq_jobentry_t *entry)
{
    if (zjq_jobentry_peer (entry))
        zjq_broker_send_job_cancel (self, zjq_jobentry_peer (entry), entry, "timeout");
    char reason [64];
    snprintf (reason, sizeof (reason), "job timeout after %lld ms",
              (long long) zjq_jobentry_job_timeout_ms (entry));
    zjq_broker_record_attempt (self, entry, reason, -1, 0, -1);
    char error [128];
    zjq_broker_attempt_failed (self, entry,
                               zjq_broker_attempt_error (error, sizeof (error), entry, reason));
}


//  --------------------------------------------------------------------------
//  Forgetting workers

//  The jobs whose current attempt runs on a worker (a new array of *count_p,
//  NULL if none; asserts on out of memory)
static zjq_jobentry_t **
s_running_on (zjq_broker_t *self, zjq_peer_t *peer, size_t *count_p)
{
    size_t count = 0;
    zjq_jobentry_t **running = NULL;
    if (zjq_peer_outstanding (peer)) {
        running = (zjq_jobentry_t **) calloc (zjq_peer_outstanding (peer),
                                              sizeof (zjq_jobentry_t *));
        assert (running);
    }
    for (size_t index = 0; index < zjq_peer_slot_max (peer); index++) {
        int attempt;
        const char *id = zjq_peer_slot (peer, index, &attempt);
        if (!id)
            continue;
        zjq_jobentry_t *entry = zjq_jobtable_lookup (self->jobs, id);
        if (entry && zjq_jobentry_peer (entry) == peer
        &&  zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING
        &&  zjq_jobentry_attempt (entry) == attempt)
            running [count++] = entry;
    }
    *count_p = count;
    return running;
}

//  Forget a worker: it gets no more jobs, the jobs it runs count a failed
//  attempt ("<why> (host/pid) on attempt n of m") and go back to their
//  queues or fail. The peer is destroyed.
void
zjq_broker_peer_forget (zjq_broker_t *self, zjq_peer_t *peer, const char *why)
{
    zjq_peer_unlist (peer);
    zjq_peer_set_draining (peer);
    size_t count = 0;
    zjq_jobentry_t **running = s_running_on (self, peer, &count);
    for (size_t index = 0; index < count; index++) {
        zjq_jobentry_t *entry = running [index];
        char error [ZJQ_TEXT_MAX * 2];
        snprintf (error, sizeof (error), "%s (%s/%lld)", why, zjq_peer_host (peer),
                  zjq_peer_pid (peer));
        zjq_broker_record_attempt (self, entry, error, -1, 0, -1);
        snprintf (error, sizeof (error), "%s (%s/%lld) on attempt %d of %d", why,
                  zjq_peer_host (peer), zjq_peer_pid (peer), zjq_jobentry_attempt (entry),
                  zjq_jobentry_max_attempts (entry));
        zjq_broker_attempt_failed (self, entry, error);
    }
    free (running);
    for (size_t index = 0; index < zjq_peer_queue_count (peer); index++)
        zjq_queue_counters (zjq_peer_queue (peer, index))->workers--;
    zhashx_delete (self->peers, zjq_peer_key (peer));
    zjq_peer_destroy (&peer);
}

//  A worker declared lost (silent or unreachable): logged, counted, forgotten
static void
s_peer_lost (zjq_broker_t *self, zjq_peer_t *peer)
{
    self->counters.workers_lost++;
    if (zjq_peer_unreachable (peer))
        zjq_log_info ("worker_lost", "worker=%s host=%s pid=%lld reason=unreachable "
                      "running=%zu", zjq_peer_worker_id (peer), zjq_peer_host (peer),
                      zjq_peer_pid (peer), zjq_peer_outstanding (peer));
    else
        zjq_log_info ("worker_lost", "worker=%s host=%s pid=%lld reason=silent "
                      "silent_ms=%lld running=%zu", zjq_peer_worker_id (peer),
                      zjq_peer_host (peer), zjq_peer_pid (peer),
                      (long long) (self->now - zjq_peer_last_seen (peer)),
                      zjq_peer_outstanding (peer));
    zjq_broker_peer_forget (self, peer, "worker lost");
}

//  Send heartbeats that are due, and forget workers that went silent or
//  unreachable. Sets the time of the next scan.
void
zjq_broker_check_peers (zjq_broker_t *self)
{
    int64_t next = INT64_MAX;
    zlistx_t *gone = NULL;
    self->reap = false;         //  a failed send below sets it again
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers)) {
        int64_t heartbeat_ms = zjq_peer_heartbeat_ms (peer);
        int64_t silence = self->now - zjq_peer_last_seen (peer);
        if (zjq_peer_unreachable (peer) || silence > ZJQ_LIVENESS * heartbeat_ms) {
            if (!gone)
                gone = zlistx_new ();
            zlistx_add_end (gone, peer);
            continue;
        }
        if (self->now - zjq_peer_last_sent (peer) >= heartbeat_ms) {
            zjq_msg_t *msg = zjq_broker_msg_to_frame (zjq_peer_routing_id (peer),
                                                      ZJQ_CMD_HEARTBEAT);
            zjq_broker_send_peer (self, peer, &msg);
            //  Retry a failed heartbeat at the next interval
            zjq_peer_set_sent (peer, self->now);
        }
        next = zjq_broker_min (next, zjq_peer_last_sent (peer) + heartbeat_ms);
        next = zjq_broker_min (next, zjq_peer_last_seen (peer) + ZJQ_LIVENESS * heartbeat_ms + 1);
    }
    if (gone) {
        for (zjq_peer_t *peer = (zjq_peer_t *) zlistx_first (gone); peer;
             peer = (zjq_peer_t *) zlistx_next (gone))
            s_peer_lost (self, peer);
        zlistx_destroy (&gone);
    }
    self->next_check = next;
}


//  --------------------------------------------------------------------------
