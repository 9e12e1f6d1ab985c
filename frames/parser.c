/* parser.c: the incremental STOMP frame parser.
 *
 * Invariants: every byte fed is copied at most once, into p->buf, which holds the frame
 * being assembled (command line, header lines, body), each piece NUL-terminated in place.
 * A line is scanned once (frames__scan_line) inside a window that ends where a limit would
 * be passed: the scan stops at its LF (or a NUL) and notes its first colon and whether it
 * holds a backslash or a non-ASCII byte, so only the lines that have them are unescaped or
 * checked as UTF-8. A head that is whole in the input is found first and copied with one
 * memcpy; one that is not is read line by line, its bytes then scanned a second time at
 * most. Memory is bounded by the limits and an error is decided by the stream alone: the
 * same bytes in any chunking give the same events, frames, errors and error offsets.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "scan.h"

enum {
    S_IDLE = 0, /* between frames: EOLs are heart-beats */
    S_IDLE_CR,  /* a CR between frames; LF must follow */
    S_COMMAND,  /* reading the command line */
    S_HEADERS,  /* reading header lines up to the blank line */
    S_BODY_LEN, /* reading a content-length body */
    S_BODY_END, /* after a content-length body: the NUL */
    S_BODY_NUL, /* reading a body up to its NUL */
    S_FAILED,   /* sticky until reset */
};

/* Body memory is reserved in steps of at least this as bytes arrive. */
#define BODY_STEP ((size_t)64 * 1024)

/* Limits are clamped so that window arithmetic (limit + 2, sums) cannot overflow. */
#define LIMIT_MAX ((size_t)1 << 40)

static const stomp_limits default_limits = STOMP_LIMITS_DEFAULT_INIT;

static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

static size_t clamp(size_t v)
{
    return v > LIMIT_MAX ? LIMIT_MAX : v;
}

void stomp_parser_set_limits(stomp_parser *p, const stomp_limits *limits)
{
    const stomp_limits *l = limits ? limits : &default_limits;
    p->next_limits.max_command = clamp(l->max_command);
    p->next_limits.max_header_line = clamp(l->max_header_line);
    p->next_limits.max_headers = clamp(l->max_headers);
    p->next_limits.max_header_bytes = clamp(l->max_header_bytes);
    p->next_limits.max_body = clamp(l->max_body);
}

void stomp_parser_init(stomp_parser *p, const stomp_limits *limits, stomp_realloc_fn alloc,
                       void *alloc_ctx)
{
    memset(p, 0, sizeof *p);
    stomp_parser_set_limits(p, limits);
    p->limits = p->next_limits;
    p->version = STOMP_V10;
    p->alloc = alloc ? alloc : libc_realloc;
    p->alloc_ctx = alloc ? alloc_ctx : NULL;
    p->state = S_IDLE;
}

void stomp_parser_set_version(stomp_parser *p, stomp_version v, unsigned flags)
{
    p->version = v;
    p->flags = flags;
}

void stomp_parser_reset(stomp_parser *p)
{
    p->state = S_IDLE;
    p->err = STOMP_OK;
    p->offset = 0;
    p->err_offset = 0;
    p->buf_len = 0;
    p->nheaders = 0;
    p->frame_ready = 0;
}

void stomp_parser_trim(stomp_parser *p)
{
    if (p->state != S_IDLE)
        return;
    if (p->buf_cap > 4096) {
        p->alloc(p->alloc_ctx, p->buf, 0);
        p->buf = NULL;
        p->buf_cap = 0;
    }
    if (p->headers_cap > 32) {
        p->alloc(p->alloc_ctx, p->headers, 0);
        p->alloc(p->alloc_ctx, p->hoff, 0);
        p->headers = NULL;
        p->hoff = NULL;
        p->headers_cap = 0;
    }
    p->buf_len = 0;
    p->nheaders = 0;
    p->frame_ready = 0;
}

void stomp_parser_free(stomp_parser *p)
{
    p->alloc(p->alloc_ctx, p->buf, 0);
    p->alloc(p->alloc_ctx, p->headers, 0);
    p->alloc(p->alloc_ctx, p->hoff, 0);
    p->buf = NULL;
    p->headers = NULL;
    p->hoff = NULL;
    p->buf_cap = p->buf_len = p->headers_cap = p->nheaders = 0;
    p->frame_ready = 0;
}

