/*  zjq_auth.c: CURVE keys, allow-lists and the ZAP handler. See zjq_auth.h.

    The allow-lists are read into one hash, Z85 key -> s_key_t (its roles
    and, per role, the queues it may use), that every message is checked
    against. czmq's zcertstore is not used for the lookups: it re-reads its
    directory whenever it looks like it changed, on every lookup, and a
    list must change only on a reload (SIGHUP or RELOAD).                   */

#include "zjq_util.h"
#include "zjq_log.h"
#include "zjq_auth.h"
#include "zjq_proto.h"
#include "zjq_queue.h"
#include <czmq.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ZJQ_ZAP_ENDPOINT     "inproc://zeromq.zap.01"
#define ZJQ_MONITOR_ENDPOINT "inproc://zjq-broker-monitor"
#define ZJQ_ROLE_COUNT       3
#define ZJQ_KEYS_MAX         100000      //  certificates per directory

//  One allowed key
typedef struct {
    int roles;                          //  ZJQ_AUTH_* bits
    char *queues [ZJQ_ROLE_COUNT];      //  per role: "a,b" or NULL for all
} s_key_t;

struct _zjq_auth_t {
    zjq_cert_t *cert;                   //  the broker's key pair
    char *dirs [ZJQ_ROLE_COUNT];        //  allow-list per role, or NULL
    zhashx_t *keys;                     //  Z85 -> s_key_t (owned)
    size_t counts [ZJQ_ROLE_COUNT];     //  keys per role
    zsock_t *zap;                       //  ZAP handler (REP)
    zsock_t *monitor;                   //  router events (PAIR)
    void *router;                       //  the monitored socket (raw), or NULL
};

static int
s_role_index (int role)
{
    return role == ZJQ_AUTH_CLIENT? 0: role == ZJQ_AUTH_WORKER? 1: 2;
}

static void
s_key_destroy (s_key_t **key_p)
{
    s_key_t *key = *key_p;
    if (!key)
        return;
    for (int index = 0; index < ZJQ_ROLE_COUNT; index++)
        free (key->queues [index]);
    free (key);
    *key_p = NULL;
}


//  --------------------------------------------------------------------------
//  Loading the allow-lists

//  Turn a "queues" metadata value into a normalised list "a,b" in *list_p
//  (NULL for all queues). Returns 0, or -1 if a name is not valid.
static int
s_parse_queues (const char *value, char **list_p)
{
    *list_p = NULL;
    if (!value)
        return 0;
    size_t len = strlen (value);
    char *list = (char *) malloc (len + 1);
    if (!list)
        return -1;
    size_t used = 0;
    bool all = false;
    const char *start = value;
    while (true) {
        const char *end = strchr (start, ',');
        if (!end)
            end = start + strlen (start);
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        const char *last = end;
        while (last > start && (last [-1] == ' ' || last [-1] == '\t'))
            last--;
        char name [ZJQ_QUEUE_NAME_MAX + 1];
        size_t name_len = (size_t) (last - start);
        if (name_len == 1 && *start == '*')
            all = true;
        else {
            if (name_len == 0 || name_len > ZJQ_QUEUE_NAME_MAX) {
                free (list);
                return -1;
            }
            memcpy (name, start, name_len);
            name [name_len] = 0;
            if (!zjq_proto_queue_name_valid (name)) {
                free (list);
                return -1;
            }
            if (used)
                list [used++] = ',';
            memcpy (list + used, name, name_len);
            used += name_len;
        }
        if (!*end)
            break;
        start = end + 1;
    }
    list [used] = 0;
    if (all || used == 0)
        free (list);
    else
        *list_p = list;
    return 0;
}

//  True if a normalised list holds the name
static bool
s_list_has (const char *list, const char *name)
{
    size_t len = strlen (name);
    for (const char *item = list; item; item = strchr (item, ',')) {
        if (*item == ',')
            item++;
        if (strncmp (item, name, len) == 0 && (item [len] == ',' || item [len] == 0))
            return true;
    }
    return false;
}

