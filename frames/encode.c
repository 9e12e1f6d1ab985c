/* encode.c: frame -> wire bytes.
 *
 * Output is what every STOMP reader accepts: LF line ends, headers escaped as the
 * session's version requires (never in CONNECT/STOMP/CONNECTED), the encoder's own
 * content-length whenever there is a body, a bare NUL at the end and nothing after it.
 * A header that cannot be written faithfully in a version is refused, never mangled.
 */
#include "codec.h"

static int is_content_length(const stomp_header *h)
{
    return h->name_len == 14 && memcmp(h->name, "content-length", 14) == 0;
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

/* Escaped size of a header line (name, ':', value, LF), or SIZE_MAX when mode cannot
 * carry it. */
static size_t header_size(const stomp_header *h, int mode)
{
    size_t n = frames__measure(h->name, h->name_len, mode, 1);
    size_t v = frames__measure(h->value, h->value_len, mode, 0);
    if (h->name_len == 0 || n == SIZE_MAX || v == SIZE_MAX)
        return SIZE_MAX;
    return n + v + 2;
}

/* Bytes after the headers: content-length line, blank line, body, NUL. */
static size_t tail_size(const stomp_frame *f, unsigned flags)
{
    size_t n = 1 + f->body_len + 1;
    if (writes_length(f, flags))
        n += sizeof "content-length:" - 1 + frames__digits(f->body_len) + 1;
    return n;
}

size_t stomp_encoded_size(const stomp_frame *f, stomp_version v, unsigned flags,
                          stomp_err *err)
{
    int mode = frames__mode(v, f->cmd);
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
        size_t hn = header_size(h, mode);
        if (hn == SIZE_MAX) {
            *err = STOMP_E_UNENCODABLE;
            return 0;
        }
        n += hn;
    }
    *err = STOMP_OK;
    return n + tail_size(f, flags);
}

size_t stomp_encode(const stomp_frame *f, stomp_version v, unsigned flags, char *out,
                    size_t cap, stomp_err *err)
{
    int mode = frames__mode(v, f->cmd);
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
        if (h->name_len == 0)
            goto unencodable;
        /* One pass: the exact size of a header is only worked out when its worst case
         * (every byte escaped) might not fit. */
        size_t room = (size_t)(end - o) - tail;
        size_t worst = (h->name_len + h->value_len) * (mode == ESC_NONE ? 1 : 2) + 2;
        if (worst > room) {
            size_t hn = header_size(h, mode);
            if (hn == SIZE_MAX)
                goto unencodable;
            if (hn > room)
                goto nomem;
        }
        o = frames__put(o, h->name, h->name_len, mode, 1);
        if (!o)
            goto unencodable;
        *o++ = ':';
        o = frames__put(o, h->value, h->value_len, mode, 0);
        if (!o)
            goto unencodable;
        *o++ = '\n';
    }
    if (writes_length(f, flags)) {
        memcpy(o, "content-length:", 15);
        o += 15;
        o += frames__u64(o, f->body_len);
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
unencodable:
    *err = STOMP_E_UNENCODABLE;
    return 0;
}
