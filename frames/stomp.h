/* stomp.h: the STOMP 1.0 / 1.1 / 1.2 frame codec.
 *
 * Bytes in, frames or errors out; frames in, bytes out. libc only: no I/O, no globals,
 * no logging. The parser is incremental: any chunking of the same bytes gives the same
 * frames, heart-beats and errors (with the same offsets). It stops after each frame so the
 * caller can pause between frames (backpressure). All memory it holds is bounded by the
 * limits in stomp_limits.
 */
#ifndef STOMP_H
#define STOMP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define STOMP_WUR __attribute__((warn_unused_result))
#else
#define STOMP_WUR
#endif

typedef enum stomp_version {
    STOMP_V10 = 0,
    STOMP_V11 = 1,
    STOMP_V12 = 2,
} stomp_version;

/* Every command of the three versions. STOMP_CMD_UNKNOWN is a syntactically valid command
 * line that names none of them: the parser delivers it (cmd_name says what it was) and
 * the caller decides; the broker answers it with an ERROR. */
typedef enum stomp_command {
    STOMP_CMD_UNKNOWN = 0,
    STOMP_CMD_CONNECT,
    STOMP_CMD_STOMP,
    STOMP_CMD_CONNECTED,
    STOMP_CMD_SEND,
    STOMP_CMD_SUBSCRIBE,
    STOMP_CMD_UNSUBSCRIBE,
    STOMP_CMD_ACK,
    STOMP_CMD_NACK,
    STOMP_CMD_BEGIN,
    STOMP_CMD_COMMIT,
    STOMP_CMD_ABORT,
    STOMP_CMD_DISCONNECT,
    STOMP_CMD_MESSAGE,
    STOMP_CMD_RECEIPT,
    STOMP_CMD_ERROR,
    STOMP_CMD__COUNT
} stomp_command;

/* Error codes of the codec. 0 is success; every other value has a message from
 * stomp_strerror(). */
typedef enum stomp_err {
    STOMP_OK = 0,
    STOMP_E_NOMEM,            /* the allocator failed */
    STOMP_E_COMMAND_TOO_LONG, /* command line longer than limits.max_command */
    STOMP_E_BAD_COMMAND,      /* command line empty after CR strip, or holds a NUL */
    STOMP_E_LINE_TOO_LONG,    /* header line longer than limits.max_header_line */
    STOMP_E_TOO_MANY_HEADERS, /* more than limits.max_headers headers */
    STOMP_E_HEADERS_TOO_LONG, /* header block larger than limits.max_header_bytes */
    STOMP_E_BAD_HEADER,       /* header line without ':' or with an empty name, or a NUL */
    STOMP_E_BAD_ESCAPE,       /* undefined escape sequence (1.2, or 1.1 when strict) */
    STOMP_E_BAD_CONTENT_LENGTH, /* content-length is not a decimal number */
    STOMP_E_BODY_TOO_LONG,    /* body (declared or read) larger than limits.max_body */
    STOMP_E_MISSING_NUL,      /* byte after a content-length body is not NUL */
    STOMP_E_UNENCODABLE,      /* encoder: a header cannot be written in this version */
    STOMP_E_FAILED,           /* parser already failed; reset it before feeding more */
    STOMP_E_BAD_UTF8,         /* command or header line is not UTF-8 (STOMP_PARSE_UTF8) */
    STOMP_E__COUNT
} stomp_err;

/* A readable, static, one-line message for an error code. Never NULL. */
const char *stomp_strerror(stomp_err err);

/* Name of a command as written on the wire ("SEND"); "UNKNOWN" for STOMP_CMD_UNKNOWN. */
const char *stomp_command_name(stomp_command cmd);

/* Command from its wire name (exact, case-sensitive); STOMP_CMD_UNKNOWN if none. */
stomp_command stomp_command_lookup(const char *name, size_t len);

/* One header. name and value are decoded (escapes undone) and NUL-terminated (the
 * terminator is not counted in the lengths); value may hold no NUL in a parsed frame. */
typedef struct stomp_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} stomp_header;

/* A frame. From the parser: borrowed, valid until the next stomp_parser_feed(),
 * stomp_parser_reset(), stomp_parser_trim() or stomp_parser_free() on that parser. For the encoder: built by the
 * caller, who owns every pointer. */
typedef struct stomp_frame {
    stomp_command cmd;
    const char *cmd_name; /* the command as written (NUL-terminated) */
    size_t cmd_len;
    stomp_header *headers; /* in wire order; repeated names are all kept */
    size_t nheaders;
    const char *body; /* NUL-terminated by the parser (terminator not in body_len) */
    size_t body_len;
} stomp_frame;