//  Add every certificate of a directory to keys with a role.
static int
s_load_dir (zhashx_t *keys, const char *dir, int role, size_t *count,
            char *error, size_t error_size)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return zjq_set_error (error, error_size, "allow-list %s: %s", dir, strerror (errno));
    int rc = 0;
    struct dirent *entry;
    size_t files = 0;
    int index = s_role_index (role);
    while (rc == 0 && (entry = readdir (handle))) {
        const char *name = entry->d_name;
        size_t len = strlen (name);
        if (name [0] == '.')
            continue;
        char path [4096];
        snprintf (path, sizeof (path), "%s/%s", dir, name);
        struct stat info;
        if (stat (path, &info) != 0 || !S_ISREG (info.st_mode))
            continue;
        if (len > 7 && strcmp (name + len - 7, "_secret") == 0) {
            zjq_log_warning ("secret_in_allowlist", "path=%s msg=%s", path,
                             "a secret certificate does not belong in an allow-list (ignored; "
                             "move it away and keep it private)");
            continue;
        }
        if (++files > ZJQ_KEYS_MAX) {
            rc = zjq_set_error (error, error_size, "allow-list %s: more than %d certificates",
                         dir, ZJQ_KEYS_MAX);
            break;
        }
        char reason [512];
        zjq_cert_t *cert = zjq_cert_load (path, false, reason, sizeof (reason));
        if (!cert) {
            rc = zjq_set_error (error, error_size, "allow-list %s", reason);
            break;
        }
        char *queues = NULL;
        if (s_parse_queues (zjq_cert_meta (cert, "queues"), &queues)) {
            rc = zjq_set_error (error, error_size, "%s: metadata 'queues' must be '*' or queue names "
                         "separated by commas", path);
            zjq_cert_destroy (&cert);
            break;
        }
        const char *public_key = zjq_cert_public_key (cert);
        s_key_t *key = (s_key_t *) zhashx_lookup (keys, public_key);
        if (!key) {
            key = (s_key_t *) calloc (1, sizeof (s_key_t));
            if (!key || zhashx_insert (keys, public_key, key)) {
                free (key);
                free (queues);
                zjq_cert_destroy (&cert);
                rc = zjq_set_error (error, error_size, "out of memory loading %s", dir);
                break;
            }
        }
        if (key->roles & role) {
            //  The same key twice in one directory: it may use both lists
            if (!key->queues [index] || !queues) {
                free (key->queues [index]);
                key->queues [index] = NULL;
                free (queues);
            }
            else {
                char *both = zsys_sprintf ("%s,%s", key->queues [index], queues);
                free (queues);
                if (both) {
                    free (key->queues [index]);
                    key->queues [index] = both;
                }
            }
        }
        else {
            key->roles |= role;
            key->queues [index] = queues;
            (*count)++;
        }
        zjq_cert_destroy (&cert);
    }
    closedir (handle);
    return rc;
}

//  Read every allow-list into a new hash. Returns 0, or -1 with error set
//  (*keys_p untouched).
static int
s_load_lists (zjq_auth_t *self, zhashx_t **keys_p, size_t *counts,
              char *error, size_t error_size)
{
    zhashx_t *keys = zhashx_new ();
    if (!keys)
        return zjq_set_error (error, error_size, "out of memory");
    zhashx_set_destructor (keys, (zhashx_destructor_fn *) s_key_destroy);
    for (int index = 0; index < ZJQ_ROLE_COUNT; index++) {
        counts [index] = 0;
        if (self->dirs [index]
        &&  s_load_dir (keys, self->dirs [index], 1 << index, &counts [index],
                        error, error_size)) {
            zhashx_destroy (&keys);
            return -1;
        }
    }
    *keys_p = keys;
    return 0;
}


//  --------------------------------------------------------------------------
//  Construction