int stomp_parser_busy(const stomp_parser *p, stomp_command *cmd)
{
    int busy = p->state != S_IDLE && p->state != S_IDLE_CR && p->state != S_FAILED;
    if (cmd)
        *cmd = busy && p->state != S_COMMAND ? p->frame.cmd : STOMP_CMD_UNKNOWN;
    return busy;
}

size_t stomp_parser_memory(const stomp_parser *p)
{
    return p->buf_cap + p->headers_cap * (sizeof *p->headers + 2 * sizeof *p->hoff);
}

const stomp_frame *stomp_parser_frame(const stomp_parser *p)
{
    return p->frame_ready ? &p->frame : NULL;
}

stomp_err stomp_parser_error(const stomp_parser *p, uint64_t *offset)
{
    if (offset)
        *offset = p->err_offset;
    return p->err;
}

static int fail(stomp_parser *p, stomp_err err, uint64_t at)
{
    p->err = err;
    p->err_offset = at;
    p->state = S_FAILED;
    return -1;
}

/* Room for extra more bytes plus a terminator. Grows geometrically; the callers bound
 * extra by the limits. */
static int grow(stomp_parser *p, size_t need, uint64_t at)
{
    size_t cap = p->buf_cap ? p->buf_cap * 2 : 256;
    if (cap < need)
        cap = need;
    char *nb = p->alloc(p->alloc_ctx, p->buf, cap);
    if (!nb)
        return fail(p, STOMP_E_NOMEM, at);
    p->buf = nb;
    p->buf_cap = cap;
    return 0;
}

static inline int reserve(stomp_parser *p, size_t extra, uint64_t at)
{
    size_t need = p->buf_len + extra + 1;
    return need <= p->buf_cap ? 0 : grow(p, need, at);
}

static int grow_headers(stomp_parser *p, uint64_t at)
{
    size_t cap = p->headers_cap ? p->headers_cap * 2 : 16;
    if (cap > p->limits.max_headers)
        cap = p->limits.max_headers;
    /* Both arrays are grown before either is used, so a failure leaves them consistent. */
    stomp_header *h = p->alloc(p->alloc_ctx, p->headers, cap * sizeof *h);
    if (!h)
        return fail(p, STOMP_E_NOMEM, at);
    p->headers = h;
    size_t *o = p->alloc(p->alloc_ctx, p->hoff, cap * 2 * sizeof *o);
    if (!o)
        return fail(p, STOMP_E_NOMEM, at);
    p->hoff = o;
    p->headers_cap = cap;
    return 0;
}

static int decodes_escapes(const stomp_parser *p)
{
    return p->version >= STOMP_V11 && p->frame.cmd != STOMP_CMD_CONNECT &&
           p->frame.cmd != STOMP_CMD_STOMP && p->frame.cmd != STOMP_CMD_CONNECTED;
}

static int honours_length(stomp_command c)
{
    return c == STOMP_CMD_SEND || c == STOMP_CMD_MESSAGE || c == STOMP_CMD_ERROR ||
           c == STOMP_CMD_UNKNOWN;
}

/* Undo escapes of s[0..*len) in place. raw_at is the stream offset of s[0]; escapes
 * shrink the text, so raw positions are tracked separately from write positions. */
static int unescape(stomp_parser *p, char *s, size_t *len, uint64_t raw_at)
{
    char *bs = memchr(s, '\\', *len);
    if (!bs)
        return 0;
    int v12 = p->version >= STOMP_V12;
    int lenient = !v12 && (p->flags & STOMP_PARSE_LENIENT_ESCAPES);
    size_t r = (size_t)(bs - s), w = r, n = *len;
    while (r < n) {
        char c = s[r];
        if (c != '\\') {
            s[w++] = c;
            r++;
            continue;
        }
        char e = r + 1 < n ? s[r + 1] : 0;
        char out;
        switch (e) {
        case 'n': out = '\n'; break;
        case 'c': out = ':'; break;
        case '\\': out = '\\'; break;
        case 'r': out = v12 ? '\r' : 0; break;
        default: out = 0; break;
        }
        if (!out) {
            if (!lenient)
                return fail(p, STOMP_E_BAD_ESCAPE, raw_at + r);
            s[w++] = c; /* keep the backslash; the next byte is copied as it is */
            r++;
            continue;
        }
        s[w++] = out;
        r += 2;
    }
    *len = w;
    return 0;
}

