/*  zjq_broker.c: the zjq broker: its loop, its setup, and the routing of
    each message to its handler. See zjq_broker.h and docs/protocol.md.

    Structure (the broker's other files are listed in zjq_broker_private.h):
    - zjq_jobtable_t holds every job (records + bookkeeping) and the single
      deadline heap (attempt timeouts, outcome expiries).
    - zjq_queue_t per queue name: the heap of waiting jobs and the list of
      workers with free credit. Invariant: one of the two is empty.
    - zjq_peer_t per worker connection (keyed by routing id): its queues, its
      capacity, and the (id, attempt) pairs it still owes a WORK_RESULT for.
      Clients have no state beyond the waiters registered on jobs.
    - One command table says, for each command, who may send it (the role
      of the message, and with CURVE the roles its key must hold), whether
      it must carry a req or come from a registered worker, and its
      handler. The router checks those, in that order, and calls it.
    - The loop polls the ROUTER and the signal fd with a timeout from the
      data, drains the ROUTER (bounded per turn so timers get their turn),
      fires due deadlines and, once per heartbeat tick, scans the workers.
    - The store (zjq_store.h: the journal, or memory only) appends every change; the
      loop writes them once per turn, before it polls, and holds every
      promise to a client (ACCEPTED, DONE, JOB_RESULT, the JOB_STATUS of a
      cancel) until the journal says the records before it are durable, in
      order (zjq_held.h). Other replies (STATUS, errors) go at once.
      Messages to workers go at once: a worker may run a job whose submit
      was then lost, but no client was told it was accepted.               */

#include "zjq_broker_private.h"
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


//  --------------------------------------------------------------------------
//  The command table

typedef struct {
    int command;                //  ZJQ_CMD_*, or 0 for no command
    int role;                   //  the role of the message: ZJQ_ROLE_CLIENT or _WORKER
    int rights;                 //  with CURVE: the ZJQ_AUTH_* roles of which the key holds one
    bool req;                   //  ERROR EPROTO unless it carries an integer req
    bool peer;                  //  from a registered worker only (others get DISCONNECT)
    zjq_broker_handler_fn *handler;
} s_command_t;

#define S_ANY_CLIENT (ZJQ_AUTH_CLIENT | ZJQ_AUTH_ADMIN)

//  Indexed by command code. A command the table does not know for the
//  message's role is answered ERROR ECOMMAND.
static const s_command_t s_commands [128] = {
    //  Client commands
    [ZJQ_CMD_SUBMIT] = { ZJQ_CMD_SUBMIT, ZJQ_ROLE_CLIENT, ZJQ_AUTH_CLIENT, false, false,
                         zjq_broker_handle_submit },
    [ZJQ_CMD_STATUS] = { ZJQ_CMD_STATUS, ZJQ_ROLE_CLIENT, S_ANY_CLIENT, true, false,
                         zjq_broker_handle_status },
    [ZJQ_CMD_RESULT] = { ZJQ_CMD_RESULT, ZJQ_ROLE_CLIENT, S_ANY_CLIENT, false, false,
                         zjq_broker_handle_result },
    [ZJQ_CMD_CANCEL] = { ZJQ_CMD_CANCEL, ZJQ_ROLE_CLIENT, S_ANY_CLIENT, true, false,
                         zjq_broker_handle_cancel },
    [ZJQ_CMD_PING] =   { ZJQ_CMD_PING, ZJQ_ROLE_CLIENT, S_ANY_CLIENT, true, false,
                         zjq_broker_handle_ping },
    //  Admin commands
    [ZJQ_CMD_STATS] =  { ZJQ_CMD_STATS, ZJQ_ROLE_CLIENT, ZJQ_AUTH_ADMIN, true, false,
                         zjq_broker_handle_stats },
    [ZJQ_CMD_RELOAD] = { ZJQ_CMD_RELOAD, ZJQ_ROLE_CLIENT, ZJQ_AUTH_ADMIN, true, false,
                         zjq_broker_handle_reload },
    [ZJQ_CMD_PAUSE] =  { ZJQ_CMD_PAUSE, ZJQ_ROLE_CLIENT, ZJQ_AUTH_ADMIN, true, false,
                         zjq_broker_handle_pause },
    [ZJQ_CMD_RESUME] = { ZJQ_CMD_RESUME, ZJQ_ROLE_CLIENT, ZJQ_AUTH_ADMIN, true, false,
                         zjq_broker_handle_resume },
    [ZJQ_CMD_DRAIN] =  { ZJQ_CMD_DRAIN, ZJQ_ROLE_CLIENT, ZJQ_AUTH_ADMIN, true, false,
                         zjq_broker_handle_drain },
    [ZJQ_CMD_DEAD_LETTERS] = { ZJQ_CMD_DEAD_LETTERS, ZJQ_ROLE_CLIENT, ZJQ_AUTH_ADMIN, true,
                               false, zjq_broker_handle_dead_letters },
    [ZJQ_CMD_RETRY] =  { ZJQ_CMD_RETRY, ZJQ_ROLE_CLIENT, ZJQ_AUTH_ADMIN, true, false,
                         zjq_broker_handle_retry },
    //  Worker commands
    [ZJQ_CMD_READY] =  { ZJQ_CMD_READY, ZJQ_ROLE_WORKER, ZJQ_AUTH_WORKER, false, false,
                         zjq_broker_handle_ready },
    [ZJQ_CMD_HEARTBEAT] = { ZJQ_CMD_HEARTBEAT, ZJQ_ROLE_WORKER, ZJQ_AUTH_WORKER, false, true,
                            zjq_broker_handle_heartbeat },
    [ZJQ_CMD_WORK_RESULT] = { ZJQ_CMD_WORK_RESULT, ZJQ_ROLE_WORKER, ZJQ_AUTH_WORKER, false, true,
                              zjq_broker_handle_work_result },
    [ZJQ_CMD_PROGRESS] = { ZJQ_CMD_PROGRESS, ZJQ_ROLE_WORKER, ZJQ_AUTH_WORKER, false, true,
                           zjq_broker_handle_progress },
    [ZJQ_CMD_DISCONNECT] = { ZJQ_CMD_DISCONNECT, ZJQ_ROLE_WORKER, ZJQ_AUTH_WORKER, false, true,
                             zjq_broker_handle_disconnect },
    [ZJQ_CMD_CREDIT] = { ZJQ_CMD_CREDIT, ZJQ_ROLE_WORKER, ZJQ_AUTH_WORKER, false, true,
                         zjq_broker_handle_credit },
};

