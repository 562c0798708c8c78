#!/usr/bin/env bash
# The space test cases. Run through run.sh, which checks the machine, gives
# every run its own SPACE_DIR (hence its own namespaces, bridge and DNS)
# and removes the space whatever happens:
#
#   test/space/run.sh mesh     every node connects to every other one; DNS
#                              names; $PORT on web's address
#   test/space/run.sh amanda   a one-off dyno calls Chat.send_message on moebi
#   test/space/run.sh scale    kate 1 -> 2 -> 1: DNS, connections, no reconnect
#   test/space/run.sh tls      the mesh, web and amanda with `space up --tls`: every
#                              connection over mutual TLS, a node without it refused
#
# Timing checks use the time stamps of the space's log (what each node
# printed, and when), so a slow one-off VM does not make them fail; the
# bound is the discovery interval plus SPACE_TEST_SLACK (2) seconds.
#
# Commands run inside dynos are single-quoted on purpose: they expand there.
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${SPACE_DIR:?run through test/space/run.sh}"
: "${ELIXIR_PEER_EBIN:?}"
interval=${SPACE_TEST_INTERVAL:-5}
slack=${SPACE_TEST_SLACK:-2}
log=$SPACE_DIR/log
app=t$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
app_dns=$app.app.localspace

space() { "$root/scripts/space" "$@"; }
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}
say() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() {
    printf 'FAIL %s\n' "$*"
    exit 1
}

# ------------------------------------------------------------ formation

declare -A ip_of=()
dynos=()
load_formation() {
    local d ip state
    ip_of=()
    dynos=()
    while read -r d ip state; do
        [[ $state == up ]] || fail "$d is $state, not up"
        ip_of[$d]=$ip
        dynos+=("$d")
    done < <(space ps --porcelain)
}
node_of() { echo "${1%.*}@${ip_of[$1]}"; }
all_nodes() {
    local d
    for d in "${dynos[@]}"; do node_of "$d"; done | tr '\n' ' '
}

space_up() {
    local t0
    t0=$(now_ms)
    SPACE_APP=$app SPACE_SKIP_BUILD=1 CHAT_DISCOVERY_INTERVAL=$interval space up "$@"
    T_UP=$(now_ms)
    load_formation
    SPACE_ID=$(sed -n 's/^SPACE_ID=//p' "$SPACE_DIR/space.env")
    ok "space cs-$SPACE_ID (app $app) up in $((T_UP - t0)) ms: ${dynos[*]}"
}

# ------------------------------------------------------------ the log

# first_ms DYNO ERE: time (epoch ms) of the first line DYNO printed that
# matches ERE; fails if there is none.
first_ms() {
    local line
    line=$(grep -F " app[$1]: " "$log" | grep -m1 -E -- "$2") || return 1
    date -d "${line%% *}" +%s%3N
}

# wait_log DYNO ERE DEADLINE_MS: wait for such a line until the deadline;
# prints its time. Fails if it is not there, or is stamped after the deadline.
wait_log() {
    local t
    while :; do
        if t=$(first_ms "$1" "$2"); then
            echo "$t"
            ((t <= $3))
            return
        fi
        (($(now_ms) < $3)) || return 1
        sleep 0.1
    done
}

re_quote() { printf '%s' "${1//./\\.}"; }
# A line saying that the connection to node $1 is up: "node N up" (C++),
# "connected to N" (C++ and Chat.Discovery).
connected_re() {
    local p
    p=$(re_quote "$1")
    echo "(node $p up|connected to $p)( |\$)"
}

# ------------------------------------------------------------ checks

check_dns() {
    local type types d want got
    types=$(printf '%s\n' "${dynos[@]%.*}" | sort -u)
    for type in $types; do
        want=$(for d in "${dynos[@]}"; do if [[ ${d%.*} == "$type" ]]; then echo "${ip_of[$d]}"; fi; done |
            sort -t. -k4,4n)
        got=$(space dns "$type.$app_dns") || fail "$type.$app_dns does not resolve"
        [[ $got == "$want" ]] || fail "$type.$app_dns -> ${got//$'\n'/ }, expected ${want//$'\n'/ }"
        ok "$type.$app_dns -> ${got//$'\n'/ }"
    done
    for d in "${dynos[@]}"; do
        got=$(space dns "${d##*.}.${d%.*}.$app_dns") || fail "${d##*.}.${d%.*}.$app_dns does not resolve"
        [[ $got == "${ip_of[$d]}" ]] || fail "${d##*.}.${d%.*}.$app_dns -> $got, expected ${ip_of[$d]}"
    done
    ok "every <n>.<type>.$app_dns names its dyno"
    if got=$(space dns "nosuch.$app_dns" 2>/dev/null); then fail "nosuch.$app_dns resolves to $got"; fi
    ok "nosuch.$app_dns does not resolve"
    # What the nodes themselves see: the dyno's own resolv.conf.
    local t0 rc=0
    t0=$(now_ms)
    got=$(space exec web.1 'getent ahostsv4 "moebi.$HEROKU_DNS_APP_NAME"') || rc=$?
    got=$(printf '%s\n' "$got" | cut -d" " -f1 | sort -u)
    if [[ $got != "${ip_of[moebi.1]}" ]]; then
        echo "getent exit status $rc after $(($(now_ms) - t0)) ms; again:"
        space exec web.1 'getent ahostsv4 "moebi.$HEROKU_DNS_APP_NAME"; echo "exit status $?"; cat /etc/resolv.conf; ip addr; ip route'
        tail -n 20 "$SPACE_DIR/dnsmasq.log"
        fail "inside web.1, moebi.$app_dns -> '$got'"
    fi
    ok "inside web.1, moebi.$app_dns -> $got"
}

