/*  zjq_jobentry.c: the job entries and their side blocks. See zjq_jobentry.h.

    A queued job costs one allocation: the compact entry with its payload
    inline (up to ZJQ_JOBENTRY_INLINE_MAX bytes). Everything else is in the
    side block, allocated the first time a job needs it (a key, a long
    duration, a waiter, the first attempt, an attempt history) and freed
    with the entry. This file reads entries and keeps their side blocks; it
    knows nothing of the table that holds them.                             */

#include "zjq_jobentry_private.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <stddef.h>
#include <string.h>


//  --------------------------------------------------------------------------
//  Entries, side blocks, owners

static size_t
s_entry_alloc_size (size_t payload_area)
{
    size_t size = offsetof (zjq_jobentry_t, payload) + payload_area;
    return size < sizeof (zjq_jobentry_t)? sizeof (zjq_jobentry_t): size;
}

zframe_t *
zjq_jobentry_frame (const zjq_jobentry_t *entry)
{
    zframe_t *frame = NULL;
    if (entry->flags & ZJQ_JOBENTRY_FRAME)
        memcpy (&frame, entry->payload, sizeof (frame));
    return frame;
}

void
zjq_jobentry_set_frame (zjq_jobentry_t *entry, zframe_t *frame)
{
    memcpy (entry->payload, &frame, sizeof (frame));
}

//  The side block, allocated if need be; NULL if out of memory
zjq_jobside_t *
zjq_jobentry_side_try (zjq_jobentry_t *entry)
{
    if (!entry->side) {
        zjq_jobside_t *side = (zjq_jobside_t *) calloc (1, sizeof (zjq_jobside_t));
        if (!side)
            return NULL;
        side->entry = entry;
        side->order = entry->order;
        side->progress = -1;
        side->deadline_index = ZJQ_JOBENTRY_NONE;
        side->result_index = ZJQ_JOBENTRY_NONE;
        side->peer_slot = UINT32_MAX;
        entry->side = side;
    }
    return entry->side;
}

//  The side block for a state change, which cannot be undone half-way
zjq_jobside_t *
zjq_jobentry_side (zjq_jobentry_t *entry)
{
    zjq_jobside_t *side = zjq_jobentry_side_try (entry);
    if (!side) {
        zjq_log_error ("out_of_memory", "what=job_state job=%s msg=%s",
                       zjq_jobentry_id (entry).text, "aborting");
        abort ();
    }
    return side;
}

//  Forget all waiters and give their array back (a job has waiters rarely
//  and briefly)
static void
s_side_clear_waiters (zjq_jobside_t *side)
{
    free (side->waiters);
    side->waiters = NULL;
    side->waiter_count = side->waiter_bytes = side->waiter_max = 0;
}

void
zjq_jobentry_side_free (zjq_jobside_t **side_p)
{
    zjq_jobside_t *side = *side_p;
    if (!side)
        return;
    s_side_clear_waiters (side);
    free (side->key);
    free (side->error);
    free (side->progress_message);
    zframe_destroy (&side->result);
    if (side->history)
        side->history->owner = NULL;    //  off any list: removal unlinked it, or the table goes
    zjq_history_destroy (&side->history);
    free (side);
    *side_p = NULL;
}

//  Durations in an entry take 16 bits: a unit (the top two bits: ms,
//  seconds, minutes, hours) and a count of it (the low 14 bits). Every
//  duration in whole units below 16384 of one of them fits (below 16383
//  for hours: 0xFFFF is ZJQ_DURATION_SIDE; the defaults,
//  30 min and 1 h, are seconds); any other is kept exactly in the side block.
static const int64_t s_duration_unit [4] = { 1, 1000, 60 * 1000, 3600 * 1000 };
#define S_DURATION_COUNT 0x4000

