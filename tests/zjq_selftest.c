/*  zjq_selftest.c: runs the self-test of one class, or of all of them.
    Usage: zjq_selftest [-v] [--test NAME]                                  */

#include "zjq_proto.h"
#include "zjq_batch.h"
#include "zjq_fields.h"
#include "zjq_heap.h"
#include "zjq_hashtab.h"
#include "zjq_options.h"
#include "zjq_mp.h"
#include "zjq_jobid.h"
#include "zjq_json.h"
#include "zjq_util.h"
#include "zjq_log.h"
#include "zjq_queue.h"
#include "zjq_stats.h"
#include "zjq_metrics.h"
#include "zjq_jobtable.h"
#include "zjq_history.h"
#include "zjq_journal.h"
#include "zjq_record.h"
#include "zjq_replay.h"
#include "zjq_store.h"
#include "zjq_cert.h"
#include "zjq_auth.h"
#include "zjq_peer.h"
#include "zjq_held.h"
#include "zjq_backlog.h"
#include "zjq_request.h"
#include "zjq_quota.h"
#include "zjq_fdguard.h"
#include "zjq_credit.h"
#include "zjq_worker_private.h"
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

static const s_test_t s_tests [] = {
    { "util",     zjq_util_test },
    { "log",      zjq_log_test },
    { "heap",     zjq_heap_test },
    { "hashtab",  zjq_hashtab_test },
    { "options",  zjq_options_test },
    { "mp",       zjq_mp_test },
    { "jobid",    zjq_jobid_test },
    { "json",     zjq_json_test },
    { "wire",     zjq_wire_test },
    { "fields",   zjq_fields_test },
    { "msg",      zjq_msg_test },
    { "proto",    zjq_proto_test },
    { "batch",    zjq_batch_test },
    { "outbox",   zjq_outbox_test },
    { "inbox",    zjq_inbox_test },
    { "cert",     zjq_cert_test },
    { "queue",    zjq_queue_test },
    { "stats",    zjq_stats_test },
    { "metrics",  zjq_metrics_test },
    { "history",  zjq_history_test },
    { "jobentry", zjq_jobentry_test },
    { "jobtable", zjq_jobtable_test },
    { "record",   zjq_record_test },
    { "replay",   zjq_replay_test },
    { "journal",  zjq_journal_test },
    { "store",    zjq_store_test },
    { "auth",     zjq_auth_test },
    { "peer",     zjq_peer_test },
    { "held",     zjq_held_test },
    { "backlog",  zjq_backlog_test },
    { "request",  zjq_request_test },
    { "credit",   zjq_credit_test },
    { "pool",     zjq_pool_test },
    { "quota",    zjq_quota_test },
    { "fdguard",  zjq_fdguard_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = false;
    const char *only = NULL;
    for (int arg = 1; arg < argc; arg++) {
        if (streq (argv [arg], "-v"))
            verbose = true;
        else
        if (streq (argv [arg], "--test") && arg + 1 < argc)
            only = argv [++arg];
        else {
            fprintf (stderr, "usage: zjq_selftest [-v] [--test NAME]\n");
            return 2;
        }
    }
    int ran = 0;
    for (size_t index = 0; index < sizeof (s_tests) / sizeof (s_tests [0]); index++) {
        if (only && strcmp (only, s_tests [index].name) != 0)
            continue;
        printf (" * %s: ", s_tests [index].name);
        fflush (stdout);
        s_tests [index].test (verbose);
        printf ("OK\n");
        ran++;
    }
    if (ran == 0) {
        fprintf (stderr, "zjq_selftest: no test named '%s'\n", only);
        return 2;
    }
    return 0;
}
