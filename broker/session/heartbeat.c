/* heartbeat.c: heart-beats (STOMP 1.1 and 1.2; none in 1.0): negotiation at CONNECT and
 * the timers of an open session.
 *
 * Negotiation per the spec: we send every max(our offer, what the client wants) and expect
 * the client every max(its offer, what we want); 0 on either side means none. Sending: an
 * EOL when nothing was written since the last tick. Receiving: the deadline timer checks a
 * few times per allowed silence (heartbeat_grace_pct of the interval, at least 200 %) and
 * ends a silent session with an ERROR.
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

static void on_silence_check(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state != CS_OPEN)
        return;
    uint64_t silent = uv_now(c->b->loop) - c->last_rx;
    uint64_t allowed = (uint64_t)c->hb_in * c->b->o.heartbeat_grace_pct / 100;
    if (silent > allowed)
        conn__fail(c, BROKER_E_PROTOCOL, NULL, "heart-beat timeout: nothing received");
}

static void on_send_tick(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->state != CS_OPEN)
        return;
    int wrote = c->io.writes != c->hb_writes;
    c->hb_writes = c->io.writes;
    if (wrote || net__queued(&c->io))
        return;
    char *p = net__frame(&c->io, 1);
    if (!p) {
        conn__close(c);
        return;
    }
    *p = '\n';
}

void heartbeat__start(conn *c)
{
    uv_timer_stop(&c->deadline);
    if (c->hb_in) {
        /* Check a few times per allowed silence so a dead peer is noticed promptly. */
        uint64_t every = c->hb_in / 2 ? c->hb_in / 2 : 1;
        uv_timer_start(&c->deadline, on_silence_check, every, every);
    }
    if (c->hb_out) {
        /* A little before the agreed interval, so network jitter does not make us late. */
        uint64_t every = (uint64_t)c->hb_out * 9 / 10;
        if (!every)
            every = 1;
        c->hb_writes = c->io.writes;
        uv_timer_start(&c->hb_timer, on_send_tick, every, every);
    }
}

void heartbeat__stop(conn *c)
{
    uv_timer_stop(&c->hb_timer);
}
