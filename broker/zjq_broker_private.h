/*  zjq_broker_private.h: what the files of the broker unit share.

    The broker is one object, zjq_broker_t, split by concern across files
    named zjq_broker_*.c; this header is private to them:
    - zjq_broker.c           the loop, setup, and routing: the command
                             table drives role checks and dispatch
    - zjq_broker_reply.c     messages out: replies, errors, promises held
                             for the journal (zjq_held.h), DONE to waiters
                             and PROGRESS_UPDATE to watchers; STATUS /
                             stats / dead-letter packing
    - zjq_broker_dispatch.c  dispatch and leases: the eligibility seam, the
                             worker-choice seam, job ends, failed attempts,
                             timeouts, forgetting workers
    - zjq_broker_client.c    client commands (SUBMIT, STATUS, RESULT, CANCEL)
    - zjq_broker_worker.c    worker commands (READY, WORK_RESULT, PROGRESS,
                             DISCONNECT)
    - zjq_broker_admin.c     admin commands (STATS, PING, RELOAD, PAUSE,
                             RESUME, DRAIN, DEAD_LETTERS, RETRY)
    - zjq_broker_curve.c     CURVE: authorization, reloads, ZAP, handshakes
    Lower layers (zjq_peer, zjq_held, zjq_request, the job table, queues)
    never call back into these files but through callbacks.                */

#ifndef ZJQ_BROKER_PRIVATE_H_INCLUDED
#define ZJQ_BROKER_PRIVATE_H_INCLUDED

#include "zjq_broker.h"
#include "zjq_auth.h"
#include "zjq_proto.h"
#include "zjq_batch.h"
#include "zjq_jobtable.h"
#include "zjq_queue.h"
#include "zjq_stats.h"
#include "zjq_metrics.h"
#include "zjq_log.h"
#include "zjq_jobid.h"
#include "zjq_store.h"
#include "zjq_util.h"
#include "zjq_peer.h"
#include "zjq_held.h"
#include "zjq_request.h"
#include "zjq_backlog.h"
#include "zjq_quota.h"
#include "zjq_fdguard.h"

#define ZJQ_DRAIN_BATCH     4096    //  messages per loop turn before timers run
#define ZJQ_DEADLINE_BATCH  4096    //  deadlines fired per loop turn
#define ZJQ_POLL_MAX_MS     1000    //  longest poll, as a safety net
#define ZJQ_HWM             100000  //  ROUTER receive high-water mark
#define ZJQ_LIVENESS        3       //  heartbeats a worker may miss
#define ZJQ_DURATION_MAX_MS (10LL * 366 * 24 * 3600 * 1000)    //  longer is forever
#define ZJQ_RID_KEY_MAX     (2 * 256 + 1)                       //  hex routing id
#define ZJQ_WARN_PER_SECOND 10      //  warnings about bad input, then quiet
#define ZJQ_TRIM_INTERVAL   1000    //  ms between checks for memory to give back
#define ZJQ_TRIM_MIN_PEAK   10000   //  jobs: below this peak, never trim
#define ZJQ_DEAD_PAGE_BYTES (24 * 1024)     //  a DEAD_LETTER_LIST page stops past this
#define ZJQ_SNDHWM          10000   //  ROUTER send high-water mark, messages per peer
#define ZJQ_PROBE_IDLE_MS   10000   //  a client connection silent this long is probed

//  Broker-wide counters for STATS (the job table counts the rest)
typedef struct {
    uint64_t succeeded;
    uint64_t failed;
    uint64_t cancelled;
    uint64_t rejected;
    uint64_t malformed;
    uint64_t stale_results;
    uint64_t refused_handshakes;    //  CURVE handshakes that failed (not the ZAP's)
    uint64_t refused_unknown_key;   //  keys in no allow-list (ZAP, or since a reload)
    uint64_t refused_role;          //  messages a key's roles do not allow
    uint64_t denied_queue;          //  queues a key may not use
    uint64_t workers_lost;          //  workers declared dead or unreachable
    uint64_t results_withheld;      //  DONEs sent without their result (backlog)
    uint64_t backlog_refused;       //  replies refused for a connection's backlog
    zjq_stats_ring_t submits;       //  submits over the last minute, all queues
    zjq_stats_ring_t ends;          //  jobs that ended over the last minute
} zjq_broker_counters_t;

