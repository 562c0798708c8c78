#!/usr/bin/env bash
# Run one space test case (see cases.sh) in a simulated Private Space of its
# own, and remove the space afterwards whatever happens.
#
#   test/space/run.sh mesh|amanda|scale|tls
#   test/space/run.sh refuses-without-root
#
# The space tests need root and working network namespaces. Without them
# they FAIL with a message saying so; they never pass or skip silently.
# `refuses-without-root` checks exactly that: it runs `mesh` as an
# unprivileged user and expects that failure.
#
# Environment (test/space/CMakeLists.txt sets it; defaults suit a checkout
# built with scripts/build):
#   CHAT_NODE            chat-node binary (build/chat-node)
#   ELIXIR_PEER_EBIN     ebin of elixir_peer (MIX_ENV=prod)
#   SPACE_TEST_TIMEOUT   seconds before the case is stopped (150); keep it
#                        below CTest's TIMEOUT so that the cleanup runs
#   SPACE_TEST_INTERVAL  discovery interval of the nodes (5)
#   SPACE_TEST_KEEP_LOG=1  print the space's whole log at the end
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
case_name=${1:-}
[[ -n $case_name ]] || {
    echo "usage: $0 mesh|amanda|scale|tls|refuses-without-root" >&2
    exit 64
}

export CHAT_NODE=${CHAT_NODE:-$root/build/chat-node}
export ELIXIR_PEER_EBIN=${ELIXIR_PEER_EBIN:-$root/elixir_peer/_build/prod/lib/chat/ebin}
timeout_s=${SPACE_TEST_TIMEOUT:-150}

if [[ $case_name == refuses-without-root ]]; then
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    rc=0
    if [[ $(id -u) -eq 0 ]]; then
        setpriv --reuid=65534 --regid=65534 --clear-groups -- \
            env -u SPACE_DIR bash "$here/run.sh" mesh >"$out" 2>&1 </dev/null || rc=$?
    else
        env -u SPACE_DIR bash "$here/run.sh" mesh >"$out" 2>&1 </dev/null || rc=$?
    fi
    sed 's/^/  | /' "$out"
    if ((rc == 0)); then
        echo "FAIL: the space tests passed without root"
        exit 1
    fi
    grep -q '^FAIL: not running as root' "$out" || {
        echo "FAIL: no clear 'not running as root' message (exit status $rc)"
        exit 1
    }
    echo "PASS: without root the space tests fail (exit status $rc) and say why"
    exit 0
fi

# The machine: root, ip netns, dnsmasq, built binaries. Never a silent skip.
unfit() {
    echo "FAIL: $*"
    echo "FAIL: the space tests need root and working network namespaces (ip netns);" \
        "they run as root in CI and are not skipped elsewhere"
    exit 1
}
[[ $(id -u) -eq 0 ]] || unfit "not running as root (uid $(id -u)): cannot create network namespaces"
command -v ip >/dev/null || unfit "ip (iproute2) not found: run scripts/install-deps"
command -v dnsmasq >/dev/null || unfit "dnsmasq not found: run scripts/install-deps (dnsmasq-base)"
probe=cs-probe-$$
ip netns add "$probe" 2>/dev/null || unfit "'ip netns add' does not work on this machine"
ip netns del "$probe"
[[ -x $CHAT_NODE ]] || unfit "no chat-node binary at $CHAT_NODE (run scripts/build)"
[[ -f $ELIXIR_PEER_EBIN/chat.app ]] || unfit "elixir_peer is not compiled: no $ELIXIR_PEER_EBIN/chat.app (run scripts/build)"

SPACE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chat-space-$case_name.XXXXXX")
export SPACE_DIR
started=$(date +%s)

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$? id left
    trap - EXIT INT TERM HUP
    set +e
    id=$(sed -n 's/^SPACE_ID=//p' "$SPACE_DIR/space.env" 2>/dev/null)
    if [[ -f $SPACE_DIR/log ]] && ((rc != 0)) || [[ ${SPACE_TEST_KEEP_LOG:-0} == 1 ]]; then
        echo "----- the space's log (last 200 lines) -----"
        tail -n 200 "$SPACE_DIR/log" 2>/dev/null
        echo "----- end of the space's log -----"
    fi
    "$root/scripts/space" down
    if [[ -n $id ]]; then
        left=$(ip netns list | awk '{print $1}' | grep "^cs-$id-")
        if [[ -n $left ]]; then
            echo "FAIL: namespaces left behind: $left"
            rc=1
        fi
        if compgen -G "/etc/netns/cs-$id-*" >/dev/null; then
            echo "FAIL: /etc/netns/cs-$id-* left behind"
            rc=1
        fi
    fi
    rm -rf "$SPACE_DIR"
    echo "space test $case_name: $(($(date +%s) - started)) s, exit status $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# In the background, so that a signal reaches our trap at once; `timeout`
# is the inner deadline, CTest's TIMEOUT the outer one.
timeout -k 10 "$timeout_s" bash "$here/cases.sh" "$case_name" </dev/null &
rc=0
wait $! || rc=$?
if ((rc == 124 || rc == 137)); then
    echo "FAIL: $case_name did not finish within SPACE_TEST_TIMEOUT=${timeout_s}s"
fi
exit "$rc"
