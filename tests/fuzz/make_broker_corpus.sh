#!/bin/sh
# make_broker_corpus.sh: write the seed inputs of the broker fuzz target into
# tests/fuzz/broker_corpus/, and the counts each must reach into
# tests/fuzz/broker_corpus.expect (checked by tests/broker/test_fuzz_corpus.c). An input is
# 5 setting bytes and a sequence of operations, as fuzz_broker.c's top comment describes;
# the numbers below follow it.
# Usage: sh tests/fuzz/make_broker_corpus.sh [DIR]   (run from the top of the source tree;
# the expectations go to DIR.expect)
set -eu
dir=${1:-tests/fuzz/broker_corpus}
dir=${dir%/}
expect=$dir.expect
mkdir -p "$dir"
cat >"$expect" <<'EOF'
# broker_corpus.expect: written by make_broker_corpus.sh; tests/broker/test_fuzz_corpus.c
# replays every input of tests/fuzz/broker_corpus/ and checks the seeds named here. A line:
# a seed's file name, then counts its run must end with (those not named are not checked):
#   store        sqlite or memory
#   connected    CONNECTED frames; beats: heart-beat EOLs the clients got
#   sent         messages the broker accepted (SENDs and publishes; a transaction's at COMMIT)
#   delivered    MESSAGE frames written to the clients; redelivered: those marked so
#   receipts     RECEIPT frames; errors: ERROR frames (a stop sends one to each open client)
#   limits       connections closed for going over a limit; paused: times a connection
#                stopped being read (memory limit, or its own output over the high-water mark)
#   stored       queue messages committed to the store; acked, ready: how they ended (a
#                memory store starts again from nothing at a RESTART)
#   inproc       deliveries to in-process subscribers
# After a RESTART, sent, limits and paused are the last broker's; the others count the
# whole input.
EOF

# Operation kinds.
CONNECT=0 SUBSCRIBE=1 UNSUBSCRIBE=2 SEND=3 ACK=4 TX=5 DISCONNECT=6 RAW=7 RESET=8 EOF=9 RUN=10
COMPLETE=11 TIME=12 WAIT=13 BURST=14 PUBLISH=15 INPROC=16 RESTART=17
# Setting byte 0 (SQLITE also needs SQLITE4 in byte 4).
SQLITE=1 AUTORUN=2 SMALLWIN=4 SMALLOUT=8 SMALLMEM=16 SMALLTX=32 SMALLFRAMES=64
SQLITE4=224
# CONNECT: accept-version 1.0 / 1.1 / 1.2 / none in common, the STOMP command, logins.
V10=2 V11=4 V12=6 VBAD=12 STOMPCMD=1 GUEST=64 BAD=128
# Destinations: /queue/a /queue/b /topic/t /topic/u q /queue/a*b /topic/w.* /queue/é
QA=0 QB=1 TT=2 TU=3 WILD=6
# SUBSCRIBE a: ack mode, receipt, id s0 / s1 / s2.
AUTO=8 CLIENT=16 INDIV=24 RCPT=32 S0=0 S1=64 S2=128
# SEND a: receipt, transaction x1 / x2, content-length.
SRCPT=8 X1=16 X2=32 LEN=64

# seed NAME S0 S1 S2 S3 S4: start an input; then ops; then done EXPECT.
seed() {
    name=$1
    bytes=""
    shift
    b "$@"
}
# Bytes by value.
b() {
    for v; do bytes="$bytes\\0$(printf %03o "$v")"; done
}
# op KIND SLOT [ARG...]
op() {
    k=$1 s=$2
    shift 2
    b $((k * 4 + s)) "$@"
}
# raw SLOT TEXT: TEXT takes printf %b escapes (\n, \0000).
raw() {
    n=$(printf '%b' "$2" | wc -c)
    op $RAW "$1" "$n"
    bytes="$bytes$2"
}
run() { op $RUN 0 "$1"; }
done_() {
    printf '%b' "$bytes" >"$dir/$name"
    printf '%-28s %s\n' "$name" "$1" >>"$expect"
}

