/* broker.h: the embedding API of libbroker, a STOMP 1.0/1.1/1.2 broker on a libuv loop.
 *
 * A broker lives on the embedder's uv_loop_t and is used only from that loop's thread.
 * Nothing is global: any number of brokers may share a loop or run on separate loops.
 * The library never writes to stdout/stderr; it logs through broker_options.log.
 * Lifecycle: broker_options_init -> broker_create -> broker_listen (0..n) -> run the loop
 * -> broker_stop (asynchronous) -> after its callback ran: broker_free.
 */
#ifndef BROKER_H
#define BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "stomp.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BROKER_WUR __attribute__((warn_unused_result))
#else
#define BROKER_WUR
#endif

typedef enum broker_err {
    BROKER_OK = 0,
    BROKER_E_NOMEM,      /* an allocation failed */
    BROKER_E_INVALID,    /* bad argument */
    BROKER_E_ADDRESS,    /* host is not a valid IPv4/IPv6 address */
    BROKER_E_LISTEN,     /* bind/listen failed (e.g. address in use) */
    BROKER_E_STATE,      /* not allowed in the broker's current state (e.g. stopping) */
    BROKER_E_STORE,      /* the store failed */
    BROKER_E_PROTOCOL,   /* a peer broke the protocol */
    BROKER_E_LIMIT,      /* a peer went over a configured limit */
    BROKER_E_NOTFOUND,   /* unknown id (subscription, ack, transaction) */
    BROKER_E_TLS,        /* TLS is not configured, or its files or settings are unusable */
    BROKER_E_DENIED,     /* the ACL does not grant what was asked (broker_set_acl) */
    BROKER_E__COUNT
} broker_err;

/* A readable, static, one-line message for a code. Never NULL. */
const char *broker_strerror(broker_err err);

typedef enum broker_log_level {
    BROKER_LOG_ERROR = 0,
    BROKER_LOG_WARN,
    BROKER_LOG_INFO,
    BROKER_LOG_DEBUG,
} broker_log_level;

/* What a log record is about: a stable code, so a program can act on records without
 * reading their text. Codes are only ever appended. */
typedef enum broker_event {
    BROKER_EV_BROKER = 0,   /* the broker object itself (e.g. misuse of the API) */
    BROKER_EV_LISTEN,       /* a listener opened, or could not */
    BROKER_EV_ACCEPT,       /* a connection could not be accepted */
    BROKER_EV_CONN_ERROR,   /* a connection was sent an ERROR and closed */
    BROKER_EV_AUTH_OK,      /* a login was accepted */
    BROKER_EV_AUTH_REFUSED, /* a login was refused */
    BROKER_EV_WEBSOCKET,    /* a WebSocket handshake, refusal or close */
    BROKER_EV_POLICY,       /* a Flash socket policy request */
    BROKER_EV_STORE,        /* the store failed */
    BROKER_EV_TLS,          /* a TLS handshake failed, or certificates were (re)loaded */
    BROKER_EV_ACL_REFUSED,  /* a SEND or SUBSCRIBE the ACL does not grant */
    BROKER_EV_ADMIN,        /* the management API: a login, an action, a refusal */
    BROKER_EV__COUNT
} broker_event;

/* The event's short name for log lines ("conn-error", "auth-refused", ...): static, never
 * NULL ("unknown" for a code out of range). */
const char *broker_event_name(broker_event ev);

/* One log record: its level, the connection it concerns (conn_id 0: none; ids count from 1
 * per broker), its event and a one-line text without trailing newline (never a passcode or
 * a message body; control characters of names a peer sent are written as \xNN). text is
 * borrowed, valid for the call only. */
typedef void (*broker_log_fn)(void *ctx, broker_log_level level, uint64_t conn_id,
                              broker_event event, const char *text);

/* One pending authentication (broker_options.authenticate_async): owned by the broker,
 * valid until broker_auth_done() was called on it. */
typedef struct broker_auth broker_auth;

/* What happens to a queue's messages over their life (times in ms). The broker-wide
 * defaults are broker_options.policy; broker_options.policies adds per-destination ones. */
