/*  zjq_job.h: the job record.

    zjq_job_t is what a job *is*: the fields that the journal (a later issue)
    writes and replays. Everything the broker keeps *about* a job to find and
    schedule it (heap positions, the worker running it, clients waiting for
    it) lives in zjq_jobentry_t (zjq_jobtable.h), never here, so that a
    record can be written out and read back without any pointer fix-ups
    beyond its strings and frames.

    ZJQ_JOB_RECORD_VERSION travels with every persisted record. Bump it when
    a field is added, removed or changes meaning, and teach the journal
    reader to upgrade records of the older version.                         */

#ifndef ZJQ_JOB_H_INCLUDED
#define ZJQ_JOB_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "zjq_error.h"
#include "zjq_jobid.h"
#include "zjq_cert.h"
#include "zjq_history.h"

#define ZJQ_JOB_RECORD_VERSION 3       //  2: adds owner; 3: adds history, and a
                                        //  failed job keeps its payload

//  Attempts a job may make in all, across retries (`zjq retry`)
#define ZJQ_JOB_ATTEMPTS_MAX 1000000

typedef struct {
    char id [ZJQ_JOBID_MAX];    //  "<generation>-<sequence>", base 36
    uint64_t sequence;          //  the sequence part of the id
    uint64_t order;             //  submission order, broker-wide; kept on retry
    const char *queue;          //  queue name; interned, owned by the queue object
    char *key;                  //  idempotency key, or NULL
    char owner [ZJQ_CERT_KEY_TEXT];     //  submitter's CURVE public key (Z85), or ""
    int priority;               //  -1000..1000, higher runs first
    int max_attempts;           //  1..1000
    int attempt;                //  current or last attempt, 0 before the first
    zjq_state_t state;          //  queued, running, or one of the three ends
    int64_t job_timeout_ms;     //  per attempt
    int64_t result_ttl_ms;      //  outcome is kept this long after the end
    int64_t created_ms;         //  wall clock, Unix ms
    int64_t started_ms;         //  start of the current or last attempt; 0 = never
    int64_t finished_ms;        //  0 until the job ends
    int64_t expires_ms;         //  when the outcome is dropped; 0 until the end
    double progress;            //  0..1 as reported by the worker; < 0 = none
    char *progress_message;     //  or NULL
    char *error;                //  final error, or the last failed attempt's reason
    zframe_t *payload;          //  the submitted payload, freed when the job ends
                                //  (kept by a failed job, for a retry)
    zframe_t *result;           //  the result of a succeeded job, or NULL (empty)
    zjq_history_t *history;     //  failed attempts, or NULL if none failed yet
} zjq_job_t;

//  True once the job has reached one of its final states.
static inline bool
zjq_job_ended (const zjq_job_t *job)
{
    return job->state == ZJQ_STATE_SUCCEEDED
        || job->state == ZJQ_STATE_FAILED
        || job->state == ZJQ_STATE_CANCELLED;
}

#endif
