# postgres.sh: the PostgreSQL rows of `make bench` (sourced by run.sh; `bench_postgres`).
# A private PostgreSQL server (Debian's postgresql package, default settings, fsync on, a
# unix socket in a temporary directory) and, per run, a fresh database with: one stompd
# under loadgen's persistent scenario; then three stompd nodes on one database, each under
# its own loadgen at once (its own queue). Each node's /metrics gives its database round
# trips (stompd_store_round_trips_total: pipelines sent), divided by the messages sent.

n_pg=$((40000 / scale)) # persistent 1P/1C 1 KiB, per node

pg_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# pg_as CMD...: postgres refuses to run as root: as nobody then.
pg_as() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"
    else
        "$@"
    fi
}

# pg_start: initdb and start the server; sets $pgbin, $pgdir, $pgpid. Fails if it does
# not answer within 60 s.
pg_start() {
    pgbin=$(pg_bindir)
    [ -n "$pgbin" ] || return 1
    pgdir=$(mktemp -d /tmp/stompd-pgbench.XXXXXX) # short: the socket's path
    [ "$(id -u)" = 0 ] && chown nobody "$pgdir"
    pg_as "$pgbin/initdb" -D "$pgdir/data" -U stompd -A trust -E UTF8 --locale=C \
        >"$work/pg-initdb.log" 2>&1 || return 1
    # A simple command in the background (setpriv execs it), so that $! is the server.
    set -- "$pgbin/postgres" -D "$pgdir/data" -c "unix_socket_directories=$pgdir" \
        -c listen_addresses=
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@" \
            >"$work/pg.log" 2>&1 </dev/null &
    else
        "$@" >"$work/pg.log" 2>&1 </dev/null &
    fi
    pgpid=$!
    pids="$pids $pgpid"
    n=0
    until "$pgbin/pg_isready" -q -h "$pgdir" -U stompd -d postgres; do
        n=$((n + 1))
        [ $n -lt 600 ] && kill -0 "$pgpid" 2>/dev/null || return 1
        sleep 0.1
    done
}

pg_stop() {
    [ -n "${pgpid:-}" ] || return 0
    kill -INT "$pgpid" 2>/dev/null || true # fast shutdown
    wait "$pgpid" 2>/dev/null || true
    forget_pid "$pgpid"
    pgpid=""
    rm -rf "$pgdir"
}

# pg_rt ADMINPORT: that node's stompd_store_round_trips_total.
pg_rt() {
    "$python" -c 'import sys, urllib.request
for l in urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10):
    l = l.decode()
    if l.startswith("stompd_store_round_trips_total "):
        print(l.split()[1])' "$1"
}

# pg_node DB LOG: a stompd on database DB with its management API; sets $spid, $sport and
# $aport.
pg_node() {
    start_server stompd "$2" --store "postgres:host=$pgdir user=stompd dbname=$1" \
        --set admin_listen=127.0.0.1:0 --set admin_open=yes || return 1
    aport=$(sed -n 's/.*admin listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$2.out" |
        head -n 1)
    [ -n "$aport" ]
}

