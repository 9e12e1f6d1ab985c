/* heartbeat.c: heart-beats (STOMP 1.1 and 1.2; none in 1.0): negotiation at CONNECT and
 * the one timer of an open session that keeps both directions.
 *
 * Negotiation per the spec: we send every max(our offer, what the client wants) and expect
 * the client every max(its offer, what we want); 0 on either side means none.
 * Sending: "the sender MUST send new data over the network connection at least every <n>
 * milliseconds": an EOL goes out when nothing was written for the interval less a lead of
 * a tenth (at most 1 s), measured from the start of the last write, whatever it carried (a
 * heart-beat included), so a late timer still keeps each gap under the interval.
 * Receiving: a client silent for heartbeat_grace_pct of its interval (200 %: twice) is
 * ended with an ERROR, not earlier and not a check period later.
 * The timer is one-shot and lazy: it fires when the earlier of the two is due, and writes
 * and reads only record their time; heartbeat__plan decides from those times alone.
 */
#include "core.h"

/* "cx,cy" as two non-negative integers of at most 9 digits (about 11 days). */
static int parse_heartbeat(const char *s, uint32_t *cx, uint32_t *cy)
{
    uint32_t v[2] = { 0, 0 };
    for (int i = 0; i < 2; i++) {
        while (*s == ' ')
            s++;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 9)
                return -1;
            v[i] = v[i] * 10 + (uint32_t)(*s++ - '0');
        }
        while (*s == ' ')
            s++;
        if (!digits || (i == 0 && *s++ != ','))
            return -1;
    }
    if (*s)
        return -1;
    *cx = v[0];
    *cy = v[1];
    return 0;
}

static uint32_t max32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

broker_err heartbeat__negotiate(conn *c, stomp_version v, const char *hdr, uint32_t *sx,
                                uint32_t *sy)
{
    broker *b = c->b;
    uint32_t cx = 0, cy = 0;
    if (hdr && v != STOMP_V10 && parse_heartbeat(hdr, &cx, &cy) != 0) {
        conn__set_error(c, "malformed heart-beat header");
        return BROKER_E_PROTOCOL;
    }
    *sx = v == STOMP_V10 ? 0 : b->o.heartbeat_out_ms;
    *sy = v == STOMP_V10 ? 0 : b->o.heartbeat_in_ms;
    c->hb_out = *sx && cy ? max32(*sx, cy) : 0;
    c->hb_in = cx && *sy ? max32(cx, *sy) : 0;
    return BROKER_OK;
}

/* How long after the last write an EOL is due: the interval less a lead for a late timer. */
static uint64_t send_after(uint32_t out)
{
    uint64_t lead = out / 10 < 1000 ? out / 10 : 1000;
    return out - lead;
}

void heartbeat__plan(const hb_clock *k, uint64_t now, hb_plan *p)
{
    p->send = p->expire = 0;
    uint64_t next = UINT64_MAX;
    if (k->in) {
        uint64_t due = k->last_rx + (uint64_t)k->in * k->grace_pct / 100;
        if (now >= due) {
            p->expire = 1;
            p->wait = 0;
            return;
        }
        next = due;
    }
    if (k->out) {
        uint64_t due = k->last_write + send_after(k->out);
        if (now >= due) {
            /* Output on its way counts as data; look again one interval on. */
            p->send = !k->writing;
            due = now + send_after(k->out);
        }
        if (due < next)
            next = due;
    }
    p->wait = next == UINT64_MAX ? 0 : next - now;
}

static void on_tick(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state != CS_OPEN)
        return;
    broker *b = c->b;
    uint64_t now = uv_now(b->loop);
    /* While the broker itself does not read the connection (memory, a full queue) its
     * heart-beats cannot be seen: it is not judged by them until reading resumes. */
    if (c->paused_mem || c->paused_queue)
        c->last_rx = now;
    hb_clock k = { c->hb_out, c->hb_in, b->o.heartbeat_grace_pct, c->io.last_write,
                   c->last_rx, net__queued(&c->io) != 0 };
    hb_plan p;
    heartbeat__plan(&k, now, &p);
    if (p.expire) {
        conn__fail(c, BROKER_E_PROTOCOL, NULL, "heart-beat timeout: nothing received");
        return;
    }
    if (p.send) {
        char *eol = net__frame(&c->io, 1);
        if (!eol) {
            conn__close(c);
            return;
        }
        *eol = '\n';
        /* Written at this turn's tick: count the silence from now. */
        c->io.last_write = now;
    }
    if (p.wait)
        uv_timer_start(&c->hb_timer, on_tick, p.wait, 0);
}

void heartbeat__start(conn *c)
{
    uv_timer_stop(&c->deadline); /* the CONNECT or login timeout */
    uint64_t now = uv_now(c->b->loop);
    c->last_rx = now;
    c->io.last_write = now; /* CONNECTED is on its way */
    if (c->hb_in || c->hb_out)
        uv_timer_start(&c->hb_timer, on_tick, 0, 0);
}

void heartbeat__stop(conn *c)
{
    uv_timer_stop(&c->hb_timer);
}