//  The table agrees with the codec's (zjq_wire.h): each row is a command
//  the protocol has, and its role may send it. A programming error if not.
static void
s_commands_check (void)
{
    for (size_t code = 0; code < sizeof (s_commands) / sizeof (s_commands [0]); code++) {
        const s_command_t *row = &s_commands [code];
        if (!row->handler)
            continue;
        const zjq_command_t *wire = zjq_proto_command ((int) code);
        assert (row->command == (int) code);
        assert (wire && zjq_proto_command_sent_by (wire, row->role));
        (void) wire;
    }
}

//  The row of a command sent in a role, or NULL if the broker takes no
//  such command from that role.
static const s_command_t *
s_command (int role, int command)
{
    if (command <= 0 || command >= (int) (sizeof (s_commands) / sizeof (s_commands [0])))
        return NULL;
    const s_command_t *row = &s_commands [command];
    return row->handler && row->role == role? row: NULL;
}


//  --------------------------------------------------------------------------
//  Routing

//  A worker message: the peer it comes from (READY makes one), or the
//  DISCONNECT that tells an unknown worker to say READY again.
static void
s_route_worker (zjq_broker_t *self, zjq_msg_t *msg, const s_command_t *row)
{
    int command = zjq_msg_command (msg);
    char rid_key [ZJQ_RID_KEY_MAX];
    zjq_broker_sender_key (msg, rid_key);
    zjq_peer_t *peer = (zjq_peer_t *) zhashx_lookup (self->peers, rid_key);
    if (row && !row->peer) {
        row->handler (self, msg, peer);
        return;
    }
    if (!peer) {
        //  A worker we declared dead, or from before a restart: it must
        //  reconnect and say READY again.
        if (command == ZJQ_CMD_WORK_RESULT) {
            self->counters.stale_results++;
            zjq_log_debug ("stale_result", "peer=%.40s reason=unknown_worker", rid_key);
        }
        if (command != ZJQ_CMD_DISCONNECT) {
            zjq_log_debug ("unknown_worker", "command=%s peer=%.40s reply=DISCONNECT",
                           zjq_proto_command_name (command), rid_key);
            zjq_msg_t *reply = zjq_broker_msg_to_sender (msg, ZJQ_CMD_DISCONNECT);
            zjq_msg_put_str (reply, "reason", "unknown worker: send READY first");
            zjq_broker_send (self, &reply);
        }
        return;
    }
    zjq_peer_set_seen (peer, self->now);
    if (row)
        row->handler (self, msg, peer);
    else {
        self->counters.malformed++;
        zjq_broker_send_error (self, msg, ZJQ_ECOMMAND, "command %s is not a worker command",
                               zjq_proto_command_name (command));
    }
}