typedef struct broker_policy {
    uint32_t max_deliveries;   /* delivery attempts before a message is dead-lettered (a
                                  message in a dead-letter queue never is); 0: no limit
                                  (default 10) */
    uint32_t redelivery_delay; /* before the first redelivery of a NACKed or orphaned
                                  message (default 1000) */
    double redelivery_backoff; /* the delay's multiplier per further attempt, >= 1
                                  (default 2) */
    uint32_t redelivery_delay_max; /* cap on that delay (default 60000) */
    const char *dead_letter;   /* where dead letters go: a queue name, "none" to drop them,
                                  or NULL: /queue/DLQ.X for a queue /queue/X, DLQ.N for any
                                  other queue N (default). Borrowed, must outlive the broker */
    uint64_t ttl;              /* time to live of a message sent without expires or
                                  expiration; 0: none (default) */
    uint64_t max_ttl;          /* cap on any message's time to live; 0: none (default) */
    int expired;               /* an expired message: BROKER_EXPIRED_DEAD_LETTER (default) or
                                  BROKER_EXPIRED_DROP */
    uint64_t max_delay;        /* a SEND asking for a longer delay gets an ERROR (default one
                                  day, 86400000) */
    uint64_t max_length;       /* messages a queue holds (stored, not yet acknowledged);
                                  0: no limit (default) */
    uint64_t max_bytes;        /* bytes (header blocks and bodies) of those; 0: no limit */
    int overflow;              /* a SEND to a full queue: BROKER_OVERFLOW_BLOCK (default: the
                                  producer is not read until there is room), _DROP_HEAD (the
                                  head is dead-lettered to make room) or _REJECT (ERROR) */
} broker_policy;

enum { BROKER_EXPIRED_DEAD_LETTER, BROKER_EXPIRED_DROP };
enum { BROKER_OVERFLOW_BLOCK, BROKER_OVERFLOW_DROP_HEAD, BROKER_OVERFLOW_REJECT };

/* A policy for the destinations whose names match pattern: elements are separated by '.'
 * or '/', '*' matches one element, '>' (last) matches one or more; any other pattern
 * matches the one name. The most specific match wins: an exact name, then the pattern
 * with the most literal elements, then the one with '*' rather than '>', then the first.
 * A rule's policy is used whole: copy broker_options.policy into it first to keep the
 * defaults for the keys it does not change. */
typedef struct broker_policy_rule {
    const char *pattern; /* borrowed, must outlive the broker */
    broker_policy policy;
} broker_policy_rule;

/* What the embedder's reload (broker_options.admin_reload) reports for POST /api/reload.
 * Lists are of key names, comma-separated ("" for none). */
typedef struct broker_reload_result {
    char changed[2048]; /* keys whose new values apply now */
    char restart[1024]; /* keys changed that apply only after a restart (old value kept) */
    char error[512];    /* non-empty: nothing was applied, and why (e.g. "FILE:LINE: ...") */
} broker_reload_result;

/* One key of the running configuration, for GET /api/config (broker_options.admin_config):
 * section is "stompd" or a destination-policy section's name. Never a passcode, hash or
 * key material. All borrowed for the call. */
typedef void (*broker_config_emit)(void *emit_ctx, const char *section, const char *key,
                                   const char *value);

