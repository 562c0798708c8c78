#!/usr/bin/env bash
# Run one ExUnit integration test file in a private, throw-away cluster.
#
#   test/integration/run.sh test/integration/t01_ping.exs
#
# - starts its own EPMD on a free loopback port and exports ERL_EPMD_PORT, so
#   tests never touch (or depend on) a system EPMD and can run in parallel;
# - runs the test VM as node amanda@127.0.0.1 (the "iex user") with a random
#   cookie, the elixir_peer ebin in its code path and support/chat_it.exs
#   (the helper module) loaded before the test file;
# - on exit, however it happens, terminates every process started on its
#   behalf (all of them carry CHAT_RUN_MARK in their environment) and, if the
#   test failed, prints the stderr logs of the nodes it ran.
#
# Inputs from the environment (CMake sets them; the defaults fit a checkout
# built with scripts/build):
#   CHAT_NODE          path of the chat-node binary     (build/chat-node)
#   ELIXIR_PEER_EBIN   ebin of elixir_peer (app :chat)
#   LESSON_EBIN        ebin of test/lesson_chat (app :lesson_chat)
#   ELIXIR             elixir executable                (elixir)
#   IT_TIMEOUT         seconds before the test VM is stopped (150); keep it
#                      below the CTest TIMEOUT so that cleanup always runs
#   IT_KEEP_TMP=1      keep the per-run temporary directory (node logs)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../scripts/lib/cluster.sh
source "$root/scripts/lib/cluster.sh"

if [[ $# -ne 1 ]]; then
    echo "usage: $0 TEST_FILE.exs" >&2
    exit 2
fi
test_file=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -f $test_file ]] || {
    echo "error: no such test file: $1" >&2
    exit 2
}

export CHAT_NODE=${CHAT_NODE:-$root/build/chat-node}
export ELIXIR_PEER_EBIN=${ELIXIR_PEER_EBIN:-$root/elixir_peer/_build/prod/lib/chat/ebin}
export LESSON_EBIN=${LESSON_EBIN:-$root/test/lesson_chat/_build/prod/lib/lesson_chat/ebin}
ELIXIR=${ELIXIR:-elixir}
IT_TIMEOUT=${IT_TIMEOUT:-150}

problems=()
[[ -x $CHAT_NODE ]] || problems+=("chat-node binary not found or not executable: $CHAT_NODE")
[[ -f $ELIXIR_PEER_EBIN/chat.app ]] || problems+=("elixir_peer is not compiled (no $ELIXIR_PEER_EBIN/chat.app)")
[[ -f $LESSON_EBIN/lesson_chat.app ]] || problems+=("test/lesson_chat is not compiled (no $LESSON_EBIN/lesson_chat.app)")
command -v "$ELIXIR" >/dev/null || problems+=("elixir not found: $ELIXIR")
if ((${#problems[@]})); then
    printf 'error: %s\n' "${problems[@]}" >&2
    echo "hint: run scripts/build first" >&2
    exit 2
fi

name=$(basename "$test_file" .exs)
CHAT_RUN_MARK="it-$name-$$-$(chat_random_hex 6)"
export CHAT_RUN_MARK
IT_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/chat-it-$name.XXXXXX")
export IT_TMPDIR
# A sanitizer build of chat-node (the asan preset) writes its reports to files here, so a
# report from any node or client fails the test even where the test itself saw nothing
# wrong (e.g. a leak found when a node exits). Plain builds ignore these variables.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$IT_TMPDIR/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$IT_TMPDIR/sanitizer"

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    trap "" PIPE # stdout may be gone: writes then fail instead of killing us
    # No errexit here: a failing echo (stdout gone) must not stop the cleanup.
    set +e
    chat_kill_marked "$CHAT_RUN_MARK" 5
    wait 2>/dev/null || true
    local report
    for report in "$IT_TMPDIR"/sanitizer.*; do
        [[ -s $report ]] || continue
        echo "----- sanitizer report $(basename "$report") -----"
        cat "$report"
        ((rc != 0)) || rc=1
    done
    ((rc == 0)) || chat_show_logs "$name exit status $rc" "$IT_TMPDIR"/*.stderr
    if [[ ${IT_KEEP_TMP:-0} == 1 ]]; then
        echo "node logs kept in $IT_TMPDIR"
    else
        rm -rf "$IT_TMPDIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
chat_trap_signals

chat_start_epmd "$IT_TMPDIR/epmd.log"
export ERL_EPMD_PORT=$CHAT_EPMD_PORT
cookie=it$(chat_random_hex 12)
echo "== $name: private epmd on port $ERL_EPMD_PORT, chat-node $CHAT_NODE${IT_HOST_CHAT_NODE:+ -> host binary $IT_HOST_CHAT_NODE}"

# Run the VM in the background and wait for it, so that a TERM/INT sent to
# this script is handled at once (bash delays traps during foreground jobs).
# `timeout` is the inner deadline; CTest's TIMEOUT is the outer one.
# A file marked "# it: hidden" runs amanda as a hidden node, so that the cluster's shape is
# only what the test makes of it (global and pg ignore a hidden node).
hidden=()
if grep -q '^# it: hidden' "$test_file"; then hidden=(--hidden); fi
timeout -k 10 "$IT_TIMEOUT" \
    "$ELIXIR" "${hidden[@]}" --name amanda@127.0.0.1 --cookie "$cookie" \
    -pa "$ELIXIR_PEER_EBIN" \
    -r "$here/support/chat_it.exs" \
    "$test_file" </dev/null &
vm=$!
rc=0
wait "$vm" || rc=$?
if ((rc == 124 || rc == 137)); then
    echo "error: $name did not finish within IT_TIMEOUT=${IT_TIMEOUT}s" >&2
fi
exit "$rc"