struct _zjq_broker_t {
    //  Settings
    uint64_t max_payload;       //  largest payload and result
    uint64_t max_jobs;          //  queued + running
    uint64_t max_queues;        //  distinct queue names
    uint64_t max_queued_bytes;  //  payload bytes of queued + running jobs
    zjq_quota_t *quota;         //  per-client shares of those two (zjq_quota.h)
    zjq_fdguard_t *fdguard;     //  descriptors: the limit, failed accepts (zjq_fdguard.h)
    uint64_t max_result_bytes;  //  stored result bytes
    int64_t result_ttl_ms;      //  defaults for SUBMIT
    int64_t job_timeout_ms;
    int max_attempts;
    int64_t dead_letter_ttl_ms; //  failed jobs are kept at least this long
    uint64_t max_dead_letters;  //  ... this many at most
    uint64_t max_dead_letter_bytes; //  ... holding this many bytes at most
    bool verbose;               //  per-message debug logs
    //  State
    zsock_t *router;            //  the one socket
    zjq_inbox_t *inbox;         //  reads it, a BATCH's messages one by one
    zjq_outbox_t *outbox;       //  what this turn sends, batched per peer
    zjq_auth_t *auth;           //  CURVE keys and ZAP handler, or NULL (plaintext)
    uint64_t generation;        //  start time, Unix ms: the id generation
    char instance [16];         //  generation in base 36
    int64_t started;            //  monotonic ms at start
    int64_t now;                //  monotonic ms, refreshed per message
    zjq_jobtable_t *jobs;       //  every job
    zhashx_t *queues;           //  name -> zjq_queue_t (owned)
    zhashx_t *peers;            //  hex routing id -> zjq_peer_t (owned)
    int64_t next_check;         //  monotonic ms of the next worker scan
    bool reap;                  //  a peer became unreachable
    uint64_t jobs_peak;         //  most jobs in the table since the last trim
    bool trim_tail;             //  the last trim left jobs: trim again once empty
    int64_t next_trim;          //  monotonic ms of the next trim check
    bool draining;              //  zjq drain: submits are rejected
    bool drain_reported;        //  the end of the drain was logged
    zhashx_t *progress_watchers;    //  job id -> zlistx_t of routing ids (zframe_t)
    zjq_broker_counters_t counters;
    //  Rate limit for warnings caused by peers
    int64_t warn_window;        //  start of the current one-second window
    unsigned warn_count;        //  warnings logged in it
    uint64_t warn_suppressed;   //  warnings not logged in it
    //  Store
    zjq_store_t *store;         //  the file journal, or memory only
    int64_t journal_wait;       //  ms the store lets the loop sleep
    zjq_held_t *held;           //  client messages held for the store
    //  Prometheus /metrics, or NULL
    zjq_metrics_t *metrics;
    int64_t metrics_due;        //  monotonic ms when it must run without input
    //  Outbound backlog: bytes sent to clients and not read yet
    zjq_backlog_t *backlog;
    uint64_t max_peer_outbound; //  allowance per connection (workers: payload bytes)
};

static inline int64_t
zjq_broker_min (int64_t a, int64_t b)
{
    return a < b? a: b;
}

//  A command handler. peer is the sending worker for worker commands that
//  need one (the command table says which), else NULL.
typedef void (zjq_broker_handler_fn) (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer);


//  --- zjq_broker_reply.c: messages out, packing

//  Hex of a routing id into buf (ZJQ_RID_KEY_MAX bytes); returns buf.
char *
    zjq_broker_rid_key (const byte *data, size_t size, char *buf);
//  Hex of a message's routing id into buf (ZJQ_RID_KEY_MAX bytes).
char *
    zjq_broker_sender_key (zjq_msg_t *msg, char *buf);
