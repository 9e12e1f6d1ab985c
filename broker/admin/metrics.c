/* metrics.c: GET /metrics in the Prometheus text exposition format (version 0.0.4):
 * broker-wide counters and gauges, then per-destination series labelled
 * {destination="...",type="queue|topic"}.
 *
 * Cardinality is capped: at most metrics_max_destinations destinations get series (the
 * first by name); the rest are counted in stompd_metrics_destinations_dropped_total (summed
 * over scrapes) and stompd_metrics_destinations_dropped (this scrape). Each family is
 * written whole (HELP, TYPE, every series) as the format requires. With the PostgreSQL
 * store, its round trips and the topic messages exchanged with other nodes are counted too.
 */
#include "admin/http.h"
#include "store_postgres.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void family(admin_buf *o, const char *name, const char *type, const char *help)
{
    admin__buf_put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(admin_buf *o, const char *name, const char *type, const char *help, uint64_t v)
{
    family(o, name, type, help);
    admin__buf_put(o, "%s %llu\n", name, (unsigned long long)v);
}

static void broker_wide(admin_buf *o, broker *b, size_t ndests, size_t dropped)
{
    broker_stats s;
    broker_get_stats(b, &s);
    family(o, "stompd_info", "gauge", "The broker's version and store backend.");
    admin__buf_put(o, "stompd_info{version=\"%s\",store=\"%s\"} 1\n", STOMPD_VERSION, b->st->name);
    one(o, "stompd_uptime_seconds", "gauge", "Seconds since the broker started.",
        (broker__now_ms(b) - b->admin.started) / 1000);
    one(o, "stompd_connections", "gauge", "Open STOMP connections.", s.connections);
    one(o, "stompd_connections_accepted_total", "counter", "STOMP connections accepted.",
        s.connections_total);
    one(o, "stompd_connections_refused_total", "counter",
        "Connections refused over max_connections.", s.connections_refused);
    one(o, "stompd_subscriptions", "gauge", "Subscriptions now.", s.subscriptions);
    one(o, "stompd_frames_received_total", "counter", "STOMP frames received.", s.frames_in);
    one(o, "stompd_frames_sent_total", "counter", "STOMP frames sent.", s.frames_out);
    one(o, "stompd_bytes_received_total", "counter", "Bytes read from clients.", s.bytes_in);
    one(o, "stompd_bytes_sent_total", "counter", "Bytes written to clients.", s.bytes_out);
    one(o, "stompd_messages_received_total", "counter", "Messages sent to the broker.",
        s.messages_in);
    one(o, "stompd_messages_delivered_total", "counter", "Messages delivered to subscribers.",
        s.messages_out);
    one(o, "stompd_redeliveries_total", "counter", "Messages returned to their queue.",
        s.redeliveries);
    one(o, "stompd_dead_lettered_total", "counter", "Messages moved to a dead-letter queue.",
        s.dead_lettered);
    one(o, "stompd_dead_dropped_total", "counter", "Dead letters dropped.", s.dead_dropped);
    one(o, "stompd_expired_total", "counter", "Messages that expired before delivery.",
        s.expired);
    one(o, "stompd_errors_sent_total", "counter", "ERROR frames sent.", s.errors_sent);
    one(o, "stompd_limit_breaches_total", "counter", "Connections closed over a limit.",
        s.limit_breaches);
    one(o, "stompd_auth_failures_total", "counter", "Logins refused (STOMP and HTTP).",
        s.auth_failures);
    one(o, "stompd_store_commits_total", "counter", "Store commits completed.", s.commits);
    one(o, "stompd_reads_paused_total", "counter",
        "Times a connection stopped being read (memory or output).", s.reads_paused);
    one(o, "stompd_memory_bytes", "gauge", "Bytes counted against max_memory.", s.memory);
    one(o, "stompd_memory_limit_bytes", "gauge", "max_memory.", b->o.max_memory);
    one(o, "stompd_destinations", "gauge", "Destinations the broker knows.", ndests);
    one(o, "stompd_metrics_destinations_dropped", "gauge",
        "Destinations left out of this scrape (metrics_max_destinations).", dropped);
    one(o, "stompd_metrics_destinations_dropped_total", "counter",
        "Destinations left out of scrapes, summed over scrapes.", b->admin.dropped_series);
}

/* The PostgreSQL store's own counters (store_postgres.h). */
static void postgres(admin_buf *o, broker *b)
{
    if (b->st != store_postgres_backend())
        return;
    store_postgres_counts c;
    store_postgres_stats(b->store, &c);
    one(o, "stompd_store_round_trips_total", "counter",
        "Pipelines sent to the database (one round trip each).", c.round_trips);
    one(o, "stompd_topic_from_nodes_total", "counter",
        "Topic messages from other nodes handed to this node's subscribers.", c.topics_in);
    one(o, "stompd_topic_from_nodes_lost_total", "counter",
        "Topic messages from other nodes that could not be read.", c.topics_lost);
    one(o, "stompd_topic_to_nodes_dropped_total", "counter",
        "Topic messages not sent to (or not delivered from) other nodes: memory, backlog.",
        b->route.topic_share_dropped);
}

/* Escape n bytes of UTF-8 as the format wants in a label value. */
static void escaped(admin_buf *o, const char *n, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        if (n[i] != '\\' && n[i] != '"' && n[i] != '\n')
            continue;
        admin__buf_add(o, n + from, i - from);
        admin__buf_add(o, n[i] == '\n' ? "\\n" : n[i] == '"' ? "\\\"" : "\\\\", 2);
        from = i + 1;
    }
    admin__buf_add(o, n + from, len - from);
}