# wait_connected FROM_DYNOS TO_NODE DEADLINE: each dyno of FROM_DYNOS logs a
# connection to TO_NODE by DEADLINE; prints the latest time.
wait_connected() {
    local -n froms=$1
    local to=$2 deadline=$3 d t latest=0
    for d in "${froms[@]}"; do
        t=$(wait_log "$d" "$(connected_re "$to")" "$deadline") ||
            fail "$d did not connect to $to by the deadline (+${interval}+${slack} s)"
        ((t > latest)) && latest=$t
    done
    echo "$latest"
}

# What a BEAM one-off dyno runs before `elixir` to join a TLS space, as the Procfile's alex
# does: a certificate for its address from the CA in the config vars, and the erl flags
# (nothing, and no TLS, when the space has no CA).
beam_tls='tls_flags=$(build/chat-node tls-cert --if-configured "$HEROKU_PRIVATE_IP" --out "${TMPDIR:-/tmp}/chat-tls") && export ELIXIR_ERL_OPTIONS="$tls_flags" && '

# check_rpc MODE [ENV...]: the hidden checker in a one-off dyno (check.exs).
check_rpc() {
    local mode=$1 out rc=0
    shift
    out=$(space run -e CHECK_MODE="$mode" -e CHECK_NODES="$(all_nodes)" "$@" \
        "${beam_tls}elixir --name check@\$HEROKU_PRIVATE_IP --cookie \"\$ERLANG_COOKIE\" --hidden $here/check.exs" 2>&1) || rc=$?
    printf '%s\n' "$out" | sed 's/^/     | /'
    ((rc == 0)) || fail "rpc check ($mode) failed"
}

# ------------------------------------------------------------ cases

case_mesh() {
    say "up: web, moebi, kate (C++) and alex (Elixir)"
    space_up
    say "DNS service discovery records"
    check_dns

    say "every node connects to every other one within ${interval}+${slack} s"
    local deadline a b t latest=0
    deadline=$((T_UP + (interval + slack) * 1000))
    for a in "${dynos[@]}"; do
        for b in "${dynos[@]}"; do
            [[ $a == "$b" ]] && continue
            t=$(wait_log "$a" "$(connected_re "$(node_of "$b")")" "$deadline") ||
                fail "$a did not connect to $(node_of "$b") within ${interval}+${slack} s of up"
            ((t > latest)) && latest=$t
        done
    done
    ok "full mesh of ${#dynos[@]} nodes; last connection $((latest - T_UP)) ms after up returned"
    check_rpc mesh
    local status
    status=$(space http web.1 /status.json) || fail "web.1 /status.json"
    for b in "${dynos[@]}"; do
        [[ $b == web.1 ]] && continue
        [[ $status == *"\"$(node_of "$b")\""* ]] || fail "web.1 /status.json does not list $(node_of "$b"): $status"
    done
    ok "web.1 /status.json lists every other node"

    say "\$PORT answers on web's address"
    local body
    body=$(space http web.1 /health) || fail "GET /health on web.1"
    [[ $body == ok* ]] || fail "GET /health: '$body'"
    ok "GET http://${ip_of[web.1]}:5000/health from the space's bridge: $body"
    body=$(space run -e WEB_IP="${ip_of[web.1]}" \
        'exec 3<>"/dev/tcp/$WEB_IP/$PORT" && printf "GET /health HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n" >&3 && cat <&3') ||
        fail "a one-off dyno could not reach web.1 on \$PORT"
    [[ $body == "HTTP/1.1 200"* ]] || fail "from a one-off dyno: $body"
    ok "from one-off dyno run.N (another namespace): ${body%%$'\r'*}"
}

case_amanda() {
    say "up"
    space_up
    check_amanda
}