//  A well-formed message: checked against the command table (the role,
//  with CURVE the key's rights, req, the worker) and handed to its handler.
static void
s_handle_message (zjq_broker_t *self, zjq_msg_t *msg)
{
    int role = zjq_msg_role (msg);
    int command = zjq_msg_command (msg);
    if (zjq_log_enabled (ZJQ_LOG_DEBUG)) {
        char rid_key [ZJQ_RID_KEY_MAX];
        zjq_log_debug ("recv", "command=%s role=%c peer=%.40s",
                       zjq_proto_command_name (command), role,
                       zjq_broker_sender_key (msg, rid_key));
    }
    if (role != ZJQ_ROLE_CLIENT && role != ZJQ_ROLE_WORKER) {
        self->counters.malformed++;
        zjq_broker_send_error (self, msg, ZJQ_ECOMMAND, "command %s may not be sent to a broker",
                               zjq_proto_command_name (command));
        return;
    }
    const s_command_t *row = s_command (role, command);
    int rights = row? row->rights: role == ZJQ_ROLE_WORKER? ZJQ_AUTH_WORKER: S_ANY_CLIENT;
    if (self->auth && !zjq_broker_authorize (self, msg, rights))
        return;
    if (role == ZJQ_ROLE_CLIENT)
        zjq_broker_backlog_seen (self, msg);
    if (role == ZJQ_ROLE_WORKER)
        s_route_worker (self, msg, row);
    else
    if (!row) {
        self->counters.malformed++;
        zjq_broker_send_error (self, msg, ZJQ_ECOMMAND, "command %s is not a client command",
                               zjq_proto_command_name (command));
    }
    else
    if (row->req && !zjq_request_has_req (msg))
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "missing or invalid field 'req' (an integer)");
    else
        row->handler (self, msg, NULL);
}

//  A message the codec could not read: counted and answered
static void
s_handle_malformed (zjq_broker_t *self, zjq_msg_t *msg)
{
    self->counters.malformed++;
    size_t rid_size;
    const byte *rid = zjq_msg_routing_id (msg, &rid_size);
    if (!rid)
        return;
    char rid_key [ZJQ_RID_KEY_MAX];
    zjq_broker_rid_key (rid, rid_size, rid_key);
    zjq_peer_t *peer = (zjq_peer_t *) zhashx_lookup (self->peers, rid_key);
    if (peer)
        zjq_peer_set_seen (peer, self->now);    //  still a sign of life
    const char *error = zjq_msg_error (msg);
    int code = zjq_msg_error_code (msg);
    zjq_broker_warn (self, "malformed", "peer=%.40s worker=%s error=%s", rid_key,
                     peer? zjq_peer_worker_id (peer): "", error? error: "unknown error");
    zjq_broker_send_error (self, msg, code? code: ZJQ_EPROTO, "%s",
                           error? error: "malformed message");
}


//  --------------------------------------------------------------------------
//  Setup

static bool
s_is_loopback (const char *endpoint)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return true;            //  ipc://, inproc:// stay on this host
    const char *host = endpoint + 6;
    const char *semicolon = strchr (host, ';');     //  "source;destination"
    if (semicolon)
        host = semicolon + 1;
    return strncmp (host, "127.", 4) == 0 || strncmp (host, "localhost:", 10) == 0
        || strncmp (host, "[::1]:", 6) == 0 || strncmp (host, "lo:", 3) == 0;
}

//  Write the bound endpoints, one per line, via a temporary file and rename.
static int
s_write_endpoint_file (const char *path, zlistx_t *endpoints)
{
    char tmp [4096];
    snprintf (tmp, sizeof (tmp), "%s.tmp.%d", path, (int) getpid ());
    FILE *file = fopen (tmp, "w");
    if (!file)
        return -1;
    for (const char *endpoint = (const char *) zlistx_first (endpoints); endpoint;
         endpoint = (const char *) zlistx_next (endpoints))
        fprintf (file, "%s\n", endpoint);
    bool ok = fflush (file) == 0 && fsync (fileno (file)) == 0;
    ok = fclose (file) == 0 && ok;
    if (!ok || rename (tmp, path) != 0) {
        unlink (tmp);
        return -1;
    }
    return 0;
}

//  A Prometheus scrape: the STATS map with histograms, from the loop's thread
static void
s_metrics_stats (void *arg, msgpack_packer *packer)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    self->now = zjq_mono_ms ();
    zjq_broker_stats_pack (self, packer, true);
}

static int
s_setsockopt_int (void *socket, int option, int value)
{
    return zmq_setsockopt (socket, option, &value, sizeof (value));
}

