/* escape.c: what a header name or value can hold in each version, and its escaped form.
 *
 * The one place that decides it (the tables below, used through codec.h): 1.0 frames and
 * CONNECT/STOMP/CONNECTED escape nothing, so they cannot carry LF or CR, nor ':' in a
 * name; 1.1 escapes \\ \n \c but has no escape for CR; 1.2 escapes CR too. No version
 * carries a NUL, nor an empty name.
 */
#include "codec.h"

const unsigned char frames__byte_class[256] = {
    ['\\'] = B_BACKSLASH, ['\n'] = B_LF, [':'] = B_COLON, ['\r'] = B_CR, ['\0'] = B_NUL,
};

const unsigned char frames__escaped[3] = {
    [ESC_NONE] = 0,
    [ESC_11] = B_BACKSLASH | B_LF | B_COLON,
    [ESC_12] = B_BACKSLASH | B_LF | B_COLON | B_CR,
};

const unsigned char frames__refused[3][2] = {
    [ESC_NONE] = { B_LF | B_CR | B_NUL, B_LF | B_CR | B_NUL | B_COLON },
    /* A CR would come back only where it is not the last byte of the line: refuse it
     * everywhere rather than make the value's end decide. */
    [ESC_11] = { B_CR | B_NUL, B_CR | B_NUL },
    [ESC_12] = { B_NUL, B_NUL },
};

static char escape_letter(char c)
{
    return c == '\\' ? '\\' : c == '\n' ? 'n' : c == ':' ? 'c' : 'r';
}

size_t frames__measure(const char *s, size_t len, int mode, int is_name)
{
    unsigned esc = frames__escaped[mode], bad = frames__refused[mode][is_name];
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        unsigned c = frames__byte_class[(unsigned char)s[i]];
        if (c & bad)
            return SIZE_MAX;
        n += (c & esc) != 0;
    }
    return n;
}

size_t frames__escape_into(const char *s, size_t len, int mode, char *out)
{
    unsigned esc = frames__escaped[mode];
    size_t i = frames__run(s, len, esc);
    memcpy(out, s, i);
    char *o = out + i;
    for (; i < len; i++) {
        char c = s[i];
        if (!(frames__byte_class[(unsigned char)c] & esc)) {
            *o++ = c;
            continue;
        }
        *o++ = '\\';
        *o++ = escape_letter(c);
    }
    return (size_t)(o - out);
}

char *frames__put_rest(char *o, const char *s, size_t len, int mode, int is_name)
{
    unsigned esc = frames__escaped[mode], bad = frames__refused[mode][is_name];
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        unsigned k = frames__byte_class[(unsigned char)c];
        if (k & bad)
            return NULL;
        if (k & esc) {
            *o++ = '\\';
            c = escape_letter(c);
        }
        *o++ = c;
    }
    return o;
}

size_t stomp_escaped_len(const char *s, size_t len, stomp_version v, stomp_command cmd)
{
    unsigned esc = frames__escaped[frames__mode(v, cmd)];
    if (!esc)
        return len;
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        n += (frames__byte_class[(unsigned char)s[i]] & esc) != 0;
    return n;
}

size_t stomp_escape(const char *s, size_t len, stomp_version v, stomp_command cmd, char *out)
{
    return frames__escape_into(s, len, frames__mode(v, cmd), out);
}

int stomp_header_fits(const char *name, size_t nlen, const char *value, size_t vlen,
                      stomp_version v, stomp_command cmd)
{
    int mode = frames__mode(v, cmd);
    return nlen > 0 && frames__fits(name, nlen, mode, 1) && frames__fits(value, vlen, mode, 0);
}
