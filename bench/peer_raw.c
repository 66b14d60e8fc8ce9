/*  peer_raw.c: client, echo worker and filler for the peer table
    (bench/peers.sh) over the raw protocols of gearmand and beanstalkd, so
    that the peers are driven from C as zjq-bench drives zjq.

    peer_raw gearman|beanstalk client HOST PORT JOBS WINDOW [TIMEOUT_S]
        JOBS 64-byte echo jobs, WINDOW in flight (closed loop), after 200
        untimed ones; a job counts when its result is back, checked byte for
        byte. Last line: jobs= seconds= jobs_per_s= p50_us= p99_us= bad=
        complete=0|1 (the keys of zjq-bench).
    peer_raw gearman|beanstalk worker HOST PORT
        an echo worker, until killed.
    peer_raw gearman|beanstalk fill HOST PORT JOBS
        JOBS 100-byte jobs queued for nobody (gearman: background jobs),
        1000 in flight; prints jobs=N when the server has accepted them all.

    gearman: SUBMIT_JOB "echo" / WORK_COMPLETE; the worker CAN_DO "echo",
    GRAB_JOB, PRE_SLEEP on NO_JOB. beanstalk: jobs go to tube "jobs"; the
    worker reserves there and puts each result into tube "results", which
    the client reserves and deletes on a second connection. Loopback only:
    HOST must be 127.0.0.1. Every run is bounded by JOBS and TIMEOUT_S.  */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 64
#define FILL_SIZE 100
#define WARMUP 200

typedef struct {
    int fd;
    char *data;
    size_t size, max;
} conn_t;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
s_die (const char *what)
{
    fprintf (stderr, "peer_raw: %s: %s\n", what, errno? strerror (errno): "protocol error");
    exit (1);
}

