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

/* Per byte: 1 if it needs an escape in 1.1, 2 if only in 1.2 (CR). */
static const unsigned char escape_class[256] = {
    ['\\'] = 1, ['\n'] = 1, [':'] = 1, ['\r'] = 2,
};

static int escape_mode(stomp_version v, stomp_command cmd)
{
    if (v == STOMP_V10 || cmd == STOMP_CMD_CONNECT || cmd == STOMP_CMD_STOMP ||
        cmd == STOMP_CMD_CONNECTED)
        return ESC_NONE;
    return v == STOMP_V11 ? ESC_11 : ESC_12;
}

size_t stomp_escaped_len(const char *s, size_t len, stomp_version v, stomp_command cmd)
{
    int mode = escape_mode(v, cmd);
    if (mode == ESC_NONE)
        return len;
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        unsigned c = escape_class[(unsigned char)s[i]];
        n += c == 1 || (c == 2 && mode == ESC_12);
    }
    return n;
}

size_t stomp_escape(const char *s, size_t len, stomp_version v, stomp_command cmd, char *out)
{
    int mode = escape_mode(v, cmd);
    if (mode == ESC_NONE) {
        memcpy(out, s, len);
        return len;
    }
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        switch (escape_class[(unsigned char)c] ? c : 0) {
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case ':': *o++ = '\\'; *o++ = 'c'; break;
        case '\r':
            /* 1.1 has no escape for CR; stomp_encoded_size refuses it there */
            if (mode == ESC_12)
                *o++ = '\\';
            *o++ = mode == ESC_12 ? 'r' : c;
            break;
        default: *o++ = c; break;
        }
    }
    return (size_t)(o - out);
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

size_t stomp_encoded_size(const stomp_frame *f, stomp_version v, unsigned flags,
                          stomp_err *err)
{
    int mode = escape_mode(v, f->cmd);
    size_t cmd_len;
    const char *cmd = command_text(f, &cmd_len);
    if (cmd_len == 0 || memchr(cmd, '\n', cmd_len) || memchr(cmd, '\r', cmd_len) ||
        memchr(cmd, '\0', cmd_len)) {
        *err = STOMP_E_UNENCODABLE;
        return 0;
    }
    size_t n = cmd_len + 1;
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (is_content_length(h))
            continue;
        if (h->name_len == 0 || !encodable(h->name, h->name_len, mode, 1) ||
            !encodable(h->value, h->value_len, mode, 0)) {
            *err = STOMP_E_UNENCODABLE;
            return 0;
        }
        n += stomp_escaped_len(h->name, h->name_len, v, f->cmd) + 1 +
             stomp_escaped_len(h->value, h->value_len, v, f->cmd) + 1;
    }
    if (writes_length(f, flags))
        n += sizeof "content-length:" - 1 + digits(f->body_len) + 1;
    n += 1 + f->body_len + 1;
    *err = STOMP_OK;
    return n;
}

size_t stomp_encode(const stomp_frame *f, stomp_version v, unsigned flags, char *out,
                    size_t cap, stomp_err *err)
{
    size_t need = stomp_encoded_size(f, v, flags, err);
    if (need == 0)
        return 0;
    if (need > cap) {
        *err = STOMP_E_NOMEM;
        return 0;
    }
    char *o = out;
    size_t cmd_len;
    const char *cmd = command_text(f, &cmd_len);
    memcpy(o, cmd, cmd_len);
    o += cmd_len;
    *o++ = '\n';
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (is_content_length(h))
            continue;
        o += stomp_escape(h->name, h->name_len, v, f->cmd, o);
        *o++ = ':';
        o += stomp_escape(h->value, h->value_len, v, f->cmd, o);
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
}
