#!/bin/sh
# run.sh: what `make bench` runs: the codec micro-benchmark, then the broker table (a fresh stompd
# on loopback per run, each scenario 3 times: median, spread, target, met). compare.sh sources it.
# Usage: sh contrib/bench/run.sh BUILDDIR [NAME...]   (NAME: frames, broker, tls, admin; default all)
set -eu

build=${1:?usage: run.sh BUILDDIR [NAME...]}
shift

runs=3            # runs per figure; the figure is their median
lg_timeout=30     # loadgen --timeout for one run, seconds
pids=""           # every process this script started and has not yet stopped
work=""
keep_work=0

# ---------------------------------------------------------------------------------------
# Processes: each one started here is recorded in $pids and ended by its pid, never by name.

cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    for p in $pids; do
        wait "$p" 2>/dev/null || true
    done
    pids=""
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ "$keep_work" = 1 ]; then
            echo "logs of the failed runs kept in $work"
        else
            rm -rf "$work"
        fi
    fi
}

forget_pid() {
    pids=$(echo " $pids " | sed "s/ $1 / /; s/^ *//; s/ *$//")
}

# raise_fd_limit: as many open files as allowed (10,000 connections need more than 1024).
raise_fd_limit() {
    ulimit -n 65536 2>/dev/null && return 0
    hard=$(ulimit -H -n)
    [ "$hard" = unlimited ] && hard=65536
    ulimit -n "$hard" 2>/dev/null || true
}

# start_server KIND LOG [ARGS...]: start a fresh stompd (KIND stompd) or relay (KIND relay)
# on 127.0.0.1 port 0; sets $spid and $sport (read from its output). Fails if it does not
# listen within 5 s.
start_server() {
    kind=$1 log=$2
    shift 2
    case $kind in
        stompd) set -- "$build/stompd" --host 127.0.0.1 --port 0 "$@" ;;
        relay) set -- "$build/bench/relay" --host 127.0.0.1 --port 0 "$@" ;;
    esac
    : >"$log.out"
    : >"$log.err"
    spid=""
    "$@" >"$log.out" 2>"$log.err" </dev/null &
    spid=$!
    pids="$pids $spid"
    sport=""
    n=0
    while [ $n -lt 500 ]; do
        sport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
            "$log.out" "$log.err" | head -n 1)
        [ -n "$sport" ] && return 0
        kill -0 "$spid" 2>/dev/null || return 1
        sleep 0.01
        n=$((n + 1))
    done
    return 1
}

# stop_server: SIGTERM to $spid, wait up to 5 s, then SIGKILL. Sets $problem to what went
# wrong, if anything (a server that had already died, or one that ignored SIGTERM).
stop_server() {
    problem=""
    if [ "$(zombie "$spid")" = yes ] || ! kill -0 "$spid" 2>/dev/null; then
        st=0
        wait "$spid" 2>/dev/null || st=$?
        problem="exited during the run (status $st)"
    else
        kill "$spid" 2>/dev/null || true
        n=0
        while [ "$(zombie "$spid")" = no ] && [ $n -lt 500 ]; do
            sleep 0.01
            n=$((n + 1))
        done
        if [ $n -ge 500 ]; then
            kill -9 "$spid" 2>/dev/null || true
            problem="ignored SIGTERM for 5 s, killed"
        fi
        st=0
        wait "$spid" 2>/dev/null || st=$?
        if [ -z "$problem" ] && [ "$st" -ne 0 ]; then
            problem="exit status $st after SIGTERM"
        fi
    fi
    forget_pid "$spid"
}

# zombie PID: yes when the process has exited (or is gone), no while it runs.
zombie() {
    if grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null || [ ! -e "/proc/$1" ]; then
        echo yes
    else
        echo no
    fi
}

# ---------------------------------------------------------------------------------------
# Runs. Each run leaves $work/TAG.I: the loadgen result line, or "FAILED: reason". After a
# failed run the TAG gets no more runs (TAG.failed), so a broken scenario costs one timeout.

# lg_run TAG I SERVER LOADGEN_ARGS...: one bounded loadgen run against a fresh server.
# SERVER: relay | mem | sqlite-full | sqlite-normal | port:N (a server already running;
# its pid for --pid comes from $ext_pid).
lg_run() {
    tag=$1 i=$2 server=$3
    shift 3
    out=$work/$tag.$i
    [ -e "$work/$tag.failed" ] && return 0
    log=$work/$tag.$i.server
    started=0
    case $server in
        relay) start_server relay "$log" && started=1 ;;
        mem) start_server stompd "$log" && started=1 ;;
        mem-maxconn) start_server stompd "$log" "$maxconn_opt" 12000 && started=1 ;;
        mem-nodelay) start_server stompd "$log" --set redelivery_delay=0 && started=1 ;;
        sqlite-default)
            start_server stompd "$log" --store "sqlite:$work/$tag.$i.db" && started=1 ;;
        sqlite-*)
            start_server stompd "$log" --store "sqlite:$work/$tag.$i.db" \
                --sync "${server#sqlite-}" && started=1 ;;
        port:*) sport=${server#port:} started=2 ;;
    esac
    if [ "$started" = 0 ]; then
        echo "FAILED: server did not start ($(tail -n 1 "$log.err" 2>/dev/null))" >"$out"
        [ "$server" = relay ] || misbehaviour "$tag run $i: stompd did not start: $(tail -n 1 "$log.err" 2>/dev/null)"
        touch "$work/$tag.failed"
        keep_work=1
        [ -z "$spid" ] || stop_server
        return 0
    fi
    case " $* " in
        *" --pid "*) set -- "$@" "${ext_pid:-$spid}" ;;
    esac
    lg_st=0
    timeout -k 5 $((lg_timeout + 15)) "$build/bench/loadgen" --host 127.0.0.1 --port "$sport" \
        --timeout "$lg_timeout" $lg_login "$@" >"$out.line" 2>"$out.err" || lg_st=$?
    problem=""
    io_wb=""
    case $server in
        sqlite-*) io_wb=$(sed -n 's/^write_bytes: *//p' "/proc/$spid/io" 2>/dev/null || true) ;;
    esac
    if [ "$started" = 1 ]; then
        stop_server
    fi
    line=$(grep 'result=' "$out.line" | tail -n 1)
    [ -z "$io_wb" ] || line=$(with_write_bytes "$line" "$io_wb")
    res=$(echo "$line" | sed -n 's/.* result=\([A-Z_]*\).*/\1/p')
    if [ "$lg_st" -eq 0 ] && { [ "$res" = OK ] || [ "$res" = OK_UNORDERED ]; } && [ -z "$problem" ]; then
        echo "$line" >"$out"
    else
        why=${res:-no result}
        [ "$lg_st" -eq 124 ] || [ "$lg_st" -eq 137 ] && why="killed after $((lg_timeout + 15)) s"
        [ -n "$problem" ] && why="$why; server $problem"
        echo "FAILED: $why" >"$out"
        detail=$(grep -v '^scenario=' "$out.err" | tr '\n' ' ' | cut -c 1-300)
        touch "$work/$tag.failed"
        keep_work=1
        case $server in
            relay | port:*) echo "$tag run $i: $(cat "$out"): $detail" >>"$work/other-failures" ;;
            *) misbehaviour "$tag run $i ($*): $(cat "$out"): $detail" ;;
        esac
    fi
}

