#!/usr/bin/env bash
# Runs a libFuzzer binary once on every file of the given directories (missing ones are
# skipped): saved crashes (test/fuzz/regressions/<target>/) and seeds (corpus/<target>/).
# Fails if any input crashes or makes a sanitizer report.
#
#   test/fuzz/replay.sh build-fuzz/test/fuzz/fuzz_terms test/fuzz/regressions/terms ...
set -euo pipefail
bin=$1
shift
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
log=$(mktemp "${TMPDIR:-/tmp}/fuzz-replay.XXXXXX")
trap 'rm -f "$log"' EXIT
files=()
for dir in "$@"; do
    [[ -d $dir ]] || continue
    while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$dir" -type f ! -name '*.md' -print0 | sort -z)
done
name=$(basename "$bin")
if ((${#files[@]} == 0)); then
    echo "$name: no inputs to replay"
    exit 0
fi
# Each regression alone first so a failure names its file; the corpus in one run.
failed=0
for f in "${files[@]}"; do
    case $f in */regressions/*) ;; *) continue ;; esac
    if ! "$bin" "$f" >"$log" 2>&1; then
        echo "FAIL: $name crashes on $f"
        tail -n 40 "$log"
        failed=1
    fi
done
corpus=()
for f in "${files[@]}"; do
    case $f in */regressions/*) ;; *) corpus+=("$f") ;; esac
done
if ((${#corpus[@]})); then
    # xargs keeps the command line short; libFuzzer runs each named file once.
    if ! printf '%s\0' "${corpus[@]}" | xargs -0 -n 500 "$bin" >"$log" 2>&1; then
        echo "FAIL: $name crashes on a corpus input"
        grep -E 'Running:|ERROR|SUMMARY|invariant' "$log" | tail -n 20
        failed=1
    fi
fi
echo "$name: replayed ${#files[@]} inputs, $([[ $failed == 0 ]] && echo ok || echo FAILED)"
exit "$failed"