//  A job read back from the journal: into the table, and (queued) through
//  the eligibility seam into its queue
static void
s_restore_job (void *arg, zjq_job_t *job, const char *queue_name)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    zjq_queue_t *queue = zjq_proto_queue_name_valid (queue_name)?
                         zjq_broker_queue_require (self, queue_name): NULL;
    if (!queue) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", job->id,
                       "bad queue name or out of memory");
        zjq_job_free_fields (job);
        return;
    }
    job->queue = zjq_queue_name (queue);
    zjq_jobentry_t *entry = zjq_jobtable_restore (self->jobs, job, queue, self->now);
    if (entry && zjq_jobentry_state (entry) == ZJQ_STATE_QUEUED
    &&  zjq_broker_make_eligible (self, queue, entry) != 0) {
        zjq_log_error ("out_of_memory", "what=restoring_job job=%s",
                       zjq_jobentry_id (entry).text);
        zjq_jobtable_remove (self->jobs, &entry);
    }
}

//  A queue the journal holds as paused: paused again
static void
s_restore_paused (void *arg, const char *name)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    zjq_queue_t *queue = zjq_proto_queue_name_valid (name)?
                         zjq_broker_queue_require (self, name): NULL;
    if (queue) {
        zjq_queue_set_paused (queue, true);
        zjq_log_info ("queue_paused", "queue=%s source=journal", name);
    }
    else
        zjq_log_error ("queue_dropped", "queue=%s source=journal reason=%s", name,
                       "bad name or out of memory");
}

//  Open and replay the journal, then create the job table of a generation
//  greater than any it has seen, restore the jobs and start journaling.
static int
s_journal_open (zjq_broker_t *self, const zjq_broker_config_t *config)
{
    zjq_journal_config_t settings = {
        .dir = config->journal,
        .policy = (zjq_fsync_policy_t) config->fsync_policy,
        .interval_ms = config->fsync_interval_ms,
        .compact_size = config->journal_compact_size,
        .salvage = config->journal_salvage
    };
    self->store = config->journal? zjq_store_new_file (&settings): zjq_store_new_memory ();
    if (!self->store || zjq_store_replay (self->store) == -1)
        return -1;
    uint64_t latest = zjq_store_max_generation (self->store);
    if (self->generation <= latest)
        self->generation = latest + 1;
    zjq_base36 (self->instance, self->generation);
    zjq_jobtable_destroy (&self->jobs);
    self->jobs = zjq_jobtable_new (self->generation);
    if (!self->jobs)
        return -1;
    zjq_jobtable_set_dead_letter_ttl (self->jobs, self->dead_letter_ttl_ms);
    size_t count = zjq_store_restore (self->store, self->jobs, s_restore_job, self);
    zjq_jobtable_paused_queues (self->jobs, s_restore_paused, self);
    zjq_broker_trim_dead_letters (self);
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    if (count)
        zjq_log_info ("journal_restored", "queued=%llu outcomes=%llu",
                      (unsigned long long) stats->queued, (unsigned long long) stats->ended);
    return zjq_store_start (self->store, self->jobs);
}

//  The settings, the clocks, the empty tables and the socket. Returns 0, or
//  -1 after logging (out of memory or sockets).
static int
s_state_new (zjq_broker_t *self, const zjq_broker_config_t *config)
{
    self->max_payload = config->max_payload;
    self->max_jobs = config->max_jobs;
    self->max_queues = config->max_queues;
    self->max_queued_bytes = config->max_queued_bytes;
    self->max_result_bytes = config->max_result_bytes;
    self->result_ttl_ms = config->result_ttl_ms;
    self->job_timeout_ms = config->job_timeout_ms;
    self->max_attempts = config->max_attempts;
    self->dead_letter_ttl_ms = config->dead_letter_ttl_ms;
    self->max_dead_letters = config->max_dead_letters;
    self->max_dead_letter_bytes = config->max_dead_letter_bytes;
    self->verbose = config->verbose;
    self->generation = (uint64_t) zjq_wall_ms ();
    zjq_base36 (self->instance, self->generation);
    self->started = self->now = zjq_mono_ms ();
    self->warn_window = self->now;
    self->next_check = INT64_MAX;
    self->jobs = zjq_jobtable_new (self->generation);
    self->queues = zhashx_new ();
    self->peers = zhashx_new ();
    self->progress_watchers = zhashx_new ();
    self->held = zjq_held_new ();
    self->max_peer_outbound = config->max_peer_outbound_bytes;
    self->backlog = zjq_backlog_new (config->max_peer_outbound_bytes, config->max_outbound_bytes);
    self->quota = zjq_quota_new (config->max_jobs_per_client,
                                 config->max_queued_bytes_per_client);
    self->fdguard = zjq_fdguard_new (!config->no_shed);
    self->router = zsock_new (ZMQ_ROUTER);
    if (self->router) {
        self->inbox = zjq_inbox_new (self->router, true);
        self->outbox = zjq_outbox_new (self->router, zjq_broker_send_failed, self);
    }
    if (!self->jobs || !self->queues || !self->peers || !self->router || !self->held
    ||  !self->inbox || !self->outbox || !self->progress_watchers || !self->backlog
    ||  !self->quota || !self->fdguard) {
        zjq_log_error ("start_failed", "reason=%s", "out of memory or sockets");
        return -1;
    }
    zhashx_set_destructor (self->queues, (zhashx_destructor_fn *) zjq_queue_destroy);
    zhashx_set_destructor (self->progress_watchers, (zhashx_destructor_fn *) zlistx_destroy);
    zjq_jobtable_set_dead_letter_ttl (self->jobs, self->dead_letter_ttl_ms);
    zjq_fdguard_raise_limit (self->fdguard);
    return 0;
}

