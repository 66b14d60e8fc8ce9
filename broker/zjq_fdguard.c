/*  zjq_fdguard.c: descriptor limit, failed accepts, and shedding pending
    connections when descriptors run out. See zjq_fdguard.h.               */

#define _GNU_SOURCE
#include "zjq_fdguard.h"
#include "zjq_log.h"
#include "zjq_proto.h"
#include "zjq_util.h"
#include <czmq.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_READ_BATCH    4096    //  monitor events per read
#define S_SHED_BATCH    4096    //  pending connections shed per failed accept
#define S_LOG_INTERVAL  1000    //  ms between accept_failed lines

struct _zjq_fdguard_t {
    bool shed;                  //  shed pending connections on EMFILE/ENFILE
    int spare;                  //  the reserve descriptor (/dev/null), or -1
    void *monitored;            //  the socket of the guard's own monitor, or NULL
    zsock_t *monitor;           //  its PAIR, or NULL
    int listeners [ZJQ_FDGUARD_LISTENERS];  //  listener descriptors
    size_t listener_count;
    zjq_fdguard_stats_t stats;
    int64_t log_due;            //  monotonic ms when the next line may go
    uint64_t unlogged;          //  failed accepts since the last line
    uint64_t unlogged_shed;     //  connections shed since the last line
    int last_error;             //  errno of the last failed accept
};

static void
s_spare_open (zjq_fdguard_t *self)
{
    if (self->shed && self->spare < 0)
        self->spare = open ("/dev/null", O_RDONLY | O_CLOEXEC);
}

zjq_fdguard_t *
zjq_fdguard_new (bool shed)
{
    zjq_fdguard_t *self = (zjq_fdguard_t *) calloc (1, sizeof (zjq_fdguard_t));
    if (!self)
        return NULL;
    self->shed = shed;
    self->spare = -1;
    s_spare_open (self);
    return self;
}

void
zjq_fdguard_destroy (zjq_fdguard_t **self_p)
{
    assert (self_p);
    zjq_fdguard_t *self = *self_p;
    if (!self)
        return;
    if (self->monitored)
        zmq_socket_monitor (self->monitored, NULL, 0);
    zsock_destroy (&self->monitor);
    if (self->spare >= 0)
        close (self->spare);
    free (self);
    *self_p = NULL;
}

void
zjq_fdguard_raise_limit (zjq_fdguard_t *self)
{
    assert (self);
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == -1) {
        zjq_log_warning ("fd_limit", "error=%s msg=%s", strerror (errno),
                         "cannot read the descriptor limit");
        return;
    }
    rlim_t before = limit.rlim_cur;
    if (limit.rlim_cur < limit.rlim_max) {
        struct rlimit raised = { limit.rlim_max, limit.rlim_max };
        //  An unlimited hard limit is more than the kernel allows a process
        if (raised.rlim_cur == RLIM_INFINITY)
            raised.rlim_cur = 1 << 20;
        if (setrlimit (RLIMIT_NOFILE, &raised) == 0)
            limit.rlim_cur = raised.rlim_cur;
    }
    self->stats.soft_limit = (uint64_t) limit.rlim_cur;
    self->stats.hard_limit = (uint64_t) limit.rlim_max;
    uint64_t room = self->stats.soft_limit > ZJQ_FDGUARD_RESERVED?
                    self->stats.soft_limit - ZJQ_FDGUARD_RESERVED: 0;
    zjq_log_info ("fd_limit", "soft=%llu hard=%llu was=%llu connections_max=%llu",
                  (unsigned long long) self->stats.soft_limit,
                  (unsigned long long) self->stats.hard_limit, (unsigned long long) before,
                  (unsigned long long) room);
    if (room < ZJQ_FDGUARD_WANT)
        zjq_log_warning ("fd_limit_low", "soft=%llu hard=%llu connections_max=%llu want=%d "
                         "msg=%s", (unsigned long long) self->stats.soft_limit,
                         (unsigned long long) self->stats.hard_limit,
                         (unsigned long long) room, ZJQ_FDGUARD_WANT,
                         "room for few connections (one descriptor each, besides the "
                         "broker's own): raise the hard limit (ulimit -Hn, LimitNOFILE=)");
}