static int
s_duration_code (int64_t ms)
{
    for (int unit = 0; unit < 4 && ms >= 0; unit++) {
        int64_t count = ms / s_duration_unit [unit];
        if (count * s_duration_unit [unit] == ms && count < S_DURATION_COUNT) {
            int code = unit << 14 | (int) count;
            return code == ZJQ_DURATION_SIDE? -1: code;
        }
    }
    return -1;
}

static int64_t
s_duration_ms (uint16_t code)
{
    return s_duration_unit [code >> 14] * (code & (S_DURATION_COUNT - 1));
}

//  Store a duration in the entry's field, or exactly in the side block if
//  it does not fit. Returns 0, or -1 if out of memory for the side block.
int
zjq_jobentry_set_duration (zjq_jobentry_t *entry, uint16_t *field, int64_t ms, bool timeout)
{
    int code = s_duration_code (ms);
    if (code >= 0) {
        *field = (uint16_t) code;
        return 0;
    }
    zjq_jobside_t *side = zjq_jobentry_side_try (entry);
    if (!side)
        return -1;
    *field = ZJQ_DURATION_SIDE;
    if (timeout)
        side->job_timeout_ms = ms;
    else
        side->result_ttl_ms = ms;
    return 0;
}

//  Store a job's attempt counts: in the entry while they fit 16 bits, else
//  (after many retries) exactly in the side block from then on. Returns 0,
//  or -1 if out of memory for the side block (unchanged).
int
zjq_jobentry_set_attempts (zjq_jobentry_t *entry, int attempt, int max_attempts)
{
    if (!(entry->flags & ZJQ_JOBENTRY_WIDE)
    &&  attempt >= 0 && attempt <= UINT16_MAX && max_attempts >= 0 && max_attempts <= UINT16_MAX) {
        entry->attempt = (uint16_t) attempt;
        entry->max_attempts = (uint16_t) max_attempts;
        return 0;
    }
    zjq_jobside_t *side = zjq_jobentry_side_try (entry);
    if (!side)
        return -1;
    entry->flags |= ZJQ_JOBENTRY_WIDE;
    side->attempt = attempt;
    side->max_attempts = max_attempts;
    return 0;
}

//  memory.
zjq_jobentry_t *
zjq_jobentry_new (size_t size)
{
    bool inline_payload = size <= ZJQ_JOBENTRY_INLINE_MAX;
    zjq_jobentry_t *entry = (zjq_jobentry_t *) calloc (
        1, s_entry_alloc_size (inline_payload? size: sizeof (zframe_t *)));
    if (!entry)
        return NULL;
    entry->queue_index = ZJQ_JOBENTRY_NONE;
    if (inline_payload)
        entry->payload_size = (uint16_t) size;
    else
        entry->flags = ZJQ_JOBENTRY_FRAME;
    return entry;
}




//  Keep the result of an ended job: inline if its payload area (room
//  bytes) is free (the payload is gone) and the result fits, else as a
//  frame in the side block, taken from *frame_p (then nulled) or made from
//  the bytes. Returns 0, or -1 if out of memory.
int
zjq_jobentry_store_result (zjq_jobentry_t *entry, size_t room, zframe_t **frame_p,
                const void *data, size_t size)
{
    if ((entry->flags & ZJQ_JOBENTRY_NOPAY) && size <= room) {
        if (size)
            memcpy (entry->payload, data, size);
        entry->payload_size = (uint16_t) size;
        entry->flags |= ZJQ_JOBENTRY_RESULT;
        if (frame_p)
            zframe_destroy (frame_p);
        return 0;
    }
    zframe_t *frame = frame_p? *frame_p: zframe_new (data, size);
    if (!frame)
        return -1;
    if (frame_p)
        *frame_p = NULL;
    entry->side->result = frame;
    return 0;
}

