/*  zjq_stats_view.c: the text view of STATS. See zjq_stats_view.h and
    docs/protocol.md (Stats) for the fields.                               */

#include "zjq_stats_view.h"
#include "zjq_proto.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NAME_MIN 5            //  queue name column, at least
#define S_NAME_MAX 40           //  and at most, when the width allows

static double
s_num (const msgpack_object *map, const char *key)
{
    double value = 0;
    zjq_mp_number (zjq_mp_map_get (map, key), &value);
    return value;
}

static bool
s_true (const msgpack_object *map, const char *key)
{
    const msgpack_object *value = zjq_mp_map_get (map, key);
    return value && value->type == MSGPACK_OBJECT_BOOLEAN && value->via.boolean;
}

//  A count in at most 6 characters: 12345, 123456, 1.23M, 12.3G
static const char *
s_count (double value, char *buf, size_t size)
{
    if (value < 1e6)
        snprintf (buf, size, "%.0f", value);
    else
    if (value < 1e9)
        snprintf (buf, size, "%.*fM", value < 1e7? 2: value < 1e8? 1: 0, value / 1e6);
    else
        snprintf (buf, size, "%.*fG", value < 1e10? 2: value < 1e11? 1: 0, value / 1e9);
    return buf;
}

//  A rate per second in at most 5 characters: 0.3, 12.5, 1234, 12.3k
static const char *
s_rate (double value, char *buf, size_t size)
{
    if (value < 100)
        snprintf (buf, size, "%.1f", value);
    else
    if (value < 10000)
        snprintf (buf, size, "%.0f", value);
    else
        snprintf (buf, size, "%.1fk", value / 1000);
    return buf;
}

//  A duration in ms in at most 6 characters: 0.4ms, 850ms, 12.5s, 59m59s, 23h59m, 12d03h
static const char *
s_duration (double ms, char *buf, size_t size)
{
    int64_t seconds = (int64_t) (ms / 1000);
    if (ms < 10)
        snprintf (buf, size, "%.1fms", ms);
    else
    if (ms < 1000)
        snprintf (buf, size, "%.0fms", ms);
    else
    if (seconds < 60)
        snprintf (buf, size, "%.1fs", ms / 1000);
    else
    if (seconds < 3600)
        snprintf (buf, size, "%" PRId64 "m%02" PRId64 "s", seconds / 60, seconds % 60);
    else
    if (seconds < 86400)
        snprintf (buf, size, "%" PRId64 "h%02" PRId64 "m", seconds / 3600, seconds % 3600 / 60);
    else
        snprintf (buf, size, "%" PRId64 "d%02" PRId64 "h", seconds / 86400,
                  seconds % 86400 / 3600);
    return buf;
}

static const char *
s_bytes (double bytes, char *buf, size_t size)
{
    const char *units [] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int unit = 0;
    while (bytes >= 1024 && unit < 4) {
        bytes /= 1024;
        unit++;
    }
    snprintf (buf, size, unit? "%.1f %s": "%.0f %s", bytes, units [unit]);
    return buf;
}

//  --- Output: lines, cut to the width, counted
typedef struct {
    FILE *out;
    int width;
    int max_lines;
    int lines;
    int dropped;
} s_view_t;

