/*  zjq_journal.h: the broker's append-only journal (zjq-broker --journal).

    Every change that matters to a job (submit, dispatch, requeue, end,
    removal, a failed attempt, a paused queue) is appended as a record: the
    journal is the job table's change hook (zjq_journal_start sets it), and
    that hook is its only input. On start the journal is replayed into
    the job table, then rewritten to hold only live state. It is the first
    store (zjq_store.h: the broker uses it through that interface). The
    file format is described at the top of zjq_record.c (the record codec);
    the file is zjq_journal.c, rewrites zjq_journal_compact.c, reading it
    back zjq_journal_replay.c with the fold of zjq_replay.c.

    Durability. Appends go to a memory buffer and cost no system call. The
    broker calls zjq_journal_flush once per batch of messages, which writes
    the buffer with one write(). A sync thread calls fdatasync, by group
    commit: a sync starts as soon as something written is not yet synced and
    the disk is free (no sync running), and covers everything written up to
    its start; what is written while it runs goes into the next one
    (ZJQ_FSYNC_ALWAYS, the default). ZJQ_FSYNC_INTERVAL is the same with a
    bound on how often: two syncs start at least interval ms apart.
    ZJQ_FSYNC_NEVER never syncs (the data is in the page cache, which
    survives a crash of the broker but not of the machine). Each record appended
    gets the next LSN (zjq_journal_lsn); zjq_journal_durable says up to which LSN the policy's promise holds,
    and the broker holds client replies until then. The sync thread reports
    through a file descriptor that the broker polls.

    Compaction. When the file outgrows max(compact_size, 2 x the live bytes
    of the last rewrite), a new file is written next to it, a bounded number
    of jobs per loop turn, while every new record goes to both files. When it
    holds every live job it is synced and renamed over the journal.

    Failure. A failed write or sync (disk full, I/O error) marks the journal
    unhealthy: zjq_journal_healthy is false and says why, the broker rejects
    new jobs, and the journal keeps the state in memory and retries once a
    second by rewriting the live state into a fresh file (the kernel may have
    dropped the pages that failed, so the old file is not trusted again).
    Once that rewrite is durable the journal is healthy again.                */

#ifndef ZJQ_JOURNAL_H_INCLUDED
#define ZJQ_JOURNAL_H_INCLUDED

#include "zjq_job.h"
#include "zjq_replay.h"
#include <sys/types.h>

typedef struct _zjq_journal_t zjq_journal_t;

typedef enum {
    ZJQ_FSYNC_ALWAYS = 0,       //  group commit: sync when the disk is free; replies wait
    ZJQ_FSYNC_INTERVAL = 1,     //  ditto, sync starts at least interval ms apart
    ZJQ_FSYNC_NEVER = 2         //  write () only: survives a process crash, not power loss
} zjq_fsync_policy_t;

//  Settings for a journal.
typedef struct {
    const char *dir;            //  directory for journal.zjq (created if missing)
    zjq_fsync_policy_t policy;  //  when to fdatasync
    int64_t interval_ms;        //  for ZJQ_FSYNC_INTERVAL
    uint64_t compact_size;      //  smallest file size that triggers compaction
    bool salvage;               //  replay past corrupt records instead of refusing
} zjq_journal_config_t;

//  Counters for STATS; read-only for callers.
typedef struct {
    uint64_t bytes;             //  size of journal.zjq
    uint64_t live_bytes;        //  size of the last rewrite (live state then)
    uint64_t records;           //  records appended since start
    uint64_t compactions;       //  rewrites completed since start
    uint64_t replayed;          //  records read at start
} zjq_journal_stats_t;

//  pwrite and fdatasync, replaceable for fault injection. Same contracts as
//  the system calls (-1 and errno on error).
typedef ssize_t (zjq_journal_write_fn) (int fd, const void *data, size_t size, off_t offset);
typedef int (zjq_journal_sync_fn) (int fd);

//  Open the journal in config->dir: take its lock (two brokers cannot share
//  a directory), delete a half-written compaction file, and open or create
//  the journal file. Nothing is read yet. Returns NULL after logging why.
zjq_journal_t *
    zjq_journal_new (const zjq_journal_config_t *config);

