/*  zjq_store.h: where the broker keeps its jobs beyond memory.

    A store learns of every change of the job table through the table's
    change hook (zjq_jobtable.h), which it sets itself at start; the broker
    loop calls zjq_store_flush once per turn to write what the turn
    appended, and holds each promise to a client (ACCEPTED, DONE, ...) until
    zjq_store_durable reaches the LSN that zjq_store_lsn gave when the
    promise was made. At start the store replays what it holds into a new
    table (zjq_store_restore, through the table's one apply path), and it
    rewrites its live state from the table when it wants to (tick).

    Implementations: the file journal (zjq_store_new_file, zjq_journal.h)
    and memory only (zjq_store_new_memory: nothing is kept, every record is
    durable at once, so nothing is held). Another store (a database) is
    another zjq_store_ops_t: the table, the loop and the handlers do not
    change. The hot path (an append per change) goes from the table's hook
    straight into the implementation; the calls here are per loop turn or
    per reply.                                                             */

#ifndef ZJQ_STORE_H_INCLUDED
#define ZJQ_STORE_H_INCLUDED

#include "zjq_job.h"
#include "zjq_replay.h"
#include "zjq_journal.h"

typedef struct _zjq_store_t zjq_store_t;

//  What a store says about itself for STATS; read-only for callers.
typedef struct {
    const char *path;           //  where it keeps the jobs, or NULL: memory only
    const char *policy;         //  its durability promise ("always", ...), or ""
    uint64_t bytes;             //  bytes it holds
    uint64_t live_bytes;        //  bytes of the last rewrite (the live state then)
    uint64_t records;           //  records appended since start
    uint64_t compactions;       //  rewrites completed since start
    uint64_t replayed;          //  records read at start
} zjq_store_stats_t;

//  An implementation. impl is the implementation's object; every function
//  has the contract of the zjq_store_ function of the same name below.
typedef struct {
    const char *name;                                   //  "file", "memory"
    void (*destroy) (void **impl_p);
    int (*replay) (void *impl);
    uint64_t (*max_generation) (void *impl);
    size_t (*restore) (void *impl, zjq_jobtable_t *table, zjq_replay_restore_fn *fn,
                       void *arg);
    int (*start) (void *impl, zjq_jobtable_t *table);
    uint64_t (*lsn) (void *impl);
    uint64_t (*durable) (void *impl);
    void (*flush) (void *impl);
    int (*fd) (void *impl);
    void (*process) (void *impl);
    int64_t (*tick) (void *impl, zjq_jobtable_t *table);
    bool (*healthy) (void *impl, const char **reason_p);
    const char *(*last_error) (void *impl);
    int (*sync_now) (void *impl);
    void (*stats) (void *impl, zjq_store_stats_t *stats);
} zjq_store_ops_t;

//  A store of an implementation; takes impl (destroyed with the store, also
//  if this fails). Returns NULL if out of memory.
zjq_store_t *
    zjq_store_new (const zjq_store_ops_t *ops, void *impl);

//  The file journal in config->dir (zjq_journal_new: lock, open). Returns
//  NULL after logging why.
zjq_store_t *
    zjq_store_new_file (const zjq_journal_config_t *config);

//  Memory only: nothing survives the broker. Returns NULL if out of memory.
zjq_store_t *
    zjq_store_new_memory (void);

//  Flush, sync and close the store, and stop being the table's hook;
//  idempotent; nulls the pointer. Destroy it before the table.
void
    zjq_store_destroy (zjq_store_t **self_p);

//  The implementation's name ("file", "memory").
const char *
    zjq_store_name (zjq_store_t *self);

//  Read what the store holds (before there is a table). Returns 0, or -1
//  after logging why the broker must not start.
int
    zjq_store_replay (zjq_store_t *self);

//  The largest broker generation the store has seen (0 if none).
uint64_t
    zjq_store_max_generation (zjq_store_t *self);

//  Rebuild the table from what was replayed: fn gets each live job in
//  submission order (and calls zjq_jobtable_restore), the table the earlier
//  generations and the paused queues. Returns the number of jobs.
size_t
    zjq_store_restore (zjq_store_t *self, zjq_jobtable_t *table,
                       zjq_replay_restore_fn *fn, void *arg);

//  Start keeping the table (restored, with its generation): from now on
//  the store is the table's change hook. Returns 0, or -1 if it cannot run
//  (a store that cannot write starts unhealthy instead, and retries).
int
    zjq_store_start (zjq_store_t *self, zjq_jobtable_t *table);

//  The LSN of the last record appended, and the LSN up to which every
//  record is as durable as the store promises. A promise made at lsn may be
//  kept once durable >= lsn.
uint64_t
    zjq_store_lsn (zjq_store_t *self);
uint64_t
    zjq_store_durable (zjq_store_t *self);

//  Write what this loop turn appended. Call it once per turn, before polling.
void
    zjq_store_flush (zjq_store_t *self);

//  A descriptor that becomes readable when the store has news (durable LSN,
//  failures), or -1 if it never has: poll it and call zjq_store_process.
int
    zjq_store_fd (zjq_store_t *self);
void
    zjq_store_process (zjq_store_t *self);

//  Housekeeping, once per loop turn (a rewrite, a retry). Returns the
//  longest the loop may sleep before calling it again (ms; 0: work pends).
int64_t
    zjq_store_tick (zjq_store_t *self, zjq_jobtable_t *table);

//  True if the store can take new records; else *reason_p (if given) says
//  why (static). The broker rejects new jobs while it is not.
bool
    zjq_store_healthy (zjq_store_t *self, const char **reason_p);

//  The last error seen, "" if none.
const char *
    zjq_store_last_error (zjq_store_t *self);

//  Block until everything appended is durable (shutdown). Returns 0, or -1.
int
    zjq_store_sync_now (zjq_store_t *self);

//  What the store says about itself (valid until the next call).
const zjq_store_stats_t *
    zjq_store_stats (zjq_store_t *self);

//  Self test: one scenario against the memory and the file store
void
    zjq_store_test (bool verbose);

#endif