typedef struct broker_options {
    const char *server_name;   /* CONNECTED server header (default "stompd/<version>");
                                  borrowed, must outlive the broker */
    stomp_limits limits;       /* frame limits once CONNECT succeeded (STOMP defaults) */
    stomp_limits connect_limits; /* tighter frame limits before that (1 KiB lines, 32
                                  headers, 8 KiB header block, 4 KiB body) */
    size_t max_connections;    /* open connections (default 16384) */
    size_t max_subscriptions;  /* per connection (default 256) */
    size_t max_unacked;        /* unacked messages per subscription (default 1024) */
    size_t default_prefetch;   /* prefetch window when SUBSCRIBE names none (default 100) */
    size_t max_tx_frames;      /* frames buffered per transaction (default 1024) */
    size_t max_transactions;   /* open transactions per connection (default 16) */
    size_t output_high_water;  /* queued output bytes above which nothing more is
                                  dispatched to a connection (default 1 MiB) */
    size_t max_output_bytes;   /* queued output bytes at which a topic subscriber is closed
                                  with an ERROR (default 64 MiB) */
    size_t max_memory;         /* bytes of messages, output and transactions over which
                                  the broker stops reading from producers (default 1 GiB) */
    size_t read_buffer;        /* bytes read from a connection at a time, in one buffer
                                  shared by all connections (default 64 KiB) */
    uint32_t connect_timeout_ms; /* CONNECT must arrive within this (default 10000) */
    uint32_t heartbeat_out_ms; /* shortest interval we send heart-beats at; 0 = never
                                  (default 1000) */
    uint32_t heartbeat_in_ms;  /* interval we ask clients to send at; 0 = none wanted
                                  (default 10000); shorter client offers are raised to it */
    uint32_t heartbeat_grace_pct; /* a client may be silent this % of its interval
                                  (default 200, at least 200) */
    uint32_t error_linger_ms;  /* after an ERROR, close even if it could not be flushed
                                  (default 2000) */
    uint32_t stop_timeout_ms;  /* broker_stop: how long a connection may take to be sent
                                  what is queued for it before it is cut (default 5000) */
    int lenient_escapes;       /* STOMP 1.1 sessions keep an undefined escape sequence (such
                                  as \t or \r) as written instead of failing with an ERROR
                                  (default 0: fatal, as the 1.1 and 1.2 specs require) */
    int allow_non_utf8_10;     /* STOMP 1.0 sessions (and CONNECT frames, before a version is
                                  agreed) may carry commands and headers that are not UTF-8
                                  (default 0: an ERROR, as 1.1 and 1.2 require of theirs) */
    /* WebSocket listeners (broker_listen_ws): STOMP over RFC 6455, same limits as TCP. */
    const char *ws_path;       /* request path of the STOMP endpoint (default "/ws") */
    const char *ws_origins;    /* comma-separated Origin values a browser may connect from
                                  (e.g. "http://localhost:15674"); requests without Origin
                                  (non-browser clients) always pass. NULL: any (default) */
    size_t ws_max_message;     /* largest WebSocket message accepted, bytes; a bigger one
                                  is closed with 1009 (default 16 MiB + 64 KiB) */
    const char *web_root;      /* directory whose files are served by GET on a WebSocket
                                  port ("/" is index.html); NULL: none (default) */
    /* Flash socket policy (<policy-file-request/>), on STOMP ports and policy ports. */
    int flash_policy;          /* answer it on STOMP ports: 1 (default) or 0 */
    const char *policy_domains; /* comma-separated allow-access-from domains (default "*") */
    const char *policy_ports;  /* to-ports value; NULL: the broker's STOMP ports (default) */
    broker_log_fn log;         /* NULL: no logging */
    void *log_ctx;
    broker_log_level log_level; /* lines above this level are skipped (default INFO) */
    broker_policy policy;      /* every queue's, unless a rule below matches (defaults as
                                  documented in broker_policy) */
    const broker_policy_rule *policies; /* per-destination policies (the array is copied at
                                  create; its strings are borrowed) */
    size_t npolicies;
    uint64_t (*clock)(void *ctx); /* the time for message times (delays, expiry), ms since
                                  the Unix epoch; NULL: the system clock. For tests */
    void *clock_ctx;
    const store_ops *store;    /* NULL: the memory backend */
    const char *store_path;    /* passed to the store */
    int store_sync_full;       /* persistent stores: 1 = survive power loss (default),
                                  0 = survive a killed process */
    uint32_t store_lease_ms;   /* stores shared by several brokers (postgres): how long a
                                  broker's claimed messages outlive it, ms; 0: the store's
                                  default */
    /* Authentication, asked on every CONNECT/STOMP with its login and passcode headers
     * (NULL when absent). Set at most one of the two hooks (both: BROKER_E_INVALID at
     * create); neither = no authentication. A refused session waits auth_fail_delay_ms
     * (nothing more is read meanwhile), then gets ERROR "message:Authentication failed"
     * and is closed.
     * authenticate_async: the check may take its time (a thread pool, a remote service).
     * req stands for this CONNECT: answer it with broker_auth_done() exactly once, on the
     * loop thread, later or inside this call. Until then nothing more is read from the
     * connection (frames behind the CONNECT wait, unparsed). login and passcode are
     * borrowed, valid until broker_auth_done(req). The CONNECT timeout starts again for
     * the check: a connection still unanswered after connect_timeout_ms gets an ERROR. */
    void (*authenticate_async)(void *ctx, broker_auth *req, const char *login,
                               const char *passcode);
    /* authenticate: the same answered at once: return 0 to accept, anything else refuses.
     * Runs on the loop thread (login and passcode borrowed for the call), so it must be
     * quick. */
    int (*authenticate)(void *ctx, const char *login, const char *passcode);
    void *auth_ctx;            /* ctx of either hook */
    uint32_t auth_fail_delay_ms; /* delay before refusing a bad login (default 1000) */
    /* TLS listeners (broker_listen_tls, broker_listen_wss). TLS 1.2 and 1.3 only, no
     * compression, no renegotiation. A handshake must end within connect_timeout_ms (it is
     * part of the wait for CONNECT). File names are borrowed, must outlive the broker
     * (broker_tls_reload reads them again). */
    const char *tls_cert;      /* PEM file: the server certificate, then its chain; NULL:
                                  no TLS (default) */
    const char *tls_key;       /* PEM file of its private key; NULL: in tls_cert */
    const char *tls_ca;        /* PEM file of the CAs client certificates must chain to */
    int tls_verify_client;     /* BROKER_TLS_VERIFY_NONE (default: no certificate asked),
                                  _OPTIONAL (asked; one sent must verify) or _REQUIRED;
                                  the last two need tls_ca */
    int tls_login;             /* BROKER_TLS_LOGIN_NONE (default), _CN or _SAN: a verified
                                  client certificate is the login (its subject CN, or its
                                  first email, DNS or URI subjectAltName), no passcode
                                  asked; a CONNECT naming another login is refused */
    int tls_min_version;       /* 12 (TLS 1.2, default) or 13 */
    const char *tls_ciphers;   /* TLS 1.2 cipher list, OpenSSL syntax (NULL: ECDHE with
                                  AES-GCM or ChaCha20-Poly1305 only) */
    const char *tls_ciphersuites; /* TLS 1.3 suites (NULL: OpenSSL's default) */
    /* The management HTTP API (broker_listen_admin): every request logs in with HTTP Basic
     * through the authenticate hooks above, as a CONNECT would. */
    int admin_open;            /* with neither hook set: 1 lets peers on loopback addresses
                                  in without a login; 0 (default) refuses every request
                                  (403) */
    size_t metrics_max_destinations; /* /metrics shows at most this many destinations' series
                                  (default 1000); the rest are counted as dropped */
    /* POST /api/reload and GET /api/config are answered by the embedder, on the loop
     * thread (NULL: 501). admin_reload fills r (zeroed before the call), typically after
     * broker_reconfigure(); admin_config calls emit once per key. */
    void (*admin_reload)(void *ctx, broker_reload_result *r);
    void (*admin_config)(void *ctx, broker_config_emit emit, void *emit_ctx);
    void *admin_ctx;
} broker_options;

