/*  zjq_bench.c: zjq-bench, the load generator of the zjq benchmark suite.

    It pushes N jobs through a broker and measures what a user of libzjq
    gets: a job counts when its result is back at the client (zjq_submit
    with on_done, driven by zjq_client_fd/timeout/process). Two schedules:

    - closed loop (default): at most --window jobs in flight (submitted,
      result not yet back); a job's latency runs from its submit to its
      result.
    - open loop (--rate R): job i is due at t0 + i/R, whatever happened to
      the jobs before it; a job's latency runs from that INTENDED send time
      to its result, so a stall is charged to every job it delays (no
      coordinated omission). --window still caps the jobs in flight, as a
      safety bound; a send held back by it is late, and that lateness is in
      its latency.

    --submit-only counts a job when the broker has ACCEPTED it (no on_done,
    no worker needed): the memory test. --relay speaks raw libzmq to
    zjq-relay instead (the yardstick): the payload goes out on a DEALER and
    the same bytes come back; the first 8 bytes carry the job index.

    With --broker-pid (the broker on this host) it also reads the broker's
    CPU time (utime+stime, /proc/PID/stat) and VmRSS (/proc/PID/status)
    just before and just after the timed run.

    The LAST line of stdout is machine-readable:
      jobs=N seconds=S jobs_per_s=R p50_us=A p99_us=B p999_us=C ...
    Exit status: 0 if every job completed without error, 1 if some failed
    or time ran out, 2 on a usage error.                                     */

#define _GNU_SOURCE                 //  ppoll, prctl
#include "zjq_client.h"

#include <zmq.h>
#include <sodium.h>

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define s_MAX_JOBS          100000000       //  per run (memory: 24 bytes a job)
#define s_MAX_WINDOW        10000000
#define s_MAX_SIZE          (16 * 1024 * 1024)
#define s_RAW_HEADER        8               //  job index in a relay payload
#define s_POLL_MAX_NS       100000000LL     //  longest single wait: 100 ms
#define s_REQUEST_TIMEOUT   60000           //  ms the broker has to accept

typedef enum { s_MODE_RESULT, s_MODE_SUBMIT_ONLY, s_MODE_RELAY } s_mode_t;

typedef struct _s_bench_t s_bench_t;

//  One job of the run; its address is the callback arg.
typedef struct {
    s_bench_t *bench;           //  back pointer for callbacks
    int64_t start_ns;           //  intended (open loop) or actual send time;
                                //  -1 once completed
} s_job_t;

//  Broker resource counters read from /proc
typedef struct {
    bool valid;
    double cpu_s;               //  utime + stime
    int64_t rss_kb;             //  VmRSS
} s_usage_t;

struct _s_bench_t {
    //  options
    s_mode_t mode;
    const char *endpoint;       //  broker, or relay frontend
    const char *queue;
    size_t jobs;                //  timed jobs
    size_t window;              //  in flight at most
    size_t size;                //  payload bytes
    double rate;                //  offered jobs/s (open loop), 0: closed loop
    size_t warmup;              //  untimed jobs first
    int64_t result_ttl_ms;      //  submit option, 0: broker default
    int64_t sha256_rounds;      //  > 0: payload "R:xxx" for --builtin sha256
    double timeout_s;           //  bound on the whole run
    int broker_pid;             //  0: no broker metrics
    bool verbose;
    //  state
    zjq_client_t *client;       //  result and submit-only modes
    void *context;              //  relay mode
    void *dealer;
    unsigned char *payload;     //  size bytes (raw: at least s_RAW_HEADER)
    s_job_t *table;             //  jobs (the current phase)
    size_t phase_jobs;          //  entries of table in use
    size_t sent;                //  started in this phase
    size_t done;                //  completed (ok or not) in this phase
    size_t errors;
    int first_error;            //  zjq code of the first failure
    size_t bad_results;         //  echo results of the wrong size
    int64_t *latency_ns;        //  per completed job, completion order
    bool recording;             //  timed phase (else warmup)
};


//  --------------------------------------------------------------------------
//  Small helpers

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

