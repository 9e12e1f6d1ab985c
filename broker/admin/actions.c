/* actions.c: what an administrator can do to destinations: purge a queue, delete a
 * destination, browse the first messages of a queue, move dead letters back to the queues
 * they came from. Connections are closed in api.c (DELETE /api/connections/ID).
 *
 * Destinations are named in the query string (?name=, percent-encoded), since their
 * names hold slashes. Purges and moves run as route drains, possibly across store commits:
 * the answer goes out when the drain ends (a client that leaves first is forgotten, the
 * drain finishes anyway). Every action is logged with its login, peer, target and outcome.
 */
#include "admin/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BROWSE_DEFAULT 10
#define BROWSE_MAX 1000
#define PREVIEW_BYTES 1024

enum { A_PURGE, A_MOVE, A_DELETE };

static void drained(void *arg, broker_err rc, uint64_t done, uint64_t kept, int what)
{
    http_conn *hc = arg;
    hc->job = NULL;
    char outcome[128];
    if (rc != BROKER_OK) {
        snprintf(outcome, sizeof outcome, "failed after %llu: %s", (unsigned long long)done,
                 broker_strerror(rc));
        admin__log_action(hc, hc->action, hc->target, outcome);
        admin__error(hc, rc == BROKER_E_STATE ? 503 : 500, "%s of %s failed: %s", hc->action,
                     hc->target, broker_strerror(rc));
        return;
    }
    json_t *j = json_pack("{s:o}", "name", admin__jstr(hc->target, strlen(hc->target)));
    if (what == A_MOVE) {
        snprintf(outcome, sizeof outcome, "%llu moved, %llu left", (unsigned long long)done,
                 (unsigned long long)kept);
        json_object_set_new(j, "moved", json_integer((json_int_t)done));
        json_object_set_new(j, "kept", json_integer((json_int_t)kept));
    } else {
        snprintf(outcome, sizeof outcome, "%llu messages purged", (unsigned long long)done);
        json_object_set_new(j, "purged", json_integer((json_int_t)done));
    }
    if (what == A_DELETE) {
        broker *b = hc->b;
        size_t len = strlen(hc->target);
        dest_t *d = route__dest_named(b, hc->target, len);
        if (d && route__dest_delete(b, d) != BROKER_OK) {
            admin__log_action(hc, hc->action, hc->target, "refused: it has subscribers");
            json_decref(j);
            admin__error(hc, 409, "%s has subscribers", hc->target);
            return;
        }
        json_object_set_new(j, "deleted", json_true());
    }
    admin__log_action(hc, hc->action, hc->target, outcome);
    admin__json(hc, 200, j);
}

static void on_purged(void *arg, broker_err rc, uint64_t done, uint64_t kept)
{
    drained(arg, rc, done, kept, A_PURGE);
}

static void on_moved(void *arg, broker_err rc, uint64_t done, uint64_t kept)
{
    drained(arg, rc, done, kept, A_MOVE);
}

static void on_deleted(void *arg, broker_err rc, uint64_t done, uint64_t kept)
{
    drained(arg, rc, done, kept, A_DELETE);
}

static void start_drain(http_conn *hc, const char *name, int what)
{
    static const char *const names[] = { "purge", "move dead letters of", "delete" };
    static route_drain_fn const fns[] = { on_purged, on_moved, on_deleted };
    broker *b = hc->b;
    snprintf(hc->action, sizeof hc->action, "%s", names[what]);
    snprintf(hc->target, sizeof hc->target, "%s", name);
    broker_err rc = route__drain(b, name, strlen(name), what == A_MOVE ? DRAIN_MOVE : DRAIN_PURGE,
                                 fns[what], hc, &hc->job);
    if (rc == BROKER_OK)
        return;
    hc->job = NULL;
    admin__log_action(hc, hc->action, name, broker_strerror(rc));
    if (rc == BROKER_E_STATE)
        admin__error(hc, 409, "a purge or move of %s is under way", name);
    else if (rc == BROKER_E_INVALID)
        admin__error(hc, 400, "%s is a topic: it holds no messages", name);
    else
        admin__error(hc, 503, "%s", broker_strerror(rc));
}

/* DELETE /api/destinations?name=: a queue is purged, then forgotten; a topic is only
 * forgotten. Refused (409) while it has subscribers. */