int
zjq_fdguard_events (void)
{
    return ZMQ_EVENT_LISTENING | ZMQ_EVENT_ACCEPT_FAILED;
}

int
zjq_fdguard_monitor (zjq_fdguard_t *self, void *socket, const char *endpoint)
{
    assert (self && socket && endpoint);
    assert (!self->monitor);
    if (zmq_socket_monitor (socket, endpoint, zjq_fdguard_events ()) != 0)
        return -1;
    self->monitored = socket;
    self->monitor = zsock_new (ZMQ_PAIR);
    if (!self->monitor || zsock_connect (self->monitor, "%s", endpoint) != 0)
        return -1;
    return 0;
}

void *
zjq_fdguard_socket (zjq_fdguard_t *self)
{
    assert (self);
    return self->monitor? zsock_resolve (self->monitor): NULL;
}

void
zjq_fdguard_read (zjq_fdguard_t *self)
{
    assert (self);
    int event;
    uint32_t value;
    for (size_t count = 0; self->monitor && count < S_READ_BATCH
                        && zjq_monitor_recv (zsock_resolve (self->monitor), &event, &value);
         count++)
        zjq_fdguard_event (self, event, (int) value);
}

//  Accept and close what is pending on one listener, with the reserve
//  descriptor freed for it. Returns how many were shed.
static uint64_t
s_shed_listener (zjq_fdguard_t *self, int listener)
{
    int flags = fcntl (listener, F_GETFL);
    if (flags == -1)
        return 0;               //  gone (unbound)
    if (!(flags & O_NONBLOCK) && fcntl (listener, F_SETFL, flags | O_NONBLOCK) == -1)
        return 0;               //  never block the loop in accept
    uint64_t shed = 0;
    while (shed < S_SHED_BATCH) {
        if (self->spare >= 0) {
            close (self->spare);
            self->spare = -1;
        }
        int fd = accept4 (listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close (fd);
            shed++;
        }
        s_spare_open (self);
        if (fd < 0)
            break;              //  EAGAIN: the backlog is empty (or still no descriptor)
    }
    return shed;
}

//  A failed accept: counted, logged once a second with what came since.
static void
s_accept_failed (zjq_fdguard_t *self, int error)
{
    self->stats.accept_failed++;
    self->unlogged++;
    self->last_error = error;
    if (self->shed && (error == EMFILE || error == ENFILE))
        for (size_t index = 0; index < self->listener_count; index++) {
            uint64_t shed = s_shed_listener (self, self->listeners [index]);
            self->stats.shed += shed;
            self->unlogged_shed += shed;
        }
    int64_t now = zjq_mono_ms ();
    if (now < self->log_due)
        return;
    self->log_due = now + S_LOG_INTERVAL;
    zjq_log_warning ("accept_failed", "count=%llu total=%llu error=%s shed=%llu "
                     "fd_limit=%llu msg=%s", (unsigned long long) self->unlogged,
                     (unsigned long long) self->stats.accept_failed, strerror (error),
                     (unsigned long long) self->unlogged_shed,
                     (unsigned long long) self->stats.soft_limit,
                     error == EMFILE || error == ENFILE?
                         (self->shed? "out of descriptors: new connections are closed "
                                      "at once until some free up"
                                    : "out of descriptors: libzmq retries at full CPU "
                                      "until some free up"):
                         "a connection could not be accepted");
    self->unlogged = self->unlogged_shed = 0;
}

bool
zjq_fdguard_event (zjq_fdguard_t *self, int event, int value)
{
    assert (self);
    if (event == ZMQ_EVENT_LISTENING) {
        if (self->listener_count < ZJQ_FDGUARD_LISTENERS)
            self->listeners [self->listener_count++] = value;
        return true;
    }
    if (event == ZMQ_EVENT_ACCEPT_FAILED) {
        s_accept_failed (self, value);
        return true;
    }
    return false;
}

