/* api.c: the management API's read-only views and the request's way to its answer:
 * /api/overview, /api/destinations, /api/connections (and one connection, and its
 * subscriptions), /metrics, the actions (actions.c) and the console's files (console.c).
 *
 * JSON is built with jansson; names peers chose (destinations, logins, subscription ids)
 * that are not UTF-8 are shown with U+FFFD in place of bad bytes. Lists are sorted (by
 * name, by connection id) so that answers are stable.
 */
#include "admin/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- request helpers ------------------------------------------------------------------ */

int admin__permitted(http_conn *hc, const char *dest)
{
    const broker_acl *a = hc->b->route.acl;
    if (!a)
        return 1;
    /* "-": let in by admin_open without a login; only the rules for everyone apply. */
    const char *login = hc->login[0] && strcmp(hc->login, "-") != 0 ? hc->login : NULL;
    int ok = dest ? (acl__perms(a, login, dest, strlen(dest)) & BROKER_PERM_ADMIN) != 0
                  : acl__grants_any(a, login, BROKER_PERM_ADMIN);
    if (ok)
        return 1;
    broker__log(hc->b, BROKER_LOG_WARN, BROKER_EV_ADMIN, 0,
                "login '%s' from %s refused admin%s%.200s", hc->login, hc->peer,
                dest ? " on " : "", dest ? dest : "");
    admin__error(hc, 403, "permission denied: admin%s%.200s", dest ? " on " : "",
                 dest ? dest : "");
    return 0;
}

int admin__method(const http_conn *hc)
{
    return (int)hc->hp.method;
}

void admin__path(const http_conn *hc, char *out, size_t cap)
{
    size_t n = strcspn(hc->url, "?#");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, hc->url, n);
    out[n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode [p, p + n) into out (cap bytes, NUL-terminated): its length, or -1 when
 * it does not fit or holds a bad escape or a NUL. */
static long decode(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(p[i + 1]);
            int lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

int admin__query(const http_conn *hc, const char *name, char *out, size_t cap)
{
    const char *q = strchr(hc->url, '?');
    if (!q)
        return 0;
    size_t nl = strlen(name);
    for (const char *p = q + 1; *p;) {
        size_t len = strcspn(p, "&#");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == nl && memcmp(p, name, nl) == 0) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vl = eq ? len - klen - 1 : 0;
            return decode(v, vl, out, cap) < 0 ? -1 : 1;
        }
        if (p[len] != '&')
            break;
        p += len + 1;
    }
    return 0;
}

/* ---- JSON ----------------------------------------------------------------------------- */

json_t *admin__jstr(const char *p, size_t n)
{
    json_t *j = json_stringn(p, n);
    if (j)
        return j;
    /* Not UTF-8: each byte that does not start a valid sequence becomes U+FFFD. */
    char *clean = malloc(n * 3 + 1);
    if (!clean)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len && i + len <= n) {
            json_t *t = json_stringn(p + i, len);
            if (t) {
                json_decref(t);
                memcpy(clean + o, p + i, len);
                o += len;
                i += len;
                continue;
            }
        }
        memcpy(clean + o, "\xef\xbf\xbd", 3);
        o += 3;
        i++;
    }
    j = json_stringn(clean, o);
    free(clean);
    return j;
}

static json_t *jstr0(const char *s)
{
    return s ? admin__jstr(s, strlen(s)) : json_null();
}

/* ms since the Unix epoch as 2026-01-31T12:00:00.123Z */
static json_t *jtime(uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03uZ", (unsigned)(ms % 1000));
    return json_string(buf);
}

static double round2(double v)
{
    return (double)(int64_t)(v * 100 + 0.5) / 100;
}

/* ---- views -------------------------------------------------------------------------------- */

static void overview(http_conn *hc)
{
    broker *b = hc->b;
    broker_stats st;
    broker_get_stats(b, &st);
    size_t queues = 0, topics = 0;
    for (dest_t *d = route__dest_first(b); d; d = route__dest_next(b, d))
        d->is_topic ? topics++ : queues++;
    uint64_t now = broker__now_ms(b);
    json_t *st_json = json_pack("{s:s, s:o, s:I}", "backend", b->st->name, "path",
                              jstr0(b->o.store_path), "resident",
                              (json_int_t)(b->st->resident ? b->st->resident(b->store) : 0));
    json_t *j = json_pack(
        "{s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I, s:I, s:o}",
        "version", STOMPD_VERSION, "server", jstr0(b->o.server_name), "started",
        jtime(b->admin.started), "uptime_s", (json_int_t)((now - b->admin.started) / 1000),
        "connections", (json_int_t)st.connections, "connections_total",
        (json_int_t)st.connections_total, "subscriptions", (json_int_t)st.subscriptions,
        "queues", (json_int_t)queues, "topics", (json_int_t)topics, "messages_in",
        (json_int_t)st.messages_in, "rate_in", round2(b->admin.rate_in), "rate_out",
        round2(b->admin.rate_out), "messages_out", (json_int_t)st.messages_out, "bytes_in",
        (json_int_t)st.bytes_in, "bytes_out", (json_int_t)st.bytes_out, "memory",
        (json_int_t)st.memory, "max_memory", (json_int_t)b->o.max_memory, "redeliveries",
        (json_int_t)st.redeliveries, "dead_lettered", (json_int_t)st.dead_lettered,
        "expired", (json_int_t)st.expired, "auth_failures", (json_int_t)st.auth_failures,
        "store", st_json);
    admin__json(hc, 200, j);
}

