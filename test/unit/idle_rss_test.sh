#!/usr/bin/env bash
# A lean chat-node (static-pie, CHAT_IDLE_LAYOUT) that has started and answered a ping holds
# at most $2 KB resident. Not a benchmark: the bound sits well above what such a node holds
# (about 1.4 MB), so it fails when the idle layout has gone stale (45 commits once took the
# node from 2.2 to 3.5 MB before anyone looked) or a library comes back, not on a noisy machine.
#
#   test/unit/idle_rss_test.sh build/chat-node 2048
set -euo pipefail
bin=$1 bound_kb=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/cluster.sh
source "$root/scripts/lib/cluster.sh"

CHAT_RUN_MARK=idle-rss-$$-$(chat_random_hex 6)
export CHAT_RUN_MARK
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chat-idle-rss.XXXXXX")
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    chat_kill_marked "$CHAT_RUN_MARK" 5
    wait 2>/dev/null
    ((rc == 0)) || chat_show_logs "idle RSS test, exit status $rc" "$tmp"/*.log
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
chat_trap_signals

chat_start_epmd "$tmp/epmd.log"
export ERL_EPMD_PORT=$CHAT_EPMD_PORT
cookie=i$(chat_random_hex 12)
name=idle$(chat_random_hex 4)@127.0.0.1

"$bin" --name "$name" --cookie "$cookie" --log-level warn >"$tmp/node.log" 2>&1 &
pid=$!
chat_wait_line "$tmp/node.log" "Node name: $name" 30 || { echo "FAIL: the node did not start"; exit 1; }
"$bin" ping "$name" --name "probe$(chat_random_hex 4)@127.0.0.1" --cookie "$cookie" --log-level warn \
    >"$tmp/ping.log" 2>&1 || { echo "FAIL: ping"; exit 1; }

rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status")
echo "idle RSS ${rss} KB (anonymous ${anon} KB), bound ${bound_kb} KB"
((rss <= bound_kb)) || { echo "FAIL: idle RSS over the bound; regenerate the layout (scripts/idle-layout)?"; exit 1; }
echo "ok"
