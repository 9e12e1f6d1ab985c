/* headers.c: the headers and destination names that ask for delivery semantics this
 * broker does not provide. Accepting one and delivering anyway would silently change its
 * meaning (a selector getting every message, a browser consuming the queue, an offline
 * durable subscriber losing everything), so each is refused with an ERROR that names it.
 * Every other header is carried to subscribers unchanged. The README lists them all.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

enum { ANY, IS_TRUE, IS_FALSE, NONZERO };

typedef struct refusal {
    const char *name;
    size_t len;
    int when; /* which values are refused */
    const char *what;
} refusal;

#define R(name, when, what) { name, sizeof name - 1, when, what }

static const refusal send_refused[] = {
    R("expires", NONZERO, "message expiry"),
    R("expiration", ANY, "message expiry"),
    R("priority", ANY, "message priority"),
    R("delay", ANY, "delayed delivery"),
    R("x-delay", ANY, "delayed delivery"),
    R("AMQ_SCHEDULED_DELAY", ANY, "delayed delivery"),
    R("AMQ_SCHEDULED_PERIOD", ANY, "scheduled delivery"),
    R("AMQ_SCHEDULED_REPEAT", ANY, "scheduled delivery"),
    R("AMQ_SCHEDULED_CRON", ANY, "scheduled delivery"),
    { NULL, 0, 0, NULL },
};

static const refusal subscribe_refused[] = {
    R("selector", ANY, "message selectors"),
    R("browser", IS_TRUE, "queue browsing"),
    R("exclusive", IS_TRUE, "exclusive consumers"),
    R("activemq.exclusive", IS_TRUE, "exclusive consumers"),
    R("activemq.subscriptionName", ANY, "durable topic subscriptions"),
    R("durable-subscription-name", ANY, "durable topic subscriptions"),
    R("subscription-name", ANY, "durable topic subscriptions"),
    R("durable", IS_TRUE, "durable topic subscriptions"),
    R("persistent", IS_TRUE, "durable topic subscriptions"),
    R("activemq.noLocal", IS_TRUE, "no-local subscriptions"),
    R("activemq.retroactive", IS_TRUE, "retroactive subscriptions"),
    R("activemq.priority", ANY, "consumer priority"),
    R("x-priority", ANY, "consumer priority"),
    R("x-queue-name", ANY, "named subscription queues"),
    R("x-queue-type", ANY, "queue types"),
    R("x-message-ttl", ANY, "message expiry"),
    R("x-expires", ANY, "queue expiry"),
    R("x-max-length", ANY, "queue limits"),
    R("x-max-length-bytes", ANY, "queue limits"),
    R("x-overflow", ANY, "queue limits"),
    R("x-max-priority", ANY, "message priority"),
    R("x-dead-letter-exchange", ANY, "dead-letter queues"),
    R("x-dead-letter-routing-key", ANY, "dead-letter queues"),
    { NULL, 0, 0, NULL },
};

static const refusal nack_refused[] = {
    R("requeue", IS_FALSE, "dead-lettering a NACKed message"),
    { NULL, 0, 0, NULL },
};

static int refused_value(int when, const char *v)
{
    switch (when) {
    case IS_TRUE: return strcmp(v, "true") == 0;
    case IS_FALSE: return strcmp(v, "false") == 0;
    case NONZERO: return strcmp(v, "0") != 0;
    default: return 1;
    }
}

/* The first header of f (or of the pairs) in table that is refused, as an ERROR text in
 * buf; NULL when none is. The common case, no such header, costs a length check and at most
 * one memcmp per header and table entry of that length. */
static const char *check(const refusal *table, const char *cmd, const char *name,
                         size_t len, const char *value, char *buf, size_t cap)
{
    for (const refusal *r = table; r->name; r++) {
        if (r->len != len || memcmp(r->name, name, len) != 0)
            continue;
        if (!refused_value(r->when, value))
            return NULL;
        snprintf(buf, cap, "%s header %s%s%s is not supported: this broker does not provide %s",
                 cmd, r->name, r->when == ANY ? "" : ":", r->when == ANY ? "" : value, r->what);
        return buf;
    }
    return NULL;
}

static const char *check_frame(const refusal *table, const char *cmd, const stomp_frame *f,
                               char *buf, size_t cap)
{
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        const char *why = check(table, cmd, h->name, h->name_len, h->value, buf, cap);
        if (why)
            return why;
    }
    return NULL;
}

const char *headers__send_refused(const stomp_frame *f, char *buf, size_t cap)
{
    return check_frame(send_refused, "SEND", f, buf, cap);
}

const char *headers__publish_refused(const broker_header *h, size_t n, char *buf, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *why =
            check(send_refused, "SEND", h[i].name, strlen(h[i].name), h[i].value, buf, cap);
        if (why)
            return why;
    }
    return NULL;
}

const char *headers__subscribe_refused(const stomp_frame *f, char *buf, size_t cap)
{
    return check_frame(subscribe_refused, "SUBSCRIBE", f, buf, cap);
}

const char *headers__nack_refused(const stomp_frame *f, char *buf, size_t cap)
{
    return check_frame(nack_refused, "NACK", f, buf, cap);
}

const char *headers__wildcard(const char *name, size_t len, char *buf, size_t cap)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.' && name[i] != '/')
            continue;
        if (i - start == 1 && (name[start] == '*' || name[start] == '>')) {
            snprintf(buf, cap, "destination %.*s holds the wildcard %c: this broker does not "
                     "provide wildcard destinations", (int)(len > 200 ? 200 : len), name,
                     name[start]);
            return buf;
        }
        start = i + 1;
    }
    return NULL;
}
