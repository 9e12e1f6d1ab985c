#!/bin/sh
# make_corpus.sh: write the seed inputs of the parser fuzz target into tests/fuzz/corpus/,
# and what the parser must make of each into tests/fuzz/corpus.expect (read by
# tests/frames/test_corpus.c). Each seed is 4 setting bytes (see fuzz_settings.h) and a
# byte stream.
# Usage: sh tests/fuzz/make_corpus.sh [DIR]   (run from the top of the source tree; the
# expectations go to DIR.expect)
set -eu
dir=${1:-tests/fuzz/corpus}
dir=${dir%/}
expect=$dir.expect
mkdir -p "$dir"
cat >"$expect" <<'EOF'
# corpus.expect: written by make_corpus.sh; tests/frames/test_corpus.c checks every seed of
# tests/fuzz/corpus/ against it. A line: a seed's name, then the events the parser gives for
# its stream under its settings (fuzz_settings.h), in order:
#   CMD:H:B      a frame: the command as written, its number of headers, its body length
#   +NAME=VALUE  the frame before has a header NAME whose first value is VALUE (decoded);
#                a byte that is not printable ASCII, or is a space, '%' or '=', is %XX
#   HB           a heart-beat
#   E:CODE@N     the error STOMP_E_CODE at stream offset N (not counting the setting bytes)
#   E:NOMEM      the allocator failed (where depends on the chunking: not checked)
#   MORE         the stream ends inside a frame
# NAME+alloc-fails: the same seed when its allocator fails its (byte 3 + 1)th call.
EOF

# Setting bits, byte 0: version 0/1/2 = 1.0/1.1/1.2, then these flags.
LENIENT=4 SWITCH=8 SMALL=16 ALWAYS=32 TRIM=64 ALLOCFAIL=128
# Byte 1, low 2 bits: chunking of the second pass (single bytes, fixed size, pseudo-random
# sizes, one split); the other 6 bits are its parameter.
BYTES=0 FIXED=1 SHUFFLE=2 SPLIT=3

