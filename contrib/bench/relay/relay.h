/* relay.h: what the relay's two files share: one connection, one subscription, one
 * destination and the relay that holds them. proto.c turns frames into output; main.c owns
 * the sockets, the loop and the command line. Nothing outside contrib/bench/relay includes it. */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stomp.h"

#define RBUF_SIZE (256u * 1024)
#define MAX_CONN_SUBS 64 /* subscriptions per connection */

struct rdest;

/* One SUBSCRIBE: its id escaped for MESSAGE frames, and whether MESSAGEs carry an ack header. */
struct rsub {
    struct rconn *c;
    struct rdest *d;
    char *id;     /* raw, to find it again on UNSUBSCRIBE */
    char *id_esc; /* escaped, for MESSAGE frames */
    size_t id_len, id_esc_len;
    bool client_ack; /* client or client-individual */
};

/* A destination with subscribers: a /topic/ one delivers to each, any other (a queue) to one
 * in turn. Exact names only. */
struct rdest {
    char *name, *esc; /* raw and escaped */
    size_t len, esc_len;
    bool topic;
    struct rsub **subs;
    int nsubs, cap;
    unsigned rr; /* the queue's next subscriber */
    struct rdest *next;
};

struct rconn {
    int fd;
    bool connected; /* CONNECT seen */
    bool closing;   /* close once the output is flushed */
    bool dead;      /* closed; freed at the end of the loop turn */
    bool dirty;     /* on the flush list */
    bool paused;    /* not reading: a subscriber is over the high-water mark */
    bool want_out;  /* EPOLLOUT registered */
    stomp_parser parser;
    char *out;
    size_t out_off, out_len, out_cap;
    struct rsub *subs[MAX_CONN_SUBS];
    int nsubs;
    uint64_t unacked; /* MESSAGEs sent with an ack header and not ACKed yet */
    struct rconn *next, *prev; /* all connections */
    struct rconn *next_dirty;
    struct rconn *next_dead;
};

struct relay {
    int lfd, ep;
    size_t hwm;
    long drop_nth, dup_nth, swap_nth;
    struct rconn *all;
    struct rconn *dirty;
    struct rconn *dead;
    struct rdest *dests;
    struct rdest *last_dest; /* the last SEND's, looked at first */
    bool paused;
    uint64_t sends, delivered, no_subscriber, msg_id, acks;
    char *held; /* --swap: the held MESSAGE, already encoded */
    size_t held_len, held_cap;
    struct rconn *held_to;
    char *rbuf;
};

void *xrealloc(void *p, size_t n);
void relay__on_frame(struct relay *r, struct rconn *c, const stomp_frame *f);
void relay__send_error(struct relay *r, struct rconn *c, const char *msg);
void relay__mark_dirty(struct relay *r, struct rconn *c);
/* Every subscription of c dropped (c closes). */
void relay__drop_subs(struct relay *r, struct rconn *c);
void relay__free_dests(struct relay *r);

#endif