//  Count an ended job's result, and put it in the result heap if it has
//  result bytes
//  The payload goes (the job ended): a frame is freed; returns the room
//  the payload area has for a result
size_t
zjq_jobentry_drop_payload (zjq_jobentry_t *entry)
{
    zframe_t *frame = zjq_jobentry_frame (entry);
    size_t room = frame? sizeof (zframe_t *): entry->payload_size;
    zframe_destroy (&frame);
    entry->flags = (entry->flags & ZJQ_JOBENTRY_WIDE) | ZJQ_JOBENTRY_NOPAY;
    entry->payload_size = 0;
    return room;
}



//  --------------------------------------------------------------------------
//  Waiters

int
zjq_jobentry_add_waiter (zjq_jobentry_t *entry, const void *routing_id, size_t size,
                         const char *key)
{
    assert (entry);
    assert (routing_id);
    size_t key_size = key? strlen (key): 0;
    if (size == 0 || size > 255 || key_size > 255)
        return -1;              //  libzmq's routing ids are 1..255 bytes
    zjq_jobside_t *side = zjq_jobentry_side_try (entry);
    if (!side)
        return -1;
    for (uint32_t at = 0; at < side->waiter_bytes;) {
        const byte *waiter = side->waiters + at;
        if (waiter [0] == size && memcmp (waiter + 1, routing_id, size) == 0)
            return 1;
        at += 2 + waiter [0] + waiter [1 + waiter [0]];
    }
    size_t need = 2 + size + key_size;
    if (side->waiter_bytes + need > side->waiter_max) {
        uint32_t max = side->waiter_max? side->waiter_max * 2: 32;
        while (max < side->waiter_bytes + need)
            max *= 2;
        byte *waiters = (byte *) realloc (side->waiters, max);
        if (!waiters)
            return -1;
        side->waiters = waiters;
        side->waiter_max = max;
    }
    byte *at = side->waiters + side->waiter_bytes;
    *at++ = (byte) size;
    memcpy (at, routing_id, size);
    at += size;
    *at++ = (byte) key_size;
    if (key_size)
        memcpy (at, key, key_size);
    side->waiter_bytes += (uint32_t) need;
    side->waiter_count++;
    return 0;
}

void
zjq_jobentry_clear_waiters (zjq_jobentry_t *entry)
{
    assert (entry);
    if (entry->side)
        s_side_clear_waiters (entry->side);
}

uint32_t
zjq_jobentry_waiter_count (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->waiter_count: 0;
}

const byte *
zjq_jobentry_waiter (const zjq_jobentry_t *entry, uint32_t index, size_t *size_p,
                     char *key, size_t key_max)
{
    assert (entry);
    assert (size_p);
    assert (key && key_max);
    assert (index < zjq_jobentry_waiter_count (entry));
    const byte *at = entry->side->waiters;
    while (index--)
        at += 2 + at [0] + at [1 + at [0]];
    *size_p = at [0];
    size_t key_size = at [1 + at [0]];
    if (key_size >= key_max)
        key_size = key_max - 1;
    memcpy (key, at + 2 + at [0], key_size);
    key [key_size] = 0;
    return at + 1;
}


//  --------------------------------------------------------------------------
//  Reading a job

int
zjq_jobentry_attempt (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->flags & ZJQ_JOBENTRY_WIDE? entry->side->attempt: entry->attempt;
}

int
zjq_jobentry_max_attempts (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->flags & ZJQ_JOBENTRY_WIDE? entry->side->max_attempts: entry->max_attempts;
}

int64_t
zjq_jobentry_started_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->started_ms: 0;
}

int64_t
zjq_jobentry_finished_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->finished_ms: 0;
}

int64_t
zjq_jobentry_expires_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->expires_ms: 0;
}

double
zjq_jobentry_progress (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->progress: -1;
}

const zjq_history_t *
zjq_jobentry_history (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->history: NULL;
}

int64_t
zjq_jobentry_job_timeout_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->job_timeout == ZJQ_DURATION_SIDE? entry->side->job_timeout_ms
                                                  : s_duration_ms (entry->job_timeout);
}

int64_t
zjq_jobentry_result_ttl_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->result_ttl == ZJQ_DURATION_SIDE? entry->side->result_ttl_ms
                                                 : s_duration_ms (entry->result_ttl);
}