static void
s_line (s_view_t *view, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_line (s_view_t *view, const char *format, ...)
{
    if (view->max_lines > 0 && view->lines >= view->max_lines - 1) {
        view->dropped++;        //  the last line is kept for the note
        return;
    }
    char text [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    size_t len = strlen (text);
    while (len && text [len - 1] == ' ')
        len--;
    if (view->width > 0 && len > (size_t) view->width)
        len = (size_t) view->width;
    fprintf (view->out, "%.*s\n", (int) len, text);
    view->lines++;
}

//  Sort map entries (queues) by key
static int
s_compare_keys (const void *a, const void *b)
{
    const msgpack_object_kv *x = *(const msgpack_object_kv * const *) a;
    const msgpack_object_kv *y = *(const msgpack_object_kv * const *) b;
    uint32_t xs = x->key.type == MSGPACK_OBJECT_STR? x->key.via.str.size: 0;
    uint32_t ys = y->key.type == MSGPACK_OBJECT_STR? y->key.via.str.size: 0;
    int rc = memcmp (x->key.via.str.ptr, y->key.via.str.ptr, xs < ys? xs: ys);
    return rc? rc: (xs > ys) - (xs < ys);
}

//  Sort workers by id
static int
s_compare_workers (const void *a, const void *b)
{
    char x [300], y [300];
    zjq_mp_text (zjq_mp_map_get (*(const msgpack_object * const *) a, "id"), x, sizeof (x));
    zjq_mp_text (zjq_mp_map_get (*(const msgpack_object * const *) b, "id"), y, sizeof (y));
    return strcmp (x, y);
}

static void
s_broker_block (s_view_t *view, const msgpack_object *broker)
{
    char version [64], instance [64], uptime [32], rss [32], journal [64] = "";
    char results [32], in [16], out [16];
    const msgpack_object *journal_map = zjq_mp_map_get (broker, "journal");
    if (journal_map) {
        char size [32];
        snprintf (journal, sizeof (journal), "  journal %s%s",
                  s_bytes (s_num (journal_map, "bytes"), size, sizeof (size)),
                  s_true (journal_map, "healthy")? "": " (FAILING)");
    }
    s_line (view, "broker %s  instance %s  up %s  rss %s%s%s%s",
            zjq_mp_text (zjq_mp_map_get (broker, "version"), version, sizeof (version)),
            zjq_mp_text (zjq_mp_map_get (broker, "instance"), instance, sizeof (instance)),
            s_duration (s_num (broker, "uptime_ms"), uptime, sizeof (uptime)),
            s_bytes (s_num (broker, "rss_bytes"), rss, sizeof (rss)), journal,
            s_true (broker, "curve")? "  CURVE": "",
            s_true (broker, "draining")? "  DRAINING": "");
    s_line (view, "jobs %.0f  queued %.0f  running %.0f  results %.0f (%s)  in %s/s  out %s/s"
                  "  dead %.0f",
            s_num (broker, "jobs"), s_num (broker, "queued"), s_num (broker, "running"),
            s_num (broker, "results"),
            s_bytes (s_num (broker, "result_bytes"), results, sizeof (results)),
            s_rate (s_num (broker, "submitted_per_s"), in, sizeof (in)),
            s_rate (s_num (broker, "completed_per_s"), out, sizeof (out)),
            s_num (broker, "dead_letters"));
    s_line (view, "since start: submitted %.0f  succeeded %.0f  failed %.0f  cancelled %.0f"
                  "  expired %.0f",
            s_num (broker, "submitted"), s_num (broker, "succeeded"), s_num (broker, "failed"),
            s_num (broker, "cancelled"), s_num (broker, "expired"));
    s_line (view, "errors: rejected %.0f  malformed %.0f  stale results %.0f  workers lost %.0f"
                  "  refused %.0f",
            s_num (broker, "rejected"), s_num (broker, "malformed"),
            s_num (broker, "stale_results"), s_num (broker, "workers_lost"),
            s_num (broker, "refused_handshakes") + s_num (broker, "refused_unknown_key")
            + s_num (broker, "refused_role") + s_num (broker, "denied_queue"));
    char backlog [32], peer_max [32], workers [32];
    s_line (view, "unread: clients %s (largest %s, %.0f connections)  workers %s"
                  "  results withheld %.0f  refused %.0f",
            s_bytes (s_num (broker, "outbound_bytes"), backlog, sizeof (backlog)),
            s_bytes (s_num (broker, "outbound_peer_max_bytes"), peer_max, sizeof (peer_max)),
            s_num (broker, "outbound_connections"),
            s_bytes (s_num (broker, "worker_outbound_bytes"), workers, sizeof (workers)),
            s_num (broker, "results_withheld"), s_num (broker, "outbound_refused"));
}

static void
s_queue_block (s_view_t *view, const msgpack_object *queues)
{
    uint32_t count = queues && queues->type == MSGPACK_OBJECT_MAP? queues->via.map.size: 0;
    const msgpack_object_kv **sorted =
        (const msgpack_object_kv **) calloc (count? count: 1, sizeof (*sorted));
    if (!sorted)
        return;
    int name_width = S_NAME_MIN;
    for (uint32_t index = 0; index < count; index++) {
        sorted [index] = &queues->via.map.ptr [index];
        const msgpack_object *key = &sorted [index]->key;
        if (key->type == MSGPACK_OBJECT_STR && (int) key->via.str.size > name_width)
            name_width = (int) key->via.str.size;
    }
    //  The other columns take 68: the name gets what is left of the width
    int room = view->width > 0? view->width - 68: S_NAME_MAX;
    if (name_width > room)
        name_width = room < S_NAME_MIN? S_NAME_MIN: room;
    if (name_width > S_NAME_MAX && view->width <= 0)
        name_width = S_NAME_MAX;
    qsort (sorted, count, sizeof (*sorted), s_compare_keys);
    s_line (view, "%-*s %6s %4s %6s %5s %5s %5s %5s %6s %3s %6s %6s", name_width, "QUEUE",
            "QUEUED", "RUN", "DONE", "FAIL", "CANC", "IN/s", "OUT/s", "OLDEST", "WRK", "MEAN",
            "P99");
    if (count == 0)
        s_line (view, "(no queues)");
    size_t paused = 0;
    for (uint32_t index = 0; index < count; index++) {
        const msgpack_object *queue = &sorted [index]->val;
        char name [256], queued [16], running [16], done [16], failed [16], cancelled [16];
        char in [16], out [16], oldest [32] = "-", workers [16], mean [32] = "-", p99 [32] = "-";
        zjq_mp_text (&sorted [index]->key, name, sizeof (name));
        if (s_true (queue, "paused")) {
            //  A paused queue is marked with a '*' (explained below the table)
            size_t len = strlen (name);
            if ((int) len >= name_width && name_width > 1)
                len = (size_t) name_width - 1;
            name [len] = '*';
            name [len + 1] = 0;
            paused++;
        }
        if ((int) strlen (name) > name_width && name_width > 1) {
            name [name_width - 1] = '~';
            name [name_width] = 0;
        }
        if (s_num (queue, "queued") > 0)
            s_duration (s_num (queue, "oldest_queued_ms"), oldest, sizeof (oldest));
        if (s_num (queue, "run_count_1m") > 0) {
            s_duration (s_num (queue, "run_ms_mean"), mean, sizeof (mean));
            s_duration (s_num (queue, "run_ms_p99"), p99, sizeof (p99));
        }
        s_line (view, "%-*s %6s %4s %6s %5s %5s %5s %5s %6s %3s %6s %6s", name_width, name,
                s_count (s_num (queue, "queued"), queued, sizeof (queued)),
                s_count (s_num (queue, "running"), running, sizeof (running)),
                s_count (s_num (queue, "succeeded"), done, sizeof (done)),
                s_count (s_num (queue, "failed"), failed, sizeof (failed)),
                s_count (s_num (queue, "cancelled"), cancelled, sizeof (cancelled)),
                s_rate (s_num (queue, "submitted_per_s"), in, sizeof (in)),
                s_rate (s_num (queue, "completed_per_s"), out, sizeof (out)),
                oldest, s_count (s_num (queue, "workers"), workers, sizeof (workers)),
                mean, p99);
    }
    if (paused)
        s_line (view, "* paused (zjq resume QUEUE)");
    free (sorted);
}

static void
s_worker_block (s_view_t *view, const msgpack_object *workers)
{
    uint32_t count = workers && workers->type == MSGPACK_OBJECT_ARRAY?
                     workers->via.array.size: 0;
    const msgpack_object **sorted =
        (const msgpack_object **) calloc (count? count: 1, sizeof (*sorted));
    if (!sorted)
        return;
    for (uint32_t index = 0; index < count; index++)
        sorted [index] = &workers->via.array.ptr [index];
    qsort (sorted, count, sizeof (*sorted), s_compare_workers);
    s_line (view, "%-20s %-10s %7s %7s %6s %6s %-7s %s", "WORKER", "HOST", "PID", "RUN/CAP",
            "DONE", "SEEN", "VERSION", "QUEUES");
    if (count == 0)
        s_line (view, "(no workers)");
    for (uint32_t index = 0; index < count; index++) {
        const msgpack_object *worker = sorted [index];
        char id [300], host [300], load [32], done [16], seen [32], version [64];
        char names [512] = "";
        const msgpack_object *list = zjq_mp_map_get (worker, "queues");
        if (list && list->type == MSGPACK_OBJECT_ARRAY)
            for (uint32_t item = 0; item < list->via.array.size; item++) {
                char name [160];
                size_t used = strlen (names);
                snprintf (names + used, sizeof (names) - used, "%s%s", item? ",": "",
                          zjq_mp_text (&list->via.array.ptr [item], name, sizeof (name)));
            }
        snprintf (load, sizeof (load), "%.0f/%.0f", s_num (worker, "running"),
                  s_num (worker, "capacity"));
        s_line (view, "%-20.20s %-10.10s %7.0f %7s %6s %6s %-7.7s %s%s",
                zjq_mp_text (zjq_mp_map_get (worker, "id"), id, sizeof (id)),
                zjq_mp_text (zjq_mp_map_get (worker, "host"), host, sizeof (host)),
                s_num (worker, "pid"), load,
                s_count (s_num (worker, "completed"), done, sizeof (done)),
                s_duration (s_num (worker, "last_seen_ms_ago"), seen, sizeof (seen)),
                zjq_mp_text (zjq_mp_map_get (worker, "version"), version, sizeof (version)),
                s_true (worker, "draining")? "(draining) ": "", names);
    }
    free (sorted);
}

char *
zjq_stats_view_render (const msgpack_object *stats, int width, int max_lines)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    s_view_t view = { .out = out, .width = width, .max_lines = max_lines };
    s_broker_block (&view, zjq_mp_map_get (stats, "broker"));
    s_line (&view, " ");
    s_queue_block (&view, zjq_mp_map_get (stats, "queues"));
    s_line (&view, " ");
    s_worker_block (&view, zjq_mp_map_get (stats, "workers"));
    if (view.dropped) {
        char note [64];
        snprintf (note, sizeof (note), "... %d more line(s): enlarge the window", view.dropped);
        fprintf (out, "%.*s\n", width > 0? width: (int) sizeof (note), note);
    }
    if (fclose (out) != 0) {
        free (text);
        return NULL;
    }
    return text;
}