# pg_run I NODES: one run: NODES stompd on a fresh database, one loadgen each at once.
# Leaves $work/pgN.I (aggregate: rate, rt_per_msg) and $work/pgN-node.I (one node's line).
pg_run() {
    i=$1 nn=$2 tag=pg$2
    [ -e "$work/$tag.failed" ] && return 0
    "$pgbin/createdb" -h "$pgdir" -U stompd "b$nn$i" || { echo "FAILED: createdb" >"$work/$tag.$i"; return 0; }
    k=1 nodes=""
    while [ $k -le "$nn" ]; do
        if ! pg_node "b$nn$i" "$work/$tag.$i.$k.server"; then
            echo "FAILED: stompd did not start" >"$work/$tag.$i"
            misbehaviour "$tag run $i: node $k did not start: $(tail -n 1 "$work/$tag.$i.$k.server.err" 2>/dev/null)"
            keep_work=1
            touch "$work/$tag.failed"
            [ -z "$spid" ] || stop_server
            break
        fi
        nodes="$nodes $spid:$sport:$aport:$(pg_rt "$aport")"
        k=$((k + 1))
    done
    k=1 lgpids=""
    for n in $nodes; do
        sport=$(echo "$n" | cut -d: -f2)
        ext_pid=$(echo "$n" | cut -d: -f1)
        (lg_run "$tag-$k" "$i" "port:$sport" --scenario persistent -n $n_pg -s 1024 \
            --dest "/queue/pg$k") &
        lgpids="$lgpids $!"
        k=$((k + 1))
    done
    for p in $lgpids; do
        wait "$p" || true
    done
    ext_pid=""
    rt=0 k=1 secs=0 ok=1
    for n in $nodes; do
        a=$(echo "$n" | cut -d: -f3)
        rt=$((rt + $(pg_rt "$a") - $(echo "$n" | cut -d: -f4)))
        grep -q '^FAILED' "$work/$tag-$k.$i" && ok=0
        s=$(kv secs "$work/$tag-$k.$i")
        secs=$(awk -v a="$secs" -v b="${s:-0}" 'BEGIN { print (b > a) ? b : a }')
        [ $k = 1 ] && cp "$work/$tag-$k.$i" "$work/$tag-node.$i"
        spid=$(echo "$n" | cut -d: -f1)
        stop_server
        [ -z "$problem" ] || misbehaviour "$tag run $i: node $k $problem"
        k=$((k + 1))
    done
    if [ $ok = 1 ]; then
        awk -v n=$((n_pg * nn)) -v s="$secs" -v rt="$rt" \
            'BEGIN { printf "rate=%.0f rt_per_msg=%.4f\n", n / s, rt / n }' >"$work/$tag.$i"
    else
        echo "FAILED: a loadgen run failed" >"$work/$tag.$i"
    fi
}

bench_postgres() {
    [ -x "$build/stompd" ] || { echo "no $build/stompd"; return 1; }
    setup_work
    detect_options
    if [ -z "$(pg_bindir)" ] || [ -z "$python" ]; then
        echo "skipped: no PostgreSQL server (sh contrib/deps.sh test) or no python3"
        return 0
    fi
    pg_start || { echo "PostgreSQL did not start: $(tail -n 3 "$work/pg.log" "$work/pg-initdb.log")"; return 1; }
    echo "PostgreSQL $("$pgbin/postgres" --version | awk '{ print $3 }') on a unix socket, default settings;" \
        "$runs runs per figure, fresh database and nodes per run"
    echo
    i=1
    while [ $i -le $runs ]; do
        echo "run $i of $runs ..." >&2
        pg_run $i 1
        pg_run $i 3
        i=$((i + 1))
    done
    pg_stop
    table_header
    row "persistent 1 KiB receipts, postgres: 1 node" pg1 rate msg/s 0 - 0
    row "  database round trips per message" pg1 rt_per_msg rt 3 "<=" 0.5
    row "  3 nodes on one database: aggregate" pg3 rate msg/s 0 - 0
    row "  one of the 3 nodes" pg3-node rate msg/s 0 - 0
    row "  database round trips per message" pg3 rt_per_msg rt 3 "<=" 0.5
    echo
    echo "notes:"
    echo "- $(fmt $n_pg 0) messages per node and run (loadgen --scenario persistent -s 1024, a RECEIPT per" \
        "SEND); 3 nodes: three loadgens at once, each on its own node and queue; aggregate = all messages" \
        "over the slowest loadgen's time."
    echo "- round trips: the nodes' stompd_store_round_trips_total (/metrics) over the run, divided by" \
        "the messages sent; each message is an insert and a delete, grouped into commits."
    echo "- RabbitMQ's durable queue for comparison: make bench-compare (the persistent row)."
    [ -s "$work/misbehaviour" ] && { echo "stompd misbehaviour seen:"; sed 's/^/- /' "$work/misbehaviour"; }
    [ ! -s "$work/misbehaviour" ] && ! ls "$work"/*.failed >/dev/null 2>&1
}