enum { BROKER_TLS_VERIFY_NONE, BROKER_TLS_VERIFY_OPTIONAL, BROKER_TLS_VERIFY_REQUIRED };
enum { BROKER_TLS_LOGIN_NONE, BROKER_TLS_LOGIN_CN, BROKER_TLS_LOGIN_SAN };
/* broker_listen_tls/_wss: the listener asks client certificates as tls_verify_client. */
#define BROKER_TLS_VERIFY_DEFAULT (-1)

/* Fill o with the defaults documented above. */
void broker_options_init(broker_options *o);

typedef struct broker broker;

/* Create a broker on loop. opts is copied (NULL = defaults). *out: caller owns, release
 * with broker_free() after broker_stop() completed. */
broker_err broker_create(uv_loop_t *loop, const broker_options *opts, broker **out) BROKER_WUR;

/* Listen on host (IPv4 or IPv6 literal) and port; port 0 picks a free one. May be called
 * several times. *bound_port (may be NULL) receives the port actually bound. */
broker_err broker_listen(broker *b, const char *host, int port, int *bound_port) BROKER_WUR;

/* Listen for STOMP over WebSocket on host and port (0 picks a free one), as
 * broker_listen. The endpoint is broker_options.ws_path; other paths serve web_root. */
broker_err broker_listen_ws(broker *b, const char *host, int port, int *bound_port) BROKER_WUR;