zjq_auth_t *
zjq_auth_new (const char *secret_file, const char *clients_dir, const char *workers_dir,
              const char *admins_dir, char *error, size_t error_size)
{
    assert (secret_file);
    assert (error);
    zjq_auth_t *self = (zjq_auth_t *) calloc (1, sizeof (zjq_auth_t));
    if (!self) {
        zjq_set_error (error, error_size, "out of memory");
        return NULL;
    }
    const char *dirs [ZJQ_ROLE_COUNT] = { clients_dir, workers_dir, admins_dir };
    for (int index = 0; index < ZJQ_ROLE_COUNT; index++)
        if (dirs [index] && !(self->dirs [index] = strdup (dirs [index]))) {
            zjq_set_error (error, error_size, "out of memory");
            goto err;
        }
    self->cert = zjq_cert_load (secret_file, true, error, error_size);
    if (!self->cert)
        goto err;
    if (s_load_lists (self, &self->keys, self->counts, error, error_size))
        goto err;
    return self;
err:
    zjq_auth_destroy (&self);
    return NULL;
}

void
zjq_auth_destroy (zjq_auth_t **self_p)
{
    assert (self_p);
    zjq_auth_t *self = *self_p;
    if (!self)
        return;
    if (self->router)
        zmq_socket_monitor (self->router, NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->zap);
    zhashx_destroy (&self->keys);
    zjq_cert_destroy (&self->cert);
    for (int index = 0; index < ZJQ_ROLE_COUNT; index++)
        free (self->dirs [index]);
    free (self);
    *self_p = NULL;
}

int
zjq_auth_attach (zjq_auth_t *self, void *router, char *error, size_t error_size)
{
    assert (self);
    assert (router);
    assert (!self->zap);
    void *handle = zsock_resolve (router);
    self->zap = zsock_new (ZMQ_REP);
    if (!self->zap || zsock_bind (self->zap, "%s", ZJQ_ZAP_ENDPOINT) != 0)
        return zjq_set_error (error, error_size, "cannot bind the ZAP handler: %s",
                       zmq_strerror (errno));
    zsock_set_rcvtimeo (self->zap, 0);
    zsock_set_sndtimeo (self->zap, 0);
    int one = 1;
    const char *secret = zjq_cert_secret_key (self->cert);
    if (zmq_setsockopt (handle, ZMQ_CURVE_SERVER, &one, sizeof (one))
    ||  zmq_setsockopt (handle, ZMQ_CURVE_SECRETKEY, secret, strlen (secret))
    ||  zmq_setsockopt (handle, ZMQ_ZAP_DOMAIN, "zjq", 3))
        return zjq_set_error (error, error_size, "cannot make the socket a CURVE server: %s",
                       zmq_strerror (errno));
    //  A socket has one monitor: this one also carries the listener and
    //  failed-accept events the broker's zjq_fdguard needs
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
               | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_LISTENING
               | ZMQ_EVENT_ACCEPT_FAILED;
    if (zmq_socket_monitor (handle, ZJQ_MONITOR_ENDPOINT, events) != 0)
        return zjq_set_error (error, error_size, "cannot monitor the socket: %s", zmq_strerror (errno));
    self->router = handle;
    self->monitor = zsock_new (ZMQ_PAIR);
    if (!self->monitor || zsock_connect (self->monitor, "%s", ZJQ_MONITOR_ENDPOINT) != 0)
        return zjq_set_error (error, error_size, "cannot read the socket monitor: %s",
                       zmq_strerror (errno));
    return 0;
}


//  --------------------------------------------------------------------------
//  Queries

int
zjq_auth_reload (zjq_auth_t *self, char *error, size_t error_size)
{
    assert (self);
    zhashx_t *keys = NULL;
    size_t counts [ZJQ_ROLE_COUNT];
    if (s_load_lists (self, &keys, counts, error, error_size))
        return -1;
    zhashx_destroy (&self->keys);
    self->keys = keys;
    memcpy (self->counts, counts, sizeof (counts));
    return 0;
}

