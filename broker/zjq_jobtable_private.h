/*  zjq_jobtable_private.h: the job table's struct and the helpers its files
    share (zjq_jobtable.c, zjq_jobtable_dead.c, zjq_jobtable_scan.c and the
    self-test). Not for use outside them.                                   */

#ifndef ZJQ_JOBTABLE_PRIVATE_H_INCLUDED
#define ZJQ_JOBTABLE_PRIVATE_H_INCLUDED

#include "zjq_jobtable.h"
#include "zjq_jobentry_private.h"
#include "zjq_heap.h"
#include "zjq_hashtab.h"

#define ZJQ_INDEX_MIN_BITS   10         //  smallest id index: 1024 slots


//  One job of a scan
typedef struct {
    uint64_t order;             //  the entry's order (valid after its removal)
    zjq_jobentry_t *entry;      //  NULL once removed
} s_scan_item_t;

struct _zjq_jobtable_t {
    uint64_t generation;        //  broker start time, Unix ms
    uint64_t next_sequence;     //  sequence of the next id, from 1
    uint64_t next_order;        //  submission order of the next job
    zjq_hashtab_t by_id;        //  (generation, sequence) -> entry
    zhashx_t *by_key;           //  "queue/key" -> entry
    zhashx_t *owners;           //  owner text -> zjq_owner_t (owned)
    zjq_heap_t *deadlines;      //  running (timeout) and ended (expiry) jobs
    zjq_heap_t *results;        //  ended jobs with result bytes, by expiry
    zjq_jobtable_stats_t stats; //  counters
    zjq_jobtable_hook_t hook;   //  the change hook (callbacks NULL if none)
    void *hook_arg;             //  its argument
    zhashx_t *paused;           //  names of the paused queues
    s_scan_item_t *scan;        //  the jobs of a scan, by order, or NULL
    size_t scan_count;          //  items in scan
    size_t scan_next;           //  next item to return
    uint64_t *generations;      //  earlier generations: (generation, last sequence)
    size_t generation_count;    //  pairs in generations
    zjq_deadlist_t dead;        //  failed jobs (dead letters), oldest failure first
    int64_t dead_ttl_ms;        //  a failed job is kept at least this long
};

//  Count a job that becomes (add) or stops being (!add) queued or running:
//  the table's queued bytes, and its submitter's share.
void
    zjq_jobtable_count_active (zjq_jobtable_t *self, zjq_jobentry_t *entry, bool add);

//  Free an entry (its payload, owner reference and side block); nulls it.
void
    zjq_jobtable_entry_free (zjq_jobtable_t *self, zjq_jobentry_t **entry_p);

//  Put an entry in the deadline heap at a new deadline, or move it there;
//  and take it out.
void
    zjq_jobtable_set_deadline (zjq_jobtable_t *self, zjq_jobentry_t *entry, int64_t deadline);
void
    zjq_jobtable_clear_deadline (zjq_jobtable_t *self, zjq_jobentry_t *entry);

//  now + ms without overflow
int64_t
    zjq_jobtable_after (int64_t now, int64_t ms);

//  Count an ended job's result, and put it in the result heap if it has
//  result bytes.
void
    zjq_jobtable_track_result (zjq_jobtable_t *self, zjq_jobentry_t *entry);

//  How long a failed job is kept: the longer of its result TTL and the
//  dead-letter TTL (zjq_jobtable_dead.c).
int64_t
    zjq_jobtable_dead_ttl (zjq_jobtable_t *self, const zjq_jobentry_t *entry);

//  Put a failed job (its side block made) on the dead-letter list, or take
//  it off if it is on it.
void
    zjq_jobtable_dead_link (zjq_jobtable_t *self, zjq_jobentry_t *entry);
void
    zjq_jobtable_dead_unlink (zjq_jobtable_t *self, zjq_jobentry_t *entry);

//  Sort scan items by order (radix sort; qsort if out of memory).
void
    zjq_jobtable_sort_by_order (s_scan_item_t *items, size_t count);

//  A removed entry leaves the running scan (zjq_jobtable_scan.c).
void
    zjq_jobtable_scan_forget (zjq_jobtable_t *self, zjq_jobentry_t *entry);

#endif