# backlog_run TAG I LOADGEN_ARGS...: on one fresh stompd, a backlog of $n_backlog messages
# left by loadgen --fill, then taken by --drain: the drain's result is the run's.
backlog_run() {
    btag=$1 bi=$2 # lg_run sets tag and i
    shift 2
    [ -e "$work/$btag.failed" ] && return 0
    if ! start_server stompd "$work/$btag.$bi.server"; then
        echo "FAILED: server did not start" >"$work/$btag.$bi"
        touch "$work/$btag.failed"
        misbehaviour "$btag run $bi: stompd did not start"
        [ -z "$spid" ] || stop_server
        return 0
    fi
    bpid=$spid bport=$sport ext_pid=$spid
    set -- --scenario queue -n "$n_backlog" -s 100 --dest /queue/backlog "$@"
    lg_run "$btag-fill" "$bi" "port:$bport" "$@" --fill
    lg_run "$btag" "$bi" "port:$bport" "$@" --drain
    spid=$bpid ext_pid=""
    stop_server
    [ -z "$problem" ] || misbehaviour "$btag run $bi: stompd $problem"
}

# misbehaviour TEXT: remembered for the notes under the table.
misbehaviour() {
    echo "$1" >>"$work/misbehaviour"
}

# startup_run TAG I: exec-to-CONNECTED time of a fresh stompd, by the helper below.
startup_run() {
    out=$work/$1.$2
    [ -e "$work/$1.failed" ] && return 0
    if ! timeout -k 2 20 "$python" "$work/startup.py" --pidfile "$work/$1.$2.pid" --timeout 5 \
        -- "$build/stompd" --host 127.0.0.1 --port '{port}' >"$out.line" 2>"$out.err"; then
        echo "FAILED: $(tail -n 1 "$out.err")" >"$out"
        touch "$work/$1.failed"
        misbehaviour "$1 run $2: $(cat "$out")"
        return 0
    fi
    cp "$out.line" "$out"
}

# The start-up probe: spawns the command (in its own session), connects to 127.0.0.1:PORT
# every 0.2 ms until a TCP connect succeeds and the CONNECT gets CONNECTED, prints
# start_ms=<exec to CONNECTED> pid=<pid>; stops the process unless --keep.
write_startup_probe() {
    cat >"$work/startup.py" <<'EOF'
import argparse, os, signal, socket, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--login", default="")
ap.add_argument("--passcode", default="")
ap.add_argument("--timeout", type=float, default=5)
ap.add_argument("--pidfile", default="")
ap.add_argument("--log", default=os.devnull)
ap.add_argument("--keep", action="store_true")
ap.add_argument("argv", nargs="+")
a = ap.parse_args()

port = a.port
if port == 0:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
argv = [x.replace("{port}", str(port)) for x in a.argv]
connect = b"CONNECT\naccept-version:1.2\nhost:localhost\n"
if a.login:
    connect += b"login:%s\npasscode:%s\n" % (a.login.encode(), a.passcode.encode())
connect += b"\n\0"

log = open(a.log, "ab")
t0 = time.monotonic()
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     start_new_session=True)
if a.pidfile:
    with open(a.pidfile, "w") as f:
        f.write("%d\n" % p.pid)

def fail(why):
    if not a.keep and p.poll() is None:
        p.kill()
        p.wait()
    print("start: " + why, file=sys.stderr)
    sys.exit(1)

signal.signal(signal.SIGTERM, lambda *_: fail("interrupted"))
deadline = t0 + a.timeout
while True:
    if time.monotonic() > deadline:
        fail("not accepting connections after %g s" % a.timeout)
    if p.poll() is not None:
        fail("exited with status %d before accepting connections" % p.returncode)
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        time.sleep(0.0002)
        continue
    try:
        c.settimeout(max(0.1, deadline - time.monotonic()))
        c.sendall(connect)
        buf = b""
        while b"\0" not in buf:
            chunk = c.recv(4096)
            if not chunk:
                break
            buf += chunk
    except OSError:
        buf = b""
    c.close()
    if buf.startswith(b"CONNECTED"):
        break
    if b"\0" in buf:
        fail("answered CONNECT with %r" % buf[:60])
    time.sleep(0.0002)
ms = (time.monotonic() - t0) * 1000
print("start_ms=%.2f pid=%d port=%d result=OK" % (ms, p.pid, port))
sys.stdout.flush()
if not a.keep:
    p.terminate()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