/* STOMP on a unix-domain socket at path, its file given permissions mode (e.g. 0660; who
 * may connect is who may write it). A socket file left behind by a process that is gone is
 * replaced; one a live process listens on, or a file that is not a socket, is
 * BROKER_E_LISTEN. The file is removed when the listener closes (broker_stop). */
broker_err broker_listen_unix(broker *b, const char *path, int mode) BROKER_WUR;

/* STOMP on fd, a socket already bound and listening (TCP or unix; systemd socket
 * activation hands them over). The broker owns fd once this returned BROKER_OK, and never
 * removes a unix socket's file. BROKER_E_INVALID: fd is not a listening socket.
 * *bound_port (may be NULL): its TCP port, 0 for a unix socket. */
broker_err broker_listen_fd(broker *b, int fd, int *bound_port) BROKER_WUR;

/* Listen for Flash socket policy requests only (Flash asks port 843 first), as
 * broker_listen. Answered whether or not flash_policy is set. */
broker_err broker_listen_policy(broker *b, const char *host, int port,
                                int *bound_port) BROKER_WUR;

/* Listen for STOMP over TLS (conventionally port 61614), or for STOMP over WebSocket over
 * TLS (wss), on host and port (0 picks a free one). verify: BROKER_TLS_VERIFY_* for this
 * listener, or BROKER_TLS_VERIFY_DEFAULT. BROKER_E_TLS when tls_cert is not set. */
broker_err broker_listen_tls(broker *b, const char *host, int port, int verify,
                             int *bound_port) BROKER_WUR;
broker_err broker_listen_wss(broker *b, const char *host, int port, int verify,
                             int *bound_port) BROKER_WUR;

/* Read the TLS certificate, key and CA files again (the names given at create): new
 * connections get them, established ones keep theirs. On failure the old ones stay and
 * the reason is logged: BROKER_E_TLS. */
broker_err broker_tls_reload(broker *b) BROKER_WUR;

/* Apply o to a running broker (loop thread), atomically: either every field below takes
 * effect or, with an error and why filled, none does. Taken: limits, connect_limits,
 * max_connections, max_subscriptions, max_unacked, default_prefetch, max_tx_frames,
 * max_transactions, output_high_water, max_output_bytes, max_memory, the timeouts
 * (connect, heart-beats, error_linger, stop), lenient_escapes, allow_non_utf8_10,
 * server_name, ws_origins, ws_max_message, web_root, flash_policy, policy_domains,
 * policy_ports, log_level, policy and policies, auth_fail_delay_ms, admin_open,
 * metrics_max_destinations, and the TLS files and settings when the broker has TLS (the
 * certificate is read again; BROKER_E_TLS when it does not load). Every other field is
 * fixed at create and ignored here. Strings are borrowed as at create; the old ones are
 * no longer used once this returns. Open sessions keep what they negotiated at CONNECT
 * (frame limits, heart-beats, a TLS session's settings); the counts (subscriptions,
 * transactions, unacked, output bytes, memory) and policies apply to everything from the
 * next frame or message on; max_connections to the next accept. */
broker_err broker_reconfigure(broker *b, const broker_options *o, char *why,
                              size_t cap) BROKER_WUR;

/* Check o's TLS settings and files without a broker: BROKER_OK, or BROKER_E_TLS with a
 * line naming the key and file in why (cap bytes). */
broker_err broker_tls_check(const broker_options *o, char *why, size_t cap) BROKER_WUR;
/* Listen for the management HTTP API on host and port (0 picks a free one), as
 * broker_listen: JSON views of the broker (/api/overview, /api/destinations,
 * /api/connections), actions (purge, delete, browse, move dead letters back, close a
 * connection), Prometheus metrics (/metrics) and the web console (/). See the README's
 * Management section for every path. */
