#!/usr/bin/env bash
# End-to-end test of the web page in a real browser (headless Debian Chromium
# driven by playwright-core), against a private cluster of real nodes:
#
#   web@127.0.0.1    chat-node --port P, the node that serves the page
#   moebi@127.0.0.1  chat-node; answers every message with "chicken?"
#   alex@127.0.0.1   the Elixir app in elixir_peer/ (a BEAM node)
#
#   test/browser/run.sh            (CTest runs it as browser.web_chat)
#
# What it does:
# - installs playwright-core from package-lock.json into test/browser/node_modules
#   (git-ignored) when that is missing or out of date, with `npm ci`;
# - starts its own EPMD on a free loopback port (ERL_EPMD_PORT), then the
#   three nodes, and waits until each has printed "Node name: …";
# - runs web_chat.test.mjs with node's test runner; the screenshots go to
#   $BROWSER_ARTIFACTS (their paths are printed);
# - on exit, however it happens, ends every process it started (they all
#   carry CHAT_RUN_MARK in their environment, Chromium included) and, if the
#   test failed, prints the nodes' logs.
#
# Inputs from the environment (CMake sets them; the defaults fit a checkout
# built with scripts/build):
#   CHAT_NODE           chat-node binary                      (build/chat-node)
#   ELIXIR_PEER_EBIN    ebin of elixir_peer (app :chat)
#   ELIXIR, NODE, NPM   executables                           (from PATH)
#   CHROMIUM            browser executable                    (/usr/bin/chromium)
#   BROWSER_ARTIFACTS   where screenshots are kept            ($TMPDIR/chat-browser-artifacts)
#   BROWSER_TIMEOUT     seconds this script may take in all (360): npm ci, the
#                       nodes' start and the test run share it; keep it below the
#                       CTest TIMEOUT so that cleanup always runs
#   BROWSER_KEEP_TMP=1  keep the per-run temporary directory (node logs)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../scripts/lib/cluster.sh
source "$root/scripts/lib/cluster.sh"

CHAT_NODE=${CHAT_NODE:-$root/build/chat-node}
ELIXIR_PEER_EBIN=${ELIXIR_PEER_EBIN:-$root/elixir_peer/_build/prod/lib/chat/ebin}
ELIXIR=${ELIXIR:-elixir}
NODE=${NODE:-node}
NPM=${NPM:-npm}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
BROWSER_ARTIFACTS=${BROWSER_ARTIFACTS:-${TMPDIR:-/tmp}/chat-browser-artifacts}
BROWSER_TIMEOUT=${BROWSER_TIMEOUT:-360}
# Seconds left of BROWSER_TIMEOUT, at most $1.
budget() {
    local left=$((BROWSER_TIMEOUT - SECONDS))
    if [[ -n ${1:-} ]] && ((left > $1)); then left=$1; fi
    echo "$((left > 1 ? left : 1))"
}

problems=()
[[ -x $CHAT_NODE ]] || problems+=("chat-node binary not found or not executable: $CHAT_NODE")
[[ -f $ELIXIR_PEER_EBIN/chat.app ]] || problems+=("elixir_peer is not compiled (no $ELIXIR_PEER_EBIN/chat.app)")
for tool in "$ELIXIR" "$NODE" "$NPM" "$CHROMIUM" epmd ss flock; do
    command -v "$tool" >/dev/null || problems+=("not found: $tool")