# seed NAME BYTE0 BYTE1 BYTE2 BYTE3 STREAM EXPECT [EXPECT_ALLOC_FAILS]
# STREAM takes printf %b escapes (\n, \r, \000, \\). EXPECT is what the parser must make of
# it under its settings, written as corpus.expect says; EXPECT_ALLOC_FAILS the same when the
# allocator fails (ALLOCFAIL seeds only). Write both from what the seed is meant to test.
seed() {
    {
        printf '%b' "\\0$(printf %o "$2")\\0$(printf %o "$3")\\0$(printf %o "$4")"
        printf '%b' "\\0$(printf %o "$5")" "$6"
    } >"$dir/$1.stomp"
    printf '%-34s %s\n' "$1" "$7" >>"$expect"
    if [ $# -ge 8 ]; then
        printf '%-34s %s\n' "$1+alloc-fails" "$8" >>"$expect"
    fi
}
V10=0 V11=1 V12=2

# Every command, 1.2 unless said otherwise.
seed connect-1.0 $V10 $BYTES 0 0 'CONNECT\nlogin:guest\npasscode:guest\n\n\000' \
    'CONNECT:2:0 +login=guest +passcode=guest'
seed connect-then-send-1.2 $((V12 | SWITCH)) $SHUFFLE 0 0 \
    'CONNECT\naccept-version:1.0,1.1,1.2\nhost:localhost\nheart-beat:10000,10000\n\n\000SEND\ndestination:/queue/a\nx\\cy:a\\nb\n\nhi\000' \
    'CONNECT:3:0 SEND:2:2 +x%3Ay=a%0Ab'
seed stomp-command $V12 $((FIXED | 8)) 0 0 'STOMP\naccept-version:1.2\nhost:broker\n\n\000' \
    'STOMP:2:0'
seed connected-1.2 $V12 $SHUFFLE 0 0 \
    'CONNECTED\nversion:1.2\nsession:s-1\nserver:stompd/0.1.0\nheart-beat:0,0\n\n\000' \
    'CONNECTED:4:0'
seed connect-unescaped-1.2 $V12 $BYTES 0 0 'CONNECT\nlogin:a:b\npasscode:x\\cy\\n\n\n\000' \
    'CONNECT:2:0 +login=a:b +passcode=x%5Ccy%5Cn'
seed send-1.0 $V10 $SHUFFLE 0 0 'SEND\ndestination:/queue/a\n\nhello\000' \
    'SEND:1:5'
seed send-content-length $V12 $SHUFFLE 0 0 \
    'SEND\ndestination:/queue/a\ncontent-type:text/plain\ncontent-length:5\nreceipt:r-1\n\nhello\000' \
    'SEND:4:5'
seed send-content-length-nul $V12 $BYTES 0 0 'SEND\ndestination:/queue/a\ncontent-length:5\n\na\000b\000c\000' \
    'SEND:2:5'
seed send-content-length-nul-1.0 $V10 $((SPLIT | 20)) 0 0 'SEND\ndestination:/q\ncontent-length:3\n\n\000\000\000\000' \
    'SEND:2:3'
seed send-content-length-zero $V11 $BYTES 0 0 'SEND\ndestination:/queue/a\ncontent-length:0\n\n\000' \
    'SEND:2:0'
seed subscribe $V12 $SHUFFLE 0 0 'SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client-individual\n\n\000' \
    'SUBSCRIBE:3:0'
seed unsubscribe $V12 $BYTES 0 0 'UNSUBSCRIBE\nid:0\nreceipt:r-2\n\n\000' \
    'UNSUBSCRIBE:2:0'
seed ack-1.2 $V12 $SHUFFLE 0 0 'ACK\nid:m-1\ntransaction:tx1\n\n\000' \
    'ACK:2:0'
seed ack-1.0-message-id $V10 $BYTES 0 0 'ACK\nmessage-id:m-1\n\n\000' \
    'ACK:1:0'
seed nack-1.1 $V11 $SHUFFLE 0 0 'NACK\nsubscription:0\nmessage-id:m-1\n\n\000' \
    'NACK:2:0'
seed begin-commit $V12 $((FIXED | 12)) 0 0 'BEGIN\ntransaction:tx1\n\n\000COMMIT\ntransaction:tx1\nreceipt:c\n\n\000' \
    'BEGIN:1:0 COMMIT:2:0'
seed begin-abort $V11 $SHUFFLE 0 0 'BEGIN\ntransaction:t\n\n\000ABORT\ntransaction:t\n\n\000' \
    'BEGIN:1:0 ABORT:1:0'
seed disconnect-receipt $V12 $BYTES 0 0 'DISCONNECT\nreceipt:77\n\n\000' \
    'DISCONNECT:1:0'
seed message-1.2 $V12 $SHUFFLE 0 0 \
    'MESSAGE\ndestination:/queue/a\nmessage-id:007\nsubscription:0\nack:a1\ncontent-length:4\n\nbody\000' \
    'MESSAGE:5:4'
seed receipt $V12 $SHUFFLE 0 0 'RECEIPT\nreceipt-id:77\n\n\000' \
    'RECEIPT:1:0'
seed error-frame $V12 $SHUFFLE 0 0 'ERROR\nmessage:malformed frame\ncontent-length:6\n\ndetail\000' \
    'ERROR:2:6'

# Escaping per version.
seed escapes-1.1 $V11 $BYTES 0 0 'SEND\ndestination:/q\nke\\cy:va\\nl\\\\ue\n\n\000' \
    'SEND:2:0 +ke%3Ay=va%0Al%5Cue'
seed escapes-1.2-cr $V12 $SHUFFLE 0 0 'SEND\ndestination:/q\nk:a\\rb\\c\\n\\\\\n\n\000' \
    'SEND:2:0 +k=a%0Db:%0A%5C'
seed escapes-1.1-lenient-undefined $((V11 | LENIENT)) $BYTES 0 0 'SEND\nk:a\\tb\\r\n\n\000' \
    'SEND:1:0 +k=a%5Ctb%5Cr'
seed escapes-1.1-strict-undefined $V11 $BYTES 0 0 'SEND\nk:a\\tb\n\n\000' \
    'E:BAD_ESCAPE@8'
seed escapes-1.2-undefined $V12 $SHUFFLE 0 0 'SEND\nk:a\\x\n\n\000' \
    'E:BAD_ESCAPE@8'
seed escapes-1.2-trailing-backslash $V12 $BYTES 0 0 'SEND\nk:ab\\\n\n\000' \
    'E:BAD_ESCAPE@9'
seed escapes-1.0-literal $V10 $SHUFFLE 0 0 'SEND\nk:a\\nb\\c\n\n\000' \
    'SEND:1:0 +k=a%5Cnb%5Cc'
seed escapes-split $V12 $((SPLIT | 9)) 0 0 'SEND\nk\\c:\\\\\\n\\c\n\n\000' \
    'SEND:1:0 +k%3A=%5C%0A:'

# Line ends, heart-beats, blank lines.
seed crlf-1.2 $V12 $BYTES 0 0 'SEND\r\ndestination:/q\r\ncontent-length:2\r\n\r\nab\000' \
    'SEND:2:2 +destination=/q +content-length=2'
seed eol-after-nul $V12 $SHUFFLE 0 0 'SEND\ndestination:/q\n\nx\000\n\r\n\nBEGIN\ntransaction:t\n\n\000\r\n' \
    'SEND:1:1 HB HB HB BEGIN:1:0 HB'
seed heartbeats $V11 $BYTES 0 0 '\n\n\r\n\nSEND\ndestination:/q\n\n\000\n' \
    'HB HB HB HB SEND:1:0 HB'
seed heartbeat-lone-cr $V12 $BYTES 0 0 '\n\rSEND\n\n\000' \
    'HB E:BAD_COMMAND@2'
seed header-value-trailing-cr $V10 $SHUFFLE 0 0 'SEND\nk:v\r\r\n\n\000' \
    'SEND:1:0 +k=v%0D'
seed header-value-inner-cr $V12 $SHUFFLE 0 0 'SEND\nk:a\rb\n\n\000' \
    'SEND:1:0 +k=a%0Db'
seed repeated-headers $V12 $SHUFFLE 0 0 \
    'SEND\ndestination:/q1\ndestination:/q2\ncontent-length:1\ncontent-length:9\n\nz\000' \
    'SEND:4:1 +destination=/q1 +content-length=1'

# Odd splits over several frames.
seed split-one-byte $V12 $BYTES 0 0 'SUBSCRIBE\nid:1\ndestination:/q\n\n\000\nSEND\ndestination:/q\ncontent-length:3\n\na\000b\000\r\n' \
    'SUBSCRIBE:2:0 HB SEND:2:3 HB'
seed split-random-zero-feeds $V11 $((SHUFFLE | 4)) 0 0 'BEGIN\ntransaction:a\n\n\000SEND\ndestination:/q\ntransaction:a\n\nbody\000COMMIT\ntransaction:a\n\n\000' \
    'BEGIN:1:0 SEND:2:4 COMMIT:1:0'
seed split-in-crlf $V12 $((SPLIT | 2)) 0 0 'ACK\r\nid:1\r\n\r\n\000' \
    'ACK:1:0 +id=1'

# Commands the parser does not know, and malformed frames.
seed unknown-command $V12 $SHUFFLE 0 0 'FOO\nbar:baz\n\nbody\000' \
    'FOO:1:4 +bar=baz'
seed no-body-frame-content-length $V12 $SHUFFLE 0 0 'SUBSCRIBE\nid:0\ncontent-length:5\n\nab\000' \
    'SUBSCRIBE:2:2'
seed bad-no-colon $V12 $BYTES 0 0 'SEND\nnocolon\n\n\000' \
    'E:BAD_HEADER@5'
seed bad-empty-name $V11 $SHUFFLE 0 0 'SEND\n:value\n\n\000' \
    'E:BAD_HEADER@5'
seed bad-content-length $V12 $BYTES 0 0 'SEND\ncontent-length:abc\n\nx\000' \
    'E:BAD_CONTENT_LENGTH@5'
seed bad-missing-nul $V12 $SHUFFLE 0 0 'SEND\ncontent-length:3\n\nabcd\000' \
    'E:MISSING_NUL@26'
seed bad-nul-in-header $V12 $BYTES 0 0 'SEND\nk:a\000b\n\n\000' \
    'E:BAD_HEADER@8'
seed bad-nul-in-command $V12 $BYTES 0 0 'SE\000ND\n\n\000' \
    'E:BAD_COMMAND@2'
seed bad-empty-command-cr $V12 $BYTES 0 0 '\r\r\nx:y\n\n\000' \
    'E:BAD_COMMAND@1'

# Limits (small limits come from byte 2), allocation failures, trimming, encoder flags.
seed limit-command $((V12 | SMALL)) $BYTES 0 0 'UNSUBSCRIBE\nid:1\n\n\000' \
    'E:COMMAND_TOO_LONG@0'
seed limit-headers $((V12 | SMALL)) $SHUFFLE $((0x2f)) 0 'SEND\na:1\nb:2\nc:3\nd:4\n\n\000' \
    'E:TOO_MANY_HEADERS@17'
seed limit-line $((V11 | SMALL)) $BYTES $((0x3f)) 0 'ACK\nid:0123456789012345678901234567890\n\n\000' \
    'E:LINE_TOO_LONG@4'
# A declared length over max_body (32), on a header line within max_header_line (26).
seed limit-body $((V12 | SMALL)) $SHUFFLE $((0x5f)) 0 \
    'SEND\ncontent-length:40\n\n0123456789012345678901234567890123456789\000' \
    'E:BODY_TOO_LONG@5'
seed limit-body-read $((V10 | SMALL)) $BYTES $((0x3f)) 0 'SEND\n\n01234567890123456789\000' \
    'E:BODY_TOO_LONG@14'
seed limit-header-block $((V12 | SMALL)) $SHUFFLE $((0x3f)) 0 'SEND\naaa:12\nbbb:12\nccc:12\nddd:12\neee:12\nfff:12\nggg:12\n\n\000' \
    'E:HEADERS_TOO_LONG@47'
seed alloc-fail-first $((V12 | ALLOCFAIL)) $SHUFFLE 0 0 'SEND\ndestination:/q\n\nx\000' \
    'SEND:1:1' 'E:NOMEM'
# The third allocation (the second header array, at the first header) fails.
seed alloc-fail-later $((V12 | ALLOCFAIL)) $BYTES 0 2 \
    'SEND\na:1\nb:2\nc:3\nd:4\ne:5\nf:6\ng:7\nh:8\ni:9\nj:10\n\n0123456789012345678901234567890123456789\000' \
    'SEND:10:40' 'E:NOMEM'
seed trim-between-frames $((V12 | TRIM)) $SHUFFLE 0 0 \
    'SEND\ndestination:/q\ncontent-length:200\n\n01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\000ACK\nid:1\n\n\000' \
    'SEND:2:200 ACK:1:0'
seed always-length $((V11 | ALWAYS)) $BYTES 0 0 'BEGIN\ntransaction:t\n\n\000DISCONNECT\n\n\000' \
    'BEGIN:1:0 DISCONNECT:0:0'
seed trim-large-frame $((V12 | TRIM)) $((FIXED | 252)) 0 0 \
    "SEND\\ndestination:/q\\ncontent-length:5000\\n\\n$(printf '%05000d' 0)\\000SEND\\ndestination:/q\\n\\nsmall\\000" \
    'SEND:2:5000 SEND:1:5'
seed repeated-content-length $V12 $SHUFFLE 0 0 'SEND\ncontent-length:0\ncontent-length:1\n\n\000\000' \
    'SEND:2:0 E:BAD_COMMAND@41'
