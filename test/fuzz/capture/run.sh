#!/usr/bin/env bash
# Regenerates the fuzz seed corpora from a real session between a BEAM and chat-node
# (capture.exs says how). Replaces test/fuzz/corpus/{frames,handshake,terms,epmd}.
#
#   test/fuzz/capture/run.sh            # uses build/chat-node (scripts/build first)
#   CHAT_NODE=/path/to/chat-node test/fuzz/capture/run.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
chat_node=${CHAT_NODE:-$root/build/chat-node}
ebin=${ELIXIR_PEER_EBIN:-$root/elixir_peer/_build/prod/lib/chat/ebin}
[[ -x $chat_node ]] || { echo "error: no chat-node at $chat_node (run scripts/build)" >&2; exit 2; }
[[ -f $ebin/chat.app ]] || { echo "error: elixir_peer is not compiled (run scripts/build)" >&2; exit 2; }

out=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-capture.XXXXXX")
cleanup() {
    if [[ -f $out/pids ]]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$out/pids"
    fi
    rm -rf "$out"
}
trap cleanup EXIT
# The VM plays EPMD itself on a port it must know at boot; retry if that port is taken.
for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    rc=0
    ERL_EPMD_PORT=$port timeout -k 5 120 elixir --erl "-epmd_port $port" -pa "$ebin" \
        "$here/capture.exs" "$out" "$chat_node" </dev/null || rc=$?
    ((rc == 75)) || break
    echo "capture: port $port taken (attempt $attempt), trying another" >&2
done
((rc == 0)) || { echo "error: capture failed (exit status $rc)" >&2; exit 1; }
for target in frames handshake terms epmd; do
    [[ -d $out/$target ]] || { echo "error: the capture produced no $target seeds" >&2; exit 1; }
done
for target in frames handshake terms epmd; do
    rm -rf "$root/test/fuzz/corpus/$target"
    mv "$out/$target" "$root/test/fuzz/corpus/$target"
done
echo "capture: corpora replaced under test/fuzz/corpus/"