/* A content-length value: decimal digits only. Saturates rather than overflows; any
 * value over max_body is refused before a byte of the body is read. */
static int parse_length(stomp_parser *p, const char *v, size_t n, uint64_t at)
{
    if (n == 0)
        return fail(p, STOMP_E_BAD_CONTENT_LENGTH, at);
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - '0';
        if (d > 9)
            return fail(p, STOMP_E_BAD_CONTENT_LENGTH, at);
        if (x <= (uint64_t)LIMIT_MAX)
            x = x * 10 + d;
    }
    if (x > p->limits.max_body)
        return fail(p, STOMP_E_BODY_TOO_LONG, at);
    p->body_need = (size_t)x;
    p->has_length = 1;
    return 0;
}

/* The whole raw line must be UTF-8 when the parser checks (decided on complete lines, so
 * whatever the chunking). A line of ASCII bytes only is UTF-8: only the others are read. */
static int check_utf8(stomp_parser *p, const char *line, size_t len, uint64_t line_at)
{
    if (p->line_odd && (p->flags & STOMP_PARSE_UTF8) && !frames__utf8_valid(line, len))
        return fail(p, STOMP_E_BAD_UTF8, line_at);
    return 0;
}

static int end_command(stomp_parser *p, size_t len, uint64_t line_at)
{
    if (check_utf8(p, p->buf, len, line_at) < 0)
        return -1;
    p->frame.cmd = stomp_command_lookup(p->buf, len);
    p->frame.cmd_len = len;
    return 0;
}

/* A complete header line is in buf[line_start..+len); line_at is its stream offset.
 * Returns 1 when it was the blank line that ends the headers. */
static int end_header(stomp_parser *p, size_t len, uint64_t line_at)
{
    if (len == 0)
        return 1;
    char *line = p->buf + p->line_start;
    if (check_utf8(p, line, len, line_at) < 0)
        return -1;
    if (p->nheaders >= p->limits.max_headers)
        return fail(p, STOMP_E_TOO_MANY_HEADERS, line_at);
    /* The scan noted the first colon; it is never the CR that len leaves out. */
    if (p->line_colon == SIZE_MAX || p->line_colon == 0)
        return fail(p, STOMP_E_BAD_HEADER, line_at);
    size_t name_len = p->line_colon;
    size_t value_off = name_len + 1;
    size_t value_len = len - value_off;
    if (p->line_odd && decodes_escapes(p)) {
        if (unescape(p, line, &name_len, line_at) < 0 ||
            unescape(p, line + value_off, &value_len, line_at + value_off) < 0)
            return -1;
    }
    line[name_len] = '\0';
    line[value_off + value_len] = '\0';
    if (p->nheaders == p->headers_cap && grow_headers(p, line_at) < 0)
        return -1;
    size_t *o = &p->hoff[p->nheaders * 2];
    o[0] = p->line_start;
    o[1] = p->line_start + value_off;
    stomp_header *h = &p->headers[p->nheaders++];
    h->name_len = name_len;
    h->value_len = value_len;
    if (!p->seen_length && name_len == 14 && line[0] == 'c' &&
        memcmp(line, "content-length", 14) == 0) {
        /* The first content-length wins, as for every repeated header. */
        p->seen_length = 1;
        if (honours_length(p->frame.cmd) &&
            parse_length(p, line + value_off, value_len, line_at) < 0)
            return -1;
    }
    return 0;
}

/* Read (part of) the current command or header line. Returns 1 when the line is complete
 * (*len_out = its length without CR/LF, terminated in buf), 0 when every byte was used
 * and more are needed, -1 on error. at = stream offset of d[0]. */
