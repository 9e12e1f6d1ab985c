#!/bin/sh
# compare.sh: what `make bench-compare` runs: run.sh's scenarios against stompd and, run by run,
# against RabbitMQ's STOMP plugin (a private node on loopback, started and stopped here), with the
# ratio stompd / RabbitMQ per scenario. Usage: sh contrib/bench/compare.sh BUILDDIR
set -eu

build=${1:?usage: compare.sh BUILDDIR}
BENCH_LIBRARY=1
. "$(dirname "$0")/run.sh"

rmq_bin=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}  # Debian's rabbitmq-server scripts
rmq_pid=""      # the node's start script: leader of its own session
rmq_beam=""     # the Erlang VM (for --pid)
epmd_pid=""
node=""
epmd_port=""

# Sizes for RabbitMQ, a few seconds per run at its speed here; stompd keeps run.sh's sizes
# (rates are per second). Connections: 1,000 on both sides.
r_queue=$((60000 / scale))
r_queue4=$((10000 / scale))
r_persist=$((40000 / scale))
r_topic=$((3000 / scale))
r_rpc=$((2000 / scale))
conns_m=1000

# ensure_rabbitmq: install Debian's rabbitmq-server if missing, without letting the package
# start its system service (only our own node may run).
ensure_rabbitmq() {
    [ -x "$rmq_bin/rabbitmq-server" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "rabbitmq-server is not installed (apt-get needs root)"
        return 1
    fi
    echo "installing rabbitmq-server with apt-get ..."
    guard=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    st=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >"$work/apt.log" 2>&1 || st=$?
    [ $guard = 1 ] && rm -f /usr/sbin/policy-rc.d
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
        systemctl stop rabbitmq-server || true
        systemctl disable rabbitmq-server || true
    fi
    if [ $st != 0 ] || [ ! -x "$rmq_bin/rabbitmq-server" ]; then
        tail -n 5 "$work/apt.log"
        return 1
    fi
}

# free_ports N: N distinct free loopback ports.
free_ports() {
    "$python" -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# rmq CMD...: CMD with the environment of our private node (its own data, logs, config,
# plugins file, cookie, ports and epmd).
rmq() {
    env HOME="$rdir" \
        RABBITMQ_CONF_ENV_FILE="$rdir/rabbitmq-env.conf" \
        RABBITMQ_CONFIG_FILE="$rdir/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$rdir/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$rdir/mnesia" \
        RABBITMQ_LOG_BASE="$rdir/log" \
        RABBITMQ_PID_FILE="$rdir/beam.pid" \
        RABBITMQ_NODENAME="$node" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$amqp_port" \
        RABBITMQ_DIST_PORT="$dist_port" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        ERL_EPMD_PORT="$epmd_port" \
        "$@"
}

# start_epmd: our own Erlang port mapper on a free port, 127.0.0.1 only, for our nodes.
start_epmd() {
    epmd_port=$(free_ports 1)
    epmd=$(command -v epmd || ls /usr/lib/erlang/erts-*/bin/epmd 2>/dev/null | head -n 1)
    ERL_EPMD_ADDRESS=127.0.0.1 "$epmd" -port "$epmd_port" >"$work/epmd.log" 2>&1 &
    epmd_pid=$!
    pids="$pids $epmd_pid"
}

# start_rabbitmq I: a fresh node (empty data folder) with only the STOMP plugin, every
# listener on 127.0.0.1. Sets rmq_port (STOMP), rmq_pid, rmq_beam; its start-up time (exec
# to the first CONNECTED) goes to r-startup.I.
start_rabbitmq() {
    rdir=$work/rabbitmq.$1 node=stompbench-$$-$1@localhost
    mkdir -p "$rdir/mnesia" "$rdir/log"
    set -- "$1" $(free_ports 3)
    rmq_port=$2 amqp_port=$3 dist_port=$4
    : >"$rdir/rabbitmq-env.conf"
    # loadgen sends host:localhost, which RabbitMQ takes as the virtual host: make it the default.
    cat >"$rdir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$amqp_port
stomp.listeners.tcp.1 = 127.0.0.1:$rmq_port
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = $dist_port
distribution.listener.port_range.max = $dist_port
loopback_users.guest = true
default_vhost = localhost
EOF
    if ! rmq timeout 120 "$rmq_bin/rabbitmq-plugins" --offline enable rabbitmq_stomp \
        >"$rdir/plugins.log" 2>&1; then
        echo "rabbitmq-plugins failed:"
        tail -n 5 "$rdir/plugins.log"
        return 1
    fi
    if ! rmq timeout -k 5 200 "$python" "$work/startup.py" --keep --port "$rmq_port" \
        --login guest --passcode guest --timeout 180 --log "$rdir/server.log" \
        --pidfile "$rdir/script.pid" -- "$rmq_bin/rabbitmq-server" \
        >"$work/r-startup.$1" 2>"$rdir/startup.err"; then
        rmq_pid=$(cat "$rdir/script.pid" 2>/dev/null || true)
        echo "RabbitMQ did not start: $(cat "$rdir/startup.err")"
        tail -n 5 "$rdir/server.log"
        return 1
    fi
    rmq_pid=$(kv pid "$work/r-startup.$1")
    rmq_beam=$(cat "$rdir/beam.pid" 2>/dev/null || true)
    [ -n "$rmq_beam" ] || rmq_beam=$(ps -o pid= --ppid "$rmq_pid" | head -n 1 | tr -d ' ')
}

# gone PID: the process has exited (a zombie counts as exited).
gone() {
    [ "$(zombie "$1")" = yes ]
}

# stop_rabbitmq: rabbitmqctl stop, then whatever is left of the session we started (the
# start script, the VM and its helpers), by pid.
stop_rabbitmq() {
    # Interrupted during a start: the probe wrote the pid before anything else.
    [ -n "$rmq_pid" ] || rmq_pid=$(cat "${rdir:-/nonexistent}/script.pid" 2>/dev/null || true)
    [ -n "$rmq_pid" ] || return 0
    if ! gone "$rmq_pid"; then
        rmq timeout -k 5 60 "$rmq_bin/rabbitmqctl" -n "$node" stop >>"$rdir/stop.log" 2>&1 || true
        n=0
        while ! gone "$rmq_pid" && [ $n -lt 300 ]; do
            sleep 0.1
            n=$((n + 1))
        done
    fi
    left=$(ps -e -o pid= -o sid= | awk -v s="$rmq_pid" '$2 == s { print $1 }')
    for p in $left; do
        gone "$p" || kill "$p" 2>/dev/null || true
    done
    for p in $left; do
        n=0
        while ! gone "$p" && [ $n -lt 50 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        gone "$p" || kill -9 "$p" 2>/dev/null || true
    done
    rm -f "$rdir/script.pid"
    rmq_pid=""
}

stop_epmd() {
    [ -n "$epmd_pid" ] || return 0
    kill "$epmd_pid" 2>/dev/null || true
    wait "$epmd_pid" 2>/dev/null || true
    forget_pid "$epmd_pid"
    epmd_pid=""
}

# on_rabbitmq TAG I LOADGEN_ARGS...: one run against our node.
on_rabbitmq() {
    tag=$1 i=$2
    shift 2
    lg_login="--login guest --passcode guest" ext_pid=$rmq_beam
    lg_run "$tag" "$i" "port:$rmq_port" "$@"
    lg_login="" ext_pid=""
}

# cmp_row LABEL TAG_STOMPD TAG_RABBITMQ KEY UNIT DECIMALS
cmp_row() {
    a=$(stats "$2" "$4")
    b=$(stats "$3" "$4")
    cell() {
        case $1 in
            FAILED* | skipped* | n/a*) echo "$1" ;;
            *) set -- $1
               echo "$(fmt "$1" "$dec") ($(fmt "$2" "$dec")-$(fmt "$3" "$dec"))" ;;
        esac
    }
    dec=$6
    ratio="n/a"
    case "$a|$b" in
        FAILED* | skipped* | *"|FAILED"* | *"|skipped"*) ;;
        *) ratio=$(echo "$a $b" | awk '$4 > 0 { r = $1 / $4; printf (r >= 10 ? "%.0fx" : r >= 0.1 ? "%.2fx" : "%.2gx"), r }') ;;
    esac
    printf '%-44s %-8s %-34s %-30s %s\n' "$1" "$5" "$(cell "$a")" "$(cell "$b")" "$ratio"
}