static void delete_dest(http_conn *hc, const char *name)
{
    broker *b = hc->b;
    size_t len = strlen(name);
    dest_t *d = route__dest_named(b, name, len);
    uint64_t count = 0, bytes = 0;
    if (!d && !dest__is_topic(name, len))
        b->st->queue_size(b->store, name, len, store_hash_name(name, len), &count, &bytes);
    if (!d && !count) {
        admin__error(hc, 404, "no destination %s", name);
        return;
    }
    if (d && d->nsubs) {
        admin__log_action(hc, "delete", name, "refused: it has subscribers");
        admin__error(hc, 409, "%s has subscribers", name);
        return;
    }
    if (d && d->is_topic) {
        broker_err rc = route__dest_delete(b, d);
        admin__log_action(hc, "delete", name, rc == BROKER_OK ? "deleted" : "refused");
        admin__json(hc, rc == BROKER_OK ? 200 : 409,
                    json_pack("{s:o, s:b}", "name", admin__jstr(name, len), "deleted",
                              rc == BROKER_OK));
        return;
    }
    start_drain(hc, name, A_DELETE);
}

static void add_header(void *arg, const char *name, const char *value)
{
    json_t *h = arg;
    if (!json_object_get(h, name))
        json_object_set_new(h, name, admin__jstr(value, strlen(value)));
}

static void browsed(void *arg, const store_msg *m)
{
    json_t *arr = arg;
    json_t *h = json_object();
    const char *p = m->headers, *end = m->headers + m->headers_len;
    while (h && p < end) {
        size_t nl = strnlen(p, (size_t)(end - p));
        const char *v = p + nl + 1;
        if (v >= end)
            break;
        size_t vl = strnlen(v, (size_t)(end - v));
        json_t *name = admin__jstr(p, nl);
        if (name)
            add_header(h, json_string_value(name), v);
        json_decref(name);
        p = v + vl + 1;
    }
    size_t shown = m->body_len < PREVIEW_BYTES ? m->body_len : PREVIEW_BYTES;
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)m->id);
    json_t *j = json_pack("{s:s, s:i, s:i, s:I, s:o, s:I, s:o, s:b}", "message_id", id,
                          "priority", (int)m->priority, "redeliveries", (int)m->redeliveries,
                          "expires", (json_int_t)m->expires, "headers", h ? h : json_null(),
                          "body_length", (json_int_t)m->body_len, "body",
                          admin__jstr(m->body, shown), "body_truncated", shown < m->body_len);
    json_array_append_new(arr, j);
}

static void browse(http_conn *hc, const char *name)
{
    char num[24];
    long count = BROWSE_DEFAULT;
    int has = admin__query(hc, "count", num, sizeof num);
    if (has) {
        char *end;
        count = has > 0 ? strtol(num, &end, 10) : 0;
        if (has < 0 || end == num || *end || count < 1 || count > BROWSE_MAX) {
            admin__error(hc, 400, "count must be a number from 1 to %d", BROWSE_MAX);
            return;
        }
    }
    size_t len = strlen(name);
    if (dest__is_topic(name, len)) {
        admin__error(hc, 400, "%s is a topic: it holds no messages", name);
        return;
    }
    json_t *arr = json_array();
    if (arr)
        route__browse(hc->b, name, len, (size_t)count, browsed, arr);
    admin__json(hc, 200, json_pack("{s:o, s:o}", "name", admin__jstr(name, len), "messages",
                                   arr ? arr : json_null()));
}

int admin__action(http_conn *hc, const char *path)
{
    static const struct {
        const char *path;
        int method;
    } table[] = {
        { "/api/destinations/purge", HTTP_POST },
        { "/api/destinations/move-dead", HTTP_POST },
        { "/api/destinations/browse", HTTP_GET },
        { "/api/destinations", HTTP_DELETE },
    };
    size_t i = 0;
    while (i < 4 && strcmp(path, table[i].path) != 0)
        i++;
    if (i == 4 || (i == 3 && admin__method(hc) == HTTP_GET))
        return 0; /* not an action (GET /api/destinations is the list) */
    if (admin__method(hc) != table[i].method) {
        char allow[64];
        snprintf(allow, sizeof allow, "Allow: %s%s\r\n", http_method_str(table[i].method),
                 i == 3 ? ", GET" : "");
        admin__not_allowed(hc, allow);
        return 1;
    }
    char name[1024];
    int has = admin__query(hc, "name", name, sizeof name);
    if (has <= 0 || !name[0]) {
        admin__error(hc, 400, "%s", has < 0 ? "name is not a valid percent-encoded name"
                                            : "name=DESTINATION is required");
        return 1;
    }
    if (!admin__permitted(hc, name) || (i != 2 && admin__durable_refuse(hc, name, i == 3)))
        return 1;
    if (i == 0)
        start_drain(hc, name, A_PURGE);
    else if (i == 1)
        start_drain(hc, name, A_MOVE);
    else if (i == 2)
        browse(hc, name);
    else
        delete_dest(hc, name);
    return 1;
}
