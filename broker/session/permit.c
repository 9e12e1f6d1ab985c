/* permit.c: a session's permissions: the login the ACL knows it by, and the checks of a
 * SEND (write) and a SUBSCRIBE (read), each with create when its destination does not
 * exist yet. A refusal is an ERROR naming the destination and the missing permission
 * (BROKER_E_DENIED: the ERROR and close of every refused frame) and one acl-refused log
 * line with the login and the peer's address.
 *
 * A SEND's decision is cached per connection: a few slots keyed by the destination's name,
 * each valid for the ACL generation it was made under (broker_set_acl starts a new one),
 * so a producer pays the rules once per destination, then a compare per message with the
 * slot it used last (inline in handle_send.c), or else with its name's slot here.
 * Only granted SENDs are cached: a refusal ends the session. A SUBSCRIBE is decided when it
 * comes (once per subscription); the subscription then lasts, whatever a reload changes.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PERMIT_SLOTS 16 /* a power of two */

/* Cheap on purpose: the slot is confirmed by comparing the name. */
static size_t slot_of(const char *name, size_t len)
{
    unsigned h = (unsigned)len ^ (unsigned char)name[len - 1] ^
                 ((unsigned)(unsigned char)name[len / 2] << 2);
    return h & (PERMIT_SLOTS - 1);
}

broker_err permit__set_login(conn *c, const char *login)
{
    free(c->login);
    c->login = NULL;
    if (login && !(c->login = strdup(login)))
        return BROKER_E_NOMEM;
    return BROKER_OK;
}

void permit__free(conn *c)
{
    if (c->permits)
        for (size_t i = 0; i < PERMIT_SLOTS; i++)
            free(c->permits[i].name);
    free(c->permits);
    c->permits = NULL;
    c->permit_last = NULL;
    free(c->login);
    c->login = NULL;
}

static void peer_name(conn *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int n = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->io.tcp, (struct sockaddr *)&ss, &n) == 0) {
        if (ss.ss_family == AF_INET6) {
            (void)uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else if (ss.ss_family == AF_INET) {
            (void)uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    if (ss.ss_family == AF_UNIX)
        snprintf(buf, len, "unix");
    else
        snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

static broker_err refuse(conn *c, broker_perm missing, const char *dest, size_t dlen)
{
    char peer[80];
    int dl = (int)(dlen > 100 ? 100 : dlen);
    const char *what = broker_perm_name(missing);
    const char *why = missing == BROKER_PERM_CREATE ? " (it does not exist yet)" : "";
    peer_name(c, peer, sizeof peer);
    broker__log(c->b, BROKER_LOG_WARN, BROKER_EV_ACL_REFUSED, c->id,
                "login '%s' from %s refused %s on %.*s", c->login ? c->login : "", peer, what,
                dl, dest);
    conn__set_error(c, "permission denied: %s on %.*s%s", what, dl, dest, why);
    return BROKER_E_DENIED;
}

/* need on dest, and create too when it does not exist (and may, a plain name). */
static broker_err decide(conn *c, const char *dest, size_t dlen, broker_perm need,
                         int plain)
{
    broker *b = c->b;
    unsigned have = acl__perms(b->route.acl, c->login, dest, dlen);
    if (!(have & need))
        return refuse(c, need, dest, dlen);
    if (plain && !(have & BROKER_PERM_CREATE) && !acl__exists(b, dest, dlen))
        return refuse(c, BROKER_PERM_CREATE, dest, dlen);
    return BROKER_OK;
}

/* Keep a granted SEND's decision; without memory it is simply decided again next time. */
static void remember(conn *c, const char *dest, size_t dlen)
{
    if (!c->permits && !(c->permits = calloc(PERMIT_SLOTS, sizeof *c->permits)))
        return;
    struct permit_slot *s = &c->permits[slot_of(dest, dlen)];
    char *name = malloc(dlen);
    if (!name)
        return;
    memcpy(name, dest, dlen);
    free(s->name);
    *s = (struct permit_slot){ name, dlen, c->b->route.acl_gen };
    c->permit_last = s;
}

broker_err permit__send(conn *c, const char *dest, size_t dlen)
{
    broker *b = c->b;
    /* A connection's own temporary queue needs no grant (its name is its own). */
    if (!b->route.acl || tempq__is_temp(dest, dlen))
        return BROKER_OK;
    if (c->permits) {
        const struct permit_slot *s = &c->permits[slot_of(dest, dlen)];
        if (s->gen == b->route.acl_gen && s->len == dlen && s->name &&
            memcmp(s->name, dest, dlen) == 0) {
            c->permit_last = s;
            return BROKER_OK;
        }
    }
    broker_err rc = decide(c, dest, dlen, BROKER_PERM_WRITE, 1);
    if (rc == BROKER_OK)
        remember(c, dest, dlen);
    return rc;
}

broker_err permit__subscribe(conn *c, const char *dest, size_t dlen)
{
    if (!c->b->route.acl || tempq__is_temp(dest, dlen))
        return BROKER_OK;
    return decide(c, dest, dlen, BROKER_PERM_READ, !wild__is_pattern(dest, dlen));
}
