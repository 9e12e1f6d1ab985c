/* codec.h: what the encoders of frames/ share, internal to frames/ (never installed).
 *
 * What a header can hold in each version is decided here and in escape.c only: every byte
 * is plain (copied), escaped (1.1 and 1.2 write it as a backslash pair) or refused (no
 * parser of that version would read it back), per mode and per name or value.
 */
#ifndef FRAMES_CODEC_H
#define FRAMES_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stomp.h"

/* How a frame's headers are written: 1.0 frames and CONNECT/STOMP/CONNECTED in every
 * version escape nothing; 1.1 escapes \\ \n \c; 1.2 adds \r. */
enum { ESC_NONE, ESC_11, ESC_12 };

/* Bytes that matter in a header, one bit each. */
enum { B_BACKSLASH = 1, B_LF = 2, B_COLON = 4, B_CR = 8, B_NUL = 16 };

extern const unsigned char frames__byte_class[256];
/* Per mode: the bytes written as escapes. */
extern const unsigned char frames__escaped[3];
/* Per mode, then value (0) or name (1): the bytes that cannot be written at all. */
extern const unsigned char frames__refused[3][2];

static inline int frames__mode(stomp_version v, stomp_command cmd)
{
    if (v == STOMP_V10 || cmd == STOMP_CMD_CONNECT || cmd == STOMP_CMD_STOMP ||
        cmd == STOMP_CMD_CONNECTED)
        return ESC_NONE;
    return v == STOMP_V11 ? ESC_11 : ESC_12;
}

/* Does the 8-byte word w hold none of the bytes that matter in any mode (backslash, LF,
 * colon, CR, NUL)? A zero byte of w ^ (c * ONES) is a byte equal to c; "has a zero byte" is
 * (x - ONES) & ~x & HIGHS, exact as a yes/no. */
static inline int frames__word_plain(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t b = w ^ (ones * '\\'), l = w ^ (ones * '\n'), c = w ^ (ones * ':'),
             r = w ^ (ones * '\r');
    uint64_t any = ((w - ones) & ~w) | ((b - ones) & ~b) | ((l - ones) & ~l) |
                   ((c - ones) & ~c) | ((r - ones) & ~r);
    return !(any & highs);
}

/* Length of the prefix of (s, len) holding no byte of class mask. Eight bytes a step while
 * none that matters in any mode appears (the usual header), then byte by byte. */
static inline size_t frames__run(const char *s, size_t len, unsigned mask)
{
    size_t i = 0;
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (!frames__word_plain(w))
            break;
        i += 8;
    }
    while (i < len && !(frames__byte_class[(unsigned char)s[i]] & mask))
        i++;
    return i;
}

/* Can (s, len) be written in mode so that a parser reads it back unchanged? */
static inline int frames__fits(const char *s, size_t len, int mode, int is_name)
{
    return frames__run(s, len, frames__refused[mode][is_name]) == len;
}

/* Escaped length of (s, len) in mode, or SIZE_MAX when mode cannot carry it. */
size_t frames__measure(const char *s, size_t len, int mode, int is_name);

/* Write the escaped form of (s, len) whatever it holds; returns the bytes written. */
size_t frames__escape_into(const char *s, size_t len, int mode, char *out);

/* The rest of frames__put, from the first byte that is not plain. */
char *frames__put_rest(char *o, const char *s, size_t len, int mode, int is_name);

/* Write (s, len) escaped for mode at o (room for frames__measure() bytes) and return the
 * end, or NULL when mode cannot carry it (o then holds garbage). The common case, nothing
 * to escape or refuse, is one scan and a memcpy. */
static inline char *frames__put(char *o, const char *s, size_t len, int mode, int is_name)
{
    size_t i = frames__run(s, len, frames__escaped[mode] | frames__refused[mode][is_name]);
    memcpy(o, s, i);
    if (i == len)
        return o + len;
    return frames__put_rest(o + i, s + i, len - i, mode, is_name);
}

/* Is s[0..n) UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF)?
 * For the parser, which shares nothing else here. */
int frames__utf8_valid(const char *s, size_t n);

/* Decimal digits of v. */
size_t frames__digits(uint64_t v);

/* Write v in decimal at o (room for 20 bytes); returns the digits written. */
size_t frames__u64(char *o, uint64_t v);

#endif