broker_err broker_listen_admin(broker *b, const char *host, int port,
                               int *bound_port) BROKER_WUR;
/* The same over HTTPS, with the TLS settings of the options (tls_cert, tls_key, versions,
 * ciphers; no client certificate is asked: logins are HTTP Basic). BROKER_E_TLS when the
 * broker has no TLS (tls_cert unset). */
broker_err broker_listen_admin_tls(broker *b, const char *host, int port,
                                   int *bound_port) BROKER_WUR;

/* Forget the management API's remembered logins (an accepted HTTP Basic login is taken
 * without a new check for 60 s): call it when the users change, so the next request of
 * each is checked again. */
void broker_admin_forget_logins(broker *b);

/* Answer an authenticate_async request: accept != 0 lets the session in (CONNECTED, then
 * the frames that waited behind the CONNECT), 0 refuses it. Exactly once per request, on
 * the loop thread; req is gone after the call. The answer to a connection that closed
 * meanwhile is ignored. Never calls a broker callback inside this call. */
void broker_auth_done(broker_auth *req, int accept);

/* 1 when req's connection has closed (client gone, CONNECT timeout, broker stopping): the
 * check may be skipped, the answer is ignored; broker_auth_done() is still needed. */
int broker_auth_abandoned(const broker_auth *req);

typedef void (*broker_stop_cb)(broker *b, void *arg);

/* Stop listening and end every connection without losing a message: each client is sent an
 * ERROR "the server is shutting down" after everything already queued for it, then its
 * connection closes once that is written (at most stop_timeout_ms). Queue messages not
 * written by then (auto-ack ones included) and unacknowledged ones go back to their queues
 * and are committed before the store closes. Waits for in-flight store commits and for an
 * answer to every authenticate_async request. cb runs on the loop once everything is
 * closed, never inside this call. Returns BROKER_E_STATE (cb not called) if a stop is
 * already under way. */
broker_err broker_stop(broker *b, broker_stop_cb cb, void *arg) BROKER_WUR;

/* Release the broker. Only after the stop callback ran (or if the loop never ran any
 * broker handle: then it is an error to call, use broker_stop first anyway). */
void broker_free(broker *b);

/* One header of a message. */
typedef struct broker_header {
    const char *name;
    const char *value;
} broker_header;

/* Send a message to dest as a SEND frame would, without a socket. Headers and body are
 * copied; priority, expires, expiration and the delay headers act as on a SEND. A queue
 * message is delivered once the store committed it (later, on the loop); a topic message
 * is handed to in-process topic subscribers during this call. BROKER_E_INVALID for a
 * header a SEND would get an ERROR for (a repeating schedule, a malformed priority, expiry
 * or delay, one over max_delay: the README's list) or a wildcard destination;
 * BROKER_E_LIMIT for a full queue whose overflow policy is block or reject (a call cannot
 * wait). */
broker_err broker_publish(broker *b, const char *dest, const broker_header *headers,
                          size_t nheaders, const void *body, size_t body_len) BROKER_WUR;

/* A message handed to an in-process subscriber: borrowed, valid for the callback only. */
typedef struct broker_message {
    const char *destination;
    const char *message_id;
    const void *body;
    size_t body_len;
    uint32_t redeliveries;
    const char *hdr_block; /* private: use broker_message_header() */
    size_t hdr_len;
} broker_message;

/* Value of the first custom header called name, or NULL. Borrowed like the message. */
const char *broker_message_header(const broker_message *m, const char *name);

typedef void (*broker_message_cb)(void *arg, const broker_message *m);
typedef struct broker_sub broker_sub;

/* Subscribe in-process to dest (auto acknowledge). cb runs on the loop, never inside this
 * call. Inside cb the embedder may publish, subscribe and unsubscribe, but not stop or free
 * the broker. *out: release with broker_unsubscribe() (or it goes with broker_stop).
 * dest may be a wildcard pattern (the README's Wildcards): cb gets the messages of every
 * destination it matches; BROKER_E_INVALID for a malformed one ('>' or '#' not last). */
broker_err broker_subscribe(broker *b, const char *dest, broker_message_cb cb, void *arg,
                            broker_sub **out) BROKER_WUR;