/* {destination="NAME",type="queue"}: the name escaped as the format wants, appended once
 * per destination and copied into each family's series. */
static void labels(admin_buf *o, const dest_t *d)
{
    size_t len = d->link.len, i = 0;
    while (i < len && d->name[i] > 0 && d->name[i] < 0x7f)
        i++;
    admin__buf_add(o, "{destination=\"", 14);
    if (i == len) {
        escaped(o, d->name, len);
    } else {
        /* Not plain ASCII: bad UTF-8 becomes U+FFFD, as the JSON views show it. */
        json_t *clean = admin__jstr(d->name, len);
        const char *n = clean ? json_string_value(clean) : "";
        escaped(o, n, strlen(n));
        json_decref(clean);
    }
    admin__buf_put(o, "\",type=\"%s\"}", d->is_topic ? "topic" : "queue");
}

enum { F_MESSAGES, F_READY, F_BYTES, F_UNACKED, F_CONSUMERS, F_IN, F_OUT, F_DEAD, F__N };

static const struct {
    const char *name, *type, *help;
    int queues_only;
} dest_families[F__N] = {
    [F_MESSAGES] = { "stompd_destination_messages", "gauge",
                     "Messages stored and not acknowledged (queues).", 1 },
    [F_READY] = { "stompd_destination_ready_messages", "gauge",
                  "Messages ready for delivery (queues).", 1 },
    [F_BYTES] = { "stompd_destination_bytes", "gauge",
                  "Bytes of headers and bodies stored (queues).", 1 },
    [F_UNACKED] = { "stompd_destination_unacked_messages", "gauge",
                    "Messages delivered and not acknowledged.", 0 },
    [F_CONSUMERS] = { "stompd_destination_consumers", "gauge", "Subscribers.", 0 },
    [F_IN] = { "stompd_destination_messages_in_total", "counter",
               "Messages sent to the destination.", 0 },
    [F_OUT] = { "stompd_destination_messages_out_total", "counter",
                "Messages handed to its subscribers.", 0 },
    [F_DEAD] = { "stompd_destination_dead_lettered_total", "counter",
                 "Messages dead-lettered out of the queue.", 1 },
};

static uint64_t value(const route_dest_view *v, int f)
{
    switch (f) {
    case F_MESSAGES: return v->messages;
    case F_READY: return v->depth;
    case F_BYTES: return v->bytes;
    case F_UNACKED: return v->unacked;
    case F_CONSUMERS: return v->consumers;
    case F_IN: return v->in;
    case F_OUT: return v->out;
    default: return v->dead;
    }
}

static void per_destination(admin_buf *o, broker *b, dest_t **all, size_t n)
{
    route_dest_view *views = n ? calloc(n, sizeof *views) : NULL;
    size_t *at = n ? calloc(n + 1, sizeof *at) : NULL;
    admin_buf lab = { 0 };
    if (n && (!views || !at))
        o->oom = 1;
    for (size_t i = 0; i < n && !o->oom; i++) {
        route__dest_view(b, all[i], &views[i]);
        labels(&lab, all[i]);
        at[i + 1] = lab.len;
    }
    if (lab.oom)
        o->oom = 1;
    /* One allocation for the whole body, not a dozen doublings each copying the last. */
    size_t names = 0;
    for (int f = 0; f < F__N; f++)
        names += strlen(dest_families[f].name) + 24;
    admin__buf_reserve(o, F__N * lab.len + n * names + 4096);
    for (int f = 0; f < F__N && !o->oom; f++) {
        family(o, dest_families[f].name, dest_families[f].type, dest_families[f].help);
        size_t nl = strlen(dest_families[f].name);
        for (size_t i = 0; i < n; i++) {
            if (dest_families[f].queues_only && all[i]->is_topic)
                continue;
            admin__buf_add(o, dest_families[f].name, nl);
            admin__buf_add(o, lab.p + at[i], at[i + 1] - at[i]);
            admin__buf_add(o, " ", 1);
            admin__buf_u64(o, value(&views[i], f));
            admin__buf_add(o, "\n", 1);
        }
    }
    free(lab.p);
    free(at);
    free(views);
}

void admin__metrics(http_conn *hc)
{
    broker *b = hc->b;
    size_t n;
    int oom;
    dest_t **all = admin__sorted_dests(b, &n, &oom);
    size_t shown = n < b->o.metrics_max_destinations ? n : b->o.metrics_max_destinations;
    b->admin.dropped_series += n - shown;
    admin_buf o = admin__buf_take(b);
    o.oom = oom;
    broker_wide(&o, b, n, n - shown);
    postgres(&o, b);
    per_destination(&o, b, all, shown);
    free(all);
    if (o.oom) {
        free(o.p);
        admin__error(hc, 503, "out of memory");
        return;
    }
    admin__respond_buf(hc, 200, "text/plain; version=0.0.4; charset=utf-8", &o);
}
