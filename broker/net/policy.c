/* policy.c: the first bytes of a plain STOMP port's connection, before any STOMP: the
 * Flash socket policy file, and a TLS handshake sent to the wrong port.
 *
 * Flash Player sends "<policy-file-request/>" and a NUL to port 843, then to the port it
 * wants, before it lets an ActionScript client connect. On a STOMP port (flash_policy set)
 * and on a policy port, a connection whose first bytes are exactly that request gets the
 * cross-domain-policy document, NUL-terminated, and is closed. Anything else on a STOMP
 * port is STOMP; on a policy port it is closed without a word. A TLS record (a handshake
 * record's first byte, 22, can start no STOMP frame) is logged and closed: the client gets
 * no STOMP ERROR it could not read anyway.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char request[] = "<policy-file-request/>"; /* and its NUL: sizeof request */

/* A growable string; the error sticks so callers check once at the end. */
typedef struct sbuild {
    char *p;
    size_t len, cap;
    int oom;
} sbuild;

static void put(sbuild *s, const char *str, size_t n)
{
    if (s->oom)
        return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *np = realloc(s->p, cap);
        if (!np) {
            s->oom = 1;
            return;
        }
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, str, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void puts_(sbuild *s, const char *str)
{
    put(s, str, strlen(str));
}

/* An attribute value: XML-escaped, surrounding blanks trimmed. */
static void put_attr(sbuild *s, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < n; i++) {
        switch (v[i]) {
        case '&': puts_(s, "&amp;"); break;
        case '<': puts_(s, "&lt;"); break;
        case '>': puts_(s, "&gt;"); break;
        case '"': puts_(s, "&quot;"); break;
        case '\'': puts_(s, "&apos;"); break;
        default: put(s, v + i, 1); break;
        }
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* "61613,61614": the STOMP listeners' ports, ascending, each once. */
static void put_own_ports(sbuild *s, broker *b)
{
    int ports[64];
    size_t n = 0;
    for (listener *l = b->net.listeners; l && n < sizeof ports / sizeof *ports; l = l->next)
        if (l->kind == LISTEN_STOMP)
            ports[n++] = l->port;
    qsort(ports, n, sizeof *ports, cmp_int);
    char num[16];
    for (size_t i = 0; i < n; i++) {
        if (i && ports[i] == ports[i - 1])
            continue;
        int len = snprintf(num, sizeof num, "%s%d", i ? "," : "", ports[i]);
        put(s, num, (size_t)len);
    }
}

/* The policy document for b (NUL included): caller owns, free(). NULL: out of memory. */
static char *policy_document(broker *b, size_t *len)
{
    sbuild s = { 0 };
    puts_(&s, "<?xml version=\"1.0\"?>\n"
              "<!DOCTYPE cross-domain-policy SYSTEM \"/xml/dtds/cross-domain-policy.dtd\">\n"
              "<cross-domain-policy>\n"
              "<site-control permitted-cross-domain-policies=\"master-only\"/>\n");
    const char *d = b->o.policy_domains ? b->o.policy_domains : "*";
    for (;;) {
        const char *comma = strchr(d, ',');
        size_t n = comma ? (size_t)(comma - d) : strlen(d);
        puts_(&s, "<allow-access-from domain=\"");
        put_attr(&s, d, n);
        puts_(&s, "\" to-ports=\"");
        if (b->o.policy_ports)
            put_attr(&s, b->o.policy_ports, strlen(b->o.policy_ports));
        else
            put_own_ports(&s, b);
        puts_(&s, "\"/>\n");
        if (!comma)
            break;
        d = comma + 1;
    }
    puts_(&s, "</cross-domain-policy>\n");
    put(&s, "", 1); /* the NUL Flash waits for */
    if (s.oom) {
        free(s.p);
        return NULL;
    }
    *len = s.len;
    return s.p;
}

int net__policy(net_stream *s, const char *data, size_t len, int policy_only)
{
    broker *b = s->b;
    if (!policy_only && s->tp == net__tcp() && len && data[0] == 22) {
        broker__log(b, BROKER_LOG_WARN, BROKER_EV_TLS, s->id,
                    "TLS handshake on a plain STOMP port: closed (the client should connect "
                    "without TLS, or to a TLS port)");
        return POLICY_CLOSE;
    }
    if (!policy_only && (!b->o.flash_policy || s->tp != net__tcp()))
        return POLICY_NOT;
    size_t n = len < sizeof request ? len : sizeof request;
    if (memcmp(data, request, n) != 0)
        return policy_only ? POLICY_CLOSE : POLICY_NOT;
    if (len < sizeof request)
        return POLICY_WAIT; /* the rest of the request is still on its way */
    size_t doc_len = 0;
    char *doc = policy_document(b, &doc_len);
    char *p = doc ? outq__reserve(&s->out, doc_len) : NULL;
    if (!p) {
        free(doc);
        broker__log(b, BROKER_LOG_ERROR, BROKER_EV_POLICY, s->id,
                    "out of memory for the policy file");
        return POLICY_CLOSE;
    }
    memcpy(p, doc, doc_len);
    free(doc);
    broker__mem_add(b, doc_len);
    net__want_flush(s);
    broker__log(b, BROKER_LOG_DEBUG, BROKER_EV_POLICY, s->id, "sent the Flash policy file");
    return POLICY_ANSWERED;
}
