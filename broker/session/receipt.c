/* receipt.c: RECEIPT frames, in the order of the frames that asked for them.
 *
 * A receipt whose frame wrote to the store waits (is held) until the store committed the
 * batch of that write (commit.c tells the endpoint), and every later receipt of the
 * session waits behind it, so receipts never overtake each other. A held receipt is
 * counted against the broker's memory; an ERROR ends the session and drops them.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static broker_err send_now(conn *c, const char *rid, size_t len)
{
    stomp_header h = { "receipt-id", 10, rid, len };
    stomp_frame f = { .cmd = STOMP_CMD_RECEIPT, .headers = &h, .nheaders = 1 };
    return conn__send_frame(c, &f);
}

broker_err receipt__queue(conn *c, const char *rid, size_t len, int needs_commit)
{
    broker *b = c->b;
    if (!needs_commit && !c->held_head)
        return send_now(c, rid, len);
    held *h = malloc(sizeof *h + len + 1);
    if (!h)
        return BROKER_E_NOMEM;
    h->next = NULL;
    h->epoch = commit__epoch(b);
    h->len = len;
    memcpy(h->rid, rid, len);
    h->rid[len] = '\0';
    broker__mem_add(b, sizeof *h + len);
    if (c->held_tail)
        c->held_tail->next = h;
    else
        c->held_head = h;
    c->held_tail = h;
    commit__wait(b, &c->ep);
    /* Held behind an earlier receipt without a write of its own: the batch must still be
     * cut for the epoch to complete. */
    commit__again(b);
    return BROKER_OK;
}

broker_err receipt__send(conn *c, const stomp_frame *f, int needs_commit)
{
    size_t len;
    const char *rid = stomp_frame_header(f, "receipt", &len);
    if (!rid)
        return BROKER_OK;
    return receipt__queue(c, rid, len, needs_commit);
}

int receipt__holding(const conn *c)
{
    return c->held_head != NULL;
}

void receipt__drop(conn *c)
{
    while (c->held_head) {
        held *h = c->held_head;
        c->held_head = h->next;
        broker__mem_sub(c->b, sizeof *h + h->len);
        free(h);
    }
    c->held_tail = NULL;
    commit__unwait(c->b, &c->ep);
}

/* Send the held receipts of batches up to done_epoch. */
static void flush_held(conn *c, uint64_t done_epoch)
{
    while (c->held_head && c->held_head->epoch <= done_epoch) {
        held *h = c->held_head;
        c->held_head = h->next;
        if (!c->held_head)
            c->held_tail = NULL;
        broker_err rc = send_now(c, h->rid, h->len);
        broker__mem_sub(c->b, sizeof *h + h->len);
        free(h);
        if (rc != BROKER_OK) {
            conn__close(c);
            break;
        }
    }
}

void receipt__committed(conn *c, uint64_t epoch, int ok, const char *why)
{
    /* Receipts of the lost batch are never sent: the ERROR ends the session. */
    if (!ok && c->held_head && c->held_head->epoch <= epoch) {
        conn__fail(c, BROKER_E_STORE, NULL, why);
        return;
    }
    flush_held(c, epoch);
    if (c->held_head)
        commit__wait(c->b, &c->ep);
    if (c->state == CS_CLOSING)
        conn__maybe_close(c);
}