/* The value of the first header called name (the one that wins when a name repeats),
 * or NULL. If value_len is non-NULL it receives the length. */
const char *stomp_frame_header(const stomp_frame *f, const char *name, size_t *value_len);

/* Every quantity a peer controls, bounded. Defaults are in STOMP_LIMITS_DEFAULT. */
typedef struct stomp_limits {
    size_t max_command;      /* bytes in the command line, CR excluded (default 64) */
    size_t max_header_line;  /* bytes in one header line, CR/LF excluded (default 8 KiB) */
    size_t max_headers;      /* headers per frame (default 128) */
    size_t max_header_bytes; /* command line plus header block, EOLs included (64 KiB) */
    size_t max_body;         /* body bytes, declared or read (default 16 MiB) */
} stomp_limits;

#define STOMP_LIMITS_DEFAULT_INIT { 64, 8192, 128, 65536, 16u * 1024 * 1024 }

/* realloc-like allocator: ptr == NULL allocates, size == 0 frees (returns NULL). */
typedef void *(*stomp_realloc_fn)(void *ctx, void *ptr, size_t size);

/* What one call to stomp_parser_feed() found. */
typedef enum stomp_event {
    STOMP_EV_NEED_MORE = 0, /* every byte was consumed; no frame is complete yet */
    STOMP_EV_FRAME,         /* a frame is complete; see stomp_parser_frame() */
    STOMP_EV_HEARTBEAT,     /* one EOL (LF or CRLF) between frames */
    STOMP_EV_ERROR,         /* malformed or over a limit; see stomp_parser_error() */
} stomp_event;

/* Parser flags. */
enum {
    /* 1.1 only: keep an undefined escape as written instead of failing (1.2 always fails). */
    STOMP_PARSE_LENIENT_ESCAPES = 1u << 0,
    /* Commands and headers must be UTF-8 (RFC 3629: no overlong forms, no surrogates,
     * nothing past U+10FFFF), as 1.1 and 1.2 say; a line that is not fails the frame with
     * STOMP_E_BAD_UTF8 at the line's first byte. */
    STOMP_PARSE_UTF8 = 1u << 1,
};

/* The parser. Its fields are private: declared here so it can be embedded in a larger
 * object without an allocation of its own. Initialise with stomp_parser_init(). */
typedef struct stomp_parser {
    /* configuration */
    stomp_limits limits;      /* the limits of the frame being read */
    stomp_limits next_limits; /* the limits of frames still to begin */
    stomp_version version;
    unsigned flags;
    stomp_realloc_fn alloc;
    void *alloc_ctx;
    /* state */
    int state;
    stomp_err err;
    uint64_t offset;     /* bytes consumed since init/reset */
    uint64_t err_offset; /* stream offset of the offending byte or line */
    char *buf;           /* the frame being assembled: command, header lines, body */
    size_t buf_len, buf_cap;
    size_t line_start;   /* offset in buf of the line being read */
    uint64_t line_at;    /* stream offset of that line */
    size_t line_colon;   /* offset in that line of its first ':' so far, or SIZE_MAX */
    int line_odd;        /* that line holds a backslash or a non-ASCII byte so far */
    size_t header_bytes; /* command line plus completed header lines, EOLs included */
    size_t body_start;   /* offset in buf of the body */
    size_t body_need;    /* content-length bodies: bytes still to read */
    int has_length;      /* a content-length governs this frame's body */
    int seen_length;     /* a content-length header was seen (the first one wins) */
    int frame_ready;     /* the last event was a frame */
    stomp_header *headers;
    size_t *hoff; /* per header: offsets in buf of name and value (buf may move) */
    size_t nheaders, headers_cap;
    stomp_frame frame;
} stomp_parser;

/* Initialise a parser. limits NULL means defaults; alloc NULL means libc realloc/free.
 * The version starts at 1.0 (no escapes), which is also what CONNECT frames use.
 * Allocates nothing; memory grows with the frames seen, within the limits. */
void stomp_parser_init(stomp_parser *p, const stomp_limits *limits, stomp_realloc_fn alloc,
                       void *alloc_ctx);

/* The session's version, once negotiated: decides header escaping for later frames
 * (never applied to CONNECT, STOMP or CONNECTED). flags: STOMP_PARSE_*. */
void stomp_parser_set_version(stomp_parser *p, stomp_version v, unsigned flags);

/* Replace the limits (e.g. looser once the session is authenticated). They apply from
 * the next frame: a frame already begun is finished under the limits it began with, so
 * every frame is judged by one set of limits whatever the chunking. */
void stomp_parser_set_limits(stomp_parser *p, const stomp_limits *limits);