size_t
zjq_auth_count (zjq_auth_t *self, int role)
{
    assert (self);
    return self->counts [s_role_index (role)];
}

int
zjq_auth_roles (zjq_auth_t *self, const char *key)
{
    assert (self);
    if (!key)
        return 0;
    s_key_t *entry = (s_key_t *) zhashx_lookup (self->keys, key);
    return entry? entry->roles: 0;
}

bool
zjq_auth_queue_allowed (zjq_auth_t *self, const char *key, int role, const char *queue)
{
    assert (self);
    assert (queue);
    s_key_t *entry = key? (s_key_t *) zhashx_lookup (self->keys, key): NULL;
    if (!entry || !(entry->roles & role))
        return false;
    const char *list = entry->queues [s_role_index (role)];
    return !list || s_list_has (list, queue);
}

const char *
zjq_auth_public_key (zjq_auth_t *self)
{
    assert (self);
    return zjq_cert_public_key (self->cert);
}


//  --------------------------------------------------------------------------
//  ZAP (rfc.zeromq.org/spec/27) and the monitor

void *
zjq_auth_zap_socket (zjq_auth_t *self)
{
    assert (self && self->zap);
    return zsock_resolve (self->zap);
}

bool
zjq_auth_zap_serve (zjq_auth_t *self, zjq_auth_verdict_t *verdict)
{
    assert (self && self->zap);
    assert (verdict);
    zmsg_t *request = zmsg_recv (self->zap);
    if (!request)
        return false;
    memset (verdict, 0, sizeof (*verdict));
    //  version, request id, domain, address, routing id, mechanism, credentials
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *routing_id = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);
    if (address)
        snprintf (verdict->address, sizeof (verdict->address), "%s", address);
    const char *status = "400";
    if (!version || strcmp (version, "1.0") != 0 || !request_id || !mechanism)
        verdict->reason = "malformed ZAP request";
    else
    if (strcmp (mechanism, "CURVE") != 0 || !credentials || zframe_size (credentials) != 32)
        verdict->reason = "not a CURVE handshake";
    else {
        zmq_z85_encode (verdict->key, zframe_data (credentials), 32);
        if (zjq_auth_roles (self, verdict->key)) {
            verdict->allowed = true;
            status = "200";
        }
        else
            verdict->reason = "key in no allow-list";
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id)
        zmsg_append (reply, &request_id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, verdict->allowed? "OK": verdict->reason);
    zmsg_addstr (reply, verdict->allowed? verdict->key: "");
    zmsg_addmem (reply, "", 0);         //  no metadata
    if (zmsg_send (&reply, self->zap) != 0)
        zmsg_destroy (&reply);          //  libzmq gave up on this handshake
    zstr_free (&version);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&mechanism);
    zframe_destroy (&request_id);
    zframe_destroy (&routing_id);
    zframe_destroy (&credentials);
    zmsg_destroy (&request);
    return true;
}

void *
zjq_auth_monitor_socket (zjq_auth_t *self)
{
    assert (self && self->monitor);
    return zsock_resolve (self->monitor);
}

bool
zjq_auth_monitor_read (zjq_auth_t *self, int *event, int *value)
{
    assert (self && self->monitor);
    uint32_t data;
    if (!zjq_monitor_recv (zsock_resolve (self->monitor), event, &data))
        return false;
    *value = (int) data;
    return true;
}


//  --------------------------------------------------------------------------
//  Self test

static void
s_test_cert (const char *dir, const char *name, const char *queues, char *public_key,
             char *secret_path)
{
    zcert_t *cert = zcert_new ();
    assert (cert);
    if (queues)
        zcert_set_meta (cert, "queues", "%s", queues);
    char path [1024];
    snprintf (path, sizeof (path), "%s/%s.key", dir, name);
    assert (zcert_save (cert, path) == 0);
    strcpy (public_key, zcert_public_txt (cert));
    if (secret_path)
        snprintf (secret_path, 1200, "%s_secret", path);
    else {
        //  Only public certificates go into allow-lists
        char secret [1100];
        snprintf (secret, sizeof (secret), "%s_secret", path);
        unlink (secret);
    }
    zcert_destroy (&cert);
}

