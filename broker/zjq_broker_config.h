/*  zjq_broker_config.h: zjq-broker settings from the command line and an
    optional config file.

    The file has one `option = value` per line, with the long option names
    without "--" (`bind` may repeat; `verbose = true`), `#` comments and
    blank lines. Command-line options override the file; any --bind on the
    command line replaces all of the file's binds.                          */

#ifndef ZJQ_BROKER_CONFIG_H_INCLUDED
#define ZJQ_BROKER_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZJQ_BROKER_DEFAULT_BIND "tcp://127.0.0.1:5555"

typedef struct {
    char **binds;               //  endpoints to bind, bind_count of them
    size_t bind_count;
    char *endpoint_file;        //  where to write the bound endpoints, or NULL
    uint64_t max_payload;       //  largest SUBMIT payload and stored result
    uint64_t max_jobs;          //  queued + running jobs at once
    uint64_t max_queues;        //  distinct queue names held at once
    uint64_t max_queued_bytes;  //  payload bytes of queued + running jobs
    uint64_t max_jobs_per_client;           //  one client's share of max_jobs; 0: none
    uint64_t max_queued_bytes_per_client;   //  ... of max_queued_bytes; 0: none
    uint64_t max_result_bytes;  //  bytes of stored results
    int64_t result_ttl_ms;      //  default result TTL
    int64_t job_timeout_ms;     //  default per-attempt timeout
    int max_attempts;           //  default attempts
    int64_t dead_letter_ttl_ms; //  how long a failed job is kept (at least)
    uint64_t max_dead_letters;  //  failed jobs kept at most (the oldest go)
    uint64_t max_dead_letter_bytes; //  their payload and history bytes at most
    bool verbose;               //  per-message debug logs
    char *journal;              //  journal directory, or NULL: memory only
    int fsync_policy;           //  zjq_fsync_policy_t
    int64_t fsync_interval_ms;  //  for fsync interval
    uint64_t journal_compact_size;  //  file size that triggers a rewrite
    bool journal_salvage;       //  start past corrupt journal records
    bool no_shed;               //  out of descriptors: leave pending connections to libzmq
    char *curve_secret;         //  broker's secret certificate: CURVE on, or NULL
    char *curve_clients;        //  allow-list directories per role, or NULL
    char *curve_workers;
    char *curve_admins;
    char *metrics;              //  HOST:PORT to serve Prometheus /metrics on, or NULL
    int log_format;             //  zjq_log_format_t
    uint64_t max_peer_outbound_bytes;   //  unread bytes per connection
    uint64_t max_outbound_bytes;    //  unread bytes, all clients
} zjq_broker_config_t;

//  What zjq_broker_config_parse decided.
typedef enum {
    ZJQ_CONFIG_RUN = 0,         //  settings complete: run the broker
    ZJQ_CONFIG_EXIT = 1,        //  --help or --version was printed: exit 0
    ZJQ_CONFIG_USAGE = 2        //  bad usage, message printed: exit 2
} zjq_config_result_t;

//  Create settings with the defaults (no binds yet: parse adds the default
//  bind if none is given). Returns NULL if out of memory.
zjq_broker_config_t *
    zjq_broker_config_new (void);

//  Destroy settings; idempotent; nulls the pointer.
void
    zjq_broker_config_destroy (zjq_broker_config_t **self_p);

//  Apply the command line (argv [0] is the program name), reading the
//  --config file first. Errors and --help/--version go to stderr/stdout.
zjq_config_result_t
    zjq_broker_config_parse (zjq_broker_config_t *self, int argc, char *argv []);

//  Set one option by its long name without "--" to a text value. Returns 0,
//  or -1 with a message in error (error_size bytes) for an unknown name or
//  a bad value.
int
    zjq_broker_config_set (zjq_broker_config_t *self, const char *name, const char *value,
                           char *error, size_t error_size);

//  Read a config file. Returns 0, or -1 with "file:line: what" (or the
//  reason the file could not be read) in error.
int
    zjq_broker_config_load (zjq_broker_config_t *self, const char *path,
                            char *error, size_t error_size);

//  Print the usage text to a stream (FILE *).
void
    zjq_broker_config_usage (void *stream);

#endif