# A queue with each ack mode: a consumer subscribes, a producer sends with receipts.
seed queue-auto 0 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | AUTO | RCPT)) 0
op $CONNECT 1 $V12
op $SEND 1 $((QA | SRCPT)) 5 0
op $SEND 1 $((QA | SRCPT | LEN)) 30 1
run 4
done_ 'store=memory sent=2 delivered=2 redelivered=0 receipts=3 errors=2 stored=2 acked=2 ready=0'

seed queue-client 0 0 0 0 0
op $CONNECT 0 $V11
op $SUBSCRIBE 0 $((QA | CLIENT)) 0
op $CONNECT 1 $V12
op $SEND 1 $QA 3 0
op $SEND 1 $QA 4 0
op $SEND 1 $QA 5 0
run 4
op $ACK 0 $((1 << 1)) 1
run 2
done_ 'sent=3 delivered=3 receipts=1 stored=3 acked=2 ready=1'

seed queue-client-individual 0 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QB | INDIV)) 2
op $CONNECT 1 $V10
op $SEND 1 $QB 3 0
op $SEND 1 $QB 4 0
op $SEND 1 $QB 5 0
run 4
op $ACK 0 $((1 << 1)) 1
op $ACK 0 0 0
run 2
done_ 'sent=3 delivered=3 receipts=1 stored=3 acked=2 ready=1'

# NACK: the message comes back with redelivered:true; then it is acknowledged.
seed nack-redelivery 0 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | INDIV)) 0
op $SEND 0 $QA 7 0
run 3
op $ACK 0 1 1
run 3
op $ACK 0 0 0
run 2
done_ 'sent=1 delivered=2 redelivered=1 receipts=1 stored=1 acked=1 ready=0'

# ACK and NACK inside a transaction take effect at COMMIT; ABORT drops them (the message
# stays unacknowledged and goes back at the stop).
seed tx-ack-nack 0 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | INDIV)) 0
op $SEND 0 $QA 3 0
op $SEND 0 $QA 4 0
op $SEND 0 $QA 5 0
run 3
op $TX 0 0
op $ACK 0 $((2 << 1 | 1 << 6)) 1
op $ACK 0 $((1 | 1 << 1 | 1 << 6)) 1
op $TX 0 $((1 | 16))
run 3
op $TX 0 $((1 << 2))
op $ACK 0 $((0 << 1 | 2 << 6)) 0
op $TX 0 $((2 | 1 << 2))
run 3
done_ 'sent=3 delivered=4 redelivered=1 receipts=3 stored=3 acked=1 ready=2'

# Transactions: a committed one stores both SENDs at once, an aborted one nothing.
seed tx-commit 0 0 0 0 0
op $CONNECT 0 $V12
op $TX 0 $((0 | 16))
op $SEND 0 $((QB | X1 | SRCPT)) 3 0
op $SEND 0 $((QB | X1)) 3 0
run 2
op $TX 0 $((1 | 16))
run 3
op $SUBSCRIBE 0 $((QB | AUTO)) 0
run 3
done_ 'sent=2 delivered=2 receipts=3 stored=2 acked=2 ready=0'

seed tx-abort 0 0 0 0 0
op $CONNECT 0 $V12
op $TX 0 4
op $SEND 0 $((QA | X2)) 3 0
op $SEND 0 $((QA | X2 | SRCPT)) 3 0
op $TX 0 $((2 | 4 | 16))
run 3
done_ 'sent=0 delivered=0 receipts=2 stored=0'

# A topic message reaches both subscribers, nothing is stored.
seed topic-fanout 0 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((TT | RCPT)) 0
op $CONNECT 1 $V10
op $SUBSCRIBE 1 $((TT | 192)) 0
op $CONNECT 2 $V11
run 2
op $SEND 2 $((TT | SRCPT)) 9 0
op $SEND 2 $TT 9 2
run 3
done_ 'sent=2 delivered=4 receipts=2 errors=3 stored=0'