check_amanda() {
    say "one-off dyno: amanda calls Chat.send_message on moebi.1"
    local out rc=0 chicken nil
    out=$(space run "${beam_tls}elixir --name amanda@\$HEROKU_PRIVATE_IP --cookie \"\$ERLANG_COOKIE\" -pa $ELIXIR_PEER_EBIN $here/amanda.exs" 2>&1) || rc=$?
    printf '%s\n' "$out" | grep -v '^$' | sed 's/^/     | /'
    ((rc == 0)) || fail "amanda's one-off dyno exited with status $rc"
    [[ $out == *"amanda: 1.moebi.$app_dns -> ${ip_of[moebi.1]}"* ]] ||
        fail "amanda did not find moebi.1 (${ip_of[moebi.1]}) through 1.moebi.$app_dns"
    ok "1.moebi.$app_dns -> ${ip_of[moebi.1]} inside the one-off dyno"
    chicken=$(printf '%s\n' "$out" | grep -nx 'chicken?' | cut -d: -f1)
    nil=$(printf '%s\n' "$out" | grep -nx 'nil' | cut -d: -f1)
    [[ $chicken =~ ^[0-9]+$ ]] || fail "\"chicken?\" was not printed exactly once on amanda's console"
    [[ $nil =~ ^[0-9]+$ ]] || fail "send_message did not return nil (exactly one 'nil' line)"
    ((chicken < nil)) || fail "\"chicken?\" came after the return value"
    ok "\"chicken?\" printed on amanda's console, then send_message returned nil"
    wait_log moebi.1 ': Hello from Amanda!$' $(($(now_ms) + 5000)) >/dev/null ||
        fail "moebi.1 did not print the message"
    [[ $(grep -cF " app[moebi.1]: Hello from Amanda!" "$log") == 1 ]] || fail "moebi.1 printed the message more than once"
    ok "moebi.1 printed \"Hello from Amanda!\" once"
}

case_scale() {
    say "up"
    space_up
    local others=() d kate2 ip2 t_scaled deadline latest t
    say "wait for the full mesh"
    for a in "${dynos[@]}"; do
        for b in "${dynos[@]}"; do
            [[ $a == "$b" ]] && continue
            wait_log "$a" "$(connected_re "$(node_of "$b")")" $((T_UP + (interval + slack) * 1000)) >/dev/null ||
                fail "no full mesh: $a did not connect to $(node_of "$b")"
        done
    done
    ok "full mesh"
    others=("${dynos[@]}")

    say "scale kate 1 -> 2"
    local t0
    t0=$(now_ms)
    space scale kate=2 >/dev/null
    t_scaled=$(now_ms)
    load_formation
    [[ -n ${ip_of[kate.2]:-} ]] || fail "no kate.2 after scale kate=2"
    ip2=${ip_of[kate.2]}
    kate2=kate@$ip2
    ok "kate.2 up at $ip2 in $((t_scaled - t0)) ms"
    ip netns list | grep -q "^cs-$SPACE_ID-kate.2\b" || fail "no namespace cs-$SPACE_ID-kate.2"
    ok "namespace cs-$SPACE_ID-kate.2"
    [[ $(space dns "2.kate.$app_dns") == "$ip2" ]] || fail "2.kate.$app_dns does not name kate.2"
    [[ $(space dns "kate.$app_dns") == "${ip_of[kate.1]}"$'\n'"$ip2" ]] || fail "kate.$app_dns does not list both kates"
    ok "2.kate.$app_dns -> $ip2; kate.$app_dns -> ${ip_of[kate.1]} $ip2"

    deadline=$((t_scaled + (interval + slack) * 1000))
    latest=0
    for d in "${others[@]}"; do
        t=$(wait_log "$d" "discovery: $(re_quote "$kate2") joined" "$deadline") ||
            fail "$d's discovery did not list $kate2 within ${interval}+${slack} s"
        ((t > latest)) && latest=$t
    done
    ok "every other node's discovery listed $kate2, the last $((latest - t_scaled)) ms after scale returned"
    latest=$(wait_connected others "$kate2" "$deadline")
    for d in "${others[@]}"; do
        wait_log kate.2 "$(connected_re "$(node_of "$d")")" "$deadline" >/dev/null ||
            fail "kate.2 did not connect to $(node_of "$d")"
    done
    ok "kate.2 and the ${#others[@]} others are connected (last: $((latest - t_scaled)) ms after scale returned)"
    check_rpc mesh

    say "scale kate 2 -> 1"
    t0=$(now_ms)
    space scale kate=1 >/dev/null
    local t_down
    t_down=$(now_ms)
    ok "kate.2 stopped in $((t_down - t0)) ms"
    load_formation
    [[ -z ${ip_of[kate.2]:-} ]] || fail "kate.2 is still in the formation"
    if ip netns list | grep -q "^cs-$SPACE_ID-kate.2\b"; then fail "namespace cs-$SPACE_ID-kate.2 is still there"; fi
    if space dns "2.kate.$app_dns" >/dev/null 2>&1; then fail "2.kate.$app_dns still resolves"; fi
    [[ $(space dns "kate.$app_dns") == "${ip_of[kate.1]}" ]] || fail "kate.$app_dns still lists kate.2"
    ok "namespace gone; 2.kate.$app_dns does not resolve; kate.$app_dns -> ${ip_of[kate.1]}"
    deadline=$((t_down + (interval + slack) * 1000))
    for d in "${dynos[@]}"; do
        wait_log "$d" "discovery: $(re_quote "$kate2") left" "$deadline" >/dev/null ||
            fail "$d's discovery did not drop $kate2 within ${interval}+${slack} s"
    done
    ok "every node's discovery dropped $kate2"

    say "nobody reconnects to $kate2 (watched for $((2 * interval + slack)) s)"
    check_rpc absent -e CHECK_ABSENT="$kate2" -e CHECK_WINDOW_MS=$(((2 * interval + slack) * 1000))
    local line t_line
    while IFS= read -r line; do
        t_line=$(date -d "${line%% *}" +%s%3N)
        ((t_line <= t0)) || fail "a connection to $kate2 after it was removed: $line"
    done < <(grep -E "$(connected_re "$kate2")" "$log" || true)
    ok "no connection to $kate2 after it was removed"
}