//  The ROUTER's options, and CURVE on it if the broker has keys. Returns 0,
//  or -1 after logging.
static int
s_router_setup (zjq_broker_t *self)
{
    void *handle = zsock_resolve (self->router);
    int64_t max_message = (int64_t) self->max_payload + (1 << 20);
    if (s_setsockopt_int (handle, ZMQ_ROUTER_HANDOVER, 1)
    ||  s_setsockopt_int (handle, ZMQ_ROUTER_MANDATORY, 1)
    ||  zmq_setsockopt (handle, ZMQ_MAXMSGSIZE, &max_message, sizeof (max_message))
    ||  s_setsockopt_int (handle, ZMQ_SNDHWM, ZJQ_SNDHWM)
    ||  s_setsockopt_int (handle, ZMQ_RCVHWM, ZJQ_HWM)
    ||  s_setsockopt_int (handle, ZMQ_LINGER, 0)) {
        zjq_log_error ("start_failed", "reason=%s error=%s", "cannot set socket options",
                       zmq_strerror (errno));
        return -1;
    }
    //  With CURVE the auth's monitor carries the guard's events too
    if (!self->auth) {
        if (zjq_fdguard_monitor (self->fdguard, handle, "inproc://zjq-broker-fdguard")) {
            zjq_log_error ("start_failed", "reason=%s error=%s", "cannot monitor the socket",
                           zmq_strerror (errno));
            return -1;
        }
        return 0;
    }
    char error [512];
    if (zjq_auth_attach (self->auth, self->router, error, sizeof (error))) {
        zjq_log_error ("start_failed", "reason=%s", error);
        return -1;
    }
    zjq_log_info ("curve_on", "broker_key=%s clients=%zu workers=%zu admins=%zu",
                  zjq_auth_public_key (self->auth),
                  zjq_auth_count (self->auth, ZJQ_AUTH_CLIENT),
                  zjq_auth_count (self->auth, ZJQ_AUTH_WORKER),
                  zjq_auth_count (self->auth, ZJQ_AUTH_ADMIN));
    return 0;
}

//  Bind every endpoint of the settings, adding what each resolved to (a
//  port 0 picks one) to endpoints. Returns 0, or -1 after logging.
static int
s_bind_all (zjq_broker_t *self, const zjq_broker_config_t *config, zlistx_t *endpoints)
{
    void *handle = zsock_resolve (self->router);
    for (size_t index = 0; index < config->bind_count; index++) {
        const char *endpoint = config->binds [index];
        if (zmq_bind (handle, endpoint) == -1) {
            zjq_log_error ("start_failed", "endpoint=%s reason=%s error=%s", endpoint,
                           "cannot bind", zmq_strerror (errno));
            return -1;
        }
        char resolved [1024] = "";
        size_t size = sizeof (resolved);
        if (zmq_getsockopt (handle, ZMQ_LAST_ENDPOINT, resolved, &size) == -1 || !*resolved)
            snprintf (resolved, sizeof (resolved), "%s", endpoint);
        zlistx_add_end (endpoints, strdup (resolved));
        if (!self->auth && !s_is_loopback (resolved))
            zjq_log_warning ("plaintext_exposed", "endpoint=%s msg=%s", resolved,
                             "not a loopback address: traffic on it is plaintext and "
                             "unauthenticated; use CURVE (--curve-secret, see README: "
                             "Running across hosts securely)");
        zjq_log_info ("listening", "endpoint=%s", resolved);
    }
    return 0;
}