//  Flush, sync and close the journal and release its lock; idempotent;
//  nulls the pointer. An unfinished compaction is abandoned.
void
    zjq_journal_destroy (zjq_journal_t **self_p);

//  Read the journal. A torn record at the end (a crash mid-write) is logged
//  and cut off. A corrupt record followed by good ones is logged with its
//  offset and makes this fail, unless the journal was opened with salvage:
//  then bad records are skipped and logged. Jobs that were running are
//  requeued with that attempt counted, or fail if it was their last; ended
//  jobs whose outcome has expired are dropped. Returns 0, or -1 after
//  logging why (the file is left as it was, except for a torn tail).
int
    zjq_journal_replay (zjq_journal_t *self);

//  The largest generation the journal has seen (0 if none). A new broker
//  generation must be greater.
uint64_t
    zjq_journal_max_generation (zjq_journal_t *self);

//  Hand the replayed jobs to fn in submission order, and every generation
//  seen with the last sequence it issued to the table (so that ids of
//  earlier generations answer "expired", not "unknown"). Frees the replayed
//  state. Returns the number of jobs handed over.
size_t
    zjq_journal_restore (zjq_journal_t *self, zjq_jobtable_t *table,
                         zjq_replay_restore_fn *fn, void *arg);

//  Start journaling the table (already restored, with its generation):
//  rewrite the journal to hold the table's live state and this generation,
//  and start the sync thread. From now on the journal appends the table's
//  changes (it sets itself as the table's change hook until destroyed). If
//  the rewrite fails, the journal starts unhealthy and retries. Returns 0,
//  or -1 if the sync thread cannot be started.
int
    zjq_journal_start (zjq_journal_t *self, zjq_jobtable_t *table);

//  The LSN of the last record appended.
uint64_t
    zjq_journal_lsn (zjq_journal_t *self);

//  Every record up to this LSN is as durable as the policy promises.
uint64_t
    zjq_journal_durable (zjq_journal_t *self);

//  Write what was appended since the last flush (one write per file) and
//  wake the sync thread. Call it after each batch of work, before polling.
void
    zjq_journal_flush (zjq_journal_t *self);

//  The descriptor that becomes readable when the sync thread has news;
//  poll it and call zjq_journal_process.
int
    zjq_journal_fd (zjq_journal_t *self);

//  Take the sync thread's news: durable LSN, a finished rewrite, errors.
void
    zjq_journal_process (zjq_journal_t *self);

//  Housekeeping, once per loop turn: start a compaction when the file has
//  outgrown the live state (or a retry is due while unhealthy), and write
//  the next slice of jobs into it. Returns the longest the loop may sleep
//  before calling it again (ms; 0 = work is pending).
int64_t
    zjq_journal_tick (zjq_journal_t *self, zjq_jobtable_t *table);

//  True if the journal can take new records. Otherwise *reason_p (if given)
//  is a static description like "No space left on device".
bool
    zjq_journal_healthy (zjq_journal_t *self, const char **reason_p);

//  The last error seen, "" if none (static until the next error).
const char *
    zjq_journal_last_error (zjq_journal_t *self);

//  The journal file's path.
const char *
    zjq_journal_path (zjq_journal_t *self);

//  The fsync policy's name ("always", "interval", "never").
const char *
    zjq_journal_policy_name (zjq_journal_t *self);

//  Parse a policy name; returns 0, or -1 if it is none.
int
    zjq_journal_policy_parse (const char *name, zjq_fsync_policy_t *policy);

//  Counters.
const zjq_journal_stats_t *
    zjq_journal_stats (zjq_journal_t *self);

//  Block until everything appended is written and synced (shutdown).
//  Returns 0, or -1 if it could not be.
int
    zjq_journal_sync_now (zjq_journal_t *self);

//  Replace pwrite and fdatasync (fault injection in tests; NULL restores
//  the system call). Set them before zjq_journal_start.
void
    zjq_journal_set_write_fn (zjq_journal_t *self, zjq_journal_write_fn *fn);
void
    zjq_journal_set_sync_fn (zjq_journal_t *self, zjq_journal_sync_fn *fn);

//  Self test
void
    zjq_journal_test (bool verbose);

#endif