static int by_name(const void *a, const void *b)
{
    const dest_t *x = *(dest_t *const *)a, *y = *(dest_t *const *)b;
    return strcmp(x->name, y->name);
}

dest_t **admin__sorted_dests(broker *b, size_t *n, int *oom)
{
    *n = route__dest_count(b);
    *oom = 0;
    if (!*n)
        return NULL;
    dest_t **all = malloc(*n * sizeof *all);
    if (!all) {
        *oom = 1;
        *n = 0;
        return NULL;
    }
    size_t i = 0;
    for (dest_t *d = route__dest_first(b); d && i < *n; d = route__dest_next(b, d))
        all[i++] = d;
    qsort(all, i, sizeof *all, by_name);
    *n = i;
    return all;
}

/* "key": jansson's text for a real, remembered for the next one: most rates repeat. */
typedef struct real_memo {
    double v;
    char text[40];
    size_t len;
} real_memo;

static void key_real(admin_buf *o, const char *key, double v, real_memo *m)
{
    admin__buf_add(o, key, strlen(key));
    if (m->len && m->v == v) {
        admin__buf_add(o, m->text, m->len);
        return;
    }
    size_t at = o->len;
    admin__buf_real(o, v);
    if (o->oom || o->len - at >= sizeof m->text)
        return;
    m->v = v;
    m->len = o->len - at;
    memcpy(m->text, o->p + at, m->len);
}

/* key is the text between the values: ,"name": */
static void key_int(admin_buf *o, const char *key, uint64_t v)
{
    admin__buf_add(o, key, strlen(key));
    admin__buf_i64(o, (json_int_t)v);
}

/* One destination as json_dumps wrote it when the view was built with jansson: the same
 * keys in the same order, with the same text for strings and reals. */
static void dest_text(admin_buf *o, broker *b, dest_t *d, real_memo memo[2], int *first)
{
    route_dest_view v;
    route__dest_view(b, d, &v);
    if (durable__is_backlog(v.name, v.name_len) && !durable__of_queue(b, v.name, v.name_len))
        return; /* the emptied backlog of a removed subscription: no one's destination */
    if (!*first)
        admin__buf_add(o, ",", 1);
    *first = 0;
    admin__buf_add(o, "{\"name\":", 8);
    admin__buf_jstr(o, v.name, v.name_len);
    if (v.is_topic)
        admin__buf_add(o, ",\"type\":\"topic\"", 15);
    else
        admin__buf_add(o, ",\"type\":\"queue\"", 15);
    key_int(o, ",\"depth\":", v.depth);
    key_int(o, ",\"consumers\":", v.consumers);
    key_int(o, ",\"messages_in\":", v.in);
    key_int(o, ",\"messages_out\":", v.out);
    key_real(o, ",\"rate_in\":", round2(v.rate_in), &memo[0]);
    key_real(o, ",\"rate_out\":", round2(v.rate_out), &memo[1]);
    if (v.is_topic) {
        key_int(o, ",\"subscribers\":", v.consumers);
        key_int(o, ",\"durable_subscriptions\":", v.durable);
    } else {
        key_int(o, ",\"messages\":", v.messages);
        key_int(o, ",\"bytes\":", v.bytes);
        key_int(o, ",\"unacked\":", v.unacked);
        key_int(o, ",\"browsers\":", v.browsers);
        key_int(o, ",\"dead_lettered\":", v.dead);
        const char *dlq = v.is_dead_letter ? ",\"dead_letter_queue\":true}"
                                           : ",\"dead_letter_queue\":false}";
        admin__buf_add(o, dlq, strlen(dlq));
        return;
    }
    admin__buf_add(o, "}", 1);
}

/* Written straight into the body: building 10,000 jansson objects to dump them cost more
 * than the rest of the request. */
