#!/usr/bin/env bash
# The demo in a simulated Heroku Private Space (scripts/space): the
# Procfile's formation, each dyno in its own network namespace with its own
# address and EPMD, finding the others through DNS service discovery.
# Started by scripts/demo when the machine allows it; by hand:
#
#   scripts/lib/space-demo.sh --can-run   exit 0 if a space can be built here
#   scripts/lib/space-demo.sh             the demo (binaries must be built)
#
# Environment: CHAT_NODE, ELIXIR_PEER_EBIN (from scripts/demo), DEMO_ONCE=1
# (stop after the scripted part; also when stdin is not a terminal).
# The space lives in a temporary SPACE_DIR and is taken down on exit,
# Ctrl-C included.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [[ ${1:-} == --can-run ]]; then
    why=""
    if [[ $(id -u) -ne 0 ]]; then
        why="not root"
    elif ! command -v ip >/dev/null || ! command -v dnsmasq >/dev/null; then
        why="ip or dnsmasq missing"
    elif ! ip netns add "cs-probe-$$" 2>/dev/null; then
        why="ip netns does not work here"
    else
        ip netns del "cs-probe-$$"
    fi
    if [[ -n $why ]]; then
        echo "demo: no simulated Private Space here ($why): using a loopback cluster" >&2
        exit 1
    fi
    exit 0
fi

export CHAT_NODE=${CHAT_NODE:-$root/build/chat-node}
EBIN=${ELIXIR_PEER_EBIN:-$root/elixir_peer/_build/prod/lib/chat/ebin}
SPACE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chat-demo-space.XXXXXX")
export SPACE_DIR SPACE_SKIP_BUILD=1 SPACE_APP=${SPACE_APP:-demo}
app_dns=$SPACE_APP.app.localspace
space() { "$root/scripts/space" "$@"; }

if [[ -t 1 ]]; then
    bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'
else
    bold='' dim='' reset=''
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$reset"; }
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    trap "" PIPE
    set +e
    echo
    [[ -n ${tail_pid:-} ]] && kill "$tail_pid" 2>/dev/null
    echo "demo: taking the space down"
    space down
    rm -rf "$SPACE_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 0' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# Print the log lines not shown yet that match ERE (default: what a person
# watching `heroku logs` cares about here, not the nodes' debug chatter).
shown=0
show_log() {
    local re=${1:-'heroku\[|: Node name: |discovery: .* (joined|left)|: (Hello|Hi|Hey)'}
    local total
    total=$(wc -l <"$SPACE_DIR/log")
    if ((total > shown)); then
        sed -n "$((shown + 1)),${total}p" "$SPACE_DIR/log" | grep -E -- "$re" | cut -c 12-26,33- || true
        shown=$total
    fi
}

