/*  zjq_jobtable_dead.c: attempt histories and dead letters of the job table.

    A failed job keeps its payload where it was (inline or its frame; a
    result, if any, then goes in a frame in the side block) and its attempt
    history (in the side block), which also holds its links on the
    dead-letter list (zjq_history.h). A retry puts it back to queued.       */

#include "zjq_jobtable_private.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <stddef.h>
#include <string.h>

//  dead-letter TTL
int64_t
zjq_jobtable_dead_ttl (zjq_jobtable_t *self, const zjq_jobentry_t *entry)
{
    int64_t ttl_ms = zjq_jobentry_result_ttl_ms (entry);
    return ttl_ms > self->dead_ttl_ms? ttl_ms: self->dead_ttl_ms;
}

//  Put a failed job (its side block made) on the dead-letter list; it gets
//  an empty history if it never had a failed attempt
void
zjq_jobtable_dead_link (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    zjq_jobside_t *side = entry->side;
    if (!side->history)
        side->history = zjq_history_new (zjq_jobentry_max_attempts (entry));
    if (!side->history) {
        zjq_log_error ("out_of_memory", "what=dead_letter job=%s msg=%s",
                       zjq_jobentry_id (entry).text, "it cannot be retried");
        zjq_jobentry_drop_payload (entry);
        return;
    }
    side->history->failed_ms = side->finished_ms;
    zjq_deadlist_insert (&self->dead, side->history, entry, zjq_jobentry_payload (entry).size);
}

//  Take a job off the dead-letter list if it is on it
void
zjq_jobtable_dead_unlink (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    zjq_history_t *history = entry->side? entry->side->history: NULL;
    if (zjq_deadlist_contains (&self->dead, history))
        zjq_deadlist_remove (&self->dead, history, zjq_jobentry_payload (entry).size);
}

//  --------------------------------------------------------------------------
//  Attempt histories and dead letters

void
zjq_jobtable_set_dead_letter_ttl (zjq_jobtable_t *self, int64_t ttl_ms)
{
    assert (self);
    self->dead_ttl_ms = ttl_ms > 0? ttl_ms: 0;
}

int
zjq_jobtable_add_attempt (zjq_jobtable_t *self, zjq_jobentry_t *entry,
                          const zjq_attempt_t *attempt)
{
    assert (self);
    assert (entry && attempt);
    assert (!zjq_jobentry_ended (entry));
    zjq_jobside_t *side = zjq_jobentry_side_try (entry);
    if (side && !side->history)
        side->history = zjq_history_new (zjq_jobentry_max_attempts (entry));
    if (!side || !side->history || zjq_history_add (side->history, attempt) != 0) {
        zjq_log_error ("out_of_memory", "what=attempt_history job=%s attempt=%d",
                       zjq_jobentry_id (entry).text, attempt->attempt);
        return -1;
    }
    if (self->hook.attempt)
        self->hook.attempt (self->hook_arg, entry);
    return 0;
}

int
zjq_jobtable_retry (zjq_jobtable_t *self, zjq_jobentry_t *entry, const char **message_p)
{
    assert (self);
    assert (entry && message_p);
    if (entry->state != ZJQ_STATE_FAILED) {
        *message_p = "only a failed job can be retried";
        return ZJQ_ESTATE;
    }
    zjq_jobside_t *side = entry->side;
    if ((entry->flags & ZJQ_JOBENTRY_NOPAY) || !zjq_jobtable_is_dead (self, entry)) {
        *message_p = "its payload was not kept (it failed before this broker version)";
        return ZJQ_ESTATE;
    }
    zjq_history_t *history = side->history;
    int attempt = zjq_jobentry_attempt (entry);
    if ((int64_t) attempt + history->budget > ZJQ_JOB_ATTEMPTS_MAX) {
        *message_p = "it has used the most attempts a job may make";
        return ZJQ_ESTATE;
    }
    if (zjq_jobentry_set_attempts (entry, attempt, attempt + history->budget) == -1) {
        *message_p = "broker out of memory";
        return ZJQ_ENOMEM;
    }
    zjq_jobtable_dead_unlink (self, entry);
    zjq_jobtable_clear_deadline (self, entry);
    //  A failed job rarely has a result; a queued one has none
    if (side->result_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_remove (self->results, side->result_index);
    self->stats.result_bytes -= zjq_jobentry_result (entry).size;
    zframe_destroy (&side->result);
    history->retries++;
    entry->state = ZJQ_STATE_QUEUED;
    side->finished_ms = side->expires_ms = 0;
    self->stats.ended--;
    self->stats.queued++;
    zjq_jobtable_count_active (self, entry, true);
    if (self->hook.insert)
        self->hook.insert (self->hook_arg, entry);
    return 0;
}

zjq_jobentry_t *
zjq_jobtable_dead_first (zjq_jobtable_t *self)
{
    assert (self);
    return self->dead.oldest? (zjq_jobentry_t *) self->dead.oldest->owner: NULL;
}

zjq_jobentry_t *
zjq_jobtable_dead_next (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry && zjq_jobtable_is_dead (self, entry));
    zjq_history_t *newer = entry->side->history->newer;
    return newer? (zjq_jobentry_t *) newer->owner: NULL;
}

bool
zjq_jobtable_is_dead (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry);
    return zjq_deadlist_contains (&self->dead, entry->side? entry->side->history: NULL);
}

const zjq_deadlist_t *
zjq_jobtable_dead_letters (zjq_jobtable_t *self)
{
    assert (self);
    return &self->dead;
}

size_t
zjq_jobtable_trim_dead (zjq_jobtable_t *self, uint64_t max_count, uint64_t max_bytes)
{
    assert (self);
    size_t dropped = 0;
    while (self->dead.oldest && (self->dead.count > max_count || self->dead.bytes > max_bytes)) {
        zjq_jobentry_t *entry = (zjq_jobentry_t *) self->dead.oldest->owner;
        zjq_jobtable_remove (self, &entry);
        dropped++;
    }
    return dropped;
}