EOF
}

# ---------------------------------------------------------------------------------------
# Figures. Values of KEY over the runs of TAG: median, min, max (or a FAILED/skipped text).

kv() { # kv KEY FILE: the value of KEY in a result line
    sed -n "s/^\(.* \)\{0,1\}$1=\([^ ]*\).*/\2/p" "$2" | head -n 1
}

# stats TAG KEY [SCALE]: "median min max" of KEY (times SCALE) over the runs, or one line
# starting with FAILED or skipped.
stats() {
    tag=$1 key=$2 scale=${3:-1}
    if [ -e "$work/$tag.skip" ]; then
        cat "$work/$tag.skip"
        return 0
    fi
    for f in "$work/$tag".[0-9]; do
        [ -e "$f" ] || continue
        if grep -q '^FAILED' "$f"; then
            cat "$f"
            return 0
        fi
    done
    for f in "$work/$tag".[0-9]; do
        [ -e "$f" ] && kv "$key" "$f"
    done | awk -v s="$scale" '{ v[NR] = $1 * s }
        END {
            if (NR == 0) { print "FAILED: no run"; exit }
            for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++)
                if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.6g %.6g %.6g\n", m, v[1], v[NR]
        }'
}

# ratio_stats TAG_A TAG_B KEY: "median min max" of the per-run ratios A/B (run i of A was
# measured next to run i of B, so they share the machine's noise).
ratio_stats() {
    a=$(stats "$1" "$3")
    b=$(stats "$2" "$3")
    case "$a $b" in
        FAILED* | skipped* | *" FAILED"* | *" skipped"*)
            echo "n/a (a side has no figure)"
            return 0 ;;
    esac
    r=1
    while [ $r -le $runs ]; do
        if [ -e "$work/$1.$r" ] && [ -e "$work/$2.$r" ]; then
            echo "$(kv "$3" "$work/$1.$r") $(kv "$3" "$work/$2.$r")"
        fi
        r=$((r + 1))
    done | awk '$2 > 0 { v[++n] = $1 / $2 }
        END {
            if (n == 0) { print "n/a"; exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%.6g %.6g %.6g\n", m, v[1], v[n]
        }'
}

# fmt VALUE DECIMALS: thousands separators.
fmt() {
    awk -v v="$1" -v d="$2" 'BEGIN {
        s = sprintf("%." d "f", v); neg = (s ~ /^-/); if (neg) s = substr(s, 2)
        i = index(s, "."); ip = i ? substr(s, 1, i - 1) : s; fp = i ? substr(s, i) : ""
        o = ""; while (length(ip) > 3) { o = "," substr(ip, length(ip) - 2) o
            ip = substr(ip, 1, length(ip) - 3) }
        print (neg ? "-" : "") ip o fp }'
}

# met VALUE CMP TARGET: yes or no.
met() {
    awk -v v="$1" -v c="$2" -v t="$3" 'BEGIN {
        ok = (c == ">=") ? (v >= t) : (v <= t); print ok ? "yes" : "NO" }'
}

# row LABEL TAG KEY UNIT DECIMALS CMP TARGET [SCALE]: one table line. CMP "-" = no target.
row() {
    label=$1 tag=$2 key=$3 unit=$4 dec=$5 cmp=$6 target=$7 scale=${8:-1}
    st=$(stats "$tag" "$key" "$scale")
    tgt="-"
    [ "$cmp" != - ] && tgt="$cmp $(fmt "$target" "$dec") $unit"
    case $st in
        FAILED* | skipped* | n/a*)
            ok="-"
            case $st in FAILED*) [ "$cmp" = - ] || ok=NO ;; esac
            printf '%-46s %-44s %-20s %s\n' "$label" "$st" "$tgt" "$ok"
            return 0 ;;
    esac
    set -- $st
    fig="$(fmt "$1" "$dec") $unit"
    spread="$(fmt "$2" "$dec")-$(fmt "$3" "$dec")"
    ok="-"
    [ "$cmp" != - ] && ok=$(met "$1" "$cmp" "$target")
    printf '%-46s %-20s %-23s %-20s %s\n' "$label" "$fig" "$spread" "$tgt" "$ok"
}

# ratio_row LABEL TAG_A TAG_B KEY CMP TARGET_PERCENT
ratio_row() {
    st=$(ratio_stats "$2" "$3" "$4")
    tgt="$5 $6 %"
    case $st in
        n/a*)
            printf '%-46s %-44s %-20s %s\n' "$1" "$st" "$tgt" NO
            return 0 ;;
    esac
    set -- "$1" "$5" "$6" $st
    printf '%-46s %-20s %-23s %-20s %s\n' "$1" "$(fmt "$(echo "$4" | awk '{ print $1 * 100 }')" 0) %" \
        "$(fmt "$(echo "$5" | awk '{ print $1 * 100 }')" 0)-$(fmt "$(echo "$6" | awk '{ print $1 * 100 }')" 0) %" \
        "$tgt" "$(met "$(echo "$4" | awk '{ print $1 * 100 }')" "$2" "$3")"
}

table_header() {
    printf '%-46s %-20s %-23s %-20s %s\n' scenario "median of $runs" "spread (min-max)" target met
    printf '%-46s %-20s %-23s %-20s %s\n' ---------------------------------------------- \
        -------------------- ----------------------- -------------------- ---
}

# ---------------------------------------------------------------------------------------
# What this stompd can do, from its --help.

detect_options() {
    help=$("$build/stompd" --help 2>&1 || true)
    has_store=0 sync_opt="" maxconn_opt=""
    echo "$help" | grep -q -- '--store' && has_store=1
    echo "$help" | grep -q -- '--sync' && sync_opt=--sync
    maxconn_opt=$(echo "$help" | grep -o -- '--max-conn[a-z-]*' | head -n 1 || true)
    lg_login=""
}