done
if ((${#problems[@]})); then
    printf 'error: %s\n' "${problems[@]}" >&2
    echo "hint: run scripts/build (it runs scripts/install-deps) first" >&2
    exit 2
fi

# --- playwright-core, from the lock file -----------------------------------
# `npm ci` leaves a copy of the lock file in node_modules/.package-lock.json;
# our own copy beside it says which lock file the tree was installed from.
# The flock keeps two runs from the same checkout from installing at once.
install_driver() {
    local stamp=$here/node_modules/.installed-from-lock.json
    if [[ -f $stamp && -f $here/node_modules/playwright-core/package.json ]] &&
        cmp -s "$stamp" "$here/package-lock.json"; then
        return 0
    fi
    echo "== browser: npm ci in $here (playwright-core from package-lock.json)"
    (cd "$here" && timeout "$(budget 180)" "$NPM" ci --no-audit --no-fund --prefer-offline --loglevel=error) || {
        echo "error: npm ci failed in $here" >&2
        return 1
    }
    cp "$here/package-lock.json" "$stamp"
}
lock=${TMPDIR:-/tmp}/chat-browser-npm-$(printf '%s' "$here" | cksum | cut -d' ' -f1).lock
(
    flock -w "$(budget 180)" 9 || {
        echo "error: timed out waiting for another npm install ($lock)" >&2
        exit 1
    }
    install_driver
) 9>"$lock"

# --- the cluster -------------------------------------------------------------
CHAT_RUN_MARK="browser-$$-$(chat_random_hex 6)"
export CHAT_RUN_MARK
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/chat-browser.XXXXXX")

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    trap "" PIPE
    set +e
    chat_kill_marked "$CHAT_RUN_MARK" 5
    wait 2>/dev/null
    ((rc == 0)) || chat_show_logs "browser test exit status $rc" "$run_dir"/*.stdout "$run_dir"/*.stderr
    if [[ ${BROWSER_KEEP_TMP:-0} == 1 ]]; then
        echo "node logs kept in $run_dir"
    else
        rm -rf "$run_dir"
    fi
    exit "$rc"
}
trap cleanup EXIT
chat_trap_signals

chat_start_epmd "$run_dir/epmd.log"
export ERL_EPMD_PORT=$CHAT_EPMD_PORT
cookie=br$(chat_random_hex 12)

# A free TCP port for the page, from the same range as the private EPMD's.
http_port=
for _ in $(seq 1 40); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    if [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]]; then
        http_port=$p
        break
    fi
done
[[ -n $http_port ]] || {
    echo "error: no free port for HTTP" >&2
    exit 1
}
echo "== browser: private epmd on port $ERL_EPMD_PORT, page on port $http_port, chat-node $CHAT_NODE"

# None of these nodes may pick up a dyno's settings from the environment.
quiet_env=(env -u PORT -u DYNO -u CHAT_DISCOVERY -u HEROKU_DNS_APP_NAME -u HEROKU_DNS_FORMATION_NAME)

"${quiet_env[@]}" "$CHAT_NODE" --name moebi@127.0.0.1 --cookie "$cookie" \
    >"$run_dir/moebi.stdout" 2>"$run_dir/moebi.stderr" </dev/null &
moebi_pid=$!
"${quiet_env[@]}" "$ELIXIR" --name alex@127.0.0.1 --cookie "$cookie" -pa "$ELIXIR_PEER_EBIN" \
    -e 'Application.ensure_all_started(:chat); Process.sleep(:infinity)' \
    >"$run_dir/alex.stdout" 2>"$run_dir/alex.stderr" </dev/null &
alex_pid=$!
# The web node finds its peers the way a web dyno does: by asking EPMD on the
# peers' host (here the private one) for the nodes registered there. Its page
# wants an access token, as a public web dyno's should (CHAT_WEB_TOKEN).
web_token=wt$(chat_random_hex 12)
CHAT_WEB_TOKEN=$web_token "${quiet_env[@]}" "$CHAT_NODE" --name web@127.0.0.1 --cookie "$cookie" --port "$http_port" \
    --discover 127.0.0.1 --discovery-interval 1 \
    >"$run_dir/web.stdout" 2>"$run_dir/web.stderr" </dev/null &
web_pid=$!

# Wait until process $2 has printed "Node name: $1" in file $3, for at most $4
# seconds; fail at once if it exits first.
wait_node() {
    local name=$1 pid=$2 file=$3 polls=$(($4 * 20))
    while ((polls-- > 0)); do
        if grep -qxF -- "Node name: $name" "$file" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: $name exited before it was up (see its logs below)" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "error: $name did not print 'Node name: $name' within $4 s" >&2
    return 1
}
# An Elixir VM starts slowly on a busy machine: generous deadlines.
wait_node moebi@127.0.0.1 "$moebi_pid" "$run_dir/moebi.stdout" 60
wait_node web@127.0.0.1 "$web_pid" "$run_dir/web.stdout" 60
wait_node alex@127.0.0.1 "$alex_pid" "$run_dir/alex.stdout" 120
echo "== browser: web, moebi and alex are up"

mkdir -p "$BROWSER_ARTIFACTS" "$run_dir/tmp"
rm -f "$BROWSER_ARTIFACTS"/web-chat*.png # no stale screenshot from an earlier run
export WEB_TOKEN=$web_token WEB_URL=http://127.0.0.1:$http_port/ WEB_NODE=web@127.0.0.1 MOEBI_NODE=moebi@127.0.0.1 \
    ALEX_NODE=alex@127.0.0.1 ALEX_STDOUT=$run_dir/alex.stdout CHROMIUM BROWSER_ARTIFACTS

# In the background, so that a TERM/INT sent to this script is handled at once.
left=$(budget)
if ((left < 90)); then
    echo "error: only ${left}s of BROWSER_TIMEOUT=${BROWSER_TIMEOUT}s left for the browser test" >&2
    exit 1
fi
# TMPDIR: Chromium's throw-away profile goes to the run directory, removed with it.
TMPDIR=$run_dir/tmp timeout -k 10 "$left" \
    "$NODE" --test --test-reporter=spec "$here/web_chat.test.mjs" </dev/null &
runner=$!
rc=0
wait "$runner" || rc=$?
if ((rc == 124 || rc == 137)); then
    echo "error: the browser test did not finish within BROWSER_TIMEOUT=${BROWSER_TIMEOUT}s (${left}s left for it)" >&2
fi
exit "$rc"