const char *
zjq_jobentry_owner (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->owner && !entry->owner->connection? entry->owner->text: "";
}

const char *
zjq_jobentry_key (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->key: NULL;
}

const char *
zjq_jobentry_error (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->error: NULL;
}

zjq_jobbytes_t
zjq_jobentry_result (const zjq_jobentry_t *entry)
{
    assert (entry);
    zjq_jobbytes_t bytes = { NULL, 0, NULL };
    if (entry->flags & ZJQ_JOBENTRY_RESULT) {
        bytes.data = entry->payload;
        bytes.size = entry->payload_size;
    }
    else
    if (entry->side && entry->side->result) {
        bytes.frame = entry->side->result;
        bytes.data = zframe_data (bytes.frame);
        bytes.size = zframe_size (bytes.frame);
    }
    return bytes;
}

zjq_jobbytes_t
zjq_jobentry_payload (const zjq_jobentry_t *entry)
{
    assert (entry);
    zjq_jobbytes_t bytes = { NULL, 0, NULL };
    if (entry->flags & ZJQ_JOBENTRY_FRAME) {
        bytes.frame = zjq_jobentry_frame (entry);
        bytes.data = zframe_data (bytes.frame);
        bytes.size = zframe_size (bytes.frame);
    }
    else
    if (!(entry->flags & ZJQ_JOBENTRY_NOPAY)) {
        bytes.data = entry->payload;
        bytes.size = entry->payload_size;
    }
    return bytes;
}

//  --------------------------------------------------------------------------
//  The worker and progress of a running job

zjq_peer_t *
zjq_jobentry_peer (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->peer: NULL;
}

uint32_t
zjq_jobentry_peer_slot (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->peer_slot: UINT32_MAX;
}

void
zjq_jobentry_set_peer (zjq_jobentry_t *entry, zjq_peer_t *peer, uint32_t slot)
{
    assert (entry);
    assert (entry->state == ZJQ_STATE_RUNNING);
    entry->side->peer = peer;
    entry->side->peer_slot = slot;
}

int
zjq_jobentry_set_progress (zjq_jobentry_t *entry, double progress, const char *message)
{
    assert (entry);
    assert (entry->state == ZJQ_STATE_RUNNING);
    zjq_jobside_t *side = entry->side;
    side->progress = progress;
    if (message) {
        char *copy = strdup (message);
        if (!copy)
            return -1;
        free (side->progress_message);
        side->progress_message = copy;
    }
    return 0;
}




//  --------------------------------------------------------------------------
//  Self test (the entries through the table: zjq_jobtable_test)

