/* common.c: the codec's tables: command names, error messages, header look-up, decimal
 * numbers. Everything here is constant data or a pure function of its arguments. */
#include "codec.h"

static const char *const command_names[STOMP_CMD__COUNT] = {
    [STOMP_CMD_UNKNOWN] = "UNKNOWN",
    [STOMP_CMD_CONNECT] = "CONNECT",
    [STOMP_CMD_STOMP] = "STOMP",
    [STOMP_CMD_CONNECTED] = "CONNECTED",
    [STOMP_CMD_SEND] = "SEND",
    [STOMP_CMD_SUBSCRIBE] = "SUBSCRIBE",
    [STOMP_CMD_UNSUBSCRIBE] = "UNSUBSCRIBE",
    [STOMP_CMD_ACK] = "ACK",
    [STOMP_CMD_NACK] = "NACK",
    [STOMP_CMD_BEGIN] = "BEGIN",
    [STOMP_CMD_COMMIT] = "COMMIT",
    [STOMP_CMD_ABORT] = "ABORT",
    [STOMP_CMD_DISCONNECT] = "DISCONNECT",
    [STOMP_CMD_MESSAGE] = "MESSAGE",
    [STOMP_CMD_RECEIPT] = "RECEIPT",
    [STOMP_CMD_ERROR] = "ERROR",
};

static const unsigned char command_lengths[STOMP_CMD__COUNT] = {
    [STOMP_CMD_CONNECT] = 7,   [STOMP_CMD_STOMP] = 5,  [STOMP_CMD_CONNECTED] = 9,
    [STOMP_CMD_SEND] = 4,      [STOMP_CMD_SUBSCRIBE] = 9, [STOMP_CMD_UNSUBSCRIBE] = 11,
    [STOMP_CMD_ACK] = 3,       [STOMP_CMD_NACK] = 4,   [STOMP_CMD_BEGIN] = 5,
    [STOMP_CMD_COMMIT] = 6,    [STOMP_CMD_ABORT] = 5,  [STOMP_CMD_DISCONNECT] = 10,
    [STOMP_CMD_MESSAGE] = 7,   [STOMP_CMD_RECEIPT] = 7, [STOMP_CMD_ERROR] = 5,
};

static const char *const error_messages[STOMP_E__COUNT] = {
    [STOMP_OK] = "no error",
    [STOMP_E_NOMEM] = "out of memory",
    [STOMP_E_COMMAND_TOO_LONG] = "command line too long",
    [STOMP_E_BAD_COMMAND] = "malformed command line",
    [STOMP_E_LINE_TOO_LONG] = "header line too long",
    [STOMP_E_TOO_MANY_HEADERS] = "too many headers",
    [STOMP_E_HEADERS_TOO_LONG] = "header block too large",
    [STOMP_E_BAD_HEADER] = "malformed header line",
    [STOMP_E_BAD_ESCAPE] = "undefined escape sequence in header",
    [STOMP_E_BAD_CONTENT_LENGTH] = "content-length is not a decimal number",
    [STOMP_E_BODY_TOO_LONG] = "body too large",
    [STOMP_E_MISSING_NUL] = "frame body not terminated by NUL",
    [STOMP_E_UNENCODABLE] = "header cannot be encoded in this protocol version",
    [STOMP_E_FAILED] = "parser failed earlier",
    [STOMP_E_BAD_UTF8] = "command or header is not valid UTF-8",
};

const char *stomp_strerror(stomp_err err)
{
    if ((unsigned)err >= STOMP_E__COUNT)
        return "unknown error";
    return error_messages[err];
}

const char *stomp_command_name(stomp_command cmd)
{
    if ((unsigned)cmd >= STOMP_CMD__COUNT)
        return command_names[STOMP_CMD_UNKNOWN];
    return command_names[cmd];
}

stomp_command stomp_command_lookup(const char *name, size_t len)
{
    /* The first byte and the length pick at most one candidate: one memcmp per frame. */
    stomp_command c = STOMP_CMD_UNKNOWN;
    if (len < 3 || len > 11)
        return c;
    switch (name[0]) {
    case 'A': c = len == 3 ? STOMP_CMD_ACK : STOMP_CMD_ABORT; break;
    case 'B': c = STOMP_CMD_BEGIN; break;
    case 'C':
        c = len == 6 ? STOMP_CMD_COMMIT : len == 7 ? STOMP_CMD_CONNECT : STOMP_CMD_CONNECTED;
        break;
    case 'D': c = STOMP_CMD_DISCONNECT; break;
    case 'E': c = STOMP_CMD_ERROR; break;
    case 'M': c = STOMP_CMD_MESSAGE; break;
    case 'N': c = STOMP_CMD_NACK; break;
    case 'R': c = STOMP_CMD_RECEIPT; break;
    case 'S':
        c = len == 4 ? STOMP_CMD_SEND : len == 5 ? STOMP_CMD_STOMP : STOMP_CMD_SUBSCRIBE;
        break;
    case 'U': c = STOMP_CMD_UNSUBSCRIBE; break;
    default: return STOMP_CMD_UNKNOWN;
    }
    if (command_lengths[c] != len || memcmp(command_names[c], name, len) != 0)
        return STOMP_CMD_UNKNOWN;
    return c;
}

const char *stomp_frame_header(const stomp_frame *f, const char *name, size_t *value_len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < f->nheaders; i++) {
        const stomp_header *h = &f->headers[i];
        if (h->name_len == n && memcmp(h->name, name, n) == 0) {
            if (value_len)
                *value_len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

size_t frames__digits(uint64_t v)
{
    /* Four digits per division: most numbers we write have fewer. */
    size_t d = 1;
    for (;;) {
        if (v < 10)
            return d;
        if (v < 100)
            return d + 1;
        if (v < 1000)
            return d + 2;
        if (v < 10000)
            return d + 3;
        v /= 10000;
        d += 4;
    }
}

size_t frames__u64(char *o, uint64_t v)
{
    /* Two digits per division, written from the end in place: lengths, ids and counts are
     * written on every delivery. */
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "6263646566676869707172737475767778798081828384858687888990919293"
                                "949596979899";
    size_t n = frames__digits(v);
    char *p = o + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (v >= 10)
        memcpy(p - 2, pairs + 2 * v, 2);
    else
        p[-1] = (char)('0' + v);
    return n;
}

size_t stomp_u64(char *o, uint64_t v)
{
    return frames__u64(o, v);
}