# wait_web FIELD present|absent NODE...: until web.1's /status.json has (or
# no longer has) every NODE in FIELD ("nodes": connected, "discovered":
# listed by web's own last DNS round).
wait_web() {
    local field=$1 want=$2 deadline status n list pending
    shift 2
    deadline=$(($(now_ms) + 20000))
    while :; do
        status=$(space http web.1 /status.json 2>/dev/null || true)
        list=$(grep -o "\"$field\":\[[^]]*\]" <<<"$status" || true)
        pending=()
        for n in "$@"; do
            if [[ $list == *"\"$n\""* ]]; then
                [[ $want == absent ]] && pending+=("$n")
            else
                [[ $want == present ]] && pending+=("$n")
            fi
        done
        ((${#pending[@]} == 0)) && return 0
        if (($(now_ms) >= deadline)); then
            echo "${dim}(demo: web.1 $field: still waiting for ${pending[*]})${reset}"
            return 1
        fi
        sleep 0.2
    done
}

say "scripts/space up: the Procfile's formation in a simulated Private Space"
space up
declare -A ip=()
while read -r dyno address _state; do ip[$dyno]=$address; done < <(space ps --porcelain)

say "DNS service discovery: <type>.$app_dns and <n>.<type>.$app_dns"
for name in "web.$app_dns" "moebi.$app_dns" "1.kate.$app_dns" "alex.$app_dns"; do
    printf '  %-28s -> %s\n' "$name" "$(space dns "$name" | tr '\n' ' ')"
done

say "the nodes find each other (every ${CHAT_DISCOVERY_INTERVAL:-5} s each asks DNS, then each address's EPMD)"
wait_web discovered present "moebi@${ip[moebi.1]}" "kate@${ip[kate.1]}" "alex@${ip[alex.1]}" || true
show_log 'heroku\[|: Node name: |discovery: .* joined'
echo "  web.1 /status.json: $(space http web.1 /status.json | grep -o '"nodes":\[[^]]*\]')"

say "one-off dyno (heroku run): Elixir amanda -> C++ moebi, found as 1.moebi.$app_dns"
space run "elixir --name amanda@\$HEROKU_PRIVATE_IP --cookie \"\$ERLANG_COOKIE\" -pa $EBIN $root/test/space/amanda.exs" 2>&1 |
    grep -E '^(amanda:|iex|chicken\?|nil)' | sed 's/^/  run.1: /'
show_log ': Hello from Amanda!'

say "one-off dyno: the C++ client bob -> Elixir alex, found as alex.$app_dns"
space run "echo '\$ chat-node send alex@... \"Hello alex, this is bob from C++\" --name bob@\$HEROKU_PRIVATE_IP'; build/chat-node send \"alex@\$(getent ahostsv4 alex.\$HEROKU_DNS_APP_NAME | cut -d' ' -f1 | head -n 1)\" 'Hello alex, this is bob from C++' --name bob@\$HEROKU_PRIVATE_IP --cookie \"\$ERLANG_COOKIE\" --log-level warn; echo \"(exit status \$?)\"" 2>&1 |
    sed 's/^/  run.2: /'
show_log ': Hello alex'

say "scripts/space scale kate=2: a new dyno, a new DNS record, everyone connects to it"
space scale kate=2 >/dev/null
ip[kate.2]=$(space ps --porcelain | awk '$1 == "kate.2" {print $2}')
printf '  %-28s -> %s\n' "kate.$app_dns" "$(space dns "kate.$app_dns" | tr '\n' ' ')"
wait_web discovered present "kate@${ip[kate.2]}" || true
show_log 'heroku\[kate|app\[kate\.2\]: Node name|discovery: kate@.* joined'

say "scripts/space scale kate=1: kate.2 leaves DNS and stops"
space scale kate=1 >/dev/null
printf '  %-28s -> %s\n' "kate.$app_dns" "$(space dns "kate.$app_dns" | tr '\n' ' ')"
wait_web discovered absent "kate@${ip[kate.2]}" || true
show_log 'heroku\[kate|disconnected from kate|discovery: kate@.* left'

if [[ ${DEMO_ONCE:-0} == 1 || ! -t 0 ]]; then
    say "scripted part done (DEMO_ONCE=1 or no terminal): stopping"
    exit 0
fi

cat <<INFO

${bold}== the space is running${reset} (state in $SPACE_DIR). In another terminal:

  export SPACE_DIR=$SPACE_DIR
  scripts/space status
  scripts/space run 'iex --name amanda@\$HEROKU_PRIVATE_IP --cookie "\$ERLANG_COOKIE" -pa $EBIN -e "Application.ensure_all_started(:chat)"'
      iex> Chat.send_message(:"moebi@${ip[moebi.1]}", "Hello from Amanda!")
  scripts/space scale kate=3
  scripts/space http web.1 /status.json

The space's log follows; Ctrl-C stops the demo and takes the space down.
INFO
# In the background, so that Ctrl-C or a signal reaches the trap at once.
tail -n 0 -F "$SPACE_DIR/log" &
tail_pid=$!
wait "$tail_pid"