//  The Prometheus endpoint, if the settings ask for one. Returns 0, or -1
//  after logging.
static int
s_metrics_open (zjq_broker_t *self, const zjq_broker_config_t *config)
{
    if (!config->metrics)
        return 0;
    char error [512];
    self->metrics = zjq_metrics_new (config->metrics, s_metrics_stats, self,
                                     error, sizeof (error));
    if (!self->metrics) {
        zjq_log_error ("start_failed", "metrics=%s reason=%s", config->metrics, error);
        return -1;
    }
    zjq_log_info ("metrics_listening", "address=%s port=%d url=http://%s/metrics",
                  config->metrics, zjq_metrics_port (self->metrics), config->metrics);
    return 0;
}

//  The store: the journal the settings name, or memory only. Returns 0, or
//  -1 after logging.
static int
s_store_open (zjq_broker_t *self, const zjq_broker_config_t *config)
{
    if (s_journal_open (self, config) == -1) {
        zjq_log_error ("start_failed", "journal=%s reason=%s",
                       config->journal? config->journal: "",
                       "cannot open or replay the journal");
        return -1;
    }
    if (!config->journal)
        zjq_log_info ("memory_only", "msg=%s", "no --journal: jobs are kept in memory only "
                      "and are lost when the broker stops");
    return 0;
}

zjq_broker_t *
zjq_broker_new (const zjq_broker_config_t *config, zjq_auth_t **auth_p)
{
    assert (config);
    zjq_broker_t *self = (zjq_broker_t *) calloc (1, sizeof (zjq_broker_t));
    zlistx_t *endpoints = zlistx_new ();
    if (auth_p) {
        if (self)
            self->auth = *auth_p;
        else
            zjq_auth_destroy (auth_p);
        *auth_p = NULL;
    }
    if (!self || !endpoints) {
        zjq_log_error ("start_failed", "reason=%s", "out of memory or sockets");
        goto err;
    }
    zlistx_set_destructor (endpoints, (zlistx_destructor_fn *) zstr_free);
    s_commands_check ();
    if (s_state_new (self, config) || s_store_open (self, config) || s_router_setup (self)
    ||  s_bind_all (self, config, endpoints) || s_metrics_open (self, config))
        goto err;
    if (config->endpoint_file
    &&  s_write_endpoint_file (config->endpoint_file, endpoints) == -1) {
        zjq_log_error ("start_failed", "endpoint_file=%s reason=%s error=%s",
                       config->endpoint_file, "cannot write the endpoint file", strerror (errno));
        goto err;
    }
    zlistx_destroy (&endpoints);
    zjq_log_info ("started", "version=%s instance=%s journal=%s curve=%s", zjq_version (),
                  self->instance, config->journal? config->journal: "",
                  self->auth? "on": "off");
    return self;

err:
    zlistx_destroy (&endpoints);
    zjq_broker_destroy (&self);
    return NULL;
}

void
zjq_broker_destroy (zjq_broker_t **self_p)
{
    assert (self_p);
    zjq_broker_t *self = *self_p;
    if (!self)
        return;
    if (self->peers) {
        for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
             peer = (zjq_peer_t *) zhashx_next (self->peers))
            zjq_peer_destroy (&peer);
        zhashx_destroy (&self->peers);
    }
    //  Replies still held were never promised: dropped
    zjq_held_destroy (&self->held);
    zjq_quota_destroy (&self->quota);
    zjq_metrics_destroy (&self->metrics);
    zhashx_destroy (&self->progress_watchers);
    zjq_backlog_destroy (&self->backlog);
    //  The journal before the table it journals (it flushes and syncs)
    zjq_store_destroy (&self->store);
    //  Queues first: they let go of the jobs in their heaps; the jobs'
    //  queue names are not read again
    zhashx_destroy (&self->queues);
    zjq_jobtable_destroy (&self->jobs);
    zjq_auth_destroy (&self->auth);     //  before the router it monitors
    zjq_fdguard_destroy (&self->fdguard);   //  ditto
    zjq_inbox_destroy (&self->inbox);
    zjq_outbox_destroy (&self->outbox);
    zsock_destroy (&self->router);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  The loop

//  What the loop polls: the ROUTER, and whichever of these exist: the
//  signal fd, the journal's sync notifications, the metrics listener,
//  CURVE's ZAP requests and handshake events, or the descriptor guard's monitor
typedef struct {
    zmq_pollitem_t items [7];
    int count;
    int signal_item;            //  index of each, or -1
    int journal_item;
    int metrics_item;
} s_poll_t;