static void destinations(http_conn *hc)
{
    broker *b = hc->b;
    size_t n;
    int oom;
    dest_t **all = admin__sorted_dests(b, &n, &oom);
    admin_buf o = admin__buf_take(b);
    o.oom = oom;
    real_memo memo[2] = { { 0 } };
    admin__buf_add(&o, "[", 1);
    int first = 1;
    for (size_t i = 0; i < n && !o.oom; i++)
        dest_text(&o, b, all[i], memo, &first);
    admin__buf_add(&o, "]\n", 2);
    free(all);
    if (o.oom) {
        free(o.p);
        admin__json(hc, 200, NULL);
        return;
    }
    if (durable__first(b)) { /* through jansson, which places their topics and backlogs */
        json_t *arr = json_loadb(o.p, o.len, 0, NULL);
        admin__buf_keep(b, o.p, o.cap);
        if (arr && admin__durable_list(b, arr) != 0) {
            json_decref(arr);
            arr = NULL;
        }
        admin__json(hc, 200, arr);
        return;
    }
    admin__respond_buf(hc, 200, "application/json", &o);
}

static json_t *conn_json(const conn *c)
{
    session_conn_view v;
    session__conn_view(c, &v);
    return json_pack("{s:I, s:s, s:o, s:o, s:s, s:s, s:o, s:I, s:I, s:I, s:I}", "id",
                     (json_int_t)v.id, "peer", v.peer, "login", jstr0(v.login), "version",
                     jstr0(v.version), "transport", v.transport, "state", v.state, "since",
                     jtime(v.since), "since_ms", (json_int_t)v.since, "bytes_in",
                     (json_int_t)v.bytes_in, "bytes_out", (json_int_t)v.bytes_out,
                     "subscriptions", (json_int_t)v.subscriptions);
}

static void connections(http_conn *hc)
{
    json_t *arr = json_array();
    /* The list is newest first: walk it backwards for ids in increasing order. */
    conn *last = NULL;
    for (conn *c = session__conn_first(hc->b); c; c = session__conn_next(c))
        last = c;
    for (conn *c = last; arr && c; c = c->prev) {
        if (c->detached || c->doomed)
            continue;
        if (json_array_append_new(arr, conn_json(c)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    admin__json(hc, 200, arr);
}

static json_t *subs_json(const conn *c)
{
    static const char *const acks[] = { "auto", "client", "client-individual" };
    json_t *arr = json_array();
    for (const sub *s = session__conn_subs(c); arr && s; s = s->enext) {
        json_t *j = json_pack("{s:o, s:o, s:s, s:I, s:I, s:b, s:b}", "id",
                              admin__jstr(s->id, s->id_len), "destination",
                              admin__jstr(s->d->name, s->d->link.len), "ack",
                              acks[s->ack_mode], "prefetch", (json_int_t)s->window, "unacked",
                              (json_int_t)s->nunacked, "exclusive", s->exclusive, "browser",
                              s->browser);
        if (json_array_append_new(arr, j) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* /api/connections/ID and /api/connections/ID/subscriptions */
static void one_connection(http_conn *hc, const char *rest)
{
    char *end;
    unsigned long long id = strtoull(rest, &end, 10);
    int subs = strcmp(end, "/subscriptions") == 0;
    if (end == rest || (*end && !subs)) {
        admin__error(hc, 404, "no such path");
        return;
    }
    conn *c = session__conn_find(hc->b, id);
    if (!c) {
        admin__error(hc, 404, "no connection %llu", id);
        return;
    }
    if (admin__method(hc) == HTTP_DELETE && !subs) {
        session__conn_kill(c, "closed by an administrator");
        char target[32];
        snprintf(target, sizeof target, "%llu", id);
        admin__log_action(hc, "close connection", target, "closed");
        admin__json(hc, 200, json_pack("{s:I}", "closed", (json_int_t)id));
        return;
    }
    if (admin__method(hc) != HTTP_GET) {
        admin__not_allowed(hc, subs ? "Allow: GET\r\n" : "Allow: GET, DELETE\r\n");
        return;
    }
    admin__json(hc, 200, subs ? subs_json(c) : conn_json(c));
}

void admin__handle(http_conn *hc)
{
    char path[1024];
    admin__path(hc, path, sizeof path);
    broker__log(hc->b, BROKER_LOG_DEBUG, BROKER_EV_ADMIN, 0, "login '%s' from %s: %s %s",
                hc->login, hc->peer, http_method_str(hc->hp.method), path);
    if (!admin__permitted(hc, NULL))
        return;
    if (strncmp(path, "/api/connections/", 17) == 0) {
        one_connection(hc, path + 17);
        return;
    }
    if (admin__action(hc, path) || admin__config_api(hc, path))
        return;
    int get = admin__method(hc) == HTTP_GET;
    static const char *const views[] = { "/api/overview", "/api/destinations",
                                         "/api/connections", "/metrics" };
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        if (strcmp(path, views[i]) != 0)
            continue;
        if (!get)
            admin__not_allowed(hc, "Allow: GET\r\n");
        else if (i == 0)
            overview(hc);
        else if (i == 1)
            destinations(hc);
        else if (i == 2)
            connections(hc);
        else
            admin__metrics(hc);
        return;
    }
    if (get && admin__console(hc, path))
        return;
    admin__error(hc, 404, "no such path: %s", path);
}
