/* handle_tx.c: BEGIN, COMMIT, ABORT and the transactions they manage.
 *
 * A transaction buffers SENDs (as message copies) and ACK/NACKs (as delivery tags) until
 * COMMIT applies them within one loop turn, so the store gets them in one batch (atomic).
 * COMMIT first puts every queue SEND in the batch, taking them back if one fails, and only
 * then fans out topic SENDs and settles ACKs and NACKs: a COMMIT either takes effect
 * whole or leaves nothing. ABORT and disconnect drop them. Ids are unique among a
 * connection's open transactions; sizes are bounded by max_transactions and max_tx_frames.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

tx *tx__find(conn *c, const char *id)
{
    for (tx *t = c->txs; t; t = t->next)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static void unlink_tx(conn *c, tx *t)
{
    tx **pp = &c->txs;
    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    c->ntx--;
}

static void free_tx(conn *c, tx *t)
{
    while (t->head) {
        txop *op = t->head;
        t->head = op->next;
        bmsg__unref(op->m);
        free(op);
    }
    broker__mem_sub(c->b, t->bytes);
    free(t);
}

void tx__free_all(conn *c)
{
    while (c->txs) {
        tx *t = c->txs;
        unlink_tx(c, t);
        free_tx(c, t);
    }
}

static broker_err add_op(conn *c, tx *t, txop *op)
{
    if (t->nops >= c->b->o.max_tx_frames) {
        bmsg__unref(op->m);
        free(op);
        conn__set_error(c, "too many frames in transaction");
        return BROKER_E_LIMIT;
    }
    op->next = NULL;
    if (t->tail)
        t->tail->next = op;
    else
        t->head = op;
    t->tail = op;
    t->nops++;
    return BROKER_OK;
}

broker_err tx__add_send(conn *c, tx *t, const stomp_frame *f, const char *dest, size_t dlen,
                        const msg_attrs *a)
{
    txop *op = calloc(1, sizeof *op);
    if (!op)
        return BROKER_E_NOMEM;
    op->kind = STOMP_CMD_SEND;
    op->m = bmsg__from_frame(f, dest, dlen);
    if (!op->m) {
        free(op);
        return BROKER_E_NOMEM;
    }
    op->m->attrs = *a;
    op->m->origin = &c->ep; /* noLocal: the committing connection sent it */
    size_t bytes = op->m->hdrs_len + op->m->body_len + dlen;
    broker_err rc = add_op(c, t, op);
    if (rc == BROKER_OK) {
        t->bytes += bytes;
        broker__mem_add(c->b, bytes);
    }
    return rc;
}

broker_err tx__add_ack(conn *c, tx *t, uint64_t tag, int how)
{
    txop *op = calloc(1, sizeof *op);
    if (!op)
        return BROKER_E_NOMEM;
    op->kind = how == SETTLE_ACK ? STOMP_CMD_ACK : STOMP_CMD_NACK;
    op->settle = how;
    op->tag = tag;
    return add_op(c, t, op);
}

static const char *tx_id(conn *c, const stomp_frame *f, broker_err *rc)
{
    const char *id = stomp_frame_header(f, "transaction", NULL);
    if (!id) {
        conn__set_error(c, "%s without a transaction header", stomp_command_name(f->cmd));
        *rc = BROKER_E_PROTOCOL;
    }
    return id;
}

broker_err handle__begin(conn *c, const stomp_frame *f)
{
    broker_err rc = BROKER_OK;
    const char *id = tx_id(c, f, &rc);
    if (!id)
        return rc;
    if (tx__find(c, id)) {
        conn__set_error(c, "transaction already begun");
        return BROKER_E_PROTOCOL;
    }
    if (c->ntx >= c->b->o.max_transactions) {
        conn__set_error(c, "too many open transactions");
        return BROKER_E_LIMIT;
    }
    size_t n = strlen(id);
    tx *t = calloc(1, sizeof *t + n + 1);
    if (!t)
        return BROKER_E_NOMEM;
    memcpy(t->id, id, n + 1);
    t->next = c->txs;
    c->txs = t;
    c->ntx++;
    return receipt__send(c, f, 0);
}

/* Phase one of a COMMIT: every SEND to a queue into the store's open batch. When one
 * fails, those before it are taken back, so nothing of the transaction remains. */
static broker_err enqueue_all(conn *c, tx *t)
{
    broker *b = c->b;
    for (txop *op = t->head; op; op = op->next) {
        if (op->kind != STOMP_CMD_SEND || dest__is_topic(op->m->dest, op->m->dest_len))
            continue;
        char why[256];
        broker_err rc = route__send_queue(b, op->m, &op->id, why, sizeof why);
        if (rc == BROKER_OK)
            continue;
        int undone = 1;
        for (txop *u = t->head; u != op; u = u->next)
            if (u->kind == STOMP_CMD_SEND && !dest__is_topic(u->m->dest, u->m->dest_len) &&
                route__unsend(b, u->m, u->id) != 0)
                undone = 0;
        conn__set_error(c, "transaction %s failed%s: %s", t->id,
                        undone ? " and nothing of it was applied" : " part-way",
                        rc == BROKER_E_NOMEM   ? "out of memory"
                        : rc == BROKER_E_LIMIT ? why
                                               : "the store refused a message");
        return rc;
    }
    return BROKER_OK;
}

/* Phase two, once nothing can fail any more: topic SENDs fan out, ACKs and NACKs settle,
 * in the transaction's order. */
static void apply_rest(conn *c, tx *t, int has_receipt)
{
    broker *b = c->b;
    for (txop *op = t->head; op; op = op->next) {
        if (op->kind == STOMP_CMD_SEND) {
            if (dest__is_topic(op->m->dest, op->m->dest_len)) {
                int stored;
                broker_err rc = route__send(b, op->m, &stored);
                (void)rc; /* fan-out fails per subscriber, never the transaction */
            }
            continue;
        }
        /* Settled meanwhile (e.g. by a cumulative ACK): nothing left to do. */
        delivery *d = sub__find_tag(&c->ep, op->tag);
        if (d)
            sub__settle(b, d, op->settle, has_receipt);
    }
}

broker_err handle__commit(conn *c, const stomp_frame *f)
{
    broker *b = c->b;
    broker_err rc = BROKER_OK;
    const char *id = tx_id(c, f, &rc);
    if (!id)
        return rc;
    tx *t = tx__find(c, id);
    if (!t) {
        conn__set_error(c, "unknown transaction");
        return BROKER_E_NOTFOUND;
    }
    unlink_tx(c, t);
    int has_receipt = stomp_frame_header(f, "receipt", NULL) != NULL;
    uint64_t w = commit__writes(b);
    rc = enqueue_all(c, t);
    if (rc == BROKER_OK)
        apply_rest(c, t, has_receipt);
    free_tx(c, t);
    if (rc != BROKER_OK)
        return rc;
    return receipt__send(c, f, commit__writes(b) != w);
}

broker_err handle__abort(conn *c, const stomp_frame *f)
{
    broker_err rc = BROKER_OK;
    const char *id = tx_id(c, f, &rc);
    if (!id)
        return rc;
    tx *t = tx__find(c, id);
    if (!t) {
        conn__set_error(c, "unknown transaction");
        return BROKER_E_NOTFOUND;
    }
    unlink_tx(c, t);
    free_tx(c, t);
    return receipt__send(c, f, 0);
}