static void
s_poll_init (zjq_broker_t *self, int signal_fd, s_poll_t *poll)
{
    poll->items [0] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
    poll->count = 1;
    poll->signal_item = poll->journal_item = poll->metrics_item = -1;
    if (self->metrics) {
        poll->metrics_item = poll->count++;
        poll->items [poll->metrics_item] = (zmq_pollitem_t) {
            NULL, zjq_metrics_fd (self->metrics), ZMQ_POLLIN, 0 };
        self->metrics_due = INT64_MAX;
    }
    if (signal_fd >= 0) {
        poll->signal_item = poll->count++;
        poll->items [poll->signal_item] = (zmq_pollitem_t) { NULL, signal_fd, ZMQ_POLLIN, 0 };
    }
    self->journal_wait = 0;
    if (zjq_store_fd (self->store) >= 0) {
        poll->journal_item = poll->count++;
        poll->items [poll->journal_item] = (zmq_pollitem_t) {
            NULL, zjq_store_fd (self->store), ZMQ_POLLIN, 0 };
    }
    if (zjq_fdguard_socket (self->fdguard))
        poll->items [poll->count++] = (zmq_pollitem_t) {
            zjq_fdguard_socket (self->fdguard), 0, ZMQ_POLLIN, 0 };
    if (self->auth) {
        poll->items [poll->count++] = (zmq_pollitem_t) {
            zjq_auth_zap_socket (self->auth), 0, ZMQ_POLLIN, 0 };
        poll->items [poll->count++] = (zmq_pollitem_t) {
            zjq_auth_monitor_socket (self->auth), 0, ZMQ_POLLIN, 0 };
    }
}

//  Start of a turn: write what the last turn appended, release what is
//  durable, send what the turn sent. Returns how long the poll may wait.
static long
s_turn_begin (zjq_broker_t *self, bool backlog)
{
    //  One write per turn for everything the turn appended
    zjq_store_flush (self->store);
    zjq_broker_release (self, false);
    self->now = zjq_mono_ms ();
    int64_t next = zjq_broker_min (zjq_jobtable_next_deadline (self->jobs), self->next_check);
    next = zjq_broker_min (next, self->now + self->journal_wait);
    if (self->metrics)
        next = zjq_broker_min (next, self->metrics_due);
    //  Everything this turn sent goes now, one message (or BATCH) per peer
    zjq_outbox_flush (self->outbox);
    if (backlog || self->reap || zjq_inbox_pending (self->inbox))
        return 0;
    long timeout = (long) zjq_broker_min (ZJQ_POLL_MAX_MS, next - self->now);
    return timeout < 0? 0: timeout;
}

//  A signal: SIGHUP reloads the allow-lists; SIGTERM and SIGINT stop the
//  loop (returns true).
static bool
s_on_signal (zjq_broker_t *self, int signal_fd)
{
    int signum = zjq_signalfd_read (signal_fd);
    if (signum == SIGHUP) {
        if (self->auth) {
            char error [512];
            zjq_broker_reload (self, "SIGHUP", error, sizeof (error));
        }
        else
            zjq_log_info ("signal", "signal=SIGHUP msg=%s", "nothing to reload without CURVE");
        return false;
    }
    if (!signum)
        return false;
    zjq_log_info ("signal", "signal=%s msg=%s",
                  signum == SIGTERM? "SIGTERM": signum == SIGINT? "SIGINT": "other",
                  "shutting down");
    return true;
}

//  Handle waiting messages, at most ZJQ_DRAIN_BATCH. Returns true if it
//  stopped at the bound (more may be waiting).
static bool
s_drain (zjq_broker_t *self)
{
    for (size_t count = 0; count < ZJQ_DRAIN_BATCH; count++) {
        zjq_msg_t *msg = NULL;
        zjq_recv_t rc = zjq_inbox_recv (self->inbox, &msg);
        if (rc == ZJQ_RECV_INTERRUPTED)
            return false;
        self->now = zjq_mono_ms ();
        if (rc == ZJQ_RECV_MALFORMED)
            s_handle_malformed (self, msg);
        else
            s_handle_message (self, msg);
        zjq_msg_destroy (&msg);
    }
    return true;
}

//  Give freed memory back to the system when the table has shrunk to under
//  a quarter of its peak (checked at most once per ZJQ_TRIM_INTERVAL):
//  glibc keeps the free pages of a heap that was large otherwise.
static void
s_trim_memory (zjq_broker_t *self)
{
    uint64_t jobs = zjq_jobtable_stats (self->jobs)->jobs;
    if (jobs > self->jobs_peak)
        self->jobs_peak = jobs;
    if (self->now < self->next_trim)
        return;
    self->next_trim = self->now + ZJQ_TRIM_INTERVAL;
    //  After a large drain the last jobs go below the threshold for the
    //  quarter rule: one more trim when the table is empty
    bool tail = self->trim_tail && jobs == 0;
    if ((self->jobs_peak >= ZJQ_TRIM_MIN_PEAK && jobs < self->jobs_peak / 4) || tail) {
        zjq_log_debug ("memory_trim", "jobs=%llu peak=%llu",
                       (unsigned long long) jobs, (unsigned long long) self->jobs_peak);
        malloc_trim (0);
        self->jobs_peak = jobs;
        self->trim_tail = jobs > 0;
    }
}

