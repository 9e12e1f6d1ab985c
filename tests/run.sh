#!/usr/bin/env bash
# run.sh: run every test program given on the command line and every test script
# (tests/clients/*, tests/<area>/test_* executables), then print one summary line:
# "N passed, N failed, N skipped", after the lists of what failed and what was skipped.
# cmocka binaries are counted by the tests they report, skip() included; a script counts as
# one test: exit 0 passed, 77 skipped (automake's convention: it could not run here, and
# it printed why), anything else failed.
# JOBS tests run at once (default: the number of processors; JOBS=1 runs one at a time).
# Each test's output is printed whole, in the order above, under a line with its time.
# Run from the top of the source tree (tests find their data relative to it).
set -u
passed=0
failed=0
skipped=0
failures=""
skips=""
jobs=${JOBS:-$(nproc 2>/dev/null || echo 1)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

kinds=()
paths=()
for bin in "$@"; do
    kinds+=(bin)
    paths+=("$bin")
done
# Scripts: every executable in tests/clients/, and executables named test_* (not C
# sources) in any other tests/<area>/.
for script in tests/clients/* tests/*/test_*; do
    case "$script" in *.c | *.h) continue ;; esac
    [ -f "$script" ] && [ -x "$script" ] || continue
    kinds+=(script)
    paths+=("$script")
done

# Test i, its output in $out/i.log; $out/i.rc (written last) holds its exit code and time.
run_one() {
    local i=$1 start rc
    start=$(date +%s)
    BUILD="${BUILD:-build}" timeout 600 "${paths[$i]}" >"$out/$i.log" 2>&1 </dev/null
    rc=$?
    echo "$rc $(($(date +%s) - start))" >"$out/$i.tmp"
    mv "$out/$i.tmp" "$out/$i.rc"
}

# Sum the counts of cmocka summary lines "[  WORD  ] N test(s)..." (one per group).
count() {
    sed -n "s/^\[  $1 *\] \([0-9][0-9]*\) test.*/\1/p" "$2" | awk '{s+=$1} END {print s+0}'
}

report() {
    local i=$1 log="$out/$1.log" rc secs f s names n
    read -r rc secs <"$out/$i.rc"
    echo "== ${paths[$i]} (${secs} s)"
    cat "$log"
    if [ "${kinds[$i]}" = script ]; then
        case $rc in
        0) passed=$((passed + 1)) ;;
        77)
            skipped=$((skipped + 1))
            skips="$skips ${paths[$i]}"
            ;;
        *)
            failed=$((failed + 1))
            failures="$failures ${paths[$i]}"
            ;;
        esac
        return
    fi
    passed=$((passed + $(count PASSED "$log")))
    f=$(count FAILED "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -gt 0 ]; then
        failed=$((failed + f))
        failures="$failures ${paths[$i]}"
    fi
    s=$(count SKIPPED "$log")
    if [ "$s" -gt 0 ]; then
        skipped=$((skipped + s))
        # The names follow "[  SKIPPED ] N test(s), listed below:", one a line.
        names=$(awk '/^\[  SKIPPED \] [0-9]+ test/ { on = 1; next }
            on && /^\[  SKIPPED \] / { print $4; next } { on = 0 }' "$log")
        for n in $names; do skips="$skips ${paths[$i]}:$n"; done
    fi
}

# Start the tests, at most $jobs at a time; report each, in order, once it and those before
# it are done.
next=0
flush() {
    while [ "$next" -lt "${#paths[@]}" ] && [ -f "$out/$next.rc" ]; do
        report "$next"
        next=$((next + 1))
    done
}
running=0
for i in "${!paths[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
        flush
    fi
    run_one "$i" &
    running=$((running + 1))
done
wait
flush

echo
[ -n "$failures" ] && echo "failed:$failures"
[ -n "$skips" ] && echo "skipped:$skips"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