setup_work() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/stompd-bench.XXXXXX")
    : >"$work/misbehaviour"
    python=$(command -v python3 || true)
    write_startup_probe
}

# ---------------------------------------------------------------------------------------
# Scenario sizes: each run takes a few seconds at its target rate. BENCH_SCALE=N divides
# them (a quick look; the figures get noisier).

scale=${BENCH_SCALE:-1}
n_queue=$((4000000 / scale))   # queue 1P/1C 100 B
n_queue4=$((400000 / scale))   # per producer, queue 4P/4C 1 KiB
n_persist=$((400000 / scale))  # persistent 1P/1C 1 KiB
n_topic=$((80000 / scale))     # topic 1 -> 50: 4,000,000 deliveries
n_topicsel=$((8000 / scale))   # topic 1 -> 1,000 selectors, half taking: 4,000,000 deliveries
topic_wild=10000               # wildcard patterns held by the 50 subscribers (one matches each)
n_latency=$((10000 / scale))   # latency at 1,000 msg/s: 10 s
n_dlq=$((100000 / scale))      # dead-lettering: each NACKed 10 times (max_deliveries)
n_backlog=$((1000000 / scale)) # a backlog drained: plain, and priorities 0-9
topic_subs=50
n_rpc=$((20000 / scale))       # request/reply: per requester, 10 requesters, one awaited each

# conns_count: 10,000 when stompd has a connection-limit option, else 1,000 (its default
# limit is below 10,000).
conns_count() {
    if [ -n "$maxconn_opt" ]; then echo 10000; else echo 1000; fi
}

bench_frames() {
    "$build/bench/frames" ${BENCH_SECONDS:+-t "$BENCH_SECONDS"}
}

bench_broker() {
    [ -x "$build/stompd" ] || { echo "no $build/stompd"; return 1; }
    setup_work
    detect_options
    raise_fd_limit
    m=$(conns_count)
    conns_args="--scenario conns -m $m --pid"
    conns_server=mem
    if [ -n "$maxconn_opt" ]; then
        conns_server=mem-maxconn
    fi
    echo "stompd: $("$build/stompd" --version 2>&1 | head -n 1); $runs runs per figure, fresh server per run; open-file limit $(ulimit -n)"
    echo "loadgen timeout ${lg_timeout} s per run; this machine's other load shows up in every figure"
    echo

    i=1
    while [ $i -le $runs ]; do
        echo "run $i of $runs ..." >&2
        lg_run relay-q1 $i relay --scenario queue -p 1 -c 1 -n $n_queue -s 100
        lg_run q1 $i mem --scenario queue -p 1 -c 1 -n $n_queue -s 100
        lg_run q4 $i mem --scenario queue -p 4 -c 4 -n $n_queue4 -s 1024 --ack client-individual
        lg_run persist-mem $i mem --scenario persistent -n $n_persist -s 1024
        lg_run dlq $i mem-nodelay --scenario queue -p 1 -c 1 -n $n_dlq -s 100 --nack-all
        backlog_run backlog $i
        backlog_run backlog-prio $i --priorities
        if [ $has_store = 1 ]; then
            if [ -n "$sync_opt" ]; then
                lg_run persist-full $i sqlite-full --scenario persistent -n $n_persist -s 1024
                lg_run persist-normal $i sqlite-normal --scenario persistent -n $n_persist -s 1024
            else
                lg_run persist-default $i sqlite-default --scenario persistent -n $n_persist -s 1024
            fi
        fi
        lg_run topic $i mem --scenario topic -k $topic_subs -n $n_topic -s 100
        lg_run topic-sel $i mem --scenario topic -k 1000 --selectors -n $n_topicsel -s 100
        lg_run topic-wild $i mem --scenario topic -k $topic_subs --wildcards $topic_wild \
            -n $n_topic -s 100
        lg_run latency $i mem --scenario latency --rate 1000 -n $n_latency -s 100
        lg_run rpc $i mem --scenario rpc -p 10 -c 1 -n $n_rpc -s 100 --dest /queue/requests
        lg_run conns $i $conns_server $conns_args
        startup_run startup $i
        machine_runs $i
        i=$((i + 1))
    done
    [ $has_store = 1 ] || for t in persist-full persist-normal; do
        echo "skipped: stompd has no --store option" >"$work/$t.skip"
    done
    [ $has_store = 1 ] && [ -z "$sync_opt" ] && for t in persist-full persist-normal; do
        echo "skipped: stompd has no --sync option" >"$work/$t.skip"
    done
    [ -n "$python" ] || echo "skipped: no python3 for the start-up probe" >"$work/startup.skip"

    table_header
    row "queue 1P/1C 100 B auto: relay (ceiling)" relay-q1 rate msg/s 0 - 0
    row "queue 1P/1C 100 B auto ack" q1 rate msg/s 0 ">=" 1000000
    ratio_row "  stompd / relay, same run" q1 relay-q1 rate ">=" 40
    row "queue 4P/4C 1 KiB client-individual, ACK each" q4 rate msg/s 0 ">=" 400000
    row "persistent 1P/1C 1 KiB receipts, memory store" persist-mem rate msg/s 0 - 0
    row "dead-lettering 100 B: NACKed 10 times each" dlq rate msg/s 0 - 0
    row "backlog of $(fmt "$n_backlog" 0) x 100 B: drain, one priority" backlog rate msg/s 0 - 0
    row "  the same, priorities 0-9 mixed" backlog-prio rate msg/s 0 - 0
    ratio_row "  mixed / one priority, same run" backlog-prio backlog rate ">=" 50
    if [ $has_store = 1 ] && [ -z "$sync_opt" ]; then
        row "persistent 1P/1C 1 KiB receipts, SQLite" persist-default rate msg/s 0 - 0
    fi
    row "persistent 1P/1C 1 KiB receipts, SQLite full" persist-full rate msg/s 0 ">=" 100000
    row "persistent 1P/1C 1 KiB receipts, SQLite normal" persist-normal rate msg/s 0 - 0
    row "topic 1 -> $topic_subs subscribers, 100 B" topic rate deliv/s 0 ">=" 2000000
    row "topic 1 -> 1,000 selectors (half take), 100 B" topic-sel rate deliv/s 0 - 0
    row "topic 1 -> $topic_subs by wildcard, $(fmt $topic_wild 0) patterns" topic-wild rate deliv/s 0 - 0
    ratio_row "  wildcards / plain topic, same run" topic-wild topic rate ">=" 80
    row "latency at 1,000 msg/s, 100 B: p50" latency p50_us us 1 "<=" 60
    row "latency at 1,000 msg/s, 100 B: p99" latency p99_us us 1 "<=" 200
    row "latency at 1,000 msg/s, 100 B: p99.9" latency p999_us us 1 - 0
    row "request/reply via /temp-queue/: 10 req, 1 resp" rpc rate trips/s 0 - 0
    row "$(fmt "$m" 0) connections subscribed: resident/conn" conns rss_per_conn_bytes B 0 "<=" 4096
    row "$(fmt "$m" 0) connections: connect rate" conns connect_rate conn/s 0 ">=" 10000
    row "$(fmt "$m" 0) connections: one message to all" conns fanout_us_avg us 0 - 0
    row "start to accepting connections (CONNECTED)" startup start_ms ms 2 "<=" 20
    echo
    machine_rows
    echo
    bench_notes
    [ ! -s "$work/misbehaviour" ] && ! ls "$work"/*.failed >/dev/null 2>&1
}

# bench_notes: how the figures were taken, and anything the broker did wrong.
bench_notes() {
    echo "notes:"
    echo "- messages per run: queue 1P/1C $(fmt $n_queue 0); 4P/4C $(fmt $n_queue4 0) per producer;" \
        "persistent $(fmt $n_persist 0); topic $(fmt $n_topic 0) x $topic_subs; selectors" \
        "$(fmt $n_topicsel 0) x 500; latency $(fmt $n_latency 0)."
    if [ -z "$maxconn_opt" ]; then
        echo "- connections: $(fmt "$m" 0), not 10,000: stompd has no connection-limit option" \
            "(its default limit is below 10,000)."
    fi
    [ $has_store = 1 ] || echo "- skipped: stompd has no --store option (SQLite rows)."
    [ $has_store = 1 ] && [ -z "$sync_opt" ] && echo "- skipped: stompd has no --sync option (full/normal rows)."
    echo "- start-up: exec of stompd to the first TCP connect answered with CONNECTED, probed every" \
        "0.2 ms by python3 (a few tenths of a ms of probe overhead included)."
    echo "- resident/conn: the broker's VmRSS after all connections subscribed minus before, divided by" \
        "the count."
    echo "- this machine's other load is in every figure: compare figures (and the relay ratio) only" \
        "within one run of this script."
    echo "- dead-lettering and mixed priorities deliver out of order by design (NACKed messages come" \
        "back later; higher priorities go first): their runs check only for loss and duplicates."
    grep -l 'OK_UNORDERED' "$work"/*.[0-9] 2>/dev/null | sed 's|.*/||' |
        grep -v '^dlq\.\|^backlog-prio\.' | sed 's|^|- out-of-order deliveries (result=OK_UNORDERED): |'
    if [ -s "$work/misbehaviour" ]; then
        echo "stompd misbehaviour seen:"
        sed 's/^/- /' "$work/misbehaviour"
    else
        echo "- no stompd misbehaviour seen (every run verified: no loss, duplicates or errors)."
    fi
}

