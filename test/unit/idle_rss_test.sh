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

chat_test_begin idle-rss
tmp=$CHAT_TEST_TMP
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
