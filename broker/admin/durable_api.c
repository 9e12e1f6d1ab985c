/* durable_api.c: durable topic subscriptions in the management API. /api/destinations lists
 * every topic that has durable subscriptions, with or without a subscriber connected, and
 * each backlog queue (/durable-sub/<n>) carries the identity of its subscription (the
 * emptied backlogs of removed subscriptions are not listed). An
 * administrator may purge a backlog but neither delete it nor touch the record queue
 * (/durable-subs): a subscription goes for good only by UNSUBSCRIBE, which removes its
 * record and its backlog together.
 */
#include "admin/http.h"

#include <stdio.h>
#include <string.h>

static const char *name_of(json_t *entry)
{
    const char *s = json_string_value(json_object_get(entry, "name"));
    return s ? s : "";
}

/* Where name goes in arr (sorted by name): *found set when an entry has it. */
static size_t position(json_t *arr, const char *name, int *found)
{
    size_t lo = 0, hi = json_array_size(arr);
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name_of(json_array_get(arr, mid)), name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A topic with durable subscriptions and no entry of its own: nobody subscribes to it
 * directly, nothing has been counted on it since it was last listed. */
static json_t *idle_topic(const durable_view *v, size_t durables)
{
    return json_pack("{s:o, s:s, s:i, s:i, s:i, s:i, s:f, s:f, s:i, s:I}", "name",
                     admin__jstr(v->topic, v->topic_len), "type", "topic", "depth", 0,
                     "consumers", 0, "messages_in", 0, "messages_out", 0, "rate_in", 0.0,
                     "rate_out", 0.0, "subscribers", 0, "durable_subscriptions",
                     (json_int_t)durables);
}

static json_t *identity(const durable_view *v)
{
    json_t *j = json_pack("{s:o, s:o, s:o, s:b, s:b}", "client_id",
                          admin__jstr(v->client_id, strlen(v->client_id)), "name",
                          admin__jstr(v->name, strlen(v->name)),
                          v->is_wild ? "pattern" : "topic", admin__jstr(v->topic, v->topic_len),
                          "no_local", v->no_local, "active", v->active);
    if (j && v->selector)
        json_object_set_new(j, "selector", admin__jstr(v->selector, strlen(v->selector)));
    return j;
}

/* A backlog not in the broker's table yet (a store's, read back at a start): what the
 * store holds of it; nothing has been counted on it in this run. */
static json_t *idle_backlog(broker *b, const durable_view *v)
{
    uint64_t count = 0, bytes = 0;
    b->st->queue_size(b->store, v->queue, v->queue_len, store_hash_name(v->queue, v->queue_len),
                      &count, &bytes);
    size_t depth = b->st->depth(b->store, v->queue, v->queue_len);
    return json_pack("{s:o, s:s, s:I, s:i, s:i, s:i, s:f, s:f, s:I, s:I, s:i, s:i, s:i, s:b}",
                     "name", admin__jstr(v->queue, v->queue_len), "type", "queue", "depth",
                     (json_int_t)depth, "consumers", 0, "messages_in", 0, "messages_out", 0,
                     "rate_in", 0.0, "rate_out", 0.0, "messages", (json_int_t)count, "bytes",
                     (json_int_t)bytes, "unacked", 0, "browsers", 0, "dead_lettered", 0,
                     "dead_letter_queue", 0);
}

/* 0, or -1 without memory. */
static int add_durable(broker *b, json_t *arr, const durable_view *v)
{
    int found;
    size_t at = position(arr, v->queue, &found);
    if (!found && json_array_insert_new(arr, at, idle_backlog(b, v)) != 0)
        return -1;
    if (json_object_set_new(json_array_get(arr, at), "durable_subscription", identity(v)) != 0)
        return -1;
    if (v->is_wild)
        return 0; /* a pattern is no topic of its own */
    char topic[1024];
    if (v->topic_len >= sizeof topic)
        return 0;
    memcpy(topic, v->topic, v->topic_len);
    topic[v->topic_len] = '\0';
    at = position(arr, topic, &found);
    if (found)
        return 0;
    return json_array_insert_new(arr, at, idle_topic(v, durable__count(b, v->topic,
                                                                          v->topic_len)));
}

int admin__durable_list(broker *b, json_t *arr)
{
    /* The emptied backlog of a removed subscription is no destination anyone can use. */
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const char *name = name_of(json_array_get(arr, i));
        size_t len = strlen(name);
        if (durable__is_backlog(name, len) && !durable__of_queue(b, name, len))
            json_array_remove(arr, i);
    }
    for (const durable *d = durable__first(b); arr && d; d = durable__next(d)) {
        durable_view v;
        durable__view(d, &v);
        if (add_durable(b, arr, &v) != 0)
            return -1;
    }
    return 0;
}

int admin__durable_refuse(http_conn *hc, const char *name, int is_delete)
{
    size_t len = strlen(name);
    if (!durable__reserved(name, len))
        return 0;
    const durable *d = durable__of_queue(hc->b, name, len);
    if (d && !is_delete)
        return 0; /* a purge empties the backlog; the subscription stays */
    const char *why = d ? "it is the backlog of a durable subscription" :
                          "it belongs to the broker's durable subscriptions";
    admin__log_action(hc, is_delete ? "delete" : "change", name, "refused: durable");
    if (!d) {
        admin__error(hc, 409, "%s: %s", name, why);
        return 1;
    }
    durable_view v;
    durable__view(d, &v);
    admin__error(hc, 409, "%s: %s (%.64s of client-id %.64s); it goes for good, with its "
                 "record, by an UNSUBSCRIBE with the same client-id and name", name, why,
                 v.name, v.client_id);
    return 1;
}
