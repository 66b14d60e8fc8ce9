/*  zjq_history.c: attempt histories and the dead-letter list. See
    zjq_history.h.                                                          */

#include "zjq_history.h"
#include "zjq_mp.h"
#include "zjq_util.h"
#include <czmq.h>
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <string.h>

zjq_history_t *
zjq_history_new (int budget)
{
    zjq_history_t *self = (zjq_history_t *) calloc (1, sizeof (zjq_history_t));
    if (self) {
        self->budget = budget;
        self->bytes = sizeof (zjq_history_t);
    }
    return self;
}

static void
s_attempt_clear (zjq_attempt_t *attempt)
{
    free (attempt->error);
    free (attempt->worker);
    attempt->error = attempt->worker = NULL;
}

//  Bytes an attempt's strings take (with their NULs)
static size_t
s_attempt_bytes (const zjq_attempt_t *attempt)
{
    return (attempt->error? strlen (attempt->error) + 1: 0)
         + (attempt->worker? strlen (attempt->worker) + 1: 0);
}

void
zjq_history_destroy (zjq_history_t **self_p)
{
    assert (self_p);
    zjq_history_t *self = *self_p;
    if (!self)
        return;
    assert (!self->owner);      //  still on a dead-letter list
    for (uint32_t index = 0; index < self->count; index++)
        s_attempt_clear (&self->attempts [index]);
    free (self->attempts);
    free (self);
    *self_p = NULL;
}

//  A copy of text cut to ZJQ_HISTORY_TEXT_MAX bytes (not inside a UTF-8
//  sequence), or NULL for NULL; *failed set if out of memory.
static char *
s_text_copy (const char *text, bool *failed)
{
    if (!text)
        return NULL;
    size_t len = strlen (text);
    if (len > ZJQ_HISTORY_TEXT_MAX) {
        len = ZJQ_HISTORY_TEXT_MAX;
        while (len > 0 && ((unsigned char) text [len] & 0xC0) == 0x80)
            len--;
    }
    char *copy = strndup (text, len);
    if (!copy)
        *failed = true;
    return copy;
}

int
zjq_history_add (zjq_history_t *self, const zjq_attempt_t *attempt)
{
    assert (self);
    assert (attempt);
    bool failed = false;
    zjq_attempt_t copy = *attempt;
    copy.error = s_text_copy (attempt->error, &failed);
    copy.worker = s_text_copy (attempt->worker, &failed);
    if (!failed && self->count == self->max && self->count < ZJQ_HISTORY_KEEP) {
        uint32_t max = self->max? self->max * 2: 4;
        if (max > ZJQ_HISTORY_KEEP)
            max = ZJQ_HISTORY_KEEP;
        zjq_attempt_t *attempts =
            (zjq_attempt_t *) realloc (self->attempts, max * sizeof (zjq_attempt_t));
        if (attempts) {
            self->bytes += (max - self->max) * sizeof (zjq_attempt_t);
            self->attempts = attempts;
            self->max = max;
        }
        else
            failed = true;
    }
    if (failed) {
        s_attempt_clear (&copy);
        return -1;
    }
    if (self->count == ZJQ_HISTORY_KEEP) {
        //  Keep the latest: drop the oldest
        self->bytes -= s_attempt_bytes (&self->attempts [0]);
        s_attempt_clear (&self->attempts [0]);
        memmove (self->attempts, self->attempts + 1, (self->count - 1) * sizeof (zjq_attempt_t));
        self->count--;
        self->dropped++;
    }
    self->attempts [self->count++] = copy;
    self->bytes += s_attempt_bytes (&copy);
    return 0;
}

const zjq_attempt_t *
zjq_history_last (zjq_history_t *self)
{
    assert (self);
    return self->count? &self->attempts [self->count - 1]: NULL;
}


//  --------------------------------------------------------------------------
//  The dead-letter list

void
zjq_deadlist_insert (zjq_deadlist_t *list, zjq_history_t *history, void *owner,
                     size_t extra_bytes)
{
    assert (list && history && owner);
    assert (!history->owner);
    //  Failures mostly come in order: walk back from the newest
    zjq_history_t *before = list->newest;
    while (before && before->failed_ms > history->failed_ms)
        before = before->older;
    history->older = before;
    history->newer = before? before->newer: list->oldest;
    if (history->newer)
        history->newer->older = history;
    else
        list->newest = history;
    if (before)
        before->newer = history;
    else
        list->oldest = history;
    history->owner = owner;
    list->count++;
    list->bytes += history->bytes + extra_bytes;
}

void
zjq_deadlist_remove (zjq_deadlist_t *list, zjq_history_t *history, size_t extra_bytes)
{
    assert (list && history);
    assert (history->owner);
    if (history->older)
        history->older->newer = history->newer;
    else
        list->oldest = history->newer;
    if (history->newer)
        history->newer->older = history->older;
    else
        list->newest = history->older;
    history->older = history->newer = NULL;
    history->owner = NULL;
    list->count--;
    list->bytes -= history->bytes + extra_bytes;
}

bool
zjq_deadlist_contains (zjq_deadlist_t *list, zjq_history_t *history)
{
    assert (list);
    return history && history->owner != NULL;
}


//  --------------------------------------------------------------------------
//  Packing (the journal's records and the replies)

const zjq_history_keys_t zjq_history_journal_keys = {
    "n", "err", "sa", "fi", "dur", "ec", "sig", "w"
};
const zjq_history_keys_t zjq_history_wire_keys = {
    "attempt", "error", "started_ms", "ended_ms", "duration_ms", "exit_code", "signal", "worker"
};

