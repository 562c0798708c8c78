#!/usr/bin/env bash
# A link cut without FIN: two C++ nodes in their own network namespaces, joined by a veth
# pair. Setting the link down silences the connection without closing it; each side must
# notice within net_ticktime (ticks stop arriving), and after the link comes back the
# discovering node must reconnect by itself (DNS/EPMD discovery every second).
#
#   test/faults/netcut.sh [path/to/chat-node]
#
# Needs root and `ip netns` (CI runs as root); fails, never skips, without them. Everything
# it creates (namespaces, interfaces, processes) is removed on exit.
set -euo pipefail

chat_node=${1:-${CHAT_NODE:-$(dirname "$0")/../../build/chat-node}}
chat_node=$(realpath "$chat_node")
ticktime=8
# A silent peer is dropped after net_ticktime, checked every quarter of it.
detect_limit=$((ticktime + ticktime / 4 + 3))

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "must run as root (network namespaces)"
command -v ip >/dev/null || fail "ip (iproute2) is missing"
command -v epmd >/dev/null || fail "epmd is missing"
command -v curl >/dev/null || fail "curl is missing"

tag=$(printf '%04x' $((RANDOM % 65536)))
ns_a="cnA$tag"; ns_b="cnB$tag"; veth_a="cva$tag"; veth_b="cvb$tag"
ip_a=10.213.77.1; ip_b=10.213.77.2
work=$(mktemp -d)

cleanup() {
    for ns in "$ns_a" "$ns_b"; do
        if ip netns list | grep -qw "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    ip link del "$veth_a" 2>/dev/null || true
    if [[ ${KEEP_LOGS:-0} != 1 ]]; then rm -rf "$work"; else echo "logs in $work"; fi
}
trap cleanup EXIT

ip netns add "$ns_a" || fail "cannot create a network namespace"
ip netns add "$ns_b"
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$ip_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$ip_b/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

# Each "host" has its own EPMD, as each dyno does.
for ns in "$ns_a" "$ns_b"; do ip netns exec "$ns" epmd -daemon; done

ip netns exec "$ns_b" "$chat_node" --name "b@$ip_b" --cookie netcut --net-ticktime "$ticktime" \
    >"$work/b.out" 2>"$work/b.err" &
disown
ip netns exec "$ns_a" "$chat_node" --name "a@$ip_a" --cookie netcut --net-ticktime "$ticktime" \
    --discover "$ip_b" --discovery-interval 1 --port 8080 >"$work/a.out" 2>"$work/a.err" &
disown

status() { ip netns exec "$ns_a" curl -s --max-time 2 "http://127.0.0.1:8080/status.json" || true; }
connected() { status | grep -q "\"nodes\":\[\"b@$ip_b\"\]"; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < deadline)) || { cat "$work/a.err" "$work/b.err" >&2; fail "$what within $limit s"; }
        sleep 0.2
    done
}

wait_for 15 "a discovers and connects to b" connected
echo "connected: a@$ip_a <-> b@$ip_b"

cut_at=$SECONDS
ip -n "$ns_a" link set "$veth_a" down
wait_for "$detect_limit" "a drops the silent connection" grep -q "disconnected from b@$ip_b" "$work/a.err"
wait_for "$detect_limit" "b drops the silent connection" grep -q "disconnected from a@$ip_a" "$work/b.err"
echo "cut detected after $((SECONDS - cut_at)) s (net_ticktime $ticktime s)"
grep -h "disconnected from" "$work/a.err" "$work/b.err"

healed_at=$SECONDS
ip -n "$ns_a" link set "$veth_a" up
wait_for 10 "a reconnects after the link heals" connected
grep -q "connected to b@$ip_b" <(tail -n +1 "$work/a.err") || fail "no reconnection logged"
echo "reconnected $((SECONDS - healed_at)) s after the link came back"
echo "netcut: 1 passed, 0 failed"
