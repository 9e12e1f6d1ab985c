#!/bin/sh
# run.sh: what `make bench` runs: each benchmark in turn, its table printed as it comes.
# Usage: sh contrib/bench/run.sh BUILDDIR [NAME...]   (default: all of them)
# BENCH_SECONDS sets the time per row where a benchmark has rows. A benchmark that fails
# is reported and the others still run; the exit status says whether any failed.
set -u

build=${1:?usage: run.sh BUILDDIR [NAME...]}
shift

# One function per benchmark, bench_<name>, also listed in the default list below.

bench_frames() {
    "$build/bench/frames" ${BENCH_SECONDS:+-t "$BENCH_SECONDS"}
}

[ $# -gt 0 ] || set -- frames # the default list, in running order
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