static int read_line(stomp_parser *p, const char *d, size_t n, size_t *used, uint64_t at,
                     size_t *len_out)
{
    int cmd = p->state == S_COMMAND;
    size_t held = p->buf_len - p->line_start;
    size_t limit = cmd ? p->limits.max_command : p->limits.max_header_line;
    /* Windows in raw bytes of this line, LF included: content + CR + LF, and what is left
     * of the header block budget. Nothing past them is ever looked at. */
    size_t line_room = limit + 2 - held;
    size_t block_left = p->limits.max_header_bytes - p->header_bytes;
    size_t block_room = block_left > held ? block_left - held : 0;
    size_t w = n;
    if (w > line_room)
        w = line_room;
    if (w > block_room)
        w = block_room;
    size_t take = frames__scan_line(d, w, held, &p->line_colon, &p->line_odd);
    int lf = take < w && d[take] == '\n';
    /* A NUL inside a line is refused as soon as it arrives (a peer that sends one and
     * waits, such as a Flash policy request, is answered at once); the bytes before it
     * were checked when they came, so the first NUL wins whatever the chunking. */
    if (take < w && !lf)
        return fail(p, cmd ? STOMP_E_BAD_COMMAND : STOMP_E_BAD_HEADER, at + take);
    if (reserve(p, take, at) < 0)
        return -1;
    memcpy(p->buf + p->buf_len, d, take);
    p->buf_len += take;
    char *line = p->buf + p->line_start;
    size_t raw = held + take;
    if (!lf && take == n) {
        *used = take;
        return 0;
    }
    size_t len = raw;
    if (lf && len > 0 && line[len - 1] == '\r')
        len--;
    if (!lf || len > limit) {
        stomp_err e = cmd ? STOMP_E_COMMAND_TOO_LONG : STOMP_E_LINE_TOO_LONG;
        if (!lf && line_room > block_room)
            e = STOMP_E_HEADERS_TOO_LONG;
        return fail(p, e, p->line_at);
    }
    line[len] = '\0';
    p->buf_len = p->line_start + len + 1;
    p->header_bytes += raw + 1;
    *used = take + 1;
    *len_out = len;
    return 1;
}

static void begin_frame(stomp_parser *p, uint64_t at)
{
    p->limits = p->next_limits;
    p->buf_len = 0;
    p->line_start = 0;
    p->line_at = at;
    p->line_colon = SIZE_MAX;
    p->line_odd = 0;
    p->header_bytes = 0;
    p->nheaders = 0;
    p->has_length = 0;
    p->seen_length = 0;
    p->body_need = 0;
    p->state = S_COMMAND;
}

static int begin_body(stomp_parser *p, uint64_t at)
{
    p->body_start = p->buf_len;
    if (p->has_length) {
        /* Memory follows the bytes that arrive, not the length a peer declares: a
         * 30-byte frame head must not pin max_body bytes. */
        size_t first = p->body_need < BODY_STEP ? p->body_need : BODY_STEP;
        if (reserve(p, first, at) < 0)
            return -1;
        p->state = p->body_need ? S_BODY_LEN : S_BODY_END;
    } else {
        p->state = S_BODY_NUL;
    }
    return 0;
}

static void end_frame(stomp_parser *p)
{
    stomp_frame *f = &p->frame;
    p->buf[p->buf_len] = '\0'; /* reserved by every append */
    for (size_t i = 0; i < p->nheaders; i++) {
        p->headers[i].name = p->buf + p->hoff[i * 2];
        p->headers[i].value = p->buf + p->hoff[i * 2 + 1];
    }
    f->cmd_name = p->buf;
    f->headers = p->headers;
    f->nheaders = p->nheaders;
    f->body = p->buf + p->body_start;
    f->body_len = p->buf_len - p->body_start;
    p->frame_ready = 1;
    p->state = S_IDLE;
}

/* A frame's head (command line, header lines, blank line) that is whole in the input is
 * taken in one go: its lines are found first, copied with one memcpy, then judged one by
 * one as if read line by line (same checks, order and offsets; the EOLs stay in buf). Only
 * a head that meets the line and block limits, holds no NUL and has at most HEAD_LINES
 * lines is taken so; for any other, nothing is done here and the line-by-line reading
 * decides. Returns 1 when the head was taken, 0 when not, -1 on an error (*used: the bytes
 * of the lines read up to the failing one, as line by line). */