//  Read utime+stime and VmRSS of a process. Returns the usage, valid false
//  if /proc could not be read.
static s_usage_t
s_usage_read (int pid)
{
    s_usage_t usage = { .valid = false };
    char path [64];
    char buf [4096];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return usage;
    size_t len = fread (buf, 1, sizeof buf - 1, file);
    fclose (file);
    buf [len] = 0;
    //  The command name may hold spaces: fields start after the last ')'
    char *cursor = strrchr (buf, ')');
    if (!cursor)
        return usage;
    cursor++;
    unsigned long long utime = 0, stime = 0;
    //  field 3 (state) is the first after ')'; utime and stime are 14, 15
    for (int field = 3; field <= 15; field++) {
        char *end;
        while (*cursor == ' ')
            cursor++;
        if (field == 14)
            utime = strtoull (cursor, &end, 10);
        else
        if (field == 15)
            stime = strtoull (cursor, &end, 10);
        end = strchr (cursor, ' ');
        if (!end)
            return usage;
        cursor = end;
    }
    long ticks = sysconf (_SC_CLK_TCK);
    usage.cpu_s = (double) (utime + stime) / (double) (ticks > 0 ? ticks : 100);

    snprintf (path, sizeof path, "/proc/%d/status", pid);
    file = fopen (path, "r");
    if (!file)
        return usage;
    while (fgets (buf, sizeof buf, file)) {
        long long kb;
        if (sscanf (buf, "VmRSS: %lld kB", &kb) == 1) {
            usage.rss_kb = kb;
            usage.valid = true;
        }
    }
    fclose (file);
    return usage;
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  The q-quantile (0..1) of sorted values in microseconds, 0 if none.
static double
s_quantile_us (const int64_t *sorted, size_t count, double q)
{
    if (count == 0)
        return 0;
    size_t rank = (size_t) (q * (double) count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return (double) sorted [rank - 1] / 1000.0;
}


//  --------------------------------------------------------------------------
//  Completion, shared by every mode

static void
s_complete (s_bench_t *self, s_job_t *job, int status, int64_t now)
{
    if (job->start_ns < 0)
        return;                 //  duplicate (cannot happen with zjq)
    if (status != 0) {
        if (self->errors++ == 0)
            self->first_error = status;
    }
    else
    if (self->recording)
        self->latency_ns [self->done - self->errors] = now - job->start_ns;
    //  the latency slot index counts successful jobs only
    job->start_ns = -1;
    self->done++;
}

static void
s_on_done (zjq_client_t *client, int status, const zjq_result_t *result, void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    s_bench_t *self = job->bench;
    if (status == 0 && self->sha256_rounds == 0 && result->size != self->size)
        self->bad_results++;
    s_complete (self, job, status, s_now_ns ());
}

static void
s_on_accepted (zjq_client_t *client, int status, const char *job_id, void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    s_complete (job->bench, job, status, s_now_ns ());
}


//  --------------------------------------------------------------------------
//  The two transports: libzjq, or raw libzmq to the relay

static int
s_transport_open (s_bench_t *self)
{
    if (self->mode == s_MODE_RELAY) {
        self->context = zmq_ctx_new ();
        self->dealer = self->context ? zmq_socket (self->context, ZMQ_DEALER) : NULL;
        if (!self->dealer)
            return -1;
        int zero = 0;
        zmq_setsockopt (self->dealer, ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt (self->dealer, ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt (self->dealer, ZMQ_LINGER, &zero, sizeof zero);
        return zmq_connect (self->dealer, self->endpoint);
    }
    self->client = zjq_client_new (self->endpoint);
    if (!self->client)
        return -1;
    zjq_client_set_request_timeout (self->client, s_REQUEST_TIMEOUT);
    return 0;
}

static void
s_transport_close (s_bench_t *self)
{
    zjq_client_destroy (&self->client);
    if (self->dealer)
        zmq_close (self->dealer);
    self->dealer = NULL;
    if (self->context)
        zmq_ctx_term (self->context);
    self->context = NULL;
}

//  Start job index with its start time. Returns 0, 1 if the transport
//  cannot take it now (try again later), or -1 on a fatal error.
static int
s_transport_start (s_bench_t *self, size_t index, int64_t start_ns)
{
    s_job_t *job = &self->table [index];
    job->bench = self;
    job->start_ns = start_ns;
    if (self->mode == s_MODE_RELAY) {
        uint64_t tag = index;
        memcpy (self->payload, &tag, sizeof tag);
        if (zmq_send (self->dealer, self->payload, self->size, ZMQ_DONTWAIT) == -1)
            return errno == EAGAIN || errno == EINTR ? 1 : -1;
        return 0;
    }
    int rc;
    zjq_submit_opts_t opts;
    zjq_submit_opts_init (&opts);
    opts.result_ttl_ms = self->result_ttl_ms;
    if (self->mode == s_MODE_SUBMIT_ONLY)
        rc = zjq_submit (self->client, self->queue, self->payload, self->size, &opts,
                         s_on_accepted, NULL, job);
    else
        rc = zjq_submit (self->client, self->queue, self->payload, self->size, &opts,
                         NULL, s_on_done, job);
    if (rc != 0) {
        fprintf (stderr, "zjq-bench: submit: %s\n", zjq_strerror (rc));
        return -1;
    }
    return 0;
}

//  Send what is queued, read every reply, fire completions. Returns 0 or
//  -1 on a fatal socket error.
static int
s_transport_process (s_bench_t *self)
{
    if (self->mode != s_MODE_RELAY) {
        int rc = zjq_client_process (self->client);
        if (rc < 0) {
            fprintf (stderr, "zjq-bench: process: %s\n", zjq_strerror (rc));
            return -1;
        }
        return 0;
    }
    //  ZMQ_FD is edge-triggered: drain while ZMQ_EVENTS says there is input
    while (true) {
        int events = 0;
        size_t optlen = sizeof events;
        if (zmq_getsockopt (self->dealer, ZMQ_EVENTS, &events, &optlen) == -1)
            return -1;
        if (!(events & ZMQ_POLLIN))
            return 0;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, self->dealer, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&msg);
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -1;
        }
        int64_t now = s_now_ns ();
        uint64_t tag = UINT64_MAX;
        if (zmq_msg_size (&msg) == self->size && !zmq_msg_more (&msg))
            memcpy (&tag, zmq_msg_data (&msg), sizeof tag);
        else
            self->bad_results++;
        zmq_msg_close (&msg);
        if (tag < self->phase_jobs)
            s_complete (self, &self->table [tag], 0, now);
    }
}

static int
s_transport_fd (s_bench_t *self)
{
    if (self->mode != s_MODE_RELAY)
        return zjq_client_fd (self->client);
    int fd = -1;
    size_t optlen = sizeof fd;
    zmq_getsockopt (self->dealer, ZMQ_FD, &fd, &optlen);
    return fd;
}

//  Nanoseconds the transport allows us to sleep, or -1 for no limit.
static int64_t
s_transport_timeout_ns (s_bench_t *self)
{
    if (self->mode == s_MODE_RELAY)
        return -1;
    int ms = zjq_client_timeout (self->client);
    return ms < 0 ? -1 : (int64_t) ms * 1000000LL;
}


//  --------------------------------------------------------------------------
//  A phase: `count` jobs on the closed or open schedule

//  Run one phase. rate 0 is the closed loop. Returns 0 when every job has
//  completed, 1 if the deadline passed first, -1 on a fatal error.
static int
s_phase_run (s_bench_t *self, size_t count, double rate, int64_t deadline_ns,
             int64_t *start_ns_p, int64_t *end_ns_p)
{
    self->phase_jobs = count;
    self->sent = self->done = 0;
    self->errors = 0;
    int fd = s_transport_fd (self);
    int64_t interval_ns = rate > 0 ? (int64_t) (1e9 / rate) : 0;
    int64_t t0 = s_now_ns ();
    *start_ns_p = t0;
    int rc = 0;
    while (self->done < count) {
        int64_t now = s_now_ns ();
        if (now >= deadline_ns) {
            rc = 1;
            break;
        }
        //  Start what is due and allowed by the window
        bool blocked = false;
        while (self->sent < count && self->sent - self->done < self->window) {
            int64_t due = rate > 0 ? t0 + (int64_t) self->sent * interval_ns : now;
            if (due > now)
                break;
            int started = s_transport_start (self, self->sent, due);
            if (started < 0)
                return -1;
            if (started > 0) {
                blocked = true;
                break;
            }
            self->sent++;
        }
        if (s_transport_process (self) != 0)
            return -1;
        if (self->done >= count)
            break;
        //  Sleep until input, a transport timer, the next due send, or
        //  the deadline, whichever comes first
        now = s_now_ns ();
        int64_t wait = deadline_ns - now;
        if (wait > s_POLL_MAX_NS)
            wait = s_POLL_MAX_NS;
        int64_t timer = s_transport_timeout_ns (self);
        if (timer >= 0 && timer < wait)
            wait = timer;
        if (blocked)
            wait = wait < 1000000 ? wait : 1000000;
        else
        if (rate > 0 && self->sent < count && self->sent - self->done < self->window) {
            int64_t due = t0 + (int64_t) self->sent * interval_ns - now;
            if (due < wait)
                wait = due;
        }
        else
        if (self->sent < count && self->sent - self->done < self->window)
            wait = 0;           //  closed loop with room: go round
        if (wait <= 0)
            continue;
        struct pollfd item = { .fd = fd, .events = POLLIN };
        struct timespec ts = { .tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL };
        ppoll (&item, 1, &ts, NULL);
    }
    *end_ns_p = s_now_ns ();
    return rc;
}


//  --------------------------------------------------------------------------
//  sha256 calibration: rounds of the worker's --builtin sha256 per target ms

static void
s_calibrate_sha256 (double target_ms)
{
    unsigned char digest [2][crypto_hash_sha256_BYTES];
    memset (digest, 0, sizeof digest);
    int64_t rounds = 1000;
    int64_t elapsed = 0;
    //  Grow the sample until it takes at least 200 ms (bounded)
    for (int tries = 0; tries < 20; tries++) {
        int64_t start = s_now_ns ();
        for (int64_t round = 0; round < rounds; round++)
            crypto_hash_sha256 (digest [(round + 1) & 1], digest [round & 1],
                                crypto_hash_sha256_BYTES);
        elapsed = s_now_ns () - start;
        if (elapsed >= 200000000LL)
            break;
        rounds *= 4;
    }
    double ns_per_round = (double) elapsed / (double) rounds;
    printf ("rounds=%.0f ns_per_round=%.1f target_ms=%g digest0=%02x\n",
            target_ms * 1e6 / ns_per_round, ns_per_round, target_ms, digest [0][0]);
}


//  --------------------------------------------------------------------------
//  Options and main

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: zjq-bench --broker EP --queue Q --jobs N [--window W] [--size BYTES]\n"
        "                 [--rate R] [--submit-only] [--relay] [--warmup N]\n"
        "                 [--sha256-rounds R] [--result-ttl MS] [--broker-pid PID]\n"
        "                 [--timeout S] [-v]\n"
        "       zjq-bench --calibrate-sha256 MS\n"
        "\n"
        "  --broker EP          broker endpoint (with --relay: the relay's frontend)\n"
        "  --queue Q            queue to submit to (default bench)\n"
        "  --jobs N             timed jobs (default 10000)\n"
        "  --window W           jobs in flight at most (default 1000)\n"
        "  --size BYTES         payload bytes (default 64)\n"
        "  --rate R             open loop: offer R jobs/s; latency from the intended send time\n"
        "  --submit-only        count a job when ACCEPTED; no result is awaited (memory test)\n"
        "  --relay              raw libzmq client for zjq-relay (the yardstick)\n"
        "  --warmup N           untimed jobs first (default min(jobs, 1000))\n"
        "  --sha256-rounds R    payload 'R:xxx...' for zjq-worker --builtin sha256\n"
        "  --result-ttl MS      submit option: keep each result MS ms (default: broker's)\n"
        "  --broker-pid PID     read the broker's CPU time and VmRSS from /proc around the run\n"
        "  --timeout S          bound on the whole run (default 600)\n"
        "  --calibrate-sha256 MS  print rounds=R: sha256 rounds that take MS ms here\n"
        "\n"
        "The last line is: jobs=N seconds=S jobs_per_s=R p50_us=A p99_us=B p999_us=C ...\n");
}