//  Fire due deadlines, at most ZJQ_DEADLINE_BATCH. Returns true if it
//  stopped at the bound.
static bool
s_fire_deadlines (zjq_broker_t *self)
{
    for (size_t count = 0; count < ZJQ_DEADLINE_BATCH; count++) {
        zjq_jobentry_t *entry = zjq_jobtable_pop_due (self->jobs, self->now);
        if (!entry)
            return false;
        if (zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING)
            zjq_broker_job_timeout (self, entry);
        else {
            zjq_log_debug ("outcome_expired", "job=%s", zjq_jobentry_id (entry).text);
            zjq_jobtable_remove (self->jobs, &entry);
        }
    }
    return true;
}

//  The work of a turn after the poll: handshakes, messages, deadlines, the
//  worker scan, housekeeping. Returns true if a bound stopped it early.
static bool
s_turn_work (zjq_broker_t *self)
{
    if (self->auth) {
        //  Before the ROUTER: a handshake waits for its answer
        zjq_broker_serve_zap (self);
        zjq_broker_read_monitor (self);
    }
    else
        zjq_fdguard_read (self->fdguard);
    bool backlog = s_drain (self);
    self->now = zjq_mono_ms ();
    backlog |= s_fire_deadlines (self);
    zjq_broker_check_drain (self);
    if (self->reap || self->now >= self->next_check)
        zjq_broker_check_peers (self);
    s_trim_memory (self);
    zjq_broker_probe_idle (self);
    self->journal_wait = zjq_store_tick (self->store, self->jobs);
    return backlog;
}

//  After the loop: make what was promised durable, deliver the held
//  replies, and say goodbye to the workers (the socket gets a moment to
//  flush that).
static void
s_shutdown (zjq_broker_t *self)
{
    if (zjq_store_sync_now (self->store) == -1)
        zjq_log_error ("journal_sync_failed", "error=%s msg=%s",
                       zjq_store_last_error (self->store),
                       "could not make the last records durable");
    zjq_broker_release (self, true);
    zjq_outbox_flush (self->outbox);
    size_t peers = zhashx_size (self->peers);
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers)) {
        zjq_msg_t *msg = zjq_broker_msg_to_frame (zjq_peer_routing_id (peer), ZJQ_CMD_DISCONNECT);
        zjq_msg_put_str (msg, "reason", "broker shutting down");
        zjq_msg_send (&msg, self->router, true);
    }
    if (peers)
        zsock_set_linger (self->router, 100);
    zjq_log_info ("stopped", "jobs=%llu workers_told=%zu",
                  (unsigned long long) zjq_jobtable_stats (self->jobs)->jobs, peers);
}

int
zjq_broker_run (zjq_broker_t *self, int signal_fd)
{
    assert (self);
    s_poll_t poll;
    s_poll_init (self, signal_fd, &poll);
    zmq_pollitem_t *items = poll.items;
    bool backlog = false;
    int rc = 0;
    while (true) {
        long timeout = s_turn_begin (self, backlog);
        if (zmq_poll (items, poll.count, timeout) == -1) {
            if (errno == EINTR)
                continue;
            zjq_log_error ("poll_failed", "error=%s", zmq_strerror (errno));
            rc = -1;
            break;
        }
        if (poll.metrics_item >= 0 && ((items [poll.metrics_item].revents & ZMQ_POLLIN)
                                   || zjq_mono_ms () >= self->metrics_due)) {
            zjq_metrics_process (self->metrics);
            int64_t wait = zjq_metrics_timeout (self->metrics);
            self->metrics_due = wait < 0? INT64_MAX: zjq_mono_ms () + wait;
        }
        if (poll.journal_item >= 0 && (items [poll.journal_item].revents & ZMQ_POLLIN)) {
            zjq_store_process (self->store);
            zjq_broker_release (self, false);
        }
        if (poll.signal_item >= 0 && (items [poll.signal_item].revents & ZMQ_POLLIN)
        &&  s_on_signal (self, signal_fd))
            break;
        backlog = s_turn_work (self);
    }
    s_shutdown (self);
    return rc;
}
