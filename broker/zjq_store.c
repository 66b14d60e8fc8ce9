/*  zjq_store.c: the store interface, and the memory-only store. See
    zjq_store.h; the file journal's adapter is zjq_store_file.c.           */

#include "zjq_store.h"
#include "zjq_jobtable.h"
#include "zjq_queue.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _zjq_store_t {
    const zjq_store_ops_t *ops; //  the implementation
    void *impl;                 //  its object (owned)
    zjq_store_stats_t stats;    //  last zjq_store_stats
};

zjq_store_t *
zjq_store_new (const zjq_store_ops_t *ops, void *impl)
{
    assert (ops && ops->destroy);
    zjq_store_t *self = (zjq_store_t *) calloc (1, sizeof (zjq_store_t));
    if (!self) {
        zjq_log_error ("out_of_memory", "what=%s", "store");
        ops->destroy (&impl);
        return NULL;
    }
    self->ops = ops;
    self->impl = impl;
    return self;
}

void
zjq_store_destroy (zjq_store_t **self_p)
{
    assert (self_p);
    zjq_store_t *self = *self_p;
    if (!self)
        return;
    self->ops->destroy (&self->impl);
    free (self);
    *self_p = NULL;
}

const char *
zjq_store_name (zjq_store_t *self)
{
    assert (self);
    return self->ops->name;
}

int
zjq_store_replay (zjq_store_t *self)
{
    assert (self);
    return self->ops->replay (self->impl);
}

uint64_t
zjq_store_max_generation (zjq_store_t *self)
{
    assert (self);
    return self->ops->max_generation (self->impl);
}

size_t
zjq_store_restore (zjq_store_t *self, zjq_jobtable_t *table, zjq_replay_restore_fn *fn,
                   void *arg)
{
    assert (self);
    assert (table && fn);
    return self->ops->restore (self->impl, table, fn, arg);
}

int
zjq_store_start (zjq_store_t *self, zjq_jobtable_t *table)
{
    assert (self);
    assert (table);
    return self->ops->start (self->impl, table);
}

uint64_t
zjq_store_lsn (zjq_store_t *self)
{
    assert (self);
    return self->ops->lsn (self->impl);
}

uint64_t
zjq_store_durable (zjq_store_t *self)
{
    assert (self);
    return self->ops->durable (self->impl);
}

void
zjq_store_flush (zjq_store_t *self)
{
    assert (self);
    self->ops->flush (self->impl);
}

int
zjq_store_fd (zjq_store_t *self)
{
    assert (self);
    return self->ops->fd (self->impl);
}

void
zjq_store_process (zjq_store_t *self)
{
    assert (self);
    self->ops->process (self->impl);
}

int64_t
zjq_store_tick (zjq_store_t *self, zjq_jobtable_t *table)
{
    assert (self);
    assert (table);
    return self->ops->tick (self->impl, table);
}

bool
zjq_store_healthy (zjq_store_t *self, const char **reason_p)
{
    assert (self);
    return self->ops->healthy (self->impl, reason_p);
}

const char *
zjq_store_last_error (zjq_store_t *self)
{
    assert (self);
    return self->ops->last_error (self->impl);
}

int
zjq_store_sync_now (zjq_store_t *self)
{
    assert (self);
    return self->ops->sync_now (self->impl);
}

const zjq_store_stats_t *
zjq_store_stats (zjq_store_t *self)
{
    assert (self);
    memset (&self->stats, 0, sizeof (self->stats));
    self->stats.policy = "";
    self->ops->stats (self->impl, &self->stats);
    return &self->stats;
}


//  --------------------------------------------------------------------------
//  Memory only: no hook, nothing appended, so the LSN stays 0 and every
//  promise can be kept at once

#define ZJQ_MEMORY_TICK_MS  3600000     //  nothing to do: wake for nothing

static void
s_memory_destroy (void **impl_p)
{
    *impl_p = NULL;             //  the memory store has no object
}

static int
s_memory_replay (void *impl)
{
    (void) impl;
    return 0;
}

