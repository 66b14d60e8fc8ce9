/*  zjq_journal_private.h: the file journal's struct and the helpers its
    files share: zjq_journal.c (the file: open, lock, append buffer, flush,
    the sync thread, failure and retry), zjq_journal_compact.c (rewrites)
    and zjq_journal_replay.c (reading the file back).

    Threads: the broker's loop owns everything here except zjq_jshared_t,
    which it shares with the sync thread under the mutex. The sync thread
    only calls fdatasync, and at the end of a compaction renames the new
    file; it never writes or closes a descriptor.                           */

#ifndef ZJQ_JOURNAL_PRIVATE_H_INCLUDED
#define ZJQ_JOURNAL_PRIVATE_H_INCLUDED

#include "zjq_journal.h"
#include "zjq_record.h"
#include "zjq_replay.h"
#include "zjq_jobtable.h"
#include <pthread.h>

#define ZJQ_JOURNAL_FILE        "journal.zjq"
#define ZJQ_JOURNAL_COMPACT     "journal.zjq.compact"
#define ZJQ_JOURNAL_LOCK        "lock"
#define ZJQ_COMPACT_JOBS        4096        //  jobs rewritten per loop turn
#define ZJQ_COMPACT_BYTES       (4 << 20)   //  bytes rewritten per loop turn
#define ZJQ_RETRY_MS            1000        //  retry of an unhealthy journal

//  One journal file and the bytes not yet written to it
typedef struct {
    int fd;                     //  or -1
    uint64_t offset;            //  bytes in the file: where the buffer goes
    zjq_recbuf_t buf;                //  appended, not written
    uint64_t buffered_lsn;      //  LSN of the last record in buf (or written)
    uint64_t written_lsn;       //  LSN of the last record written
} zjq_jfile_t;

//  State shared with the sync thread, under the mutex
typedef struct {
    int sync_fd;                //  file to fdatasync, -1 when unhealthy
    uint64_t target;            //  LSN written to sync_fd
    uint64_t synced;            //  LSN known durable
    int sync_error;             //  errno of a failed fdatasync, until taken
    bool switch_request;        //  rename the compaction file over the journal
    int switch_fd;              //  its descriptor
    uint64_t switch_lsn;        //  LSN it holds
    bool switch_done;           //  the request was handled, until taken
    bool switched;              //  ... and the file was renamed
    int switch_error;           //  errno if it failed
    bool stop;                  //  the thread must end
} zjq_jshared_t;

struct _zjq_journal_t {
    //  Settings
    char *dir;                  //  the directory
    char *path;                 //  DIR/journal.zjq
    char *compact_path;         //  DIR/journal.zjq.compact
    zjq_fsync_policy_t policy;
    int64_t interval_ms;
    uint64_t compact_size;
    uint64_t live_jobs;         //  jobs in the table when the last rewrite began
    bool salvage;
    zjq_journal_write_fn *write_fn;
    zjq_journal_sync_fn *sync_fn;
    //  Files
    int lock_fd;                //  holds the flock
    int dir_fd;                 //  for fsync after a rename
    int event_fd;               //  the sync thread's news
    zjq_jfile_t main;              //  journal.zjq
    zjq_jfile_t compact;           //  journal.zjq.compact while compacting
    //  Log sequence
    uint64_t lsn;               //  of the last record appended
    uint64_t durable;           //  up to here the policy's promise holds
    //  Health
    bool failed;                //  the journal cannot be written
    int error;                  //  errno of the failure
    char last_error [160];      //  last error seen, for STATS
    int64_t retry_at;           //  monotonic ms of the next recovery attempt
    unsigned retries;           //  recovery attempts since the failure
    //  Compaction
    bool compacting;            //  compact is being written
    bool snapshot_done;         //  every live job is in compact's buffer
    bool switch_requested;      //  the sync thread was asked to rename it
    bool compact_broken;        //  a write to it failed after the request
    int compact_error;          //  ... with this errno
    int64_t compact_retry_at;   //  monotonic ms before which none starts
    zjq_jobtable_t *table;      //  the table being journaled (not owned)
    //  Replay
    zjq_replay_t *replay;       //  the records read, folded (zjq_replay.h)
    //  Sync thread
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    zjq_jshared_t shared;
    zjq_journal_stats_t stats;
};

//  The change hook that appends the table's changes (zjq_journal.c)
extern const zjq_jobtable_hook_t zjq_journal_hook;

//  Write a file's buffer at its offset. Returns 0, or an errno (the buffer
//  is kept; what was written of it is garbage past the file's offset).
int
    zjq_journal_file_write (zjq_journal_t *self, zjq_jfile_t *file);

//  Empty a file's state (not closing its descriptor).
void
    zjq_journal_file_reset (zjq_jfile_t *file);

//  Remember an error for STATS ("what: strerror").
void
    zjq_journal_set_error (zjq_journal_t *self, const char *what, int error);

//  The journal cannot be written: stop writing journal.zjq (replaced by the
//  next successful rewrite), drop its unwritten records, retry later.
void
    zjq_journal_fail (zjq_journal_t *self, const char *what, int error);

//  Give up on the compaction file (not renamed); error is why, 0 for none.
void
    zjq_journal_compact_abort (zjq_journal_t *self, const char *what, int error);

//  The compaction file was renamed over the journal: it is the journal now;
//  lsn is what it holds durably (0 if unknown).
void
    zjq_journal_compact_adopt (zjq_journal_t *self, uint64_t lsn);

//  The sync thread's body (arg is the journal).
void *
    zjq_journal_sync_thread (void *arg);

#endif