/* Feed bytes. Consumes input until a frame, a heart-beat or an error is found, or until
 * the input is exhausted. *consumed receives the number of bytes used (the rest, if any,
 * must be fed again later). data is borrowed for the call only.
 * After STOMP_EV_ERROR every further call returns STOMP_EV_ERROR until reset. */
stomp_event stomp_parser_feed(stomp_parser *p, const char *data, size_t len,
                              size_t *consumed) STOMP_WUR;

/* The frame of the last STOMP_EV_FRAME: borrowed, valid until the next feed, reset, trim
 * or free. NULL if the last event was not a frame. */
const stomp_frame *stomp_parser_frame(const stomp_parser *p);

/* The error of the last STOMP_EV_ERROR (STOMP_OK if none) and, if offset is non-NULL,
 * its stream offset (counted from init/reset):
 * - a line's first byte for errors about a whole line: COMMAND_TOO_LONG, LINE_TOO_LONG,
 *   HEADERS_TOO_LONG, TOO_MANY_HEADERS, BAD_HEADER (no ':' or empty name),
 *   BAD_CONTENT_LENGTH and BODY_TOO_LONG for a declared length;
 * - the offending byte otherwise: a NUL in a command or header line, the backslash of a
 *   BAD_ESCAPE, the byte after a stray CR between frames, the first body byte past
 *   max_body, the byte where MISSING_NUL expected the NUL.
 * All of these are independent of chunking; only STOMP_E_NOMEM is not. */
stomp_err stomp_parser_error(const stomp_parser *p, uint64_t *offset);

/* Has a frame begun and not ended (1), or is the parser between frames (0)? When 1,
 * *cmd (may be NULL) is the frame's command once its command line is complete, else
 * STOMP_CMD_UNKNOWN. A caller that must bound what a peer makes it hold (a broker over its
 * memory limit) stops reading a connection whose next frame is a SEND. */
int stomp_parser_busy(const stomp_parser *p, stomp_command *cmd);

/* Bytes of memory the parser holds now (its frame buffer and header arrays). */
size_t stomp_parser_memory(const stomp_parser *p);

/* Forget any partial frame and any error; keep limits, version and memory. */
void stomp_parser_reset(stomp_parser *p);

/* Give back memory the parser holds beyond a small reserve (call when a connection goes
 * idle after a large frame). Only between frames; a no-op otherwise. */
void stomp_parser_trim(stomp_parser *p);

/* Release all memory. The parser may be initialised again afterwards. */
void stomp_parser_free(stomp_parser *p);

/* Encoder flags. */
enum {
    /* Write content-length even when the body is empty (MESSAGE, SEND, ERROR always get one
     * when they have a body regardless of this flag). */
    STOMP_ENC_ALWAYS_LENGTH = 1u << 0,
};

/* Bytes that stomp_encode() needs for f in version v (including the NUL terminator), or 0
 * with *err = STOMP_E_UNENCODABLE when the frame cannot be written so that a parser reads
 * it back unchanged: an empty header name; a NUL in any header; a LF, CR or (in a name)
 * ':' where nothing is escaped (1.0 frames, and CONNECT/STOMP/CONNECTED in every version);
 * a CR in a 1.1 header (1.1 has no escape for it); an unknown command with no name, or a
 * command name holding LF, CR or NUL. Any content-length header in f->headers is ignored:
 * the encoder writes the right one itself. */
size_t stomp_encoded_size(const stomp_frame *f, stomp_version v, unsigned flags,
                          stomp_err *err) STOMP_WUR;

/* Encode f for a session of version v into out (cap bytes): command, headers escaped as v
 * requires, content-length when there is a body (or always, with STOMP_ENC_ALWAYS_LENGTH),
 * blank line, body, NUL. LF line ends; no EOL after the NUL.
 * Returns the bytes written, or 0 with *err set (STOMP_E_UNENCODABLE, or STOMP_E_NOMEM when
 * cap is too small). */
size_t stomp_encode(const stomp_frame *f, stomp_version v, unsigned flags, char *out,
                    size_t cap, stomp_err *err) STOMP_WUR;

/* Escaped length of a header name or value (s, len) for a session of version v inside a
 * frame of command cmd: what stomp_escape() will write. */
size_t stomp_escaped_len(const char *s, size_t len, stomp_version v, stomp_command cmd);

/* Write the escaped form of (s, len) to out, which has room for stomp_escaped_len() bytes.
 * Returns the bytes written. For callers that assemble frames themselves (the broker
 * builds MESSAGE frames header by header). */
size_t stomp_escape(const char *s, size_t len, stomp_version v, stomp_command cmd, char *out);