static uint64_t
s_memory_zero (void *impl)
{
    (void) impl;
    return 0;
}

static size_t
s_memory_restore (void *impl, zjq_jobtable_t *table, zjq_replay_restore_fn *fn, void *arg)
{
    (void) impl, (void) table, (void) fn, (void) arg;
    return 0;
}

static int
s_memory_start (void *impl, zjq_jobtable_t *table)
{
    (void) impl, (void) table;
    return 0;
}

static void
s_memory_nothing (void *impl)
{
    (void) impl;
}

static int
s_memory_fd (void *impl)
{
    (void) impl;
    return -1;
}

static int64_t
s_memory_tick (void *impl, zjq_jobtable_t *table)
{
    (void) impl, (void) table;
    return ZJQ_MEMORY_TICK_MS;
}

static bool
s_memory_healthy (void *impl, const char **reason_p)
{
    (void) impl;
    if (reason_p)
        *reason_p = NULL;
    return true;
}

static const char *
s_memory_last_error (void *impl)
{
    (void) impl;
    return "";
}

static int
s_memory_sync_now (void *impl)
{
    (void) impl;
    return 0;
}

static void
s_memory_stats (void *impl, zjq_store_stats_t *stats)
{
    (void) impl, (void) stats;  //  path NULL: memory only
}

static const zjq_store_ops_t s_memory_ops = {
    .name = "memory",
    .destroy = s_memory_destroy,
    .replay = s_memory_replay,
    .max_generation = s_memory_zero,
    .restore = s_memory_restore,
    .start = s_memory_start,
    .lsn = s_memory_zero,
    .durable = s_memory_zero,
    .flush = s_memory_nothing,
    .fd = s_memory_fd,
    .process = s_memory_nothing,
    .tick = s_memory_tick,
    .healthy = s_memory_healthy,
    .last_error = s_memory_last_error,
    .sync_now = s_memory_sync_now,
    .stats = s_memory_stats
};

zjq_store_t *
zjq_store_new_memory (void)
{
    return zjq_store_new (&s_memory_ops, NULL);
}


//  --------------------------------------------------------------------------
//  Self test

static zjq_queue_t *s_test_queue;

static void
s_test_restore (void *arg, zjq_job_t *job, const char *queue_name)
{
    assert (streq (queue_name, zjq_queue_name (s_test_queue)));
    job->queue = zjq_queue_name (s_test_queue);
    assert (zjq_jobtable_restore ((zjq_jobtable_t *) arg, job, s_test_queue, 0));
}

//  Open a store: replay, a table of a newer generation, restore, start
static zjq_store_t *
s_test_open (const char *dir, zjq_jobtable_t **table_p)
{
    zjq_journal_config_t config = { .dir = dir, .policy = ZJQ_FSYNC_ALWAYS,
                                    .compact_size = 1 << 20 };
    zjq_store_t *self = dir? zjq_store_new_file (&config): zjq_store_new_memory ();
    assert (self);
    assert (zjq_store_replay (self) == 0);
    *table_p = zjq_jobtable_new (zjq_store_max_generation (self) + 1000);
    assert (*table_p);
    zjq_store_restore (self, *table_p, s_test_restore, *table_p);
    assert (zjq_store_start (self, *table_p) == 0);
    assert (zjq_store_healthy (self, NULL));
    return self;
}

//  Flush and wait (bounded) until everything appended is durable
static void
s_test_settle (zjq_store_t *self)
{
    zjq_store_flush (self);
    int64_t deadline = zjq_mono_ms () + 5000;
    while (zjq_store_durable (self) < zjq_store_lsn (self) && zjq_mono_ms () < deadline) {
        zmq_pollitem_t item = { NULL, zjq_store_fd (self), ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 10);
        zjq_store_process (self);
    }
    assert (zjq_store_durable (self) >= zjq_store_lsn (self));
}

//  The live state of a table, as text (jobs in id order, paused queues)
static void
s_test_paused (void *arg, const char *queue)
{
    strcat ((char *) arg, queue);
    strcat ((char *) arg, ";");
}

