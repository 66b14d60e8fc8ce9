/*  zjq_store_file.c: the file journal (zjq_journal.h) as a store.

    Each operation is the journal's function of the same name; the journal
    sets itself as the table's change hook in zjq_journal_start, so an
    append goes from the table straight into the journal's buffer.        */

#include "zjq_store.h"
#include "zjq_journal.h"
#include <assert.h>

static void
s_destroy (void **impl_p)
{
    zjq_journal_destroy ((zjq_journal_t **) impl_p);
}

static int
s_replay (void *impl)
{
    return zjq_journal_replay ((zjq_journal_t *) impl);
}

static uint64_t
s_max_generation (void *impl)
{
    return zjq_journal_max_generation ((zjq_journal_t *) impl);
}

static size_t
s_restore (void *impl, zjq_jobtable_t *table, zjq_replay_restore_fn *fn, void *arg)
{
    return zjq_journal_restore ((zjq_journal_t *) impl, table, fn, arg);
}

static int
s_start (void *impl, zjq_jobtable_t *table)
{
    return zjq_journal_start ((zjq_journal_t *) impl, table);
}

static uint64_t
s_lsn (void *impl)
{
    return zjq_journal_lsn ((zjq_journal_t *) impl);
}

static uint64_t
s_durable (void *impl)
{
    return zjq_journal_durable ((zjq_journal_t *) impl);
}

static void
s_flush (void *impl)
{
    zjq_journal_flush ((zjq_journal_t *) impl);
}

static int
s_fd (void *impl)
{
    return zjq_journal_fd ((zjq_journal_t *) impl);
}

static void
s_process (void *impl)
{
    zjq_journal_process ((zjq_journal_t *) impl);
}

static int64_t
s_tick (void *impl, zjq_jobtable_t *table)
{
    return zjq_journal_tick ((zjq_journal_t *) impl, table);
}

static bool
s_healthy (void *impl, const char **reason_p)
{
    return zjq_journal_healthy ((zjq_journal_t *) impl, reason_p);
}

static const char *
s_last_error (void *impl)
{
    return zjq_journal_last_error ((zjq_journal_t *) impl);
}

static int
s_sync_now (void *impl)
{
    return zjq_journal_sync_now ((zjq_journal_t *) impl);
}

static void
s_stats (void *impl, zjq_store_stats_t *stats)
{
    zjq_journal_t *journal = (zjq_journal_t *) impl;
    const zjq_journal_stats_t *counts = zjq_journal_stats (journal);
    stats->path = zjq_journal_path (journal);
    stats->policy = zjq_journal_policy_name (journal);
    stats->bytes = counts->bytes;
    stats->live_bytes = counts->live_bytes;
    stats->records = counts->records;
    stats->compactions = counts->compactions;
    stats->replayed = counts->replayed;
}

static const zjq_store_ops_t s_file_ops = {
    .name = "file",
    .destroy = s_destroy,
    .replay = s_replay,
    .max_generation = s_max_generation,
    .restore = s_restore,
    .start = s_start,
    .lsn = s_lsn,
    .durable = s_durable,
    .flush = s_flush,
    .fd = s_fd,
    .process = s_process,
    .tick = s_tick,
    .healthy = s_healthy,
    .last_error = s_last_error,
    .sync_now = s_sync_now,
    .stats = s_stats
};

zjq_store_t *
zjq_store_new_file (const zjq_journal_config_t *config)
{
    assert (config);
    zjq_journal_t *journal = zjq_journal_new (config);
    return journal? zjq_store_new (&s_file_ops, journal): NULL;
}