case_tls() {
    say "up --tls: every dyno issues itself a certificate from the space's CA at start"
    space_up --tls
    space config | grep -q '^CHAT_TLS_CACERT=-----BEGIN CERTIFICATE-----' || fail "no CHAT_TLS_CACERT config var"

    say "every node connects to every other one, over TLS, within ${interval}+${slack} s"
    local deadline a b t latest=0
    deadline=$((T_UP + (interval + slack) * 1000))
    for a in "${dynos[@]}"; do
        for b in "${dynos[@]}"; do
            [[ $a == "$b" ]] && continue
            t=$(wait_log "$a" "$(connected_re "$(node_of "$b")")" "$deadline") ||
                fail "$a did not connect to $(node_of "$b") within ${interval}+${slack} s of up"
            ((t > latest)) && latest=$t
        done
    done
    ok "full mesh of ${#dynos[@]} nodes; last connection $((latest - T_UP)) ms after up returned"
    for a in "${dynos[@]}"; do
        [[ ${a%.*} == alex ]] && continue # the BEAM's Chat.Discovery logs no TLS details
        grep -F " app[$a]: " "$log" | grep -qE "distribution over TLS \(inet_tls\) from CHAT_TLS_CACERT and CHAT_TLS_CA_KEY \(a certificate issued for ${ip_of[$a]//./\\.} at start\)" ||
            fail "$a did not start with a certificate issued for ${ip_of[$a]}"
        for b in "${dynos[@]}"; do
            [[ $a == "$b" ]] && continue
            grep -F " app[$a]: " "$log" | grep -E "connected to $(re_quote "$(node_of "$b")") " |
                grep -qE "(incoming|outgoing), TLSv1\.[23] " || fail "$a's connection to $(node_of "$b") is not over TLS"
        done
    done
    ok "every C++ dyno issued itself a certificate for its address, and every one of its connections is TLS"
    local status
    status=$(space http web.1 /status.json) || fail "web.1 /status.json"
    for b in "${dynos[@]}"; do
        [[ $b == web.1 ]] && continue
        [[ $status == *"\"$(node_of "$b")\""* ]] || fail "web.1 /status.json does not list $(node_of "$b"): $status"
    done
    ok "web.1 /status.json lists every other node"

    check_amanda

    say "a one-off node without TLS is refused"
    local out
    out=$(space run -e MOEBI="$(node_of moebi.1)" \
        'elixir --name plain@$HEROKU_PRIVATE_IP --cookie "$ERLANG_COOKIE" -e "IO.puts(Node.ping(:\"$MOEBI\"))"' 2>&1) ||
        fail "the plain one-off dyno failed: $out"
    [[ $out == *pang* ]] || fail "a node without TLS reached moebi.1: $out"
    wait_log moebi.1 'refused: .*plain TCP distribution' $(($(now_ms) + 5000)) >/dev/null ||
        fail "moebi.1 did not log the refused plain TCP connection"
    ok "pang, and moebi.1 logged the refusal (plain TCP distribution on a TLS port)"
}

case ${1:-} in
    mesh | amanda | scale | tls) "case_$1" ;;
    *)
        echo "usage: $0 mesh|amanda|scale|tls" >&2
        exit 64
        ;;
esac
echo
echo "PASS $1"