static void
s_test_state (zjq_jobtable_t *table, char *text, size_t size)
{
    text [0] = 0;
    assert (zjq_jobtable_scan_start (table) == 0);
    zjq_jobentry_t *entry;
    while ((entry = zjq_jobtable_scan_next (table))) {
        char line [200];
        zjq_jobbytes_t payload = zjq_jobentry_payload (entry);
        snprintf (line, sizeof (line), "%s %s a%d p%zu %s;", zjq_jobentry_id (entry).text,
                  zjq_state_name (zjq_jobentry_state (entry)), zjq_jobentry_attempt (entry),
                  payload.size, zjq_jobentry_key (entry)? zjq_jobentry_key (entry): "-");
        assert (strlen (text) + strlen (line) < size);
        strcat (text, line);
    }
    zjq_jobtable_paused_queues (table, s_test_paused, text);
}

//  The same scenario against a store: append, durable, replay into a fresh
//  table (twice for the file: from the log, then from the rewrite made at
//  start, i.e. a compaction) and compare the live state
static void
s_test_scenario (const char *dir, bool verbose)
{
    zjq_jobtable_t *table;
    zjq_store_t *store = s_test_open (dir, &table);
    if (verbose)
        printf ("(%s) ", zjq_store_name (store));
    zjq_job_t spec = { .max_attempts = 2, .job_timeout_ms = 60000, .result_ttl_ms = 3600000 };
    zjq_jobentry_t *queued = zjq_jobtable_insert_copy (table, &spec, s_test_queue, "one", 3);
    spec.key = "k";
    zjq_jobentry_t *done = zjq_jobtable_insert_copy (table, &spec, s_test_queue, "two", 3);
    spec.key = NULL;
    zjq_jobentry_t *gone = zjq_jobtable_insert_copy (table, &spec, s_test_queue, "three", 5);
    assert (queued && done && gone);
    zjq_jobtable_start (table, done, 0);
    zframe_t *result = zframe_new ("ok", 2);
    zjq_jobtable_finish (table, done, ZJQ_STATE_SUCCEEDED, NULL, &result, 0);
    zjq_jobtable_remove (table, &gone);
    assert (zjq_jobtable_set_paused (table, "held", true) == 0);
    assert (zjq_jobtable_set_paused (table, "brief", true) == 0);
    assert (zjq_jobtable_set_paused (table, "brief", false) == 0);
    uint64_t lsn = zjq_store_lsn (store);
    assert (dir? lsn >= 7: lsn == 0);
    s_test_settle (store);
    assert (zjq_store_durable (store) >= lsn);
    const zjq_store_stats_t *stats = zjq_store_stats (store);
    assert (dir? stats->path && stats->records >= 7: stats->path == NULL);
    char before [2000], after [2000];
    s_test_state (table, before, sizeof (before));
    assert (strstr (before, "held;") && !strstr (before, "brief"));
    assert (zjq_store_sync_now (store) == 0);
    zjq_store_destroy (&store);
    zjq_jobtable_destroy (&table);
    for (int round = 0; round < (dir? 2: 1); round++) {
        store = s_test_open (dir, &table);
        s_test_state (table, after, sizeof (after));
        if (dir)
            assert (streq (before, after));
        else
            assert (streq (after, ""));         //  memory keeps nothing
        zjq_store_destroy (&store);
        zjq_jobtable_destroy (&table);
    }
}

void
zjq_store_test (bool verbose)
{
    s_test_queue = zjq_queue_new ("q");
    assert (s_test_queue);
    s_test_scenario (NULL, verbose);
    char dir [] = "/tmp/zjq_store_test_XXXXXX";
    assert (mkdtemp (dir));
    s_test_scenario (dir, verbose);
    char path [256];
    snprintf (path, sizeof (path), "%s/journal.zjq", dir);
    unlink (path);
    snprintf (path, sizeof (path), "%s/lock", dir);
    unlink (path);
    rmdir (dir);
    zjq_queue_destroy (&s_test_queue);
    if (verbose)
        printf ("(store ok) ");
}
