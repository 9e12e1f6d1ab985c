/* textbuf.c: the growing buffer that /metrics and /api/destinations are written into, and
 * the few appends they need without printf: bytes, decimal integers, JSON strings and reals.
 *
 * The buffer doubles, so a body of n bytes costs O(n) copies. After the first failed
 * allocation oom stays set and every append is a no-op; the caller answers 503 or 500.
 * JSON strings and reals come out exactly as jansson's json_dumps(JSON_COMPACT |
 * JSON_ENSURE_ASCII) writes them: plain ASCII names are copied, anything else goes through
 * jansson itself. The largest buffer is kept on the broker between requests (taken,
 * then given back once its response is written).
 */
#include "admin/http.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int admin__buf_reserve(admin_buf *o, size_t n)
{
    if (o->oom)
        return 0;
    if (o->cap - o->len > n)
        return 1;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap - o->len <= n)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
        o->oom = 1;
        return 0;
    }
    o->p = p;
    o->cap = cap;
    return 1;
}

void admin__buf_add(admin_buf *o, const char *p, size_t n)
{
    if (!admin__buf_reserve(o, n))
        return;
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

void admin__buf_put(admin_buf *o, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !o->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = 1;
            return;
        }
        if (o->p && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        admin__buf_reserve(o, (size_t)n);
    }
}

void admin__buf_u64(admin_buf *o, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    admin__buf_add(o, tmp + i, sizeof tmp - i);
}

void admin__buf_i64(admin_buf *o, int64_t v)
{
    if (v < 0) {
        admin__buf_add(o, "-", 1);
        admin__buf_u64(o, (uint64_t)0 - (uint64_t)v);
        return;
    }
    admin__buf_u64(o, (uint64_t)v);
}

/* jansson's text for one value (a string, a real), appended; the value is released. */
static void add_dumped(admin_buf *o, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!text) {
        o->oom = 1;
        return;
    }
    admin__buf_add(o, text, strlen(text));
    free(text);
}

void admin__buf_jstr(admin_buf *o, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
        i++;
    if (i < n) {
        add_dumped(o, admin__jstr(p, n));
        return;
    }
    if (!admin__buf_reserve(o, n + 2))
        return;
    o->p[o->len++] = '"';
    memcpy(o->p + o->len, p, n);
    o->len += n;
    o->p[o->len++] = '"';
}

void admin__buf_real(admin_buf *o, double v)
{
    if (v == 0 && !signbit(v))
        admin__buf_add(o, "0.0", 3);
    else
        add_dumped(o, json_real(v));
}

admin_buf admin__buf_take(broker *b)
{
    admin_buf o = { .p = b->admin.spare, .cap = b->admin.spare_cap };
    b->admin.spare = NULL;
    b->admin.spare_cap = 0;
    return o;
}

void admin__buf_keep(broker *b, char *p, size_t cap)
{
    if (cap <= b->admin.spare_cap) {
        free(p);
        return;
    }
    free(b->admin.spare);
    b->admin.spare = p;
    b->admin.spare_cap = cap;
}
