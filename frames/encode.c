/* encode.c: frame -> wire bytes.
 *
 * Output is what every STOMP reader accepts: LF line ends, headers escaped as the
 * session's version requires (never in CONNECT/STOMP/CONNECTED), the encoder's own
 * content-length whenever there is a body, a bare NUL at the end and nothing after it.
 * A header that cannot be written faithfully in a version is refused, never mangled.
 */
#include <string.h>

#include "stomp.h"

enum { ESC_NONE, ESC_11, ESC_12 };

/* Per byte, a bit per version that escapes it: bit 0 for 1.1, bit 1 for 1.2. */
static const unsigned char escape_class[256] = {
    ['\\'] = 3, ['\n'] = 3, [':'] = 3, ['\r'] = 2,
};

static int escape_mode(stomp_version v, stomp_command cmd)
{
    if (v == STOMP_V10 || cmd == STOMP_CMD_CONNECT || cmd == STOMP_CMD_STOMP ||
        cmd == STOMP_CMD_CONNECTED)
        return ESC_NONE;
    return v == STOMP_V11 ? ESC_11 : ESC_12;
}

static unsigned escape_mask(int mode)
{
    return mode == ESC_11 ? 1u : 2u;
}

size_t stomp_escaped_len(const char *s, size_t len, stomp_version v, stomp_command cmd)
{
    int mode = escape_mode(v, cmd);
    if (mode == ESC_NONE)
        return len;
    unsigned mask = escape_mask(mode);
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        n += (escape_class[(unsigned char)s[i]] & mask) != 0;
    return n;
}

/* Escape s into out: the common case, nothing to escape, is one table scan and a memcpy. */
static size_t escape_into(const char *s, size_t len, int mode, char *out)
{
    if (mode == ESC_NONE) {
        memcpy(out, s, len);
        return len;
    }
    unsigned mask = escape_mask(mode);
    size_t i = 0;
    while (i < len && !(escape_class[(unsigned char)s[i]] & mask))
        i++;
    memcpy(out, s, i);
    char *o = out + i;
    for (; i < len; i++) {
        char c = s[i];
        if (!(escape_class[(unsigned char)c] & mask)) {
            *o++ = c;
            continue;
        }
        *o++ = '\\';
        *o++ = c == '\\' ? '\\' : c == '\n' ? 'n' : c == ':' ? 'c' : 'r';
    }
    return (size_t)(o - out);
}

size_t stomp_escape(const char *s, size_t len, stomp_version v, stomp_command cmd, char *out)
{
    return escape_into(s, len, escape_mode(v, cmd), out);
}

/* Can (s, len) be written so that a parser of this version reads it back unchanged? */
static int encodable(const char *s, size_t len, int mode, int is_name)
{
    if (memchr(s, '\0', len))
        return 0;
    if (mode == ESC_12)
        return 1;
    if (memchr(s, '\r', len))
        return 0;
    if (mode == ESC_11)
        return 1;
    return !memchr(s, '\n', len) && !(is_name && memchr(s, ':', len));
}

static int is_content_length(const stomp_header *h)
{
    return h->name_len == 14 && memcmp(h->name, "content-length", 14) == 0;
}

static size_t digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

static const char *command_text(const stomp_frame *f, size_t *len)
{
    if (f->cmd == STOMP_CMD_UNKNOWN) {
        *len = f->cmd_name ? f->cmd_len : 0;
        return f->cmd_name;
    }
    const char *s = stomp_command_name(f->cmd);
    *len = strlen(s);
    return s;
}

static int writes_length(const stomp_frame *f, unsigned flags)
{
    return f->body_len > 0 || (flags & STOMP_ENC_ALWAYS_LENGTH);
}

static int command_ok(const char *cmd, size_t cmd_len)
{
    return cmd_len > 0 && !memchr(cmd, '\n', cmd_len) && !memchr(cmd, '\r', cmd_len) &&
           !memchr(cmd, '\0', cmd_len);
}

static int header_ok(const stomp_header *h, int mode)
{
    return h->name_len > 0 && encodable(h->name, h->name_len, mode, 1) &&
           encodable(h->value, h->value_len, mode, 0);
}

/* Bytes after the headers: content-length line, blank line, body, NUL. */
static size_t tail_size(const stomp_frame *f, unsigned flags)
{
    size_t n = 1 + f->body_len + 1;
    if (writes_length(f, flags))
        n += sizeof "content-length:" - 1 + digits(f->body_len) + 1;
    return n;
}

size_t stomp_encoded_size(const stomp_frame *f, stomp_version v, unsigned flags,
                          stomp_err *err)
{
    int mode = escape_mode(v, f->cmd);
    size_t cmd_len;
    const char *cmd = command_text(f, &cmd_len);
    if (!command_ok(cmd, cmd_len)) {
        *err = STOMP_E_UNENCODABLE;
        return 0;
    }
    size_t n = cmd_len + 1;
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (is_content_length(h))
            continue;
        if (!header_ok(h, mode)) {
            *err = STOMP_E_UNENCODABLE;
            return 0;
        }
        n += stomp_escaped_len(h->name, h->name_len, v, f->cmd) + 1 +
             stomp_escaped_len(h->value, h->value_len, v, f->cmd) + 1;
    }
    *err = STOMP_OK;
    return n + tail_size(f, flags);
}

size_t stomp_encode(const stomp_frame *f, stomp_version v, unsigned flags, char *out,
                    size_t cap, stomp_err *err)
{
    int mode = escape_mode(v, f->cmd);
    size_t cmd_len;
    const char *cmd = command_text(f, &cmd_len);
    if (!command_ok(cmd, cmd_len)) {
        *err = STOMP_E_UNENCODABLE;
        return 0;
    }
    size_t tail = tail_size(f, flags);
    if (cap < cmd_len + 1 + tail)
        goto nomem;
    char *o = out, *end = out + cap;
    memcpy(o, cmd, cmd_len);
    o += cmd_len;
    *o++ = '\n';
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (is_content_length(h))
            continue;
        if (!header_ok(h, mode)) {
            *err = STOMP_E_UNENCODABLE;
            return 0;
        }
        /* One pass: the exact size of a header is only worked out when its worst case
         * (every byte escaped) might not fit. */
        size_t room = (size_t)(end - o) - tail;
        size_t worst = (h->name_len + h->value_len) * (mode == ESC_NONE ? 1 : 2) + 2;
        if (worst > room && stomp_escaped_len(h->name, h->name_len, v, f->cmd) +
                                    stomp_escaped_len(h->value, h->value_len, v, f->cmd) +
                                    2 > room)
            goto nomem;
        o += escape_into(h->name, h->name_len, mode, o);
        *o++ = ':';
        o += escape_into(h->value, h->value_len, mode, o);
        *o++ = '\n';
    }
    if (writes_length(f, flags)) {
        memcpy(o, "content-length:", 15);
        o += 15;
        size_t d = digits(f->body_len), x = f->body_len;
        for (size_t k = d; k > 0; k--) {
            o[k - 1] = (char)('0' + x % 10);
            x /= 10;
        }
        o += d;
        *o++ = '\n';
    }
    *o++ = '\n';
    if (f->body_len)
        memcpy(o, f->body, f->body_len);
    o += f->body_len;
    *o++ = '\0';
    *err = STOMP_OK;
    return (size_t)(o - out);
nomem:
    *err = STOMP_E_NOMEM;
    return 0;
}