static int
s_parse_number (const char *text, double min, double max, double *value)
{
    char *end;
    errno = 0;
    double number = strtod (text, &end);
    if (errno || end == text || *end || number < min || number > max)
        return -1;
    *value = number;
    return 0;
}

int
main (int argc, char **argv)
{
    s_bench_t bench = {
        .mode = s_MODE_RESULT, .queue = "bench", .jobs = 10000, .window = 1000,
        .size = 64, .warmup = SIZE_MAX, .timeout_s = 600
    };
    s_bench_t *self = &bench;
    double calibrate_ms = 0;
    static const struct option options [] = {
        { "broker", required_argument, NULL, 'b' },
        { "queue", required_argument, NULL, 'q' },
        { "jobs", required_argument, NULL, 'n' },
        { "window", required_argument, NULL, 'w' },
        { "size", required_argument, NULL, 's' },
        { "rate", required_argument, NULL, 'r' },
        { "submit-only", no_argument, NULL, 'S' },
        { "relay", no_argument, NULL, 'R' },
        { "warmup", required_argument, NULL, 'W' },
        { "sha256-rounds", required_argument, NULL, 'H' },
        { "result-ttl", required_argument, NULL, 'T' },
        { "broker-pid", required_argument, NULL, 'p' },
        { "timeout", required_argument, NULL, 't' },
        { "calibrate-sha256", required_argument, NULL, 'C' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    double value;
    while ((opt = getopt_long (argc, argv, "b:q:n:w:s:r:t:vh", options, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
            case 'b': self->endpoint = optarg; break;
            case 'q': self->queue = optarg; break;
            case 'n': ok = s_parse_number (optarg, 1, s_MAX_JOBS, &value) == 0;
                      self->jobs = (size_t) value; break;
            case 'w': ok = s_parse_number (optarg, 1, s_MAX_WINDOW, &value) == 0;
                      self->window = (size_t) value; break;
            case 's': ok = s_parse_number (optarg, 0, s_MAX_SIZE, &value) == 0;
                      self->size = (size_t) value; break;
            case 'r': ok = s_parse_number (optarg, 0.001, 1e9, &self->rate) == 0; break;
            case 'S': self->mode = s_MODE_SUBMIT_ONLY; break;
            case 'R': self->mode = s_MODE_RELAY; break;
            case 'W': ok = s_parse_number (optarg, 0, s_MAX_JOBS, &value) == 0;
                      self->warmup = (size_t) value; break;
            case 'H': ok = s_parse_number (optarg, 1, 1e9, &value) == 0;
                      self->sha256_rounds = (int64_t) value; break;
            case 'T': ok = s_parse_number (optarg, 1, 1e12, &value) == 0;
                      self->result_ttl_ms = (int64_t) value; break;
            case 'p': ok = s_parse_number (optarg, 1, INT_MAX, &value) == 0;
                      self->broker_pid = (int) value; break;
            case 't': ok = s_parse_number (optarg, 0.001, 1e6, &self->timeout_s) == 0; break;
            case 'C': ok = s_parse_number (optarg, 0.001, 1e6, &calibrate_ms) == 0; break;
            case 'v': self->verbose = true; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
        if (!ok) {
            fprintf (stderr, "zjq-bench: bad value for an option: %s\n", optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "zjq-bench: unexpected argument: %s\n", argv [optind]);
        return 2;
    }
    if (calibrate_ms > 0) {
        if (sodium_init () < 0)
            return 1;
        s_calibrate_sha256 (calibrate_ms);
        return 0;
    }
    if (!self->endpoint) {
        fprintf (stderr, "zjq-bench: --broker EP is required\n");
        s_usage (stderr);
        return 2;
    }
    if (self->mode == s_MODE_RELAY && (self->sha256_rounds || self->result_ttl_ms)) {
        fprintf (stderr, "zjq-bench: --relay only echoes (no --sha256-rounds, --result-ttl)\n");
        return 2;
    }
    if (self->mode == s_MODE_RELAY && self->size < s_RAW_HEADER)
        self->size = s_RAW_HEADER;          //  room for the job index
    if (self->warmup == SIZE_MAX)
        self->warmup = self->jobs < 1000 ? self->jobs : 1000;
    //  Sleeps of a few microseconds must not turn into 50 (open loop)
    prctl (PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal (SIGPIPE, SIG_IGN);

    //  The payload: filler, or "R:" and filler for sha256
    char prefix [32] = "";
    if (self->sha256_rounds > 0)
        snprintf (prefix, sizeof prefix, "%" PRId64 ":", self->sha256_rounds);
    if (self->size < strlen (prefix) + 1)
        self->size = strlen (prefix) + 1;
    size_t table_size = self->jobs > self->warmup ? self->jobs : self->warmup;
    self->payload = (unsigned char *) malloc (self->size ? self->size : 1);
    self->table = (s_job_t *) calloc (table_size ? table_size : 1, sizeof (s_job_t));
    self->latency_ns = (int64_t *) calloc (self->jobs, sizeof (int64_t));
    int status = 1;
    if (!self->payload || !self->table || !self->latency_ns) {
        fprintf (stderr, "zjq-bench: out of memory for %zu jobs\n", self->jobs);
        goto done;
    }
    memset (self->payload, 'x', self->size);
    memcpy (self->payload, prefix, strlen (prefix));
    if (s_transport_open (self) != 0) {
        fprintf (stderr, "zjq-bench: cannot connect to %s\n", self->endpoint);
        goto done;
    }

    int64_t deadline = s_now_ns () + (int64_t) (self->timeout_s * 1e9);
    int64_t start = 0, end = 0;
    int rc = 0;
    if (self->warmup > 0) {
        self->recording = false;
        rc = s_phase_run (self, self->warmup, 0, deadline, &start, &end);
        if (rc == 0 && self->errors) {
            fprintf (stderr, "zjq-bench: warmup: %zu of %zu jobs failed (%s)\n", self->errors,
                     self->warmup, zjq_strerror (self->first_error));
            goto done;
        }
        if (rc != 0) {
            fprintf (stderr, "zjq-bench: warmup did not complete (%zu of %zu jobs)\n",
                     self->done, self->warmup);
            goto done;
        }
    }
    s_usage_t before = { .valid = false }, after = { .valid = false };
    if (self->broker_pid)
        before = s_usage_read (self->broker_pid);
    self->recording = true;
    rc = s_phase_run (self, self->jobs, self->rate, deadline, &start, &end);
    if (self->broker_pid)
        after = s_usage_read (self->broker_pid);
    if (rc < 0)
        goto done;

    size_t ok = self->done - self->errors;
    qsort (self->latency_ns, ok, sizeof (int64_t), s_compare_int64);
    double seconds = (double) (end - start) / 1e9;
    double mean_us = 0;
    for (size_t i = 0; i < ok; i++)
        mean_us += (double) self->latency_ns [i] / 1000.0;
    mean_us = ok ? mean_us / (double) ok : 0;
    const char *what = self->mode == s_MODE_SUBMIT_ONLY ? "accepted" : "round trips";
    printf ("%s %s: %zu jobs (%zu failed%s%s), %.3f s, %.0f jobs/s; latency us p50 %.1f "
            "p99 %.1f p99.9 %.1f max %.1f\n",
            self->mode == s_MODE_RELAY ? "relay" : "zjq", what, self->done, self->errors,
            self->errors ? ": " : "", self->errors ? zjq_strerror (self->first_error) : "",
            seconds, seconds > 0 ? (double) ok / seconds : 0,
            s_quantile_us (self->latency_ns, ok, 0.5), s_quantile_us (self->latency_ns, ok, 0.99),
            s_quantile_us (self->latency_ns, ok, 0.999),
            s_quantile_us (self->latency_ns, ok, 1.0));
    if (rc == 1)
        printf ("timed out after %.0f s with %zu of %zu jobs done\n", self->timeout_s, self->done,
                self->jobs);
    printf ("jobs=%zu seconds=%.6f jobs_per_s=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
            "max_us=%.1f mean_us=%.1f errors=%zu bad_results=%zu window=%zu size=%zu "
            "offered_per_s=%.1f complete=%d",
            ok, seconds, seconds > 0 ? (double) ok / seconds : 0,
            s_quantile_us (self->latency_ns, ok, 0.5), s_quantile_us (self->latency_ns, ok, 0.99),
            s_quantile_us (self->latency_ns, ok, 0.999), s_quantile_us (self->latency_ns, ok, 1.0),
            mean_us, self->errors + (self->jobs - self->done), self->bad_results, self->window,
            self->size, self->rate, rc == 0);
    if (before.valid && after.valid) {
        double cpu_us = (after.cpu_s - before.cpu_s) * 1e6;
        printf (" broker_cpu_us_per_job=%.2f broker_cpu_util=%.3f broker_rss_before_kb=%" PRId64
                " broker_rss_after_kb=%" PRId64 " broker_rss_delta_bytes_per_job=%.1f",
                ok ? cpu_us / (double) ok : 0, seconds > 0 ? cpu_us / 1e6 / seconds : 0,
                before.rss_kb, after.rss_kb,
                ok ? (double) (after.rss_kb - before.rss_kb) * 1024.0 / (double) ok : 0);
    }
    printf ("\n");
    fflush (stdout);
    status = (rc == 0 && self->errors == 0 && self->bad_results == 0) ? 0 : 1;

done:
    s_transport_close (self);
    free (self->payload);
    free (self->table);
    free (self->latency_ns);
    return status;
}