compare_header() {
    printf '%-44s %-8s %-34s %-30s %s\n' scenario unit "stompd: median (min-max)" \
        "RabbitMQ: median (min-max)" "stompd/RabbitMQ"
    printf '%-44s %-8s %-34s %-30s %s\n' -------------------------------------------- -------- \
        ---------------------------------- ------------------------------ ---------------
}

compare() {
    [ -x "$build/stompd" ] || { echo "no $build/stompd"; return 1; }
    setup_work
    detect_options
    raise_fd_limit
    [ -n "$python" ] || { echo "compare.sh needs python3"; return 1; }
    ensure_rabbitmq
    start_epmd
    # Three starts for the start-up figure; the third node serves every run.
    for r in 1 2 3; do
        echo "starting a private RabbitMQ node ($r of 3) ..." >&2
        start_rabbitmq $r
        [ $r = 3 ] || stop_rabbitmq
    done
    echo "stompd: $("$build/stompd" --version 2>&1 | head -n 1);" \
        "RabbitMQ: $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?') (STOMP plugin);" \
        "$runs runs per figure, interleaved; fresh stompd per run, one RabbitMQ node for all"
    echo

    i=1
    while [ $i -le $runs ]; do
        echo "run $i of $runs ..." >&2
        lg_run q1 $i mem --scenario queue -p 1 -c 1 -n $n_queue -s 100
        on_rabbitmq r-q1 $i --scenario queue -p 1 -c 1 -n $r_queue -s 100
        lg_run q4 $i mem --scenario queue -p 4 -c 4 -n $n_queue4 -s 1024 --ack client-individual
        on_rabbitmq r-q4 $i --scenario queue -p 4 -c 4 -n $r_queue4 -s 1024 --ack client-individual
        if [ $has_store = 1 ] && [ -n "$sync_opt" ]; then
            lg_run persist-full $i sqlite-full --scenario persistent -n $n_persist -s 1024
        fi
        on_rabbitmq r-persist $i --scenario persistent -n $r_persist -s 1024
        lg_run topic $i mem --scenario topic -k $topic_subs -n $n_topic -s 100
        on_rabbitmq r-topic $i --scenario topic -k $topic_subs -n $r_topic -s 100
        lg_run latency $i mem --scenario latency --rate 1000 -n $n_latency -s 100
        on_rabbitmq r-latency $i --scenario latency --rate 1000 -n $n_latency -s 100
        lg_run rpc $i mem --scenario rpc -p 10 -c 1 -n $n_rpc -s 100 --dest /queue/requests
        on_rabbitmq r-rpc $i --scenario rpc -p 10 -c 1 -n $r_rpc -s 100 --dest /queue/requests
        lg_run conns $i mem --scenario conns -m $conns_m --pid
        on_rabbitmq r-conns $i --scenario conns -m $conns_m --pid
        startup_run startup $i
        i=$((i + 1))
    done
    if [ $has_store = 0 ]; then
        echo "skipped: stompd has no --store option" >"$work/persist-full.skip"
    elif [ -z "$sync_opt" ]; then
        echo "skipped: stompd has no --sync option" >"$work/persist-full.skip"
    fi
    stop_rabbitmq
    stop_epmd

    compare_header
    cmp_row "queue 1P/1C 100 B auto ack" q1 r-q1 rate msg/s 0
    cmp_row "queue 4P/4C 1 KiB client-individual" q4 r-q4 rate msg/s 0
    cmp_row "persistent 1P/1C 1 KiB receipts, durable" persist-full r-persist rate msg/s 0
    cmp_row "topic 1 -> $topic_subs subscribers, 100 B" topic r-topic rate deliv/s 0
    cmp_row "latency at 1,000 msg/s p50 (lower better)" latency r-latency p50_us us 1
    cmp_row "latency at 1,000 msg/s p99 (lower better)" latency r-latency p99_us us 1
    cmp_row "request/reply /temp-queue/, 10 requesters" rpc r-rpc rate trips/s 0
    cmp_row "1,000 conns: resident/conn (lower better)" conns r-conns rss_per_conn_bytes B 0
    cmp_row "1,000 conns: connect rate" conns r-conns connect_rate conn/s 0
    cmp_row "1,000 conns: one message to all (lower b.)" conns r-conns fanout_us_avg us 0
    cmp_row "start to CONNECTED (lower better)" startup r-startup start_ms ms 1
    echo
    echo "notes:"
    echo "- ratios compare runs taken side by side in this one invocation; absolute figures vary with" \
        "the machine's other load. stompd/RabbitMQ > 1 means stompd is ahead on throughput rows," \
        "behind on 'lower better' rows."
    echo "- messages per run, stompd / RabbitMQ: queue 1P/1C $(fmt $n_queue 0) / $(fmt $r_queue 0);" \
        "4P/4C $(fmt $n_queue4 0) / $(fmt $r_queue4 0) per producer; persistent $(fmt $n_persist 0) /" \
        "$(fmt $r_persist 0); topic $(fmt $n_topic 0) / $(fmt $r_topic 0) x $topic_subs; latency" \
        "$(fmt $n_latency 0) both; request/reply $(fmt $n_rpc 0) / $(fmt $r_rpc 0) per requester. RabbitMQ gets fewer so that a run takes seconds, not minutes."
    echo "- connections: 1,000 on both sides, not 10,000: RabbitMQ opens a few hundred per second here" \
        "and holds about 200 KB each$([ -n "$maxconn_opt" ] || echo "; stompd has no connection-limit option yet")."
    echo "- persistent: stompd with the SQLite store, --sync full; RabbitMQ: durable queue," \
        "persistent:true, a RECEIPT per SEND (sent once the message is confirmed)."
    echo "- start-up: exec to the first CONNECTED on a fresh connection, median of 3 starts each;" \
        "RabbitMQ's on empty data folders."
    if [ -s "$work/other-failures" ]; then
        echo "- RabbitMQ runs that failed:"
        sed 's/^/  /' "$work/other-failures"
    fi
    if [ -s "$work/misbehaviour" ]; then
        echo "stompd misbehaviour seen:"
        sed 's/^/- /' "$work/misbehaviour"
    else
        echo "- no stompd misbehaviour seen (every run verified: no loss, duplicates or errors)."
    fi
    [ ! -s "$work/misbehaviour" ]
}

finish() {
    stop_rabbitmq
    stop_epmd
    cleanup
}
trap finish EXIT
trap 'exit 130' INT TERM

compare