//  A DEALER with a key pair that connects to endpoint over CURVE
static zsock_t *
s_test_dealer (const char *secret_path, const char *server_key, const char *endpoint)
{
    zcert_t *cert = zcert_load (secret_path);
    assert (cert);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, dealer);
    zsock_set_curve_serverkey (dealer, server_key);
    zsock_set_linger (dealer, 0);
    assert (zsock_connect (dealer, "%s", endpoint) == 0);
    zcert_destroy (&cert);
    return dealer;
}

//  Serve ZAP and read from the router until a message arrives or time is up
static zmsg_t *
s_test_recv (zjq_auth_t *auth, zsock_t *router, int timeout_ms, char *user_id)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        zmq_pollitem_t items [] = {
            { zsock_resolve (router), 0, ZMQ_POLLIN, 0 },
            { zjq_auth_zap_socket (auth), 0, ZMQ_POLLIN, 0 }
        };
        zmq_poll (items, 2, 50);
        zjq_auth_verdict_t verdict;
        while (zjq_auth_zap_serve (auth, &verdict))
            ;
        if (items [0].revents & ZMQ_POLLIN) {
            //  The routing id, then the frame the peer sent, with metadata
            zframe_t *routing_id = zframe_recv (router);
            zframe_destroy (&routing_id);
            zmq_msg_t part;
            zmq_msg_init (&part);
            assert (zmq_msg_recv (&part, zsock_resolve (router), 0) != -1);
            const char *id = zmq_msg_gets (&part, "User-Id");
            strcpy (user_id, id? id: "");
            zmsg_t *msg = zmsg_new ();
            zmsg_addmem (msg, zmq_msg_data (&part), zmq_msg_size (&part));
            zmq_msg_close (&part);
            return msg;
        }
    }
    return NULL;
}