# ---------------------------------------------------------------------------------------
# TLS: the same queue run over plain TCP and over TLS on one stompd (both listeners), and the
# connection set-up rate with and without TLS handshakes. The CA and the server certificate
# are made here with the openssl command, in the work folder, and removed with it.

n_tls_q=$((1000000 / scale)) # queue 1P/1C 1 KiB, plain and TLS
tls_conns=1000

# tls_certs DIR: a throwaway CA (ca.pem) and a certificate for localhost and 127.0.0.1 signed
# by it (server.pem, server.key).
tls_certs() {
    d=$1
    mkdir -p "$d"
    ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    (
        cd "$d" &&
            openssl req -x509 $ec -days 2 -keyout ca.key -out ca.pem -subj "/CN=stompd bench CA" &&
            openssl req $ec -keyout server.key -out server.csr -subj /CN=localhost &&
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile server.ext -out server.pem
    ) >"$d/openssl.log" 2>&1
}

# tls_run TAG I plain|tls LOADGEN_ARGS...: a fresh stompd with a plain and a TLS listener,
# one loadgen run against one of them (with --pid: the broker's).
tls_run() {
    ttag=$1 ti=$2 side=$3
    shift 3
    [ -e "$work/$ttag.failed" ] && return 0
    tlog=$work/$ttag.$ti.server
    if ! start_server stompd "$tlog" --tls-listen 127.0.0.1:0 --tls-cert "$tls_dir/server.pem" \
        --tls-key "$tls_dir/server.key"; then
        echo "FAILED: stompd did not start ($(tail -n 1 "$tlog.err"))" >"$work/$ttag.$ti"
        touch "$work/$ttag.failed"
        misbehaviour "$ttag run $ti: stompd did not start: $(tail -n 1 "$tlog.err")"
        [ -z "$spid" ] || stop_server
        return 0
    fi
    tport="" n=0
    while [ -z "$tport" ] && [ $n -lt 500 ]; do
        tport=$(sed -n 's/.*tls listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tlog.out" |
            head -n 1)
        [ -n "$tport" ] || sleep 0.01
        n=$((n + 1))
    done
    tpid=$spid ext_pid=$spid
    if [ -z "$tport" ]; then
        echo "FAILED: no TLS listener" >"$work/$ttag.$ti"
        touch "$work/$ttag.failed"
        misbehaviour "$ttag run $ti: stompd printed no TLS port"
    elif [ "$side" = tls ]; then
        lg_run "$ttag" "$ti" "port:$tport" --tls-ca "$tls_dir/ca.pem" "$@"
    else
        lg_run "$ttag" "$ti" "port:$sport" "$@"
    fi
    spid=$tpid ext_pid=""
    stop_server
    [ -z "$problem" ] || misbehaviour "$ttag run $ti: stompd $problem"
}

