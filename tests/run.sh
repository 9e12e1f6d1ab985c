#!/bin/sh
# run.sh: run every test program given on the command line and every test script
# (tests/clients/*, tests/<area>/test_* executables), then print one summary line:
# "N passed, N failed, N skipped", after the lists of what failed and what was skipped.
# cmocka binaries are counted by the tests they report, skip() included; a script counts as
# one test: exit 0 passed, 77 skipped (automake's convention: it could not run here, and
# it printed why), anything else failed.
# Run from the top of the source tree (tests find their data relative to it).
set -u
passed=0
failed=0
skipped=0
failures=""
skips=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Sum the counts of cmocka summary lines "[  WORD  ] N test(s)..." (one per group).
count() {
    sed -n "s/^\[  $1 *\] \([0-9][0-9]*\) test.*/\1/p" "$log" | awk '{s+=$1} END {print s+0}'
}

for bin in "$@"; do
    echo "== $bin"
    timeout 600 "$bin" >"$log" 2>&1
    rc=$?
    cat "$log"
    passed=$((passed + $(count PASSED)))
    f=$(count FAILED)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -gt 0 ]; then
        failed=$((failed + f))
        failures="$failures $bin"
    fi
    s=$(count SKIPPED)
    if [ "$s" -gt 0 ]; then
        skipped=$((skipped + s))
        # The names follow "[  SKIPPED ] N test(s), listed below:", one a line.
        names=$(awk '/^\[  SKIPPED \] [0-9]+ test/ { on = 1; next }
            on && /^\[  SKIPPED \] / { print $4; next } { on = 0 }' "$log")
        for n in $names; do skips="$skips $bin:$n"; done
    fi
done

# Scripts: every executable in tests/clients/, and executables named test_* (not C
# sources) in any other tests/<area>/.
for script in tests/clients/* tests/*/test_*; do
    case "$script" in *.c | *.h) continue ;; esac
    [ -f "$script" ] && [ -x "$script" ] || continue
    echo "== $script"
    BUILD="${BUILD:-build}" timeout 600 "$script"
    case $? in
    0) passed=$((passed + 1)) ;;
    77)
        skipped=$((skipped + 1))
        skips="$skips $script"
        ;;
    *)
        failed=$((failed + 1))
        failures="$failures $script"
        ;;
    esac
done

echo
[ -n "$failures" ] && echo "failed:$failures"
[ -n "$skips" ] && echo "skipped:$skips"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