void
zjq_history_pack_attempt (msgpack_packer *packer, const zjq_attempt_t *attempt,
                          const zjq_history_keys_t *keys)
{
    assert (packer && attempt && keys);
    size_t count = 5 + (attempt->exit_code >= 0) + (attempt->signal > 0) + (attempt->worker != NULL);
    msgpack_pack_map (packer, count);
    zjq_mp_entry_int (packer, keys->attempt, attempt->attempt);
    zjq_mp_entry_str (packer, keys->error, attempt->error? attempt->error: "");
    zjq_mp_entry_int (packer, keys->started_ms, attempt->started_ms);
    zjq_mp_entry_int (packer, keys->ended_ms, attempt->ended_ms);
    zjq_mp_entry_int (packer, keys->duration_ms, attempt->duration_ms);
    if (attempt->exit_code >= 0)
        zjq_mp_entry_int (packer, keys->exit_code, attempt->exit_code);
    if (attempt->signal > 0)
        zjq_mp_entry_int (packer, keys->signal, attempt->signal);
    if (attempt->worker)
        zjq_mp_entry_str (packer, keys->worker, attempt->worker);
}

void
zjq_history_pack_attempts (msgpack_packer *packer, const zjq_history_t *self,
                           const zjq_history_keys_t *keys)
{
    assert (packer && self && keys);
    msgpack_pack_array (packer, self->count);
    for (uint32_t index = 0; index < self->count; index++)
        zjq_history_pack_attempt (packer, &self->attempts [index], keys);
}


//  --------------------------------------------------------------------------
//  Self test

void
zjq_history_test (bool verbose)
{
    zjq_history_t *history = zjq_history_new (3);
    assert (history && history->budget == 3 && !zjq_history_last (history));
    char long_error [1000];
    memset (long_error, 'x', sizeof (long_error) - 1);
    long_error [sizeof (long_error) - 1] = 0;
    for (int attempt = 1; attempt <= ZJQ_HISTORY_KEEP + 5; attempt++) {
        zjq_attempt_t item = { .attempt = attempt, .exit_code = attempt % 2? 3: -1,
                               .error = attempt == 1? long_error: "exit status 3",
                               .worker = "host/1/ab", .duration_ms = attempt * 10 };
        assert (zjq_history_add (history, &item) == 0);
    }
    //  The latest are kept, the oldest counted; texts are cut
    assert (history->count == ZJQ_HISTORY_KEEP && history->dropped == 5);
    assert (history->attempts [0].attempt == 6);
    assert (zjq_history_last (history)->attempt == ZJQ_HISTORY_KEEP + 5);
    assert (streq (zjq_history_last (history)->error, "exit status 3"));
    zjq_history_t *cut = zjq_history_new (1);
    zjq_attempt_t item = { .attempt = 1, .error = long_error, .exit_code = -1 };
    assert (zjq_history_add (cut, &item) == 0);
    assert (strlen (cut->attempts [0].error) == ZJQ_HISTORY_TEXT_MAX);
    assert (cut->attempts [0].worker == NULL);

    //  The list keeps failure order, whatever the insertion order
    zjq_deadlist_t list = { 0 };
    int owners [3];
    history->failed_ms = 200;
    cut->failed_ms = 100;
    zjq_deadlist_insert (&list, history, &owners [0], 10);
    zjq_deadlist_insert (&list, cut, &owners [1], 20);
    assert (list.count == 2 && list.oldest == cut && list.newest == history);
    assert (list.bytes == history->bytes + cut->bytes + 30);
    zjq_history_t *third = zjq_history_new (2);
    third->failed_ms = 300;
    zjq_deadlist_insert (&list, third, &owners [2], 0);
    assert (list.newest == third && third->older == history && history->older == cut);
    zjq_deadlist_remove (&list, history, 10);
    assert (cut->newer == third && third->older == cut && list.count == 2);
    assert (!zjq_deadlist_contains (&list, history) && zjq_deadlist_contains (&list, cut));
    zjq_deadlist_remove (&list, cut, 20);
    zjq_deadlist_remove (&list, third, 0);
    assert (list.count == 0 && list.bytes == 0 && !list.oldest && !list.newest);
    zjq_history_destroy (&history);
    zjq_history_destroy (&cut);
    zjq_history_destroy (&third);
    assert (history == NULL);

    //  One packer, two sets of keys: a full attempt is a map of 8
    zjq_attempt_t full = { .attempt = 2, .exit_code = 1, .signal = 9, .error = "e",
                           .worker = "w1", .duration_ms = 5 };
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    zjq_history_pack_attempt (&packer, &full, &zjq_history_wire_keys);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert (msgpack_unpack_next (&unpacked, buffer.data, buffer.size, NULL)
            == MSGPACK_UNPACK_SUCCESS);
    assert (unpacked.data.type == MSGPACK_OBJECT_MAP && unpacked.data.via.map.size == 8);
    const msgpack_object *key = &unpacked.data.via.map.ptr [7].key;
    assert (key->via.str.size == 6 && memcmp (key->via.str.ptr, "worker", 6) == 0);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_clear (&buffer);
    full.exit_code = -1;
    full.signal = 0;
    zjq_history_pack_attempt (&packer, &full, &zjq_history_journal_keys);
    msgpack_unpacked_init (&unpacked);
    assert (msgpack_unpack_next (&unpacked, buffer.data, buffer.size, NULL)
            == MSGPACK_UNPACK_SUCCESS);
    assert (unpacked.data.via.map.size == 6);
    key = &unpacked.data.via.map.ptr [0].key;
    assert (key->via.str.size == 1 && key->via.str.ptr [0] == 'n');
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    if (verbose)
        printf ("(history ok) ");
}
