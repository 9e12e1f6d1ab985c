/* headers.c: what a SEND, SUBSCRIBE or NACK may not ask for, refused with an ERROR that
 * names it: delivery semantics this broker does not provide (accepting one and delivering
 * anyway would silently change its meaning: an offline durable subscriber losing
 * everything), a SEND to a wildcard name (it names many destinations), and
 * SEND headers that some STOMP version could not carry to its subscribers (frames/ says
 * which), and a SEND to the names the broker keeps for itself (durable subscriptions'
 * queues). Every other header is carried unchanged. The README lists them all. The checks
 * are one pass over a SEND's headers: they are on the path of every message.
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

/* The refused SEND headers, once: the table and the mask of their name lengths. */
#define SEND_REFUSED(X)                                    \
    X("AMQ_SCHEDULED_PERIOD", ANY, "scheduled delivery")   \
    X("AMQ_SCHEDULED_REPEAT", ANY, "scheduled delivery")   \
    X("AMQ_SCHEDULED_CRON", ANY, "scheduled delivery")
#define ENTRY(name, when, what) R(name, when, what),
#define LENGTH_BIT(name, when, what) | (1u << (sizeof name - 1))

static const refusal send_refused[] = { SEND_REFUSED(ENTRY) { NULL, 0, 0, NULL } };
/* Every SEND header is looked up only when a refused name has its length: the common
 * headers (destination, content-length, content-type) cost one shift and test. */
#define SEND_LENGTHS (0u SEND_REFUSED(LENGTH_BIT))

/* The SEND headers that set a message's attributes (msg_attrs), and their lengths. */
enum { A_PRIORITY, A_EXPIRES, A_EXPIRATION, A_DELAY };
#define SEND_ATTRS(X)                                      \
    X("priority", A_PRIORITY)                              \
    X("expires", A_EXPIRES)                                \
    X("expiration", A_EXPIRATION)                          \
    X("AMQ_SCHEDULED_DELAY", A_DELAY)                      \
    X("x-delay", A_DELAY)                                  \
    X("delay", A_DELAY)
#define ATTR_ENTRY(name, kind) { name, sizeof name - 1, kind },
#define ATTR_BIT(name, kind) | (1u << (sizeof name - 1))
static const struct attr_name {
    const char *name;
    size_t len;
    int kind;
} attr_names[] = { SEND_ATTRS(ATTR_ENTRY) { NULL, 0, 0 } };
#define ATTR_LENGTHS (0u SEND_ATTRS(ATTR_BIT))

