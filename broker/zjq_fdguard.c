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
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_READ_BATCH    4096    //  monitor events per read
#define S_SHED_BATCH    4096    //  pending connections shed per listener per request
#define S_LOG_INTERVAL  1000    //  ms between accept_failed lines

struct _zjq_fdguard_t {
    bool shed;                  //  shed pending connections on EMFILE/ENFILE
    int request [2];            //  pipe to the shedder: a byte asks it to drain
    int reply [2];              //  pipe from it: a uint32 count per drain
    pid_t shedder;              //  the shedding process, or 0 until it is needed
    void *monitored;            //  the socket of the guard's own monitor, or NULL
    zsock_t *monitor;           //  its PAIR, or NULL
    int listeners [ZJQ_FDGUARD_LISTENERS];  //  listener descriptors
    size_t listener_count;
    zjq_fdguard_stats_t stats;
    int64_t log_due;            //  monotonic ms when the next line may go
    uint64_t unlogged;          //  failed accepts since the last line
};

static void
s_close (int *fd_p)
{
    if (*fd_p >= 0)
        close (*fd_p);
    *fd_p = -1;
}

zjq_fdguard_t *
zjq_fdguard_new (bool shed)
{
    zjq_fdguard_t *self = (zjq_fdguard_t *) calloc (1, sizeof (zjq_fdguard_t));
    if (!self)
        return NULL;
    self->shed = shed;
    self->request [0] = self->request [1] = self->reply [0] = self->reply [1] = -1;
    //  The pipes now: when they are needed, no descriptor is left to make them
    if (shed && (pipe2 (self->request, O_CLOEXEC | O_NONBLOCK) == -1
             ||  pipe2 (self->reply, O_CLOEXEC | O_NONBLOCK) == -1)) {
        zjq_log_warning ("fd_guard", "error=%s msg=%s", strerror (errno),
                         "cannot make the shedder's pipes: connections are not shed");
        self->shed = false;
    }
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
    for (int index = 0; index < 2; index++) {
        s_close (&self->request [index]);
        s_close (&self->reply [index]);
    }
    if (self->shedder > 0)
        waitpid (self->shedder, NULL, 0);   //  it exits when its pipe closes
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

//  The shedder, a process of its own: its descriptor table is not the
//  broker's, so it can accept when the broker cannot. (A thread could not;
//  and a reserve descriptor freed in the broker is taken by libzmq's
//  spinning I/O thread as often as by the loop, and then lost.) It keeps
//  only the listeners and its two pipe ends, and on each request accepts
//  and closes what is pending on each listener, then writes how many.
//  Only async-signal-safe calls after fork. It ends when the broker's end
//  of the pipe closes, or with the broker (PR_SET_PDEATHSIG).
static void
s_shedder_run (zjq_fdguard_t *self)
{
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    int used [ZJQ_FDGUARD_LISTENERS + 2];
    size_t count = 0;
    used [count++] = self->request [0];
    used [count++] = self->reply [1];
    for (size_t index = 0; index < self->listener_count; index++)
        used [count++] = self->listeners [index];
    //  Close every other descriptor, range by range between the used ones
    int from = 3;
    while (true) {
        int next = INT_MAX;
        for (size_t index = 0; index < count; index++)
            if (used [index] >= from && used [index] < next)
                next = used [index];
        if (next > from)
            syscall (SYS_close_range, (unsigned) from,
                     next == INT_MAX? ~0U: (unsigned) next - 1, 0U);
        if (next == INT_MAX)
            break;
        from = next + 1;
    }
    int flags = fcntl (self->request [0], F_GETFL);
    fcntl (self->request [0], F_SETFL, flags & ~O_NONBLOCK);
    char byte;
    while (read (self->request [0], &byte, 1) == 1) {
        uint32_t shed = 0;
        for (size_t index = 0; index < self->listener_count; index++) {
            int fd;
            for (int round = 0; round < S_SHED_BATCH
                 && (fd = accept4 (self->listeners [index], NULL, NULL, SOCK_NONBLOCK)) >= 0;
                 round++, shed++)
                close (fd);
        }
        if (write (self->reply [1], &shed, sizeof (shed)) == -1)
            break;
    }
    _exit (0);
}

//  Start the shedder (the listeners are made non-blocking first: an accept
//  in the shedder or in libzmq must never wait). Returns 0, or -1.
static int
s_shedder_start (zjq_fdguard_t *self)
{
    for (size_t index = 0; index < self->listener_count; index++) {
        int flags = fcntl (self->listeners [index], F_GETFL);
        if (flags != -1 && !(flags & O_NONBLOCK))
            fcntl (self->listeners [index], F_SETFL, flags | O_NONBLOCK);
    }
    pid_t pid = fork ();
    if (pid == -1)
        return -1;
    if (pid == 0)
        s_shedder_run (self);
    s_close (&self->request [0]);
    s_close (&self->reply [1]);
    self->shedder = pid;
    zjq_log_info ("fd_shedder", "pid=%d listeners=%zu", (int) pid, self->listener_count);
    return 0;
}

//  Count what the shedder has reported so far
static void
s_shedder_counts (zjq_fdguard_t *self)
{
    uint32_t shed;
    while (self->reply [0] >= 0
       &&  read (self->reply [0], &shed, sizeof (shed)) == (ssize_t) sizeof (shed))
        self->stats.shed += shed;
}

//  Ask the shedder to drain the listeners' backlogs; one request pending
//  at most (a byte in the pipe the shedder has not read yet)
static void
s_shed (zjq_fdguard_t *self)
{
    if (!self->shedder && (self->listener_count == 0 || s_shedder_start (self) == -1)) {
        zjq_log_warning ("fd_guard", "error=%s msg=%s",
                         self->listener_count? strerror (errno): "no listener known",
                         "cannot shed connections");
        self->shed = false;
        return;
    }
    s_shedder_counts (self);
    int pending = 0;
    if (ioctl (self->request [1], FIONREAD, &pending) == 0 && pending > 0)
        return;
    if (write (self->request [1], "d", 1) == -1 && errno != EAGAIN) {
        zjq_log_warning ("fd_guard", "error=%s msg=%s", strerror (errno),
                         "the shedder is gone: connections are not shed");
        self->shed = false;
    }
}

//  A failed accept: counted, logged once a second with what came since.
static void
s_accept_failed (zjq_fdguard_t *self, int error)
{
    self->stats.accept_failed++;
    self->unlogged++;
    bool out = error == EMFILE || error == ENFILE;
    if (self->shed && out)
        s_shed (self);
    int64_t now = zjq_mono_ms ();
    if (now < self->log_due)
        return;
    self->log_due = now + S_LOG_INTERVAL;
    zjq_log_warning ("accept_failed", "count=%llu total=%llu error=%s shed=%llu "
                     "fd_limit=%llu msg=%s", (unsigned long long) self->unlogged,
                     (unsigned long long) self->stats.accept_failed, strerror (error),
                     (unsigned long long) self->stats.shed,
                     (unsigned long long) self->stats.soft_limit,
                     !out? "a connection could not be accepted":
                     self->shed? "out of descriptors: new connections are closed at once "
                                 "until some free up"
                               : "out of descriptors: libzmq retries at full CPU until "
                                 "some free up");
    self->unlogged = 0;
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
    s_shedder_counts (self);
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
    assert (self && self->request [1] >= 0 && self->shedder == 0);
    zjq_fdguard_raise_limit (self);
    struct rlimit limit;
    assert (getrlimit (RLIMIT_NOFILE, &limit) == 0);
    assert (self->stats.soft_limit == (uint64_t) limit.rlim_cur);
    assert (limit.rlim_max == RLIM_INFINITY || limit.rlim_cur == limit.rlim_max);

    //  Out of descriptors: the shedder accepts and closes what is pending
    int clients [3];
    int listener = s_test_listener (3, clients);
    assert (zjq_fdguard_event (self, ZMQ_EVENT_LISTENING, listener));
    assert (!zjq_fdguard_event (self, ZMQ_EVENT_CONNECTED, 0));
    zjq_fdguard_event (self, ZMQ_EVENT_ACCEPT_FAILED, EMFILE);
    assert (self->stats.accept_failed == 1 && self->shedder > 0);
    for (int attempt = 0; attempt < 1000 && zjq_fdguard_stats (self)->shed < 3; attempt++)
        usleep (10 * 1000);
    assert (self->stats.shed == 3);
    assert (accept (listener, NULL, NULL) == -1 && errno == EAGAIN);
    //  The clients see their connection closed
    char byte;
    assert (read (clients [0], &byte, 1) == 0);
    //  Another error is counted, nothing more shed
    zjq_fdguard_event (self, ZMQ_EVENT_ACCEPT_FAILED, ECONNABORTED);
    assert (self->stats.accept_failed == 2);
    pid_t shedder = self->shedder;
    zjq_fdguard_destroy (&self);
    zjq_fdguard_destroy (&self);
    assert (self == NULL);
    assert (kill (shedder, 0) == -1);           //  reaped

    //  Without shedding: counted only
    int more [1];
    int other = s_test_listener (1, more);
    self = zjq_fdguard_new (false);
    assert (self && self->request [1] == -1);
    zjq_fdguard_event (self, ZMQ_EVENT_LISTENING, other);
    zjq_fdguard_event (self, ZMQ_EVENT_ACCEPT_FAILED, EMFILE);
    assert (self->stats.accept_failed == 1 && self->stats.shed == 0 && !self->shedder);
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
