#!/usr/bin/env bash
# GET /metrics, on the web port and on --metrics-port, parsed by the reference parser
# (parse_metrics.py: prometheus_client), with counters that moved because of what the test
# did: a connection (handshakes ok, bytes, connections by kind), a wrong cookie, a node that
# does not exist, DNS discovery rounds. Two C++ nodes on a private EPMD.
#
#   CHAT_NODE=build/chat-node test/deploy/metrics.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/lib/cluster.sh
source "$root/scripts/lib/cluster.sh"
CHAT_NODE=${CHAT_NODE:-$root/build/chat-node}
# Debian's python3 (and its python3-prometheus-client), whatever else is on PATH.
PYTHON=${PYTHON:-/usr/bin/python3}

fail() {
    echo "FAIL: $*"
    exit 1
}
ok() { echo "ok   $*"; }

[[ -x $CHAT_NODE ]] || fail "no chat-node at $CHAT_NODE"
"$PYTHON" -c 'import prometheus_client' 2>/dev/null ||
    fail "$PYTHON cannot import prometheus_client (scripts/install-deps installs python3-prometheus-client)"
command -v curl >/dev/null || fail "curl not found (scripts/install-deps)"

chat_test_begin metrics
tmp=$CHAT_TEST_TMP
cookie=m$(chat_random_hex 12)

# A free port for each listener (20000-31999, as chat_start_epmd picks).
free_port() {
    local p
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) && " ${taken[*]:-} " != *" $p "* ]] && break
    done
    taken+=("$p")
    echo "$p"
}
taken=()
web_port=$(free_port)
web_metrics=$(free_port)
moebi_metrics=$(free_port)

# web discovers moebi by name (NAME@DNSNAME: localhost resolves without any DNS server), and
# a node nobody runs (a connect that fails with no_such_node; POST /messages may name it).
"$CHAT_NODE" --name web@127.0.0.1 --cookie "$cookie" --port "$web_port" --metrics-port "$web_metrics" \
    --discover moebi@localhost --discover nosuch@localhost --discovery-interval 1 >"$tmp/web.out" 2>"$tmp/web.log" &
env -u PORT CHAT_METRICS_PORT="$moebi_metrics" "$CHAT_NODE" --name moebi@127.0.0.1 --cookie "$cookie" \
    >"$tmp/moebi.out" 2>"$tmp/moebi.log" &
chat_wait_line "$tmp/web.out" "Node name: web@127.0.0.1" 20 || fail "web did not start"
chat_wait_line "$tmp/moebi.out" "Node name: moebi@127.0.0.1" 20 || fail "moebi did not start"
ok "web (HTTP $web_port, metrics $web_metrics) and moebi (CHAT_METRICS_PORT=$moebi_metrics) are up"

# get URL: the body of a 200 answer (curl fails otherwise).
get() { curl -fsS --max-time 5 "$1"; }
# metrics URL: the parsed samples, one "name{labels} value" a line.
metrics() {
    local body
    body=$(get "$1") || fail "GET $1"
    printf '%s\n' "$body" >"$tmp/last.txt"
    "$PYTHON" "$here/parse_metrics.py" <"$tmp/last.txt" || {
        sed 's/^/  | /' "$tmp/last.txt"
        fail "the exposition from $1 does not parse"
    }
}
# value SAMPLES NAME{LABELS}: the value of that sample (labels sorted, as printed).
value() { awk -v k="$2" '$1 == k {print $2; found=1} END {exit !found}' <<<"$1"; }
# wait_value URL SAMPLE MIN: until the sample is at least MIN (10 s).
wait_value() {
    local v deadline=$((SECONDS + 10))
    while :; do
        v=$(value "$(metrics "$1")" "$2" || echo 0)
        [[ $v =~ ^[0-9]+$ ]] && ((v >= $3)) && return 0
        ((SECONDS < deadline)) || fail "$2 is ${v:-absent} at $1, expected at least $3"
        sleep 0.2
    done
}

# The content type Prometheus expects of the text format.
ctype=$(curl -fsS --max-time 5 -o /dev/null -w '%{content_type}' "http://127.0.0.1:$web_port/metrics")
[[ $ctype == "text/plain; version=0.0.4; charset=utf-8" ]] || fail "content type '$ctype'"
ok "content type: $ctype"

# The loop counts its turns (a histogram: the parser checked its buckets).
wait_value "http://127.0.0.1:$web_port/metrics" 'chat_loop_turn_seconds_count{}' 1
ok "the loop's turns are counted"

