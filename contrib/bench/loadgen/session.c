/* session.c: the STOMP conversation on one connection: CONNECT, a SUBSCRIBE with a receipt
 * per destination, the frames the broker sends back, DISCONNECT with a receipt. A connection
 * is ready once CONNECTED (producer) or once every SUBSCRIBE is confirmed (consumer).
 * A receipt id says what it answers: r<seq> a SEND, s<n> a SUBSCRIBE, d the DISCONNECT. */
#include <stdio.h>
#include <string.h>

#include "loadgen.h"

/* CONNECT, written once the TCP connect has completed. */
void session__connect(struct conn *c)
{
    conn__append(c, "CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n",
                 strlen("CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n"));
    /* CONNECT headers are never escaped; --login/--passcode were checked for CR and LF. */
    if (R.o.login) {
        conn__append(c, "login:", 6);
        conn__append(c, R.o.login, strlen(R.o.login));
        conn__append(c, "\n", 1);
    }
    if (R.o.passcode) {
        conn__append(c, "passcode:", 9);
        conn__append(c, R.o.passcode, strlen(R.o.passcode));
        conn__append(c, "\n", 1);
    }
    conn__append(c, "\n", 2); /* blank line and the NUL */
    c->state = CS_HANDSHAKE;
}

static void became_ready(struct conn *c)
{
    c->state = CS_READY;
    if (c->w->inflight > 0)
        c->w->inflight--;
    atomic_fetch_add(&R.ready, 1);
}

static void subscribe(struct conn *c, int n, const char *dest, const char *ack)
{
    char id[32];
    int len = snprintf(id, sizeof id, "s%d", n);
    conn__append(c, "SUBSCRIBE\n", 10);
    conn__header(c, "id", id, (size_t)len, STOMP_CMD_SUBSCRIBE);
    conn__header(c, "destination", dest, strlen(dest), STOMP_CMD_SUBSCRIBE);
    conn__header(c, "ack", ack, strlen(ack), STOMP_CMD_SUBSCRIBE);
    if (R.o.selectors) {
        const char *sel = c->group % 2 ? "grp = 'b'" : "grp = 'a'";
        conn__header(c, "selector", sel, strlen(sel), STOMP_CMD_SUBSCRIBE);
    }
    conn__header(c, "receipt", id, (size_t)len, STOMP_CMD_SUBSCRIBE);
    conn__append(c, "\n", 2);
    c->subs_pending++;
}

/* --wildcards: subscriber g takes the messages through <dest>.* and holds its share of the
 * other patterns, <dest>-<g>-<j>.*, which match nothing sent. */
static void wildcard_subscribes(struct conn *c, const char *ack)
{
    int k = R.o.subscribers, g = c->group;
    int share = R.o.wildcards / k + (g < R.o.wildcards % k);
    char dest[300];
    snprintf(dest, sizeof dest, "%s.*", R.dests[0]);
    subscribe(c, 0, dest, ack);
    for (int j = 1; j < share; j++) {
        snprintf(dest, sizeof dest, "%s-%d-%d.*", R.dests[0], g, j);
        subscribe(c, j, dest, ack);
    }
}

/* Subscription s<i> for each queue; with --nack-all (client-individual, to NACK) also
 * s<ndests + i> for its dead-letter queue. */
static void send_subscribes(struct conn *c)
{
    static const char *const ackname[] = {"auto", "client-individual"};
    c->subs_pending = 0;
    if (R.o.wildcards)
        wildcard_subscribes(c, ackname[R.o.client_ack]);
    for (int i = 0; !R.o.wildcards && i < R.ndests; i++)
        subscribe(c, i, R.dests[i], R.o.nack_all ? ackname[1] : ackname[R.o.client_ack]);
    for (int i = 0; R.o.nack_all && i < R.ndests; i++)
        subscribe(c, R.ndests + i, R.dlqs[i], ackname[R.o.client_ack]);
    c->state = CS_SUBSCRIBING;
}

/* A frame from the broker; MESSAGE frames are counted into b. */
void session__on_frame(struct conn *c, const stomp_frame *f, struct rx_batch *b)
{
    switch (f->cmd) {
    case STOMP_CMD_MESSAGE:
        if (c->role != ROLE_CONSUMER && R.o.sc == SC_RPC) {
            consumer__on_reply(c, f, b);
            return;
        }
        if (c->role != ROLE_CONSUMER) {
            fail("MESSAGE on producer connection %d", c->idx);
            return;
        }
        consumer__on_message(c, f, b);
        return;
    case STOMP_CMD_CONNECTED: {
        if (c->state != CS_HANDSHAKE) {
            fail("unexpected CONNECTED on connection %d", c->idx);
            return;
        }
        size_t vlen;
        const char *v = stomp_frame_header(f, "version", &vlen);
        if (!v || vlen != 3 || memcmp(v, "1.2", 3) != 0) {
            fail("broker answered CONNECT (accept-version:1.2) with version:%s",
                 v ? v : "(none)");
            return;
        }
        stomp_parser_set_version(&c->parser, STOMP_V12, 0);
        if (c->role == ROLE_CONSUMER)
            send_subscribes(c);
        else
            became_ready(c);
        return;
    }
    case STOMP_CMD_RECEIPT: {
        size_t len;
        const char *id = stomp_frame_header(f, "receipt-id", &len);
        if (!id || len == 0) {
            fail("RECEIPT without receipt-id on connection %d", c->idx);
            return;
        }
        if (id[0] == 'r' && c->role == ROLE_PRODUCER) {
            if (c->outstanding <= 0) {
                fail("unexpected RECEIPT receipt-id:%s on connection %d", id, c->idx);
                return;
            }
            c->outstanding--;
            producer__check_done(c);
        } else if (id[0] == 's' && c->state == CS_SUBSCRIBING) {
            if (--c->subs_pending == 0)
                became_ready(c);
        } else if (id[0] == 'd' && c->state == CS_CLOSING) {
            conn__close(c);
        } else {
            fail("unexpected RECEIPT receipt-id:%s on connection %d", id, c->idx);
        }
        return;
    }
    case STOMP_CMD_ERROR: {
        const char *m = stomp_frame_header(f, "message", NULL);
        char d[512];
        dump_bytes(d, sizeof d, f->body, f->body_len, 200);
        fail("ERROR frame on connection %d (%s): message:%s body:%s", c->idx,
             c->role == ROLE_PRODUCER ? "producer" : "consumer", m ? m : "(none)", d);
        return;
    }
    default:
        fail("unexpected %s frame on connection %d", f->cmd_name, c->idx);
        return;
    }
}

/* DISCONNECT with a receipt: the connection closes when the receipt arrives, so every frame
 * the broker sent before it is still read. */
void session__disconnect(struct conn *c)
{
    conn__append(c, "DISCONNECT\nreceipt:d\n\n", 23);
    c->state = CS_CLOSING;
    (void)conn__flush(c);
}