bench_tls() {
    [ -x "$build/stompd" ] || { echo "no $build/stompd"; return 1; }
    [ -x "$build/bench/loadgen" ] || { echo "no $build/bench/loadgen"; return 1; }
    command -v openssl >/dev/null || { echo "no openssl command"; return 1; }
    if [ -n "$work" ] && [ -d "$work" ]; then # an earlier table's
        if [ "$keep_work" = 1 ]; then echo "logs of the failed runs kept in $work"; else rm -rf "$work"; fi
        keep_work=0
    fi
    setup_work
    detect_options
    raise_fd_limit
    tls_dir=$work/certs
    tls_certs "$tls_dir" || { echo "openssl failed: $(tail -n 3 "$tls_dir/openssl.log")"; return 1; }
    echo "stompd: $("$build/stompd" --version 2>&1 | head -n 1); $runs runs per figure, fresh server per run (plain and TLS listeners)"
    echo
    i=1
    while [ $i -le $runs ]; do
        echo "tls run $i of $runs ..." >&2
        tls_run tls-q-plain $i plain --scenario queue -p 1 -c 1 -n $n_tls_q -s 1024
        tls_run tls-q $i tls --scenario queue -p 1 -c 1 -n $n_tls_q -s 1024
        tls_run tls-conns-plain $i plain --scenario conns -m $tls_conns --pid
        tls_run tls-conns $i tls --scenario conns -m $tls_conns --pid
        i=$((i + 1))
    done
    table_header
    row "queue 1P/1C 1 KiB auto ack: plain TCP" tls-q-plain rate msg/s 0 - 0
    row "queue 1P/1C 1 KiB auto ack: TLS" tls-q rate msg/s 0 - 0
    ratio_row "  TLS / plain, same run" tls-q tls-q-plain rate ">=" 50
    row "$(fmt $tls_conns 0) connections: connect rate, plain" tls-conns-plain connect_rate conn/s 0 - 0
    row "$(fmt $tls_conns 0) connections: TLS handshakes/s" tls-conns connect_rate conn/s 0 - 0
    row "  resident/conn, plain" tls-conns-plain rss_per_conn_bytes B 0 - 0
    row "  resident/conn, TLS" tls-conns rss_per_conn_bytes B 0 - 0
    echo
    echo "notes:"
    echo "- TLS: $(kv tls "$work/tls-q.1" 2>/dev/null || echo '?') negotiated (stompd's defaults," \
        "loadgen's OpenSSL client defaults); server certificate P-256 ECDSA, made at run time."
    echo "- loadgen runs on the same cores and pays for its side of TLS too: the ratio is of the" \
        "whole loopback system, not of stompd alone."
    echo "- handshakes/s: TCP connect + TLS handshake + CONNECT + SUBSCRIBE (receipt) per connection," \
        "$(fmt $tls_conns 0) connections, 256 being opened at a time; no session resumption."
    [ ! -s "$work/other-failures" ] || sed 's/^/- failed: /' "$work/other-failures"
    [ ! -s "$work/misbehaviour" ] || sed 's/^/- stompd misbehaviour: /' "$work/misbehaviour"
    [ ! -s "$work/misbehaviour" ] && ! ls "$work"/*.failed >/dev/null 2>&1
}

# The management listener's cost (`make bench` runs it as "admin"): /metrics and the
# destinations list with 10,000 queues, and queue 1P/1C against the relay with the listener
# on and /metrics scraped once per second, next to the same without it.

# admin_server LOG: a fresh stompd with the management listener; sets $spid, $sport, $aport.
admin_server() {
    start_server stompd "$1" --set admin_listen=127.0.0.1:0 --set admin_open=yes \
        --set metrics_max_destinations=20000 || return 1
    aport=""
    n=0
    while [ -z "$aport" ] && [ $n -lt 500 ]; do
        aport=$(sed -n 's/.*admin listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1.out")
        [ -n "$aport" ] || sleep 0.01
        n=$((n + 1))
    done
    [ -n "$aport" ]
}

# admin_probe: N queues made by SENDs, then the median time of 20 GETs of each view.
write_admin_probe() {
    cat >"$work/admin_probe.py" <<'EOF'
import socket, statistics, sys, time, urllib.request
port, aport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
frames = b"".join(b"SEND\ndestination:/queue/bench.%d\n\nx\0" % i for i in range(n))
s.sendall(frames + b"SEND\ndestination:/queue/bench.0\nreceipt:done\n\nx\0")
buf = b""
while b"receipt-id:done" not in buf:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("closed before the receipt: %r" % buf[-200:])
    buf += chunk
def timed(path):
    ms = []
    for _ in range(20):
        t0 = time.monotonic()
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (aport, path)) as r:
            body = r.read()
        ms.append((time.monotonic() - t0) * 1000)
    return statistics.median(ms), body
m, body = timed("/metrics")
d, lst = timed("/api/destinations")
ok = lst.count(b'"/queue/bench.') == n and body.count(b'destination="/queue/bench.') >= n
print("metrics_ms=%.2f dest_ms=%.2f queues=%d result=%s" % (m, d, n, "OK" if ok else "BAD"))
s.close()
EOF
}

admin_list_run() {
    out=$work/admin-list.$1
    if [ -z "$python" ] || ! admin_server "$out.server"; then
        echo "FAILED: ${python:+stompd did not start}${python:-no python3}" >"$out"
        [ -z "$spid" ] || stop_server
        return 0
    fi
    if ! timeout -k 5 120 "$python" "$work/admin_probe.py" "$sport" "$aport" 10000 \
        >"$out.line" 2>"$out.err" || ! grep -q 'result=OK' "$out.line"; then
        echo "FAILED: $(tail -n 1 "$out.err" "$out.line" | tr '\n' ' ')" >"$out"
        misbehaviour "admin-list run $1: $(cat "$out")"
    else
        cp "$out.line" "$out"
    fi
    stop_server
}

# admin_scraped_run I: queue 1P/1C on a stompd whose /metrics is read once per second.
admin_scraped_run() {
    if ! admin_server "$work/q1-admin.$1.server"; then
        echo "FAILED: stompd did not start" >"$work/q1-admin.$1"
        [ -z "$spid" ] || stop_server
        return 0
    fi
    apid=$spid aport_run=$aport
    "$python" -c 'import sys, time, urllib.request
while True:
    urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read()
    time.sleep(1)' "$aport_run" >/dev/null 2>&1 &
    scraper=$!
    pids="$pids $scraper"
    ext_pid=$apid
    lg_run q1-admin "$1" "port:$sport" --scenario queue -p 1 -c 1 -n $n_queue -s 100
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
    forget_pid "$scraper"
    spid=$apid ext_pid=""
    stop_server
    [ -z "$problem" ] || misbehaviour "q1-admin run $1: stompd $problem"
}

bench_admin() {
    [ -x "$build/stompd" ] || { echo "no $build/stompd"; return 1; }
    setup_work
    detect_options
    write_admin_probe
    echo "stompd: $("$build/stompd" --version 2>&1 | head -n 1); $runs runs per figure; management listener on"
    echo
    i=1
    while [ $i -le $runs ]; do
        echo "admin run $i of $runs ..." >&2
        admin_list_run $i
        lg_run relay-qa $i relay --scenario queue -p 1 -c 1 -n $n_queue -s 100
        lg_run q1-plain $i mem --scenario queue -p 1 -c 1 -n $n_queue -s 100
        admin_scraped_run $i
        i=$((i + 1))
    done
    table_header
    row "10,000 queues: GET /metrics (median of 20)" admin-list metrics_ms ms 2 "<=" 50
    row "10,000 queues: GET /api/destinations" admin-list dest_ms ms 2 "<=" 50
    row "queue 1P/1C 100 B: relay (ceiling)" relay-qa rate msg/s 0 - 0
    row "  stompd, no management listener" q1-plain rate msg/s 0 - 0
    row "  stompd, /metrics scraped every second" q1-admin rate msg/s 0 - 0
    ratio_row "  relay ratio, scraped / not, same run" q1-admin q1-plain rate ">=" 95
    echo
    echo "notes:"
    echo "- the last row is (scraped / relay) / (plain / relay) with the relay run beside both: the"
    echo "  relay's figure cancels out; 95 % = within 5 % of the relay ratio without the listener."
    if [ -s "$work/misbehaviour" ]; then
        echo "stompd misbehaviour seen:"
        sed 's/^/- /' "$work/misbehaviour"
    fi
    [ ! -s "$work/misbehaviour" ] && ! ls "$work"/*.failed >/dev/null 2>&1
}

# The machine table: stompd against the relay (the loopback limit for the same traffic) in
# the same loop turn, and what memory and disk each queued or stored message costs.

n_persist4=$((100000 / scale)) # per producer, persistent 4P/4C 1 KiB
n_mem=$((1000000 / scale))     # memory: a backlog of 100 B messages, filled then drained
mem_settle=1                   # seconds between the drain's end and the resident figure

# with_write_bytes LINE BYTES: LINE plus the server's write_bytes (/proc/PID/io, read just
# before it was stopped) and that per message of the run.
with_write_bytes() {
    msgs=$(echo "$1" | sed -n 's/.* msgs=\([0-9]*\).*/\1/p')
    per=$(awk -v b="$2" -v m="${msgs:-0}" 'BEGIN { printf "%.0f", (m > 0) ? b / m : 0 }')
    echo "$1 server_write_bytes=$2 wbytes_per_msg=$per"
}