//  Log a warning about input from a peer, at most ZJQ_WARN_PER_SECOND a
//  second, so garbage cannot flood the log.
void
    zjq_broker_warn (zjq_broker_t *self, const char *event, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
//  A new broker message to a routing id (asserts on out of memory), to one
//  kept as a frame, to the sender of a request; a reply to a request (same
//  routing id, its req echoed).
zjq_msg_t *
    zjq_broker_msg_to (const byte *routing_id, size_t size, int command);
zjq_msg_t *
    zjq_broker_msg_to_frame (zframe_t *routing_id, int command);
zjq_msg_t *
    zjq_broker_msg_to_sender (zjq_msg_t *request, int command);
zjq_msg_t *
    zjq_broker_reply_new (zjq_msg_t *request, int command);
//  Send a message to a client at the end of this turn (batched per peer);
//  a client that has gone is not an error. Nulls *msg_p.
void
    zjq_broker_send (zjq_broker_t *self, zjq_msg_t **msg_p);
//  Send a promise to a client (ACCEPTED, DONE, JOB_RESULT, the JOB_STATUS
//  of a cancel, QUEUE_STATE, RETRIED), or hold it while the journal has
//  records that are not durable yet. Held promises keep their order.
void
    zjq_broker_send_promise (zjq_broker_t *self, zjq_msg_t **msg_p);
//  Send the held promises whose records are durable; with all, every one
//  (dropping what the journal never made durable).
void
    zjq_broker_release (zjq_broker_t *self, bool all);
//  Send a message to a worker at the end of this turn.
void
    zjq_broker_send_peer (zjq_broker_t *self, zjq_peer_t *peer, zjq_msg_t **msg_p);
//  The outbox's callback when a send to a peer failed (marks a worker
//  unreachable: the next scan forgets it).
void
    zjq_broker_send_failed (void *arg, const byte *routing_id, size_t size, int command,
                            int error);
//  Reply ERROR (code, formatted message) to a request.
void
    zjq_broker_send_error (zjq_broker_t *self, zjq_msg_t *request, int code,
                           const char *format, ...) __attribute__ ((format (printf, 4, 5)));
//  Reply REJECTED to a SUBMIT, counted.
void
    zjq_broker_send_rejected (zjq_broker_t *self, zjq_msg_t *request, int code,
                              const char *format, ...) __attribute__ ((format (printf, 4, 5)));
//  Count a message about to go to a client in its connection's backlog
//  (a client that acknowledges gets the running count as `out`). Messages
//  to workers (commands outside the broker-to-client range) are not counted.
void
    zjq_broker_count_out (zjq_broker_t *self, zjq_msg_t *msg);
//  Instead of a DONE with its result that would not fit the backlog: to a
//  client that acknowledges, DONE with `withheld` (it fetches the result
//  with RESULT); to one that does not, ERROR EUNAVAILABLE naming the job.
void
    zjq_broker_send_withheld (zjq_broker_t *self, zjq_jobentry_t *entry,
                              const byte *routing_id, size_t size);
//  The backlog figures of STATS into the broker section's map.
void
    zjq_broker_backlog_stats (zjq_broker_t *self, zjq_stats_map_t *broker);
//  A client message came in: its `ack` (if any) lowers the backlog of its
//  connection (zjq_backlog.h).
void
    zjq_broker_backlog_seen (zjq_broker_t *self, zjq_msg_t *msg);
//  True if a reply to a request fits its connection's backlog allowance
//  (with total, the broker-wide limit too). If not, the reply is destroyed,
//  the request answered ERROR EUNAVAILABLE and counted, and false returned.
bool
    zjq_broker_reply_fits (zjq_broker_t *self, zjq_msg_t *request, zjq_msg_t **reply_p,
                           bool total);
//  Probe client connections idle for ZJQ_PROBE_IDLE_MS (a PONG without
//  req: the client acknowledges), so gone ones are found and forgotten.
void
    zjq_broker_probe_idle (zjq_broker_t *self);
//  Attach bytes the job table keeps (a payload or a result) as a message's
//  payload: a frame is shared without a copy, inline bytes are borrowed.
void
    zjq_broker_attach_payload (zjq_msg_t *msg, zjq_jobbytes_t bytes);
//  The outcome of an ended job into a JOB_RESULT or DONE.
void
    zjq_broker_put_outcome (zjq_msg_t *msg, zjq_jobentry_t *entry);
//  A DONE for an ended job to one client (a promise).
void
    zjq_broker_send_done (zjq_broker_t *self, zjq_jobentry_t *entry, const byte *routing_id,
                          size_t size);
//  A job's description (JOB_STATUS fields) into a message.
void
    zjq_broker_put_status (zjq_msg_t *msg, zjq_jobentry_t *entry);
//  Reply JOB_STATUS for a job.
void
    zjq_broker_send_status (zjq_broker_t *self, zjq_msg_t *request, zjq_jobentry_t *entry);
//  One dead letter as a map for DEAD_LETTER_LIST.
void
    zjq_broker_pack_dead_letter (msgpack_packer *packer, zjq_jobentry_t *entry);
//  Register the sender of a request for DONE (sent now if the job ended),
//  and for PROGRESS_UPDATE; and push a job's progress to its watchers.
void
    zjq_broker_add_waiter (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_msg_t *request);
void
    zjq_broker_watch_progress (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_msg_t *request);
void
    zjq_broker_push_progress (zjq_broker_t *self, zjq_jobentry_t *entry, const char *message);
//  The STATS map (docs/protocol.md, Stats) into a packer; with histograms,
//  each queue's wait and run time histograms too (for /metrics).
void
    zjq_broker_stats_pack (zjq_broker_t *self, msgpack_packer *packer, bool histograms);


//  --- zjq_broker_dispatch.c: dispatch and leases

//  True if holding a queue of that name (with also_new other new names)
//  would exceed --max-queues.
bool
    zjq_broker_queue_over_limit (zjq_broker_t *self, const char *name, size_t also_new);
//  The queue of that name, created if new; NULL if out of memory.
zjq_queue_t *
    zjq_broker_queue_require (zjq_broker_t *self, const char *name);
//  SEAM (eligibility): queued jobs become eligible for dispatch here and
//  nowhere else. With entry, the job goes into its queue's heap, then the
//  queue is pumped; with entry NULL the queue is only pumped (resumed).
//  Returns 0, or -1 if out of memory (the job is in no heap).
int
    zjq_broker_make_eligible (zjq_broker_t *self, zjq_queue_t *queue, zjq_jobentry_t *entry);
//  A queued job (new, requeued, handed back, retried) through the seam;
//  out of memory, the job fails.
void
    zjq_broker_enqueue (zjq_broker_t *self, zjq_jobentry_t *entry);
//  Fill a worker's free credit with the best jobs across its queues; with
//  credit left over, it waits on its queues' worker lists.
void
    zjq_broker_peer_pump (zjq_broker_t *self, zjq_peer_t *peer);
//  End a queued or running job; sends DONE to its waiters. The entry may
//  be gone when this returns (unless it holds no result).
void
    zjq_broker_job_end (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_state_t state,
                        const char *error, zframe_t **result_p);
//  A running job's attempt failed (error says why, with the attempt
//  count): requeue it if attempts are left, else it fails.
void
    zjq_broker_attempt_failed (zjq_broker_t *self, zjq_jobentry_t *entry, const char *error);
//  Record a failed attempt in the job's history (call before failing it).
void
    zjq_broker_record_attempt (zjq_broker_t *self, zjq_jobentry_t *entry, const char *reason,
                               int exit_code, int signal, int64_t duration_ms);
//  "<reason> (attempt n of m)" into buf; returns buf.
const char *
    zjq_broker_attempt_error (char *buf, size_t size, zjq_jobentry_t *entry,
                              const char *reason);
//  Tell a worker to stop an attempt it no longer owns.
void
    zjq_broker_send_job_cancel (zjq_broker_t *self, zjq_peer_t *peer, zjq_jobentry_t *entry,
                                const char *reason);
//  A running job's attempt timed out (it is out of the deadline heap).
void
    zjq_broker_job_timeout (zjq_broker_t *self, zjq_jobentry_t *entry);
//  Keep the dead letters within their bounds: the oldest go.
void
    zjq_broker_trim_dead_letters (zjq_broker_t *self);
//  Forget a worker: its running jobs count a failed attempt and go back to
//  their queues or fail. The peer is destroyed.
void
    zjq_broker_peer_forget (zjq_broker_t *self, zjq_peer_t *peer, const char *why);
//  Send due heartbeats, forget silent or unreachable workers, set the time
//  of the next scan.
void
    zjq_broker_check_peers (zjq_broker_t *self);


//  --- Command handlers (zjq_broker_client.c, _worker.c, _admin.c)
zjq_broker_handler_fn zjq_broker_handle_submit;
zjq_broker_handler_fn zjq_broker_handle_status;
zjq_broker_handler_fn zjq_broker_handle_result;
zjq_broker_handler_fn zjq_broker_handle_cancel;
zjq_broker_handler_fn zjq_broker_handle_stats;
zjq_broker_handler_fn zjq_broker_handle_ping;
zjq_broker_handler_fn zjq_broker_handle_reload;
zjq_broker_handler_fn zjq_broker_handle_pause;
zjq_broker_handler_fn zjq_broker_handle_resume;
zjq_broker_handler_fn zjq_broker_handle_drain;
zjq_broker_handler_fn zjq_broker_handle_dead_letters;
zjq_broker_handler_fn zjq_broker_handle_retry;
zjq_broker_handler_fn zjq_broker_handle_ready;
zjq_broker_handler_fn zjq_broker_handle_heartbeat;
zjq_broker_handler_fn zjq_broker_handle_work_result;
zjq_broker_handler_fn zjq_broker_handle_progress;
zjq_broker_handler_fn zjq_broker_handle_disconnect;
zjq_broker_handler_fn zjq_broker_handle_credit;

//  Once per drain, say in the log that it is complete (zjq_broker_admin.c).
void
    zjq_broker_check_drain (zjq_broker_t *self);


//  --- zjq_broker_curve.c: CURVE

//  May the sender's key, as the allow-lists stand now, send this message?
//  rights are the ZJQ_AUTH_* bits of which it must hold one. If not: ERROR
//  EDENIED, counted and logged, a worker registered on the connection is
//  forgotten, and false is returned.
bool
    zjq_broker_authorize (zjq_broker_t *self, zjq_msg_t *msg, int rights);
//  Re-read the allow-lists (SIGHUP or RELOAD; why says which); workers
//  that lost their rights are told DISCONNECT and forgotten. On error the
//  old lists stay, and error says why; it is left alone on success.
void
    zjq_broker_reload (zjq_broker_t *self, const char *why, char *error, size_t error_size);
//  Answer waiting ZAP requests; count and log failed handshakes (bounded).
void
    zjq_broker_serve_zap (zjq_broker_t *self);
void
    zjq_broker_read_monitor (zjq_broker_t *self);

#endif
