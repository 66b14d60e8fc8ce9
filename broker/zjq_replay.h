/*  zjq_replay.h: folding a stream of journal records into the live jobs.

    A store's replay feeds every record it reads, in order, to
    zjq_replay_apply, which decodes it with the record codec (zjq_record.h)
    and folds it into the jobs it holds: a JOB record (re)places a job, a
    STATE or ATTEMPT record changes one, a REMOVE drops one; QUEUE and
    GENERATION records are kept aside. zjq_replay_settle then requeues or
    fails the jobs that were running and drops expired outcomes, and
    zjq_replay_restore rebuilds the job table through its one apply path
    (zjq_jobtable_restore, via the caller's function, which also puts each
    queued job in its queue) in submission order, with the generations and
    the paused queues.

    Knows no file: any store that can give the records (or whole JOB
    records, as a rewrite holds them) can rebuild a table with it.         */

#ifndef ZJQ_REPLAY_H_INCLUDED
#define ZJQ_REPLAY_H_INCLUDED

#include "zjq_job.h"

typedef struct _zjq_replay_t zjq_replay_t;
typedef struct _zjq_jobtable_t zjq_jobtable_t;

//  Given each live job by zjq_replay_restore, in submission order. job is a
//  record the callee takes over: its key, error, progress_message, payload,
//  result and history become the callee's (zjq_jobtable_restore takes them),
//  and it must point job->queue at a string that outlives the job
//  (queue_name does not).
typedef void (zjq_replay_restore_fn) (void *arg, zjq_job_t *job, const char *queue_name);

//  Create an empty fold. Returns NULL if out of memory.
zjq_replay_t *
    zjq_replay_new (void);

//  Destroy the fold and the jobs it still holds; idempotent; nulls the
//  pointer.
void
    zjq_replay_destroy (zjq_replay_t **self_p);

//  Apply one well-framed record: its type and body bytes. STATE, ATTEMPT
//  and REMOVE for an id with no JOB record before them are ignored (the
//  start of a rewritten file). Returns NULL, or what is wrong with the
//  record (then nothing changed), with *fatal set if no salvage can help
//  (a record version newer than this broker reads).
const char *
    zjq_replay_apply (zjq_replay_t *self, int type, const byte *body, size_t size,
                      bool *fatal);

//  After the last record: jobs that were running are requeued with that
//  attempt counted, or fail if it was their last; ended jobs whose outcome
//  expired by now (wall clock ms) are dropped (*dropped_p says how many).
//  Returns how many were running.
size_t
    zjq_replay_settle (zjq_replay_t *self, int64_t now, size_t *dropped_p);

//  Jobs the fold holds.
size_t
    zjq_replay_size (zjq_replay_t *self);

//  The largest generation seen (0 if none). A new broker generation must be
//  greater.
uint64_t
    zjq_replay_max_generation (zjq_replay_t *self);

//  Hand the jobs to fn in submission order, then give the table every
//  generation seen except its own (so that ids of earlier generations
//  answer "expired") and the paused queues (zjq_jobtable_set_paused). The
//  fold is empty afterwards. Returns the number of jobs handed over.
size_t
    zjq_replay_restore (zjq_replay_t *self, zjq_jobtable_t *table,
                        zjq_replay_restore_fn *fn, void *arg);

//  Self test
void
    zjq_replay_test (bool verbose);

#endif
