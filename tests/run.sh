#!/bin/sh
# run.sh: run every test program given on the command line and every test script
# (tests/clients/*, tests/<area>/test_* executables), then print one summary line:
# "N passed, N failed".
# cmocka binaries are counted by the tests they report; a script counts as one test.
# Run from the top of the source tree (tests find their data relative to it).
set -u
passed=0
failed=0
failures=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for bin in "$@"; do
    echo "== $bin"
    timeout 600 "$bin" >"$log" 2>&1
    rc=$?
    cat "$log"
    # A binary may run several groups: add up every group's summary.
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {if (NR) print s}')
    passed=$((passed + ${p:-0}))
    if [ "$rc" -ne 0 ] && [ -z "$f" ]; then f=1; fi
    if [ -n "$f" ] && [ "$f" -gt 0 ]; then
        failed=$((failed + f))
        failures="$failures $bin"
    fi
done

# Scripts: every executable in tests/clients/, and executables named test_* (not C
# sources) in any other tests/<area>/.
for script in tests/clients/* tests/*/test_*; do
    case "$script" in *.c | *.h) continue ;; esac
    [ -f "$script" ] && [ -x "$script" ] || continue
    echo "== $script"
    if BUILD="${BUILD:-build}" timeout 600 "$script"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures="$failures $script"
    fi
done

echo
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