# DISCONNECT with unacknowledged messages: they go back and reach the next consumer.
seed disconnect-unacked 0 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | CLIENT)) 0
op $SEND 0 $QA 3 0
op $SEND 0 $QA 3 0
run 3
op $DISCONNECT 0 1
run 3
op $CONNECT 1 $V12
op $SUBSCRIBE 1 $((QA | AUTO)) 0
run 3
done_ 'sent=2 delivered=4 redelivered=2 receipts=1 errors=1 stored=2 acked=2 ready=0'

# An abrupt close does the same.
seed reset-unacked 0 0 0 0 0
op $CONNECT 0 $V11
op $SUBSCRIBE 0 $((QA | INDIV)) 0
op $SEND 0 $QA 3 0
run 3
op $RESET 0
run 3
op $CONNECT 1 $V11
op $SUBSCRIBE 1 $QA 0
run 3
done_ 'sent=1 delivered=2 redelivered=1 errors=1 stored=1 acked=1 ready=0'

# Malformed frames: an undefined escape, then a frame before CONNECT.
seed malformed 0 0 0 0 0
op $CONNECT 0 $V12
raw 0 'SEND\ndestination:/queue/a\nx:\\t\n\nbad\0000'
raw 1 'SUBSCRIBE\ndestination:/queue/a\nid:0\n\n\0000'
run 3
done_ 'sent=0 delivered=0 errors=2 stored=0'

# Limits: a transaction over max_tx_frames (1), a body over the small frame limits.
seed limit-tx-frames $SMALLTX 0 0 0 0
op $CONNECT 0 $V12
op $TX 0 0
op $SEND 0 $((QA | X1)) 3 0
op $SEND 0 $((QA | X1)) 3 0
run 3
done_ 'sent=0 errors=1 limits=1 stored=0'

seed limit-body $SMALLFRAMES 0 0 0 0
op $CONNECT 0 $V12
op $SEND 0 $((QA | LEN)) $((64 | 10)) 0
run 3
done_ 'sent=0 errors=1 limits=1 stored=0'

# A slow consumer: a 64-byte high-water mark; the peer stops reading, so one MESSAGE is
# written and the rest wait in the queue; once it reads again, they all go.
seed backpressure $((AUTORUN | SMALLOUT)) 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | AUTO)) 0
op $COMPLETE 0 1
op $CONNECT 1 $V12
op $BURST 1 12 $((QA | 8 << 3))
run 8
op $COMPLETE 0 1
run 2
done_ 'sent=13 delivered=13 redelivered=0 stored=13 acked=13 ready=0'

# A slow topic subscriber passes max_output_bytes (512 here): two MESSAGEs and an ERROR are
# written to it, and as it reads nothing the stop cuts it.
seed slow-topic-consumer $((AUTORUN | SMALLOUT)) 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $TT 0
op $COMPLETE 0 1
op $CONNECT 1 $V12
op $BURST 1 12 $((TT | 8 << 3))
run 4
done_ 'sent=13 delivered=2 errors=2 limits=1 stored=0'

# A stop while auto-ack MESSAGEs are still being written (the peer reads nothing): they go
# back to their queue.
seed stop-unwritten-auto 0 0 0 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | AUTO)) 0
op $COMPLETE 0 1
op $SEND 0 $QA 3 0
op $SEND 0 $QA 3 0
run 4
done_ 'sent=2 delivered=2 redelivered=0 errors=0 stored=2 acked=0 ready=2'

# Over max_memory (2 KiB) no SEND is taken in: the producer is paused and its SENDs are
# taken one by one as the consumer's acks free memory.
seed memory-limit $SMALLMEM 0 1 0 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | CLIENT)) 0
op $CONNECT 1 $V12
op $BURST 1 7 $((QA | 8 << 3))
run 4
for i in 1 2 3 4 5 6 7 8; do
    op $ACK 0 0 0
    run 4
done
done_ 'sent=8 delivered=8 paused=1 stored=8 acked=8 limits=0'

# Heart-beats: a day of silence on our side sends one, a day of the client's ends it.
seed heartbeats 0 0 0 0 0
op $CONNECT 0 $((V12 | 2 << 4))
run 2
op $TIME 0 2
run 1
op $TIME 0 4
run 2
done_ 'connected=1 beats=1 errors=1 limits=0'

