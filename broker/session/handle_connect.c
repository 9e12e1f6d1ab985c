/* handle_connect.c: CONNECT and STOMP: version negotiation, then heart-beats (heartbeat.c)
 * and the login (login.c), which begins the session.
 *
 * No accept-version means 1.0; otherwise the highest version both sides know; none in
 * common is an ERROR whose version header lists ours. client-id is kept: it owns the
 * durable subscriptions the session makes (durable_id.c).
 */
#include "core.h"

#include <string.h>

/* Bit per version named in an accept-version list; 0 if none is known. */
static unsigned parse_versions(const char *s)
{
    unsigned set = 0;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        const char *e = s;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > s && t[-1] == ' ')
            t--;
        size_t n = (size_t)(t - s);
        if (n == 3 && memcmp(s, "1.0", 3) == 0)
            set |= 1u << STOMP_V10;
        else if (n == 3 && memcmp(s, "1.1", 3) == 0)
            set |= 1u << STOMP_V11;
        else if (n == 3 && memcmp(s, "1.2", 3) == 0)
            set |= 1u << STOMP_V12;
        s = e;
    }
    return set;
}

broker_err handle__connect(conn *c, const stomp_frame *f)
{
    const char *av = stomp_frame_header(f, "accept-version", NULL);
    stomp_version v = STOMP_V10;
    if (av) {
        unsigned set = parse_versions(av);
        if (set & (1u << STOMP_V12))
            v = STOMP_V12;
        else if (set & (1u << STOMP_V11))
            v = STOMP_V11;
        else if (set & (1u << STOMP_V10))
            v = STOMP_V10;
        else {
            c->err_hdr_name = "version";
            c->err_hdr_value = "1.0,1.1,1.2";
            conn__set_error(c, "no common protocol version: supported versions are "
                               "1.0,1.1,1.2");
            return BROKER_E_PROTOCOL;
        }
    }
    const char *cid = stomp_frame_header(f, "client-id", NULL);
    if (cid && *cid && !c->client_id && !(c->client_id = strdup(cid))) {
        conn__set_error(c, "out of memory");
        return BROKER_E_NOMEM;
    }
    uint32_t sx, sy;
    broker_err rc =
        heartbeat__negotiate(c, v, stomp_frame_header(f, "heart-beat", NULL), &sx, &sy);
    if (rc != BROKER_OK)
        return rc;
    return login__check(c, f, v, sx, sy);
}
