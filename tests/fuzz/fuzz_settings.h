/* fuzz_settings.h: the 4 setting bytes that start every input of the parser fuzz target,
 * shared by the target and by the corpus replay test so a seed means the same to both.
 * Everything here is static. */
#ifndef FUZZ_SETTINGS_H
#define FUZZ_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stomp.h"

enum {
    /* byte 0 */
    SET_VERSION_MASK = 3u,    /* 0: 1.0, 1: 1.1, 2 and 3: 1.2 */
    SET_LENIENT = 1u << 2,    /* STOMP_PARSE_LENIENT_ESCAPES */
    SET_SWITCH = 1u << 3,     /* start at 1.0, switch to the version after the first frame */
    SET_SMALL_LIMITS = 1u << 4, /* limits from byte 2 */
    SET_ALWAYS_LENGTH = 1u << 5, /* STOMP_ENC_ALWAYS_LENGTH */
    SET_TRIM = 1u << 6,       /* trim after every frame (and after every feed when chunked) */
    SET_ALLOC_FAIL = 1u << 7, /* third pass: the allocator fails its (byte 3 + 1)th call */
};

/* byte 1, low 2 bits: how the second pass is chunked; the other 6 bits are a parameter. */
enum { CHUNK_BYTES = 0, CHUNK_FIXED = 1, CHUNK_RANDOM = 2, CHUNK_SPLIT = 3, CHUNK_ONE = 4 };

typedef struct settings {
    stomp_version version;
    unsigned pflags, eflags;
    bool switch_version, trim, alloc_fail, small_limits;
    unsigned chunk_mode, chunk_param;
    stomp_limits limits;
    size_t fail_at;
} settings;

static inline settings settings_read(const uint8_t *s)
{
    settings st;
    memset(&st, 0, sizeof st);
    static const stomp_version versions[4] = { STOMP_V10, STOMP_V11, STOMP_V12, STOMP_V12 };
    st.version = versions[s[0] & SET_VERSION_MASK];
    st.pflags = (s[0] & SET_LENIENT) ? STOMP_PARSE_LENIENT_ESCAPES : 0;
    st.eflags = (s[0] & SET_ALWAYS_LENGTH) ? STOMP_ENC_ALWAYS_LENGTH : 0;
    st.switch_version = (s[0] & SET_SWITCH) != 0;
    st.trim = (s[0] & SET_TRIM) != 0;
    st.alloc_fail = (s[0] & SET_ALLOC_FAIL) != 0;
    st.small_limits = (s[0] & SET_SMALL_LIMITS) != 0;
    st.chunk_mode = s[1] & 3u;
    st.chunk_param = s[1] >> 2;
    stomp_limits def = STOMP_LIMITS_DEFAULT_INIT;
    st.limits = def;
    if (st.small_limits) {
        /* Small enough that ordinary frames hit every limit now and then. */
        unsigned l = s[2], scale = l >> 5;
        st.limits.max_command = 1 + (l & 7u) * 2;
        st.limits.max_headers = ((l >> 3) & 3u) * 3;
        st.limits.max_header_line = 2 + scale * 12;
        st.limits.max_header_bytes = 8 + scale * 40;
        st.limits.max_body = (size_t)scale * scale * 8;
    }
    st.fail_at = (size_t)s[3] + 1;
    return st;
}

#endif