const zjq_fdguard_stats_t *
zjq_fdguard_stats (zjq_fdguard_t *self)
{
    assert (self);
    return &self->stats;
}


//  --------------------------------------------------------------------------
//  Self test

//  A loopback listener with count connections pending in its backlog
static int
s_test_listener (int count, int *clients)
{
    int listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (listener >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (listener, (struct sockaddr *) &address, sizeof (address)) == 0);
    assert (listen (listener, 16) == 0);
    socklen_t size = sizeof (address);
    assert (getsockname (listener, (struct sockaddr *) &address, &size) == 0);
    for (int index = 0; index < count; index++) {
        clients [index] = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert (clients [index] >= 0);
        assert (connect (clients [index], (struct sockaddr *) &address, sizeof (address)) == 0);
    }
    return listener;
}

void
zjq_fdguard_test (bool verbose)
{
    zjq_log_set_level (ZJQ_LOG_ERROR);
    //  The limit: raised to the hard one
    zjq_fdguard_t *self = zjq_fdguard_new (true);
    assert (self && self->spare >= 0);
    zjq_fdguard_raise_limit (self);
    struct rlimit limit;
    assert (getrlimit (RLIMIT_NOFILE, &limit) == 0);
    assert (self->stats.soft_limit == (uint64_t) limit.rlim_cur);
    assert (limit.rlim_max == RLIM_INFINITY || limit.rlim_cur == limit.rlim_max);

    //  Out of descriptors: the pending connections are shed, the reserve
    //  comes back
    int clients [3];
    int listener = s_test_listener (3, clients);
    assert (zjq_fdguard_event (self, ZMQ_EVENT_LISTENING, listener));
    assert (!zjq_fdguard_event (self, ZMQ_EVENT_CONNECTED, 0));
    zjq_fdguard_event (self, ZMQ_EVENT_ACCEPT_FAILED, EMFILE);
    assert (self->stats.accept_failed == 1 && self->stats.shed == 3);
    assert (self->spare >= 0);
    assert (accept (listener, NULL, NULL) == -1 && errno == EAGAIN);
    //  Another error is counted, nothing shed
    int more [1];
    int other = s_test_listener (1, more);
    self->listeners [0] = other;
    zjq_fdguard_event (self, ZMQ_EVENT_ACCEPT_FAILED, ECONNABORTED);
    assert (self->stats.accept_failed == 2 && self->stats.shed == 3);
    zjq_fdguard_destroy (&self);
    zjq_fdguard_destroy (&self);
    assert (self == NULL);

    //  Without shedding: counted only
    self = zjq_fdguard_new (false);
    assert (self && self->spare == -1);
    zjq_fdguard_event (self, ZMQ_EVENT_LISTENING, other);
    zjq_fdguard_event (self, ZMQ_EVENT_ACCEPT_FAILED, EMFILE);
    assert (self->stats.accept_failed == 1 && self->stats.shed == 0);
    int fd = accept (other, NULL, NULL);
    assert (fd >= 0);
    close (fd);
    zjq_fdguard_destroy (&self);

    //  Its own monitor of a ROUTER reports the listener
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    self = zjq_fdguard_new (true);
    assert (zjq_fdguard_monitor (self, zsock_resolve (router), "inproc://zjq-fdguard-test")
            == 0);
    assert (zjq_fdguard_socket (self));
    assert (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    for (int attempt = 0; attempt < 500 && self->listener_count == 0; attempt++) {
        zjq_fdguard_read (self);
        if (self->listener_count == 0)
            usleep (10 * 1000);
    }
    assert (self->listener_count == 1 && self->listeners [0] >= 0);
    zjq_fdguard_destroy (&self);
    zsock_destroy (&router);

    for (int index = 0; index < 3; index++)
        close (clients [index]);
    close (more [0]);
    close (listener);
    close (other);
    if (verbose)
        printf ("(fdguard ok) ");
}
