/*  zjq_history.h: the attempt history of a job, and the dead-letter list.

    A job gets a history at its first failed attempt (zjq_job_t.history is
    NULL until then, so jobs that never fail pay one pointer). The history
    records each failed attempt: its number, error, the exit status of an
    --exec process, the duration and the worker; at most ZJQ_HISTORY_KEEP
    attempts (the most recent), with a count of the older ones dropped.

    A job that has failed for good is a dead letter: it keeps its payload and
    its history (so that `zjq retry` can requeue it) and sits on the job
    table's dead-letter list, oldest failure first. The list links live in
    the history, so they cost the other jobs nothing.

    The history is part of the job record: the journal writes it (JOB
    records carry it whole, ATTEMPT records one attempt at a time), and
    replies carry it (JOB_STATUS, FAILED). One packer serves both, with the
    key names of each (zjq_history_journal_keys, zjq_history_wire_keys).    */

#ifndef ZJQ_HISTORY_H_INCLUDED
#define ZJQ_HISTORY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#define ZJQ_HISTORY_KEEP        50      //  attempts kept per job (the latest)
#define ZJQ_HISTORY_TEXT_MAX    256     //  bytes of an attempt's error or worker kept

//  One failed attempt
typedef struct {
    int attempt;                //  1 for the first
    int exit_code;              //  exit status of an --exec process (0..255), or -1
    int signal;                 //  signal that killed the process, or 0
    int64_t started_ms;         //  wall clock, Unix ms; 0 if unknown
    int64_t ended_ms;           //  wall clock, Unix ms; 0 if unknown
    int64_t duration_ms;        //  as the worker measured it, else ended - started; -1 unknown
    char *error;                //  why it failed (at most ZJQ_HISTORY_TEXT_MAX bytes)
    char *worker;               //  id of the worker that ran it, or NULL
} zjq_attempt_t;

typedef struct _zjq_history_t zjq_history_t;

struct _zjq_history_t {
    zjq_attempt_t *attempts;    //  oldest first, count of them
    uint32_t count;
    uint32_t max;               //  allocated
    uint32_t dropped;           //  older attempts no longer kept
    int budget;                 //  attempts a retry grants (the job's own max_attempts)
    uint32_t retries;           //  times `zjq retry` requeued the job
    size_t bytes;               //  memory held by the history (approximate)
    //  Dead-letter list (see zjq_deadlist_t); not persisted
    int64_t failed_ms;          //  when the job failed for good (list order)
    void *owner;                //  the job entry, while on the list
    zjq_history_t *older;
    zjq_history_t *newer;
};

//  The dead-letter list: failed jobs, oldest failure first.
typedef struct {
    zjq_history_t *oldest;
    zjq_history_t *newest;
    uint64_t count;             //  histories on the list
    uint64_t bytes;             //  their bytes plus their jobs' payload bytes
} zjq_deadlist_t;

//  Create an empty history; budget is the job's max_attempts. Returns NULL
//  if out of memory.
zjq_history_t *
    zjq_history_new (int budget);

//  Destroy a history (it must not be on a list); idempotent; nulls the
//  pointer.
void
    zjq_history_destroy (zjq_history_t **self_p);

//  Append a failed attempt. Its strings are copied, cut to
//  ZJQ_HISTORY_TEXT_MAX bytes; past ZJQ_HISTORY_KEEP attempts the oldest is
//  dropped. Returns 0, or -1 if out of memory (the history is unchanged).
int
    zjq_history_add (zjq_history_t *self, const zjq_attempt_t *attempt);

//  The most recent attempt, or NULL if none.
const zjq_attempt_t *
    zjq_history_last (zjq_history_t *self);

//  Put a history on the list, in failed_ms order (ties: after the others),
//  with owner (the job entry) and extra bytes (its payload) counted.
void
    zjq_deadlist_insert (zjq_deadlist_t *list, zjq_history_t *history, void *owner,
                         size_t extra_bytes);

//  Take a history off the list (it must be on it); extra_bytes as given to
//  insert.
void
    zjq_deadlist_remove (zjq_deadlist_t *list, zjq_history_t *history, size_t extra_bytes);

//  True if the history is on a list.
bool
    zjq_deadlist_contains (zjq_deadlist_t *list, zjq_history_t *history);

//  The map keys an attempt is packed with.
typedef struct {
    const char *attempt, *error, *started_ms, *ended_ms, *duration_ms;
    const char *exit_code, *signal, *worker;
} zjq_history_keys_t;

//  The journal's short keys (n, err, sa, fi, dur, ec, sig, w) and the wire's
//  (attempt, error, started_ms, ended_ms, duration_ms, exit_code, signal,
//  worker).
extern const zjq_history_keys_t zjq_history_journal_keys;
extern const zjq_history_keys_t zjq_history_wire_keys;

//  Pack one attempt as a map: attempt, error, started, ended, duration
//  (-1: unknown), and when known exit code, signal, worker.
void
    zjq_history_pack_attempt (msgpack_packer *packer, const zjq_attempt_t *attempt,
                              const zjq_history_keys_t *keys);

//  Pack a history's attempts, oldest first, as an array of such maps.
void
    zjq_history_pack_attempts (msgpack_packer *packer, const zjq_history_t *self,
                               const zjq_history_keys_t *keys);

//  Self test
void
    zjq_history_test (bool verbose);

#endif