#define HEAD_LINES 32

typedef struct head_line {
    size_t start, len, colon;
    int odd;
} head_line;

static int find_head(stomp_parser *p, const char *d, size_t n, head_line *lines, size_t *nl)
{
    size_t k = 0, pos = 0;
    if (n > p->limits.max_header_bytes)
        n = p->limits.max_header_bytes;
    while (k < HEAD_LINES) {
        size_t colon = SIZE_MAX;
        int odd = 0;
        size_t e = pos + frames__scan_line(d + pos, n - pos, 0, &colon, &odd);
        if (e == n || d[e] != '\n')
            break;
        size_t len = e - pos;
        if (len > 0 && d[e - 1] == '\r')
            len--;
        if (len > (k == 0 ? p->limits.max_command : p->limits.max_header_line))
            break;
        lines[k++] = (head_line){ pos, len, colon, odd };
        pos = e + 1;
        if (len == 0 && k > 1) {
            *nl = k;
            return 1;
        }
    }
    return 0;
}

static int take_head(stomp_parser *p, const char *d, size_t n, uint64_t at, size_t *used)
{
    head_line lines[HEAD_LINES];
    size_t nl = 0;
    if (!find_head(p, d, n, lines, &nl))
        return 0;
    size_t head = lines[nl - 1].start + lines[nl - 1].len + 1;
    head += d[head - 1] == '\r'; /* the blank line's LF */
    *used = 0;
    if (reserve(p, head, at) < 0)
        return -1;
    memcpy(p->buf, d, head);
    for (size_t j = 0; j + 1 < nl; j++) { /* the last line is the blank one */
        const head_line *l = &lines[j];
        p->line_start = l->start;
        p->line_colon = l->colon;
        p->line_odd = l->odd;
        p->buf[l->start + l->len] = '\0';
        int r = j == 0 ? end_command(p, l->len, at) : end_header(p, l->len, at + l->start);
        if (r < 0) {
            *used = lines[j + 1].start;
            return -1;
        }
        p->state = S_HEADERS;
    }
    *used = head;
    p->buf_len = head;
    p->header_bytes = head;
    p->line_start = head;
    p->line_at = at + head;
    return begin_body(p, at + head) < 0 ? -1 : 1;
}

/* Each step below reads data[*i..len) in the state it is named for, moves *i past the
 * bytes it took and returns the event it found (NEED_MORE: none yet, go on in the new
 * state). Stream offsets are p->offset + index: p->offset moves once per feed. */

/* Between frames: an EOL is a heart-beat; any other byte begins a frame (and is not
 * taken here: the command line step reads it). */
static stomp_event step_idle(stomp_parser *p, const char *data, size_t *i)
{
    char c = data[*i];
    if (p->state == S_IDLE_CR) {
        if (c != '\n') {
            fail(p, STOMP_E_BAD_COMMAND, p->offset + *i);
            return STOMP_EV_ERROR;
        }
        ++*i;
        p->state = S_IDLE;
        return STOMP_EV_HEARTBEAT;
    }
    if (c == '\n') {
        ++*i;
        return STOMP_EV_HEARTBEAT;
    }
    if (c == '\r') {
        ++*i;
        p->state = S_IDLE_CR;
    } else {
        begin_frame(p, p->offset + *i);
    }
    return STOMP_EV_NEED_MORE;
}

/* The command line and the header lines. Every complete line in the input is taken here,
 * without a trip round the caller's loop: this is the hot path for small frames. */