rss_kb() { # rss_kb PID: VmRSS in KiB
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null
}

# mem_run TAG I: one fresh stompd (memory store): resident memory idle, after a backlog of
# $n_mem x 100 B messages is stored (every SEND receipted), and $mem_settle s after it drains.
mem_run() {
    mtag=$1 mi=$2
    [ -e "$work/$mtag.failed" ] && return 0
    if ! start_server stompd "$work/$mtag.$mi.server"; then
        echo "FAILED: server did not start" >"$work/$mtag.$mi"
        touch "$work/$mtag.failed"
        misbehaviour "$mtag run $mi: stompd did not start"
        [ -z "$spid" ] || stop_server
        return 0
    fi
    mpid=$spid mport=$sport
    sleep 0.2
    idle=$(rss_kb "$mpid")
    set -- --scenario queue -n "$n_mem" -s 100 --dest /queue/memory
    lg_run "$mtag-fill" "$mi" "port:$mport" "$@" --fill
    full=$(rss_kb "$mpid")
    lg_run "$mtag-drain" "$mi" "port:$mport" "$@" --drain
    sleep "$mem_settle"
    drained=$(rss_kb "$mpid")
    spid=$mpid
    stop_server
    [ -z "$problem" ] || misbehaviour "$mtag run $mi: stompd $problem"
    for t in fill drain; do
        if grep -q '^FAILED' "$work/$mtag-$t.$mi" 2>/dev/null; then
            echo "FAILED: the $t run: $(cat "$work/$mtag-$t.$mi")" >"$work/$mtag.$mi"
            touch "$work/$mtag.failed"
            return 0
        fi
    done
    awk -v i="$idle" -v f="$full" -v d="$drained" -v n="$n_mem" 'BEGIN {
        printf "rss_idle_kb=%d rss_full_kb=%d rss_drained_kb=%d held_per_msg=%.1f", i, f, d,
            (f - i) * 1024 / n - 100
        printf " drained_over_idle=%.3f result=OK\n", d / i }' >"$work/$mtag.$mi"
}