# Discovery connects web to moebi.
wait_value "http://127.0.0.1:$web_port/metrics" 'chat_dist_connections{direction=outgoing,kind=cpp}' 1
wait_value "http://127.0.0.1:$moebi_metrics/metrics" 'chat_dist_connections{direction=incoming,kind=cpp}' 1
ok "web -> moebi: one cpp connection, outgoing on web and incoming on moebi"

# A wrong cookie (counted by moebi), a node that does not exist (counted by web).
rc=0
"$CHAT_NODE" ping moebi@127.0.0.1 --cookie wrong-cookie --timeout 3000 >"$tmp/ping.out" 2>&1 || rc=$?
((rc != 0)) || fail "a ping with the wrong cookie succeeded"
answer=$(curl -sS --max-time 10 -H 'content-type: application/json' \
    -d '{"to": "nosuch@127.0.0.1", "text": "hello"}' "http://127.0.0.1:$web_port/messages" || true)
[[ $answer == *'"ok":false'* ]] || fail "POST /messages to nosuch@127.0.0.1: $answer"
wait_value "http://127.0.0.1:$moebi_metrics/metrics" 'chat_dist_handshakes_total{result=wrong_cookie}' 1
wait_value "http://127.0.0.1:$web_port/metrics" 'chat_dist_connect_failures_total{cause=no_such_node}' 1
ok "wrong cookie counted by moebi; no_such_node counted by web"

# A message through web's API: moebi prints it and calls back, so messages and bytes move.
answer=$(curl -fsS --max-time 10 -H 'content-type: application/json' \
    -d '{"to": "moebi@127.0.0.1", "text": "Hello from the metrics test"}' "http://127.0.0.1:$web_port/messages") ||
    fail "POST /messages to moebi"
[[ $answer == *'"ok":true'* ]] || fail "POST /messages to moebi: $answer"

web_samples=$(metrics "http://127.0.0.1:$web_metrics/metrics")
moebi_samples=$(metrics "http://127.0.0.1:$moebi_metrics/metrics")
check() { # SAMPLES NAME MIN WHO
    local v
    v=$(value "$1" "$2") || fail "$4: no sample $2"
    awk -v v="$v" -v m="$3" 'BEGIN {exit !(v >= m)}' || fail "$4: $2 is $v, expected at least $3"
}
check "$web_samples" 'chat_node_info{kind=cpp,node=web@127.0.0.1}' 1 web
check "$web_samples" 'chat_dist_handshakes_total{result=ok}' 1 web
check "$web_samples" 'chat_dist_initiated_total{}' 2 web
check "$web_samples" 'chat_dist_in_bytes_total{}' 100 web
check "$web_samples" 'chat_dist_out_bytes_total{}' 100 web
check "$web_samples" 'chat_dist_messages_out_total{}' 1 web
check "$web_samples" 'chat_http_requests_total{}' 3 web
check "$web_samples" 'chat_discovery_rounds_total{}' 1 web
check "$web_samples" 'chat_discovery_listed_nodes{}' 1 web
check "$web_samples" 'chat_dist_queued_bytes{}' 0 web
check "$web_samples" 'chat_uptime_seconds{}' 0 web
check "$moebi_samples" 'chat_messages_printed_total{}' 1 moebi
check "$moebi_samples" 'chat_tasks_started_total{}' 1 moebi
check "$moebi_samples" 'chat_dist_accepted_total{}' 2 moebi
check "$moebi_samples" 'chat_discovery_rounds_total{}' 0 moebi
ok "web and moebi expose every family, and the counters moved: $(wc -l <<<"$web_samples") samples on web"
grep -qxF "Hello from the metrics test" "$tmp/moebi.out" || fail "moebi did not print the message"

# The metrics port serves /metrics and /health only.
[[ $(get "http://127.0.0.1:$moebi_metrics/health") == ok ]] || fail "/health on the metrics port"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$moebi_metrics/status.json")
[[ $code == 404 ]] || fail "/status.json on the metrics port answered $code"
ok "the metrics port: /metrics, /health, and 404 for the web routes"

# The same port twice is refused at start (exit status 64, usage).
rc=0
"$CHAT_NODE" --name clash@127.0.0.1 --cookie "$cookie" --port 5999 --metrics-port 5999 >/dev/null 2>"$tmp/clash.log" || rc=$?
((rc == 64)) || fail "--metrics-port equal to --port: exit status $rc"
ok "--metrics-port equal to --port is refused: $(head -n 1 "$tmp/clash.log")"
echo "PASS metrics"