void
zjq_auth_test (bool verbose)
{
    char root [] = "/tmp/zjq-auth-test-XXXXXX";
    assert (mkdtemp (root));
    char clients [600], workers [600], admins [600], error [512];
    snprintf (clients, sizeof (clients), "%s/clients", root);
    snprintf (workers, sizeof (workers), "%s/workers", root);
    snprintf (admins, sizeof (admins), "%s/admins", root);
    assert (mkdir (clients, 0700) == 0 && mkdir (workers, 0700) == 0 && mkdir (admins, 0700) == 0);
    char broker_key [41], alice [41], bob [41], carol [41], eve [41];
    char broker_secret [1200], alice_secret [1200], eve_secret [1200];
    s_test_cert (root, "broker", NULL, broker_key, broker_secret);
    s_test_cert (clients, "alice", "img, pdf", alice, alice_secret);
    s_test_cert (workers, "bob", "*", bob, NULL);
    s_test_cert (admins, "carol", NULL, carol, NULL);
    s_test_cert (root, "eve", NULL, eve, eve_secret);
    //  Keep alice's secret out of the allow-list
    char moved [1300];
    snprintf (moved, sizeof (moved), "%s/alice.key_secret", root);
    assert (rename (alice_secret, moved) == 0);
    memcpy (alice_secret, moved, sizeof (alice_secret));

    //  Bad settings
    assert (!zjq_auth_new ("/nonexistent", clients, NULL, NULL, error, sizeof (error)));
    assert (!zjq_auth_new (broker_secret, "/nonexistent", NULL, NULL, error, sizeof (error)));
    assert (strstr (error, "/nonexistent"));

    zjq_auth_t *auth = zjq_auth_new (broker_secret, clients, workers, admins,
                                     error, sizeof (error));
    assert (auth);
    assert (streq (zjq_auth_public_key (auth), broker_key));
    assert (zjq_auth_count (auth, ZJQ_AUTH_CLIENT) == 1);
    assert (zjq_auth_count (auth, ZJQ_AUTH_WORKER) == 1);
    assert (zjq_auth_count (auth, ZJQ_AUTH_ADMIN) == 1);
    assert (zjq_auth_roles (auth, alice) == ZJQ_AUTH_CLIENT);
    assert (zjq_auth_roles (auth, bob) == ZJQ_AUTH_WORKER);
    assert (zjq_auth_roles (auth, carol) == ZJQ_AUTH_ADMIN);
    assert (zjq_auth_roles (auth, eve) == 0);
    assert (zjq_auth_roles (auth, NULL) == 0);
    assert (zjq_auth_queue_allowed (auth, alice, ZJQ_AUTH_CLIENT, "img"));
    assert (zjq_auth_queue_allowed (auth, alice, ZJQ_AUTH_CLIENT, "pdf"));
    assert (!zjq_auth_queue_allowed (auth, alice, ZJQ_AUTH_CLIENT, "im"));
    assert (!zjq_auth_queue_allowed (auth, alice, ZJQ_AUTH_CLIENT, "pdfx"));
    assert (!zjq_auth_queue_allowed (auth, alice, ZJQ_AUTH_WORKER, "img"));
    assert (zjq_auth_queue_allowed (auth, bob, ZJQ_AUTH_WORKER, "anything"));
    assert (!zjq_auth_queue_allowed (auth, eve, ZJQ_AUTH_CLIENT, "img"));

    //  A real CURVE handshake through the ZAP handler
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    assert (zjq_auth_attach (auth, router, error, sizeof (error)) == 0);
    assert (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    char *endpoint = zsock_last_endpoint (router);
    zsock_t *good = s_test_dealer (alice_secret, broker_key, endpoint);
    zsock_t *bad = s_test_dealer (eve_secret, broker_key, endpoint);
    zstr_send (bad, "from eve");
    zstr_send (good, "from alice");
    char user_id [64];
    zmsg_t *msg = s_test_recv (auth, router, 5000, user_id);
    assert (msg);
    assert (streq (user_id, alice));
    char *text = zmsg_popstr (msg);
    assert (streq (text, "from alice"));
    zstr_free (&text);
    zmsg_destroy (&msg);
    assert (s_test_recv (auth, router, 300, user_id) == NULL);     //  eve never got in

    //  Reload: alice removed, eve added as a client
    char path [700];
    snprintf (path, sizeof (path), "%s/alice.key", clients);
    assert (unlink (path) == 0);
    char eve_public [600];
    snprintf (eve_public, sizeof (eve_public), "%s/eve.key", root);
    snprintf (path, sizeof (path), "%s/eve.key", clients);
    assert (rename (eve_public, path) == 0);
    assert (zjq_auth_reload (auth, error, sizeof (error)) == 0);
    assert (zjq_auth_roles (auth, alice) == 0);
    assert (zjq_auth_roles (auth, eve) == ZJQ_AUTH_CLIENT);
    //  A bad certificate makes a reload fail and keeps the old lists
    snprintf (path, sizeof (path), "%s/broken.key", clients);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("curve\n    public-key = \"short\"\n", file);
    fclose (file);
    assert (zjq_auth_reload (auth, error, sizeof (error)) == -1);
    assert (strstr (error, "broken.key"));
    assert (zjq_auth_roles (auth, eve) == ZJQ_AUTH_CLIENT);
    unlink (path);

    int event, value;
    while (zjq_auth_monitor_read (auth, &event, &value))
        ;
    zsock_destroy (&good);
    zsock_destroy (&bad);
    zjq_auth_destroy (&auth);
    zjq_auth_destroy (&auth);
    zsock_destroy (&router);
    zstr_free (&endpoint);
    if (verbose)
        printf ("(auth ok) ");
    //  Leave no files behind
    zdir_t *dir = zdir_new (root, NULL);
    if (dir) {
        zdir_remove (dir, true);
        zdir_destroy (&dir);
    }
}