# No CONNECT within the connect timeout.
seed connect-timeout 0 0 0 0 0
raw 0 'CONN'
op $TIME 0 1
run 2
done_ 'connected=0 errors=1 limits=1'

# The SQLite store: a queue round trip with receipts after the commit.
seed sqlite-queue $SQLITE 0 0 0 $SQLITE4
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | INDIV | RCPT)) 0
op $SEND 0 $((QA | SRCPT)) 40 0
op $WAIT 0
run 3
op $WAIT 0
op $ACK 0 0 1
op $WAIT 0
run 3
done_ 'store=sqlite sent=1 delivered=1 receipts=3 stored=1 acked=1 ready=0'

# A SQLite queue over its in-memory window (1 MiB): 64 bodies of up to 33 KiB (the input's
# 1.5 MiB of bodies runs out before the last ones), what does not fit spilled to the file
# and paged back in order as the consumer takes them.
seed sqlite-spill $SQLITE 0 0 0 $SQLITE4
op $CONNECT 0 $V12
op $BURST 0 $((32 | 31)) $((QB | 31 << 3))
op $BURST 0 $((32 | 31)) $((QB | 31 << 3))
op $WAIT 0
run 2
op $SUBSCRIBE 0 $((QB | AUTO)) 0
run 15
done_ 'store=sqlite sent=64 delivered=64 stored=64 acked=64 ready=0'

# Refused frames, one connection each: SUBSCRIBE without a destination, an unknown ack
# mode, UNSUBSCRIBE without an id, NACK in 1.0, a wildcard destination.
seed refusals 0 0 0 0 0
op $CONNECT 0 $V12
raw 0 'SUBSCRIBE\nid:1\n\n\0000'
op $CONNECT 1 $V12
raw 1 'SUBSCRIBE\nid:1\ndestination:/queue/a\nack:sometimes\n\n\0000'
op $CONNECT 2 $V11
raw 2 'UNSUBSCRIBE\nreceipt:9\n\n\0000'
op $CONNECT 3 $V10
op $ACK 3 1 0
run 3
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $WILD 0
run 3
done_ 'connected=5 sent=0 receipts=0 errors=5 stored=0'

# A restart on SQLite: the acknowledged message is gone, the two delivered and not
# acknowledged come back marked redelivered, in their order.
seed sqlite-restart $SQLITE 0 0 0 $SQLITE4
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $((QA | INDIV)) 0
op $SEND 0 $((QA | SRCPT)) 30 0
op $SEND 0 $QA 31 0
op $SEND 0 $QA 32 0
op $WAIT 0
run 3
op $WAIT 0
run 3
op $ACK 0 $((2 << 1)) 0
op $WAIT 0
run 2
op $RESTART 0
op $CONNECT 1 $V12
op $SUBSCRIBE 1 $((QA | AUTO)) 0
op $WAIT 0
run 3
op $WAIT 0
run 3
done_ 'store=sqlite delivered=5 redelivered=2 stored=3 acked=3 ready=0'

# A restart on the memory store: nothing survives it.
seed memory-restart 0 0 0 0 0
op $CONNECT 0 $V12
op $SEND 0 $QA 3 0
op $SEND 0 $QA 3 0
run 2
op $RESTART 0
op $CONNECT 0 $V12
op $SUBSCRIBE 0 $QA 0
run 3
done_ 'store=memory connected=2 delivered=0 stored=0 ready=0'

# In-process publish and subscribe next to a connection.
seed inproc 0 0 0 0 0
op $INPROC 0 $((QA << 2))
op $INPROC 0 $((TT << 2 | 1))
op $PUBLISH 0 $((QA | 2 << 3))
op $PUBLISH 0 $((TT | 1 << 3))
op $CONNECT 0 $V12
op $SEND 0 $QA 3 0
run 3
done_ 'sent=3 stored=2 acked=2 inproc=3'

# Logins: the asynchronous hook, one accepted, one refused.
seed login-async 0 0 0 0 2
op $CONNECT 0 $((V12 | GUEST))
op $CONNECT 1 $((V12 | BAD))
run 3
op $TIME 1 1
run 3
done_ 'connected=1 errors=2'