/* Can this header be written in version v in a frame of command cmd so that a parser of v
 * reads it back unchanged? The rule stomp_encoded_size() applies to each header: a name is
 * not empty; no NUL anywhere; where nothing is escaped (1.0 frames, and CONNECT/STOMP/
 * CONNECTED in every version) no LF or CR, and no ':' in a name; in 1.1, no CR. */
int stomp_header_fits(const char *name, size_t nlen, const char *value, size_t vlen,
                      stomp_version v, stomp_command cmd);

/* ---- MESSAGE frames for delivery ----
 * A delivery is a head for one subscriber, stomp_message_head(), followed by a shared part
 * that every subscriber of one version gets, stomp_message_encode(): the two together are
 * one frame. A SEND's headers travel on to its MESSAGE except the sender's own and those the
 * server sets; a store keeps them packed. */

/* Does a SEND header travel on to the MESSAGE? Not the sender's own (receipt, transaction,
 * content-length) nor those the server sets (destination, message-id, subscription, ack,
 * redelivered, redelivery-count). */
int stomp_header_forwarded(const char *name, size_t len);

/* Packed headers: the forwarded headers of send as "name\0value\0" pairs in wire order, the
 * form a store keeps (send's headers hold no NUL, as in every parsed frame). Writes them to
 * out (room for the size) unless out is NULL. Returns the size in bytes. */
size_t stomp_pack_headers(const stomp_frame *send, char *out);

/* The first value of name (NUL-terminated) in a packed block of len bytes, or NULL. The
 * value is borrowed from block, NUL-terminated; *vlen receives its length when vlen is
 * non-NULL. */
const char *stomp_packed_header(const char *block, size_t len, const char *name, size_t *vlen);

/* A message to deliver. Every pointer is borrowed for the call that takes it. */
typedef struct stomp_message {
    const char *destination;
    size_t destination_len;
    const char *message_id;
    size_t message_id_len;
    uint32_t redeliveries;   /* > 0: redelivered:true and redelivery-count:N */
    const stomp_frame *send; /* forwarded headers taken from this parsed SEND, or */
    const char *packed;      /* from this packed block (when send is NULL) */
    size_t packed_len;
    const char *body;
    size_t body_len;
} stomp_message;

/* A cheap upper bound of the shared part's size in any version (O(headers), no byte scan):
 * allocate this, then encode in one pass. SIZE_MAX when the sizes overflow. */
size_t stomp_message_bound(const stomp_message *m);

/* Encode the shared part of m for version v into out (cap bytes, normally at least the
 * bound): "destination:..\nmessage-id:..\n", with redeliveries "redelivered:true\n
 * redelivery-count:N\n", the forwarded headers in order, "content-length:N\n\n", body, NUL,
 * headers escaped as v requires. Returns the bytes written, or 0 with *err:
 * STOMP_E_UNENCODABLE when the destination, the message id or a forwarded header cannot be
 * carried in v (see stomp_header_fits: nothing is dropped or altered), or a packed block
 * is cut short; STOMP_E_NOMEM when cap is too small. out's content is undefined after a
 * failure. */
size_t stomp_message_encode(const stomp_message *m, stomp_version v, char *out, size_t cap,
                            stomp_err *err) STOMP_WUR;

/* The head of one subscriber's delivery, in front of the shared part:
 * "MESSAGE\nsubscription:<sub_id>\n" and, when ack is non-NULL, "ack:<ack>\n", escaped as
 * v requires. stomp_message_head_size() gives its size, or 0 when sub_id or ack cannot be
 * carried in v; stomp_message_head() writes it to out (room for that size) and returns the
 * bytes written (0 in the same case). */
size_t stomp_message_head_size(const char *sub_id, size_t sub_len, const char *ack,
                               size_t ack_len, stomp_version v) STOMP_WUR;
size_t stomp_message_head(const char *sub_id, size_t sub_len, const char *ack, size_t ack_len,
                          stomp_version v, char *out) STOMP_WUR;

/* The decimal digits of v at o (room for 20 bytes), no terminator: returns how many. */
size_t stomp_u64(char *o, uint64_t v);

/* The line "ack:<n>\n" that follows a head without ack (the sub_id part alone, made once)
 * for a numeric ack id n: the same bytes as stomp_message_head() with ack n in decimal
 * (digits need no escaping in any version). Writes at most STOMP_ACK_LINE_MAX bytes to out
 * and returns how many. */
#define STOMP_ACK_LINE_MAX 25
size_t stomp_message_ack_line(uint64_t n, char *out);

#ifdef __cplusplus
}
#endif
#endif