void broker_unsubscribe(broker_sub *s);

/* ---- Permissions (the README's Permissions) ----
 * An ACL grants permissions to logins, groups of logins ("@group") or everyone ("*") on
 * destination patterns in the wildcard syntax (a plain name is a pattern matching itself).
 * Only grants: with an ACL installed, what it does not grant is refused. Without one
 * (the default), every session may do everything. */
typedef enum broker_perm {
    BROKER_PERM_READ = 1,   /* SUBSCRIBE, browse */
    BROKER_PERM_WRITE = 2,  /* SEND */
    BROKER_PERM_CREATE = 4, /* the first use of a destination that does not exist yet */
    BROKER_PERM_ADMIN = 8   /* management, purge, delete (broker_acl_perms for their checks) */
} broker_perm;

typedef struct broker_acl broker_acl;

/* An empty ACL (grants nothing). *out: caller owns, release with broker_acl_free() unless
 * handed to broker_set_acl(). */
broker_err broker_acl_create(broker_acl **out) BROKER_WUR;
void broker_acl_free(broker_acl *a);
/* login is a member of group (no '@'). Strings copied. BROKER_E_INVALID for an empty name. */
broker_err broker_acl_add_member(broker_acl *a, const char *group, const char *login) BROKER_WUR;
/* Grant perms (BROKER_PERM_* bits) to who (a login, "@group" or "*") on pattern. Strings
 * copied. BROKER_E_INVALID for an empty who, group or pattern, no perms, or a malformed
 * pattern ('>' or '#' not last). A group never given members has none. */
broker_err broker_acl_grant(broker_acl *a, const char *who, unsigned perms,
                            const char *pattern) BROKER_WUR;
/* The BROKER_PERM_* bits login (NULL: a session without a login: only "*" rules) has on
 * dest: the rules whose pattern matches it. dest may be a pattern itself: a rule counts
 * when its pattern matches every name dest matches. */
unsigned broker_acl_perms(const broker_acl *a, const char *login, const char *dest);
/* "read", "write", "create", "admin" for one bit; NULL otherwise. */
const char *broker_perm_name(broker_perm p);
/* Install acl (takes ownership; NULL removes the ACL: everything allowed), replacing the
 * previous one, which is freed. Applies to every SEND and SUBSCRIBE after the call, on
 * open connections too (their cached decisions are dropped); subscriptions made before
 * stay. A session's login is the one its authenticate hook accepted; without a hook
 * sessions have none. */
void broker_set_acl(broker *b, broker_acl *acl);

typedef struct broker_stats {
    uint64_t connections;       /* open now */
    uint64_t connections_total; /* accepted since create */
    uint64_t connections_refused; /* over max_connections */
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out;
    uint64_t messages_in;       /* SENDs and publishes accepted */
    uint64_t messages_out;      /* MESSAGE frames written or in-process deliveries */
    uint64_t redeliveries;      /* messages returned to a queue */
    uint64_t errors_sent;       /* ERROR frames */
    uint64_t limit_breaches;    /* connections closed for going over a limit */
    uint64_t subscriptions;     /* now, sockets and in-process */
    uint64_t memory;            /* bytes counted against max_memory now */
    uint64_t commits;           /* store commits completed */
    uint64_t reads_paused;      /* times a connection stopped being read (memory limit or
                                   its own output over the high-water mark) */
    uint64_t auth_failures;     /* CONNECTs refused by an authenticate hook */
    uint64_t dead_lettered;     /* queue messages moved to a dead-letter queue */
    uint64_t dead_dropped;      /* dead letters dropped (the policy's dead_letter: none) */
    uint64_t expired;           /* messages that expired before delivery (dead-lettered,
                                   dropped or, on a topic, not delivered) */
    uint64_t temp_dropped;      /* messages to a temporary queue whose connection had
                                   closed (sent after, or left in it), dropped */
} broker_stats;

void broker_get_stats(const broker *b, broker_stats *out);

/* The loop the broker was created on. */
uv_loop_t *broker_loop(const broker *b);

#ifdef __cplusplus
}
#endif
#endif