static stomp_event step_lines(stomp_parser *p, const char *data, size_t len, size_t *pi)
{
    size_t i = *pi;
    stomp_event ev = STOMP_EV_NEED_MORE;
    if (p->state == S_COMMAND && p->buf_len == 0) {
        size_t used = 0;
        int r = take_head(p, data + i, len - i, p->offset + i, &used);
        *pi = i + used;
        if (r != 0)
            return r < 0 ? STOMP_EV_ERROR : STOMP_EV_NEED_MORE;
    }
    while (i < len) {
        size_t used = 0, line_len = 0;
        uint64_t line_at = p->line_at;
        int r = read_line(p, data + i, len - i, &used, p->offset + i, &line_len);
        if (r < 0) {
            ev = STOMP_EV_ERROR;
            break;
        }
        i += used;
        if (r == 0)
            break;
        if (p->state == S_COMMAND) {
            if (end_command(p, line_len, line_at) < 0) {
                ev = STOMP_EV_ERROR;
                break;
            }
            p->state = S_HEADERS;
        } else {
            r = end_header(p, line_len, line_at);
            if (r < 0 || (r == 1 && begin_body(p, p->offset + i) < 0)) {
                ev = STOMP_EV_ERROR;
                break;
            }
        }
        p->line_start = p->buf_len;
        p->line_at = p->offset + i;
        p->line_colon = SIZE_MAX;
        p->line_odd = 0;
        if (r == 1 && p->state != S_HEADERS)
            break;
    }
    *pi = i;
    return ev;
}

/* A content-length body: copy what has arrived, up to the declared length. */
static stomp_event step_body_len(stomp_parser *p, const char *data, size_t len, size_t *i)
{
    size_t take = len - *i < p->body_need ? len - *i : p->body_need;
    if (p->buf_len + take + 1 > p->buf_cap) {
        /* Grow to the declared length once a real share of it has arrived. */
        size_t want = take > p->buf_cap ? take : p->buf_cap;
        if (want > p->body_need)
            want = p->body_need;
        if (reserve(p, want, p->offset + *i) < 0)
            return STOMP_EV_ERROR;
    }
    memcpy(p->buf + p->buf_len, data + *i, take);
    p->buf_len += take;
    p->body_need -= take;
    *i += take;
    if (p->body_need == 0)
        p->state = S_BODY_END;
    return STOMP_EV_NEED_MORE;
}

/* The byte after a content-length body must be the NUL that ends the frame. */
static stomp_event step_body_end(stomp_parser *p, const char *data, size_t *i)
{
    if (data[*i] != '\0') {
        fail(p, STOMP_E_MISSING_NUL, p->offset + *i);
        return STOMP_EV_ERROR;
    }
    ++*i;
    end_frame(p);
    return STOMP_EV_FRAME;
}

/* A body without content-length: everything up to the first NUL, within max_body. */
static stomp_event step_body_nul(stomp_parser *p, const char *data, size_t len, size_t *i)
{
    const char *d = data + *i;
    uint64_t at = p->offset + *i;
    size_t held = p->buf_len - p->body_start;
    /* One byte past the limit may be the NUL; anything else there is too much. */
    size_t room = p->limits.max_body + 1 - held;
    size_t w = len - *i < room ? len - *i : room;
    const char *nul = memchr(d, '\0', w);
    size_t take = nul ? (size_t)(nul - d) : w;
    if (!nul && take == room) {
        fail(p, STOMP_E_BODY_TOO_LONG, at + take - 1);
        return STOMP_EV_ERROR;
    }
    if (reserve(p, take, at) < 0)
        return STOMP_EV_ERROR;
    memcpy(p->buf + p->buf_len, d, take);
    p->buf_len += take;
    *i += take;
    if (!nul)
        return STOMP_EV_NEED_MORE;
    ++*i;
    end_frame(p);
    return STOMP_EV_FRAME;
}

stomp_event stomp_parser_feed(stomp_parser *p, const char *data, size_t len, size_t *consumed)
{
    size_t i = 0;
    stomp_event ev = STOMP_EV_NEED_MORE;
    p->frame_ready = 0;
    if (p->state == S_FAILED) {
        *consumed = 0;
        return STOMP_EV_ERROR;
    }
    while (i < len && ev == STOMP_EV_NEED_MORE) {
        switch (p->state) {
        case S_IDLE:
        case S_IDLE_CR: ev = step_idle(p, data, &i); break;
        case S_COMMAND:
        case S_HEADERS: ev = step_lines(p, data, len, &i); break;
        case S_BODY_LEN: ev = step_body_len(p, data, len, &i); break;
        case S_BODY_END: ev = step_body_end(p, data, &i); break;
        case S_BODY_NUL: ev = step_body_nul(p, data, len, &i); break;
        }
    }
    p->offset += i;
    *consumed = i;
    return ev;
}