static void
s_connect (conn_t *conn, const char *host, int port)
{
    memset (conn, 0, sizeof (*conn));
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (strcmp (host, "127.0.0.1") || inet_pton (AF_INET, host, &addr.sin_addr) != 1) {
        fprintf (stderr, "peer_raw: loopback only (127.0.0.1)\n");
        exit (2);
    }
    conn->fd = socket (AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt (conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    if (conn->fd < 0 || connect (conn->fd, (struct sockaddr *) &addr, sizeof (addr)))
        s_die ("connect");
    conn->max = 1 << 16;
    conn->data = malloc (conn->max);
    if (!conn->data)
        s_die ("malloc");
}

static void
s_send (conn_t *conn, const void *data, size_t size)
{
    const char *bytes = data;
    while (size) {
        ssize_t rc = write (conn->fd, bytes, size);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            s_die ("write");
        bytes += rc;
        size -= (size_t) rc;
    }
}

//  Read what is there (blocks if nothing is)
static void
s_fill (conn_t *conn)
{
    if (conn->max - conn->size < 4096) {
        conn->max *= 2;
        conn->data = realloc (conn->data, conn->max);
        if (!conn->data)
            s_die ("realloc");
    }
    ssize_t rc = read (conn->fd, conn->data + conn->size, conn->max - conn->size);
    if (rc == 0)
        s_die ("connection closed");
    if (rc < 0 && errno != EINTR)
        s_die ("read");
    if (rc > 0)
        conn->size += (size_t) rc;
}

static void
s_consume (conn_t *conn, size_t size)
{
    memmove (conn->data, conn->data + size, conn->size - size);
    conn->size -= size;
}

//  --- gearman: packets are "\0REQ"/"\0RES", u32 type, u32 size, args

static void
s_gear_send (conn_t *conn, uint32_t type, const char *args, size_t size)
{
    char head [12] = { 0, 'R', 'E', 'Q' };
    uint32_t value = htonl (type);
    memcpy (head + 4, &value, 4);
    value = htonl ((uint32_t) size);
    memcpy (head + 8, &value, 4);
    char packet [12 + 256];
    if (size <= 256) {
        memcpy (packet, head, 12);
        memcpy (packet + 12, args, size);
        s_send (conn, packet, 12 + size);
    }
    else {
        s_send (conn, head, 12);
        s_send (conn, args, size);
    }
}

//  A whole packet in the buffer: its type, args and their size; else -1
static int
s_gear_packet (conn_t *conn, const char **args, size_t *size)
{
    if (conn->size < 12)
        return -1;
    uint32_t type, length;
    memcpy (&type, conn->data + 4, 4);
    memcpy (&length, conn->data + 8, 4);
    length = ntohl (length);
    if (conn->size < 12 + (size_t) length)
        return -1;
    *args = conn->data + 12;
    *size = length;
    return (int) ntohl (type);
}

//  --- beanstalk: text lines, bodies of a given size followed by CRLF

static const char *
s_line (conn_t *conn, size_t *size)
{
    char *end = memmem (conn->data, conn->size, "\r\n", 2);
    if (!end)
        return NULL;
    *size = (size_t) (end - conn->data) + 2;
    return conn->data;
}

static void
s_bean_put (conn_t *conn, const char *data, size_t size)
{
    char head [64];
    int length = snprintf (head, sizeof (head), "put 1024 0 60 %zu\r\n", size);
    char packet [64 + 256];
    memcpy (packet, head, (size_t) length);
    memcpy (packet + length, data, size);
    memcpy (packet + length + size, "\r\n", 2);
    s_send (conn, packet, (size_t) length + size + 2);
}

//  "RESERVED id bytes\r\n<data>\r\n" whole in the buffer: its data, else NULL
static const char *
s_bean_reserved (conn_t *conn, unsigned long long *id, size_t *data_size, size_t *total)
{
    size_t line;
    if (!s_line (conn, &line))
        return NULL;
    if (strncmp (conn->data, "RESERVED ", 9)) {
        fprintf (stderr, "peer_raw: beanstalkd said %.*s\n", (int) line, conn->data);
        exit (1);
    }
    if (sscanf (conn->data + 9, "%llu %zu", id, data_size) != 2)
        s_die ("RESERVED");
    if (conn->size < line + *data_size + 2)
        return NULL;
    *total = line + *data_size + 2;
    return conn->data + line;
}

//  --- the client's jobs

static void
s_payload (char *buffer, uint64_t index)
{
    snprintf (buffer, 17, "%016llx", (unsigned long long) index);
    for (int at = 16; at < PAYLOAD; at++)
        buffer [at] = (char) ('a' + (index + (uint64_t) at) % 26);
}

typedef struct {
    const char *proto;
    conn_t submit, results;     //  gearman: results is submit
    uint64_t total, sent, done, bad;
    double *sent_at, *latency;
    char *seen;
    uint64_t base;              //  index of the first timed job
} client_t;

static void
s_send_job (client_t *self)
{
    char payload [PAYLOAD];
    s_payload (payload, self->sent);
    self->sent_at [self->sent] = s_now ();
    if (*self->proto == 'g') {
        char args [8 + PAYLOAD] = "echo\0\0";
        memcpy (args + 6, payload, PAYLOAD);
        s_gear_send (&self->submit, 7, args, 6 + PAYLOAD);      //  SUBMIT_JOB
    }
    else
        s_bean_put (&self->submit, payload, PAYLOAD);
    self->sent++;
}

static void
s_result (client_t *self, const char *data, size_t size)
{
    char expect [PAYLOAD + 1];
    unsigned long long index = 0;
    bool good = size == PAYLOAD && sscanf (data, "%16llx", &index) == 1 && index < self->sent
             && !self->seen [index];
    if (good) {
        s_payload (expect, index);
        good = memcmp (expect, data, PAYLOAD) == 0;
    }
    if (!good) {
        self->bad++;
        return;
    }
    self->seen [index] = 1;
    self->latency [index] = s_now () - self->sent_at [index];
    self->done++;
}

//  Take every complete reply from the connections
static void
s_client_read (client_t *self, bool submit_ready, bool results_ready)
{
    const char *args;
    size_t size, line;
    if (*self->proto == 'g') {
        if (!submit_ready)
            return;
        s_fill (&self->submit);
        int type;
        while ((type = s_gear_packet (&self->submit, &args, &size)) >= 0) {
            if (type == 13) {           //  WORK_COMPLETE handle\0data
                const char *nul = memchr (args, 0, size);
                if (nul)
                    s_result (self, nul + 1, size - (size_t) (nul + 1 - args));
                else
                    self->bad++;
            }
            else
            if (type != 8)              //  JOB_CREATED
                self->bad++, self->done++;
            s_consume (&self->submit, 12 + size);
        }
        return;
    }
    if (submit_ready) {
        s_fill (&self->submit);
        while (s_line (&self->submit, &line)) {
            if (strncmp (self->submit.data, "INSERTED", 8))
                s_die ("put refused");
            s_consume (&self->submit, line);
        }
    }
    if (results_ready) {
        s_fill (&self->results);
        unsigned long long id;
        size_t total;
        const char *data;
        char command [128];
        size_t length = 0;
        while ((data = s_bean_reserved (&self->results, &id, &size, &total))) {
            s_result (self, data, size);
            s_consume (&self->results, total);
            //  The delete's DELETED comes before the next RESERVED
            length += (size_t) snprintf (command + length, sizeof (command) - length,
                                         "delete %llu\r\nreserve\r\n", id);
            s_send (&self->results, command, length);
            length = 0;
            size_t deleted;
            while (!s_line (&self->results, &deleted))
                s_fill (&self->results);
            if (strncmp (self->results.data, "DELETED", 7))
                s_die ("delete");
            s_consume (&self->results, deleted);
        }
    }
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static int
s_client (const char *proto, const char *host, int port, uint64_t jobs, uint64_t window,
          double timeout)
{
    client_t self = { .proto = proto, .total = jobs + WARMUP };
    self.sent_at = calloc (self.total, sizeof (double));
    self.latency = calloc (self.total, sizeof (double));
    self.seen = calloc (self.total, 1);
    if (!self.sent_at || !self.latency || !self.seen)
        s_die ("calloc");
    s_connect (&self.submit, host, port);
    int results_fd = -1;
    if (*proto == 'b') {
        s_connect (&self.results, host, port);
        s_send (&self.submit, "use jobs\r\n", 10);
        s_send (&self.results, "watch results\r\nignore default\r\nreserve\r\n", 40);
        size_t line;
        while (!s_line (&self.submit, &line))          //  USING jobs
            s_fill (&self.submit);
        s_consume (&self.submit, line);
        for (int replies = 0; replies < 2; replies++) {
            while (!s_line (&self.results, &line))
                s_fill (&self.results);
            s_consume (&self.results, line);
        }
        results_fd = self.results.fd;
    }
    double deadline = s_now () + timeout, start = 0;
    while (self.done < self.total && s_now () < deadline) {
        if (self.done == WARMUP && !start) {
            start = s_now ();
            self.base = self.sent;
        }
        uint64_t limit = self.done < WARMUP? WARMUP: self.total;
        while (self.sent < limit && self.sent - self.done < window)
            s_send_job (&self);
        struct pollfd items [2] = { { self.submit.fd, POLLIN, 0 }, { results_fd, POLLIN, 0 } };
        if (poll (items, results_fd >= 0? 2: 1, 1000) < 0 && errno != EINTR)
            s_die ("poll");
        s_client_read (&self, items [0].revents, results_fd >= 0 && items [1].revents);
        if (self.bad)
            break;
    }
    double seconds = s_now () - start;
    uint64_t timed = self.done > WARMUP? self.done - WARMUP: 0;
    double *latency = calloc (timed + 1, sizeof (double));
    size_t count = 0;
    for (uint64_t index = WARMUP; index < self.total; index++)
        if (self.seen [index])
            latency [count++] = self.latency [index] * 1e6;
    qsort (latency, count, sizeof (double), s_compare);
    double p50 = count? latency [count / 2]: 0, p99 = count? latency [count * 99 / 100]: 0;
    bool complete = self.done == self.total && !self.bad;
    printf ("jobs=%llu seconds=%.3f jobs_per_s=%.1f p50_us=%.0f p99_us=%.0f bad=%llu "
            "window=%llu complete=%d\n", (unsigned long long) timed, seconds,
            seconds > 0? timed / seconds: 0, p50, p99, (unsigned long long) self.bad,
            (unsigned long long) window, complete);
    return complete? 0: 1;
}

//  --- the echo workers

static void
s_gear_worker (conn_t *conn)
{
    s_gear_send (conn, 1, "echo", 4);                   //  CAN_DO
    s_gear_send (conn, 9, NULL, 0);                     //  GRAB_JOB
    while (true) {
        s_fill (conn);
        const char *args;
        size_t size;
        int type;
        while ((type = s_gear_packet (conn, &args, &size)) >= 0) {
            if (type == 11) {           //  JOB_ASSIGN handle\0function\0data
                const char *nul1 = memchr (args, 0, size);
                const char *nul2 = nul1? memchr (nul1 + 1, 0, size - (size_t) (nul1 + 1 - args)): NULL;
                if (!nul2)
                    s_die ("JOB_ASSIGN");
                size_t handle = (size_t) (nul1 - args) + 1;
                size_t data = size - (size_t) (nul2 + 1 - args);
                char reply [512];
                if (handle + data > sizeof (reply))
                    s_die ("job too large");
                memcpy (reply, args, handle);
                memcpy (reply + handle, nul2 + 1, data);
                s_gear_send (conn, 13, reply, handle + data);   //  WORK_COMPLETE
                s_gear_send (conn, 9, NULL, 0);
            }
            else
            if (type == 10)             //  NO_JOB
                s_gear_send (conn, 4, NULL, 0);                 //  PRE_SLEEP
            else
            if (type == 6)              //  NOOP: work is there
                s_gear_send (conn, 9, NULL, 0);
            s_consume (conn, 12 + size);
        }
    }
}

static void
s_bean_worker (conn_t *conn)
{
    s_send (conn, "use results\r\nwatch jobs\r\nignore default\r\nreserve\r\n", 50);
    size_t line;
    for (int replies = 0; replies < 3; replies++) {
        while (!s_line (conn, &line))
            s_fill (conn);
        s_consume (conn, line);
    }
    while (true) {
        unsigned long long id;
        size_t size, total;
        const char *data;
        while (!(data = s_bean_reserved (conn, &id, &size, &total)))
            s_fill (conn);
        if (size > 256)
            s_die ("job too large");
        char body [256];
        memcpy (body, data, size);
        s_consume (conn, total);
        s_bean_put (conn, body, size);
        char command [64];
        int length = snprintf (command, sizeof (command), "delete %llu\r\nreserve\r\n", id);
        s_send (conn, command, (size_t) length);
        for (int replies = 0; replies < 2; replies++) {     //  INSERTED, DELETED
            while (!s_line (conn, &line))
                s_fill (conn);
            s_consume (conn, line);
        }
    }
}

//  --- queue jobs for nobody (the memory row)

static int
s_fill_jobs (const char *proto, conn_t *conn, uint64_t jobs)
{
    char payload [FILL_SIZE];
    memset (payload, 'm', sizeof (payload));
    char args [8 + FILL_SIZE] = "echo\0\0";
    memcpy (args + 6, payload, FILL_SIZE);
    if (*proto == 'b')
        s_send (conn, "use jobs\r\n", 10);
    uint64_t sent = 0, done = 0, replies = *proto == 'b'? 1: 0;     //  USING jobs
    uint64_t expected = jobs + replies;
    double deadline = s_now () + 600;
    while (done < expected && s_now () < deadline) {
        while (sent < jobs && sent + replies - done < 1000) {
            if (*proto == 'g')
                s_gear_send (conn, 18, args, 6 + FILL_SIZE);   //  SUBMIT_JOB_BG
            else
                s_bean_put (conn, payload, FILL_SIZE);
            sent++;
        }
        s_fill (conn);
        const char *data;
        size_t size;
        if (*proto == 'g')
            while (s_gear_packet (conn, &data, &size) == 8)  //  JOB_CREATED
                s_consume (conn, 12 + size), done++;
        else
            while (s_line (conn, &size))
                s_consume (conn, size), done++;
    }
    printf ("jobs=%llu\n", (unsigned long long) (done - replies));
    return done == expected? 0: 1;
}

int
main (int argc, char *argv [])
{
    if (argc < 5 || (strcmp (argv [1], "gearman") && strcmp (argv [1], "beanstalk"))) {
        fprintf (stderr, "usage: peer_raw gearman|beanstalk client|worker|fill HOST PORT ...\n");
        return 2;
    }
    const char *proto = argv [1], *mode = argv [2], *host = argv [3];
    int port = atoi (argv [4]);
    if (!strcmp (mode, "client") && argc >= 7)
        return s_client (proto, host, port, strtoull (argv [5], NULL, 10),
                         strtoull (argv [6], NULL, 10), argc > 7? atof (argv [7]): 300);
    conn_t conn;
    if (!strcmp (mode, "worker")) {
        s_connect (&conn, host, port);
        if (*proto == 'g')
            s_gear_worker (&conn);
        else
            s_bean_worker (&conn);
        return 0;
    }
    if (!strcmp (mode, "fill") && argc >= 6) {
        s_connect (&conn, host, port);
        return s_fill_jobs (proto, &conn, strtoull (argv [5], NULL, 10));
    }
    fprintf (stderr, "peer_raw: bad arguments\n");
    return 2;
}