# Each relay run right after a stompd run of the same scenario, so that the two share the
# machine's load of the moment (queue 1P/1C has its pair in the main table already).
machine_runs() {
    lg_run m-q4 $1 mem --scenario queue -p 4 -c 4 -n $n_queue4 -s 1024 --ack client-individual
    lg_run relay-q4 $1 relay --scenario queue -p 4 -c 4 -n $n_queue4 -s 1024 --ack client-individual
    if [ -n "$sync_opt" ]; then
        lg_run m-persist $1 sqlite-full --scenario persistent -n $n_persist -s 1024
        lg_run relay-persist $1 relay --scenario persistent -n $n_persist -s 1024
        lg_run persist-full4 $1 sqlite-full --scenario persistent -p 4 -c 4 -n $n_persist4 -s 1024
        lg_run relay-persist4 $1 relay --scenario persistent -p 4 -c 4 -n $n_persist4 -s 1024
    fi
    lg_run m-topic $1 mem --scenario topic -k $topic_subs -n $n_topic -s 100
    lg_run relay-topic $1 relay --scenario topic -k $topic_subs -n $n_topic -s 100
    lg_run m-latency $1 mem --scenario latency --rate 1000 -n $n_latency -s 100
    lg_run relay-latency $1 relay --scenario latency --rate 1000 -n $n_latency -s 100
    mem_run memory $1
}

# vs_row LABEL TAG TAG_RELAY KEY UNIT CMP TARGET: stompd and relay medians (spreads), the
# median of the per-run ratios stompd/relay (spread), the target for that ratio, met.
vs_row() {
    a=$(stats "$2" "$4") b=$(stats "$3" "$4") r=$(ratio_stats "$2" "$3" "$4")
    case "$a|$b|$r" in
        FAILED* | *"|FAILED"* | skipped* | *"|skipped"* | *"|n/a"*)
            printf '%-40s %-s\n' "$1" "stompd: $a; relay: $b"
            printf '%-40s %-83s %-7s %s\n' "" "" "$6 $7" NO
            return 0 ;;
    esac
    set -- "$1" "$5" "$6" "$7" $a $b $r
    printf '%-40s %-32s %-32s %-17s %-7s %s\n' "$1" \
        "$(fmt "$5" 0) ($(fmt "$6" 0)-$(fmt "$7" 0))" "$(fmt "$8" 0) ($(fmt "$9" 0)-$(fmt "${10}" 0))" \
        "$(fmt "${11}" 2) ($(fmt "${12}" 2)-$(fmt "${13}" 2))" "$3 $4" "$(met "${11}" "$3" "$4")"
}

machine_rows() {
    echo "stompd against the relay (the loopback limit: SEND -> MESSAGE, receipts, ACKs accepted)," \
        "each relay run right after its stompd run; median of $runs (min-max)"
    printf '%-40s %-32s %-32s %-17s %-7s %s\n' path stompd relay ratio target met
    printf '%-40s %-32s %-32s %-17s %-7s %s\n' ---------------------------------------- \
        -------------------------------- -------------------------------- ----------------- ------- ---
    vs_row "queue 1P/1C 100 B auto, msg/s" q1 relay-q1 rate msg/s ">=" 0.85
    vs_row "queue 4P/4C 1 KiB c-individual, msg/s" m-q4 relay-q4 rate msg/s ">=" 0.50
    vs_row "persistent 1 KiB receipts full 1P/1C" m-persist relay-persist rate msg/s ">=" 0.20
    vs_row "persistent 1 KiB receipts full 4P/4C" persist-full4 relay-persist4 rate msg/s ">=" 0.30
    vs_row "topic 1 -> $topic_subs, 100 B, deliveries/s" m-topic relay-topic rate deliv/s ">=" 1.0
    vs_row "latency at 1,000 msg/s, p99 us" m-latency relay-latency p99_us us "<=" 1.2
    echo
    table_header
    row "memory store: held per queued 100 B msg" memory held_per_msg B 0 "<=" 48
    row "  resident: idle" memory rss_idle_kb KiB 0 - 0
    row "  resident: $(fmt $n_mem 0) queued" memory rss_full_kb KiB 0 - 0
    row "  resident: ${mem_settle} s after they drain" memory rss_drained_kb KiB 0 - 0
    row "  drained / idle" memory drained_over_idle x 2 "<=" 2
    row "SQLite full 1P/1C 1 KiB: written per msg" m-persist wbytes_per_msg B 0 "<=" 2048
    row "SQLite full 4P/4C 1 KiB: written per msg" persist-full4 wbytes_per_msg B 0 "<=" 2048
    echo "- held per queued message: the broker's VmRSS with $(fmt $n_mem 0) x 100 B messages" \
        "queued (each SEND receipted) minus VmRSS idle, divided by the count, minus the 100 B body."
    echo "- written per message: write_bytes of /proc/PID/io (what the broker sent to the disk:" \
        "WAL, database, checkpoints) read when the run ends, divided by the messages; the target is" \
        "2x the 1 KiB payload. This disk takes about 557 MB/s sequential."
}

[ "${BENCH_LIBRARY:-0}" = 1 ] && return 0

trap cleanup EXIT
trap 'exit 130' INT TERM

[ $# -gt 0 ] || set -- frames broker tls admin # the default list, in running order
failed=""
for name in "$@"; do
    echo "== $name"
    if ! command -v "bench_$name" >/dev/null 2>&1; then
        echo "run.sh: no benchmark called '$name'" >&2
        failed="$failed $name"
        continue
    fi
    if ! "bench_$name"; then
        failed="$failed $name"
    fi
    echo
done

if [ -n "$failed" ]; then
    echo "failed:$failed"
    exit 1
fi
