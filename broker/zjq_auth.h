/*  zjq_auth.h: CURVE security for the broker: its key pair, the allow-lists
    (one directory of public certificates per role) and the ZAP handler.

    A peer may connect if its public key is in any allow-list; the ZAP
    handler then names the connection by that key (User-Id = the key in
    Z85), and the broker checks every message against the roles the key
    holds *now* (zjq_auth_roles), so a key removed by a reload is refused
    from its next message on, also on connections that were already up.

    Roles: a client key may submit and ask about its own jobs; a worker key
    may register as a worker; an admin key may ask for stats, reload the
    lists, and see or cancel any job. A key may hold several roles (its
    certificate copied into several directories). A certificate may limit
    the queues its key may use in that role with its metadata:
    `queues = "img,pdf"` (comma-separated names; "*" or no entry: all).

    The handler is a ZMQ_REP socket bound at inproc://zeromq.zap.01 in the
    broker's context, served from the broker's own loop (it never blocks),
    next to a monitor of the ROUTER that reports failed handshakes
    (plaintext peers, wrong broker key).                                     */

#ifndef ZJQ_AUTH_H_INCLUDED
#define ZJQ_AUTH_H_INCLUDED

#include "zjq_cert.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct _zjq_auth_t zjq_auth_t;

//  Roles, as bits
#define ZJQ_AUTH_CLIENT 1
#define ZJQ_AUTH_WORKER 2
#define ZJQ_AUTH_ADMIN  4

//  What the ZAP handler decided about one handshake.
typedef struct {
    bool allowed;                       //  answered 200
    char key [ZJQ_CERT_KEY_TEXT];       //  the peer's public key in Z85, or ""
    char address [64];                  //  the peer's IP address
    const char *reason;                 //  why not (static text), or NULL
} zjq_auth_verdict_t;

//  Load the broker's secret certificate and the allow-lists (directories of
//  public certificates; NULL for a role nobody holds). Returns NULL with
//  the reason in error (a file or directory and what is wrong with it; no
//  key material) if anything cannot be used.
zjq_auth_t *
    zjq_auth_new (const char *secret_file, const char *clients_dir, const char *workers_dir,
                  const char *admins_dir, char *error, size_t error_size);

//  Destroy; idempotent; nulls the pointer. Stops the monitor of the router
//  it was attached to, so destroy it before that socket.
void
    zjq_auth_destroy (zjq_auth_t **self_p);

//  Make a ROUTER (a czmq zsock_t, in czmq's context) a CURVE server with
//  the broker's key, bind the ZAP handler in that context, and monitor the
//  router's failed handshakes. Call before binding the router. Returns 0,
//  or -1 with error set.
int
    zjq_auth_attach (zjq_auth_t *self, void *router, char *error, size_t error_size);

//  Read the allow-list directories again. On success the new lists replace
//  the old ones at once and 0 is returned; on error (error set) the old
//  lists stay in force and -1 is returned.
int
    zjq_auth_reload (zjq_auth_t *self, char *error, size_t error_size);

//  Keys holding a role (one of ZJQ_AUTH_*).
size_t
    zjq_auth_count (zjq_auth_t *self, int role);

//  The roles (bits) a key (Z85) holds now; 0 if it is in no list or NULL.
int
    zjq_auth_roles (zjq_auth_t *self, const char *key);

//  True if the key may use the queue in that role (one ZJQ_AUTH_* bit).
bool
    zjq_auth_queue_allowed (zjq_auth_t *self, const char *key, int role, const char *queue);

//  The broker's public key in Z85.
const char *
    zjq_auth_public_key (zjq_auth_t *self);

//  The ZAP socket (raw libzmq handle) to poll for input.
void *
    zjq_auth_zap_socket (zjq_auth_t *self);

//  Answer one waiting ZAP request, without blocking. Returns true and the
//  decision in verdict, or false if no request was waiting.
bool
    zjq_auth_zap_serve (zjq_auth_t *self, zjq_auth_verdict_t *verdict);

//  The monitor socket (raw libzmq handle) to poll for input.
void *
    zjq_auth_monitor_socket (zjq_auth_t *self);

//  Read one monitor event, without blocking: the ZMQ_EVENT_* and its value
//  (for handshake failures, a ZMQ_PROTOCOL_ERROR_* or the ZAP status).
//  Returns false if none was waiting.
bool
    zjq_auth_monitor_read (zjq_auth_t *self, int *event, int *value);

//  Self test
void
    zjq_auth_test (bool verbose);

#endif
