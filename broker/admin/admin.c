/* admin.c: the admin layer's entry points: its listeners, the one-second rate tick, and
 * closing everything at a stop.
 *
 * Listeners are TCP only (HOST:PORT); each counts as a broker handle until closed, as the
 * rate timer does once started. The rates are the counters' differences over the time
 * between two ticks: nothing on the data path computes them.
 */
#include "admin/http.h"

#include <stdlib.h>
#include <string.h>

#define RATE_TICK_MS 1000

void admin__init(broker *b)
{
    b->admin.started = broker__now_ms(b);
    /* The salt only has to differ between brokers and runs. */
    if (uv_random(NULL, NULL, b->admin.salt, sizeof b->admin.salt, 0, NULL) != 0) {
        uint64_t seed = uv_hrtime() ^ (uint64_t)(uintptr_t)b;
        memcpy(b->admin.salt, &seed, sizeof seed);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    broker__handle_closed(h->data);
}

static void on_listener_closed(uv_handle_t *h)
{
    admin_listener *l = h->data;
    broker *b = l->b;
    free(l);
    broker__handle_closed(b);
}

static void on_tick(uv_timer_t *t)
{
    broker *b = t->data;
    admin_state *a = &b->admin;
    uint64_t now = uv_now(b->loop);
    double secs = (double)(now - a->last_tick) / 1000.0;
    if (secs <= 0)
        return;
    a->rate_in = (double)(b->stats.messages_in - a->last_in) / secs;
    a->rate_out = (double)(b->stats.messages_out - a->last_out) / secs;
    a->last_in = b->stats.messages_in;
    a->last_out = b->stats.messages_out;
    a->last_tick = now;
    route__rates(b, secs);
}

static void start_timer(broker *b)
{
    admin_state *a = &b->admin;
    if (a->timer_on)
        return;
    uv_timer_init(b->loop, &a->timer);
    a->timer.data = b;
    a->timer_on = 1;
    b->handles_open++;
    a->last_tick = uv_now(b->loop);
    a->last_in = b->stats.messages_in;
    a->last_out = b->stats.messages_out;
    uv_timer_start(&a->timer, on_tick, RATE_TICK_MS, RATE_TICK_MS);
    uv_unref((uv_handle_t *)&a->timer); /* the listener keeps the loop alive, not this */
}

broker_err admin__listen(broker *b, const char *host, int port, int tls, int *bound_port)
{
    if (tls && !b->net.tls_ctx)
        return BROKER_E_TLS;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc != 0)
        return BROKER_E_ADDRESS;
    admin_listener *l = calloc(1, sizeof *l);
    if (!l)
        return BROKER_E_NOMEM;
    l->b = b;
    l->tls = tls;
    uv_tcp_init(b->loop, &l->tcp);
    l->tcp.data = l;
    b->handles_open++;
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 128, admin__accept);
    if (rc != 0) {
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_LISTEN, 0, "listen on %s:%d: %s", host,
                    port, uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return BROKER_E_LISTEN;
    }
    struct sockaddr_storage got;
    int len = sizeof got;
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &len) == 0)
        l->port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                  : ((struct sockaddr_in *)&got)->sin_port);
    l->next = b->admin.listeners;
    b->admin.listeners = l;
    if (bound_port)
        *bound_port = l->port;
    start_timer(b);
    broker__log(b, BROKER_LOG_INFO, BROKER_EV_LISTEN, 0, "listening on %s:%d (management%s)",
                host, l->port, tls ? ", HTTPS" : "");
    return BROKER_OK;
}

void admin__stop(broker *b)
{
    admin_state *a = &b->admin;
    while (a->listeners) {
        admin_listener *l = a->listeners;
        a->listeners = l->next;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
    for (http_conn *hc = a->conns; hc; hc = hc->next)
        admin__close(hc);
    if (a->timer_on) {
        a->timer_on = 0;
        uv_close((uv_handle_t *)&a->timer, on_handle_closed);
    }
}

void admin__free(broker *b)
{
    free(b->admin.spare);
    b->admin.spare = NULL;
    b->admin.spare_cap = 0;
}
