/*  zjq_fdguard.h: the broker's file descriptors: the limit, and connections
    that cannot be accepted.

    At start the soft RLIMIT_NOFILE is raised to the hard limit and both
    are logged, with a warning when the limit leaves room for fewer than
    ZJQ_FDGUARD_WANT connections. A socket monitor on the ROUTER reports
    its listeners (ZMQ_EVENT_LISTENING: their descriptors) and every
    accept that failed (ZMQ_EVENT_ACCEPT_FAILED, with errno): each is
    counted and logged, at most once a second.

    libzmq 4.3's TCP listener leaves EMFILE/ENFILE unhandled: the pending
    connection stays in the backlog, the listener stays readable and its
    I/O thread polls it again at once, a core at 100%, until a descriptor
    frees up. Unbinding would drop the sessions of the connected peers. So
    the guard sheds from outside (with shed on): at the first such failure
    it forks a small shedder process that keeps only the listeners (their
    descriptors, from ZMQ_EVENT_LISTENING) and two pipes; on each failed
    accept the broker asks it to accept and close what is pending on every
    listener. Its descriptor table is its own, so it can accept when the
    broker cannot. (The classic reserve descriptor does not work here: the
    descriptor the loop frees is taken as often by libzmq's spinning I/O
    thread, and the reserve is lost.) The backlog empties, the listener
    stops being readable and the I/O thread sleeps until the next
    connection: the CPU is bounded by the rate of new connections, and the
    connected peers keep being served. What remains: while descriptors are
    out, every new connection is closed at once (a client library
    reconnects later); and each failed accept still costs libzmq one
    wake-up and the broker one monitor event.                             */

#ifndef ZJQ_FDGUARD_H_INCLUDED
#define ZJQ_FDGUARD_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define ZJQ_FDGUARD_RESERVED  64      //  descriptors the broker needs besides connections
#define ZJQ_FDGUARD_WANT      4096    //  connections below which the limit is "low"
#define ZJQ_FDGUARD_LISTENERS 16      //  listeners whose backlog can be shed

typedef struct _zjq_fdguard_t zjq_fdguard_t;

//  What the guard has counted
typedef struct {
    uint64_t soft_limit;        //  RLIMIT_NOFILE after the raise
    uint64_t hard_limit;
    uint64_t accept_failed;     //  ZMQ_EVENT_ACCEPT_FAILED events
    uint64_t shed;              //  pending connections the shedder accepted and closed
} zjq_fdguard_stats_t;

//  Create a guard; with shed, it makes the shedder's pipes now (the
//  shedder itself starts at the first failed accept for want of
//  descriptors). Returns NULL if out of memory.
zjq_fdguard_t *
    zjq_fdguard_new (bool shed);

//  Destroy; stops its monitor and its shedder (and reaps it); idempotent;
//  nulls the pointer.
void
    zjq_fdguard_destroy (zjq_fdguard_t **self_p);

//  Raise the soft descriptor limit to the hard one, and log both (event
//  fd_limit), with a warning (fd_limit_low) if fewer than
//  ZJQ_FDGUARD_WANT connections fit in it besides the
//  ZJQ_FDGUARD_RESERVED the broker keeps for itself.
void
    zjq_fdguard_raise_limit (zjq_fdguard_t *self);

//  The ZMQ_EVENT_* the guard needs from a monitor of the ROUTER.
int
    zjq_fdguard_events (void);

//  Monitor socket (a raw libzmq handle) with the guard's own monitor on it,
//  before it binds (a zsock's, so in czmq's context); endpoint is the inproc
//  address to use. A socket has one
//  monitor: when another class owns it (zjq_auth with CURVE), pass its
//  events to zjq_fdguard_event instead. Returns 0, or -1 (errno set).
int
    zjq_fdguard_monitor (zjq_fdguard_t *self, void *socket, const char *endpoint);

//  The guard's own monitor socket to poll for input, or NULL if it has none.
void *
    zjq_fdguard_socket (zjq_fdguard_t *self);

//  Read what the guard's own monitor has (at most a bounded batch).
void
    zjq_fdguard_read (zjq_fdguard_t *self);

//  One monitor event: ZMQ_EVENT_LISTENING (value: the listener's
//  descriptor) and ZMQ_EVENT_ACCEPT_FAILED (value: errno) are the guard's;
//  others are ignored. Returns true if the event was the guard's.
bool
    zjq_fdguard_event (zjq_fdguard_t *self, int event, int value);

//  The counters.
const zjq_fdguard_stats_t *
    zjq_fdguard_stats (zjq_fdguard_t *self);

//  Self test
void
    zjq_fdguard_test (bool verbose);

#endif