void
zjq_jobentry_test (bool verbose)
{
    //  A small entry: payload inline, no side block until needed
    zjq_jobentry_t *entry = zjq_jobentry_new (3);
    assert (entry && !entry->side && entry->payload_size == 3);
    assert (entry->queue_index == ZJQ_JOBENTRY_NONE);
    memcpy (entry->payload, "abc", 3);
    entry->state = ZJQ_STATE_QUEUED;
    assert (zjq_jobentry_payload (entry).size == 3 && !zjq_jobentry_payload (entry).frame);
    assert (zjq_jobentry_result (entry).data == NULL);
    assert (zjq_jobentry_attempt (entry) == 0 && zjq_jobentry_started_ms (entry) == 0);
    assert (zjq_jobentry_key (entry) == NULL && zjq_jobentry_progress (entry) < 0);
    assert (zjq_jobentry_waiter_count (entry) == 0 && !zjq_jobentry_peer (entry));
    //  Durations and attempt counts that do not fit go to the side block
    assert (zjq_jobentry_set_duration (entry, &entry->job_timeout, 5000, true) == 0);
    assert (!entry->side && zjq_jobentry_job_timeout_ms (entry) == 5000);
    //  Whole units of ms, s, min or h below 16384 are coded in 16 bits
    int64_t coded [] = { 0, 1, 16383, 16000, 1800 * 1000, 3600 * 1000, 16383 * 1000LL,
                         7 * 24 * 3600 * 1000LL, 16382 * 3600 * 1000LL };
    for (size_t index = 0; index < sizeof (coded) / sizeof (coded [0]); index++) {
        assert (zjq_jobentry_set_duration (entry, &entry->result_ttl, coded [index], false) == 0);
        assert (!entry->side && zjq_jobentry_result_ttl_ms (entry) == coded [index]);
    }
    assert (zjq_jobentry_set_duration (entry, &entry->job_timeout, 5000, true) == 0);
    assert (zjq_jobentry_set_duration (entry, &entry->result_ttl, 16383 * 3600 * 1000LL + 1,
                                       false) == 0);
    assert (entry->side && zjq_jobentry_result_ttl_ms (entry) == 16383 * 3600 * 1000LL + 1);
    assert (zjq_jobentry_job_timeout_ms (entry) == 5000);
    assert (zjq_jobentry_set_duration (entry, &entry->job_timeout, 16385, true) == 0);
    assert (entry->job_timeout == ZJQ_DURATION_SIDE && zjq_jobentry_job_timeout_ms (entry) == 16385);
    assert (zjq_jobentry_set_duration (entry, &entry->result_ttl, INT64_C (1) << 40,
                                       false) == 0);
    assert (entry->side && zjq_jobentry_result_ttl_ms (entry) == INT64_C (1) << 40);
    assert (zjq_jobentry_set_attempts (entry, 2, 70000) == 0);
    assert (zjq_jobentry_attempt (entry) == 2 && zjq_jobentry_max_attempts (entry) == 70000);
    //  Waiters: no duplicates, keys kept, cleared on demand
    assert (zjq_jobentry_add_waiter (entry, "client-a", 8, "KEY") == 0);
    assert (zjq_jobentry_add_waiter (entry, "client-a", 8, NULL) == 1);
    assert (zjq_jobentry_add_waiter (entry, "b", 1, NULL) == 0);
    assert (zjq_jobentry_add_waiter (entry, "", 0, NULL) == -1);
    assert (zjq_jobentry_waiter_count (entry) == 2);
    char key [8];
    size_t size;
    const byte *id = zjq_jobentry_waiter (entry, 0, &size, key, sizeof (key));
    assert (size == 8 && memcmp (id, "client-a", 8) == 0 && streq (key, "KEY"));
    id = zjq_jobentry_waiter (entry, 1, &size, key, sizeof (key));
    assert (size == 1 && *id == 'b' && streq (key, ""));
    zjq_jobentry_clear_waiters (entry);
    assert (zjq_jobentry_waiter_count (entry) == 0);
    //  The job ends: the payload goes, a small result takes its place
    size_t room = zjq_jobentry_drop_payload (entry);
    assert (room == 3 && zjq_jobentry_payload (entry).data == NULL);
    assert (zjq_jobentry_store_result (entry, room, NULL, "ok", 2) == 0);
    assert (zjq_jobentry_result (entry).size == 2 && !zjq_jobentry_result (entry).frame);
    zjq_jobentry_side_free (&entry->side);
    free (entry);
    //  A large payload is a frame
    entry = zjq_jobentry_new (ZJQ_JOBENTRY_INLINE_MAX + 1);
    assert (entry && (entry->flags & ZJQ_JOBENTRY_FRAME));
    zframe_t *frame = zframe_new (NULL, ZJQ_JOBENTRY_INLINE_MAX + 1);
    zjq_jobentry_set_frame (entry, frame);
    assert (zjq_jobentry_frame (entry) == frame);
    assert (zjq_jobentry_payload (entry).frame == frame);
    assert (zjq_jobentry_drop_payload (entry) == sizeof (zframe_t *));   //  frame freed
    free (entry);
    if (verbose)
        printf ("(jobentry ok) ");
}