static const refusal subscribe_refused[] = {
    R("activemq.retroactive", IS_TRUE, "retroactive subscriptions"),
    R("activemq.priority", ANY, "consumer priority"),
    R("x-priority", ANY, "consumer priority"),
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

/* Can every STOMP version carry (name, value) in a MESSAGE? 1.0 is the narrowest: what it
 * carries, 1.1 and 1.2 carry too. */
static int fits_everywhere(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return stomp_header_fits(name, nlen, value, vlen, STOMP_V10, STOMP_CMD_MESSAGE);
}

static const char *uncarriable(char *buf, size_t cap, const char *what, const char *name,
                               size_t len)
{
    snprintf(buf, cap, "%s %.*s cannot be carried to STOMP 1.0 and 1.1 subscribers (a line "
             "break, or a colon in a header name)", what, (int)(len > 100 ? 100 : len), name);
    return buf;
}

/* Bytes a destination is checked for: wildcards, and what STOMP 1.0 cannot carry. */
static const unsigned char dest_special[256] = {
    ['*'] = 1, ['>'] = 1, ['#'] = 1, ['\n'] = 1, ['\r'] = 1, [0] = 1,
};

/* Does dest hold none of them? One table look-up per byte and no branch: this is on the
 * path of every SEND. */
static int dest_plain(const char *dest, size_t dlen)
{
    const unsigned char *p = (const unsigned char *)dest;
    unsigned any = 0;
    size_t i = 0;
    for (; dlen - i >= 4; i += 4)
        any |= dest_special[p[i]] | dest_special[p[i + 1]] | dest_special[p[i + 2]] |
               dest_special[p[i + 3]];
    for (; i < dlen; i++)
        any |= dest_special[p[i]];
    return !any;
}

/* What a SEND (or a publish) to dest may not do, whatever its headers. */
static const char *check_dest(const char *dest, size_t dlen, char *buf, size_t cap)
{
    if (durable__reserved(dest, dlen))
        return headers__reserved(dest, dlen, buf, cap);
    if (dest_plain(dest, dlen))
        return NULL;
    const char *why = headers__wildcard(dest, dlen, buf, cap);
    if (!why && !fits_everywhere("destination", 11, dest, dlen))
        why = uncarriable(buf, cap, "destination", dest, dlen);
    return why;
}

/* A header value of decimal digits (at most 18: no overflow) into *out: 0, or -1. */
static int parse_ms(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    size_t i = 0;
    for (; v[i]; i++) {
        if (v[i] < '0' || v[i] > '9' || i == 18)
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return i ? 0 : -1;
}

/* An attribute header into a (the first of each name wins; of the delay headers, the
 * longest delay). NULL, or the ERROR text in buf. */
static const char *parse_attr(const broker *b, const struct attr_name *an, const char *value,
                              msg_attrs *a, char *buf, size_t cap)
{
    uint64_t v;
    int bad = parse_ms(value, &v) != 0;
    if (an->kind == A_PRIORITY && !bad && v > 9)
        bad = 1;
    if (bad) {
        snprintf(buf, cap, "SEND header %s:%.64s is not %s", an->name, value,
                 an->kind == A_PRIORITY ? "a priority from 0 to 9" : "a number of ms");
        return buf;
    }
    switch (an->kind) {
    case A_PRIORITY:
        if (!(a->given & MSG_PRIORITY))
            a->priority = (uint8_t)v;
        a->given |= MSG_PRIORITY;
        break;
    case A_EXPIRES:
    case A_EXPIRATION:
        if (an->kind == A_EXPIRATION)
            v = broker__now_ms(b) + v;
        if (v && (!a->expires || v < a->expires))
            a->expires = v; /* the earlier of expires and expiration */
        break;
    default:
        if (v > a->delay)
            a->delay = v;
        break;
    }
    return NULL;
}

/* One header of a SEND: a refused semantic, a message attribute, or a forwarded header not
 * every version can carry (its MESSAGE may go to a subscriber of any version). */
static const char *check_send_header(const broker *b, const char *name, size_t len,
                                     const char *value, size_t vlen, msg_attrs *a, char *buf,
                                     size_t cap)
{
    if (len < 32 && ((SEND_LENGTHS | ATTR_LENGTHS) >> len) & 1) {
        const char *why = check(send_refused, "SEND", name, len, value, buf, cap);
        for (const struct attr_name *an = attr_names; an->name && !why; an++)
            if (an->len == len && memcmp(an->name, name, len) == 0)
                why = parse_attr(b, an, value, a, buf, cap);
        if (why)
            return why;
    }
    if (stomp_header_forwarded(name, len) && !fits_everywhere(name, len, value, vlen))
        return uncarriable(buf, cap, "header", name, len);
    return NULL;
}

/* What the attributes may not ask of dest: a delay on a topic, or past its policy's
 * max_delay. */
static const char *check_attrs(const broker *b, const char *dest, size_t dlen,
                               const msg_attrs *a, char *buf, size_t cap)
{
    if (!a->delay)
        return NULL;
    if (dest__is_topic(dest, dlen)) {
        snprintf(buf, cap, "delayed delivery is for queues, not the topic %.*s",
                 (int)(dlen > 100 ? 100 : dlen), dest);
        return buf;
    }
    uint64_t max = policy__for(b, dest, dlen)->max_delay;
    if (a->delay > max) {
        snprintf(buf, cap, "a delay of %llu ms is over the maximum of %llu ms for %.*s",
                 (unsigned long long)a->delay, (unsigned long long)max,
                 (int)(dlen > 100 ? 100 : dlen), dest);
        return buf;
    }
    return NULL;
}

const char *headers__send_check(const broker *b, const stomp_frame *f, const char *dest,
                                size_t dlen, msg_attrs *a, char *buf, size_t cap)
{
    *a = (msg_attrs)MSG_ATTRS_INIT;
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        const char *why =
            check_send_header(b, h->name, h->name_len, h->value, h->value_len, a, buf, cap);
        if (why)
            return why;
    }
    const char *why = check_dest(dest, dlen, buf, cap);
    return why ? why : check_attrs(b, dest, dlen, a, buf, cap);
}

const char *headers__publish_check(const broker *b, const char *dest, const broker_header *h,
                                   size_t n, msg_attrs *a, char *buf, size_t cap)
{
    *a = (msg_attrs)MSG_ATTRS_INIT;
    for (size_t i = 0; i < n; i++) {
        const char *why = check_send_header(b, h[i].name, strlen(h[i].name), h[i].value,
                                            strlen(h[i].value), a, buf, cap);
        if (why)
            return why;
    }
    size_t dlen = strlen(dest);
    const char *why = check_dest(dest, dlen, buf, cap);
    return why ? why : check_attrs(b, dest, dlen, a, buf, cap);
}

const char *headers__subscribe_refused(const stomp_frame *f, char *buf, size_t cap)
{
    return check_frame(subscribe_refused, "SUBSCRIBE", f, buf, cap);
}

const char *headers__reserved(const char *name, size_t len, char *buf, size_t cap)
{
    snprintf(buf, cap, "destination %.*s is reserved: %s* names the broker's own queues of "
             "durable subscriptions", (int)(len > 100 ? 100 : len), name, DURABLE_RESERVED);
    return buf;
}

const char *headers__wildcard(const char *name, size_t len, char *buf, size_t cap)
{
    if (!wild__is_pattern(name, len))
        return NULL;
    snprintf(buf, cap, "destination %.*s holds a wildcard: a message is sent to one "
             "destination, wildcards are for SUBSCRIBE", (int)(len > 200 ? 200 : len), name);
    return buf;
}
