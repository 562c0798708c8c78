#!/usr/bin/env bash
# The image, end to end, where no image registry and no `podman run` are available:
#
#   1. the base image (debian:bookworm-slim) made locally with debootstrap, unless podman
#      has it already, then the image built from the Dockerfile (scripts/container build);
#   2. the image's runtime checked: no compiler, no -dev package, a non-root user, a
#      HEALTHCHECK;
#   3. its filesystem exported and run as heroku.yml's formation (run: web, moebi, kate,
#      alex, commands read with a YAML parser) in a simulated Private Space
#      (scripts/space with SPACE_IMAGE): chrooted, as the image's user, with Heroku's
#      environment and DNS service discovery;
#   4. the full mesh forms (every node lists every other one, asked over :rpc from a hidden
#      one-off), an Elixir one-off dyno gets "chicken?" from moebi, $PORT answers on web,
#      /metrics parses on web's port and on CHAT_METRICS_PORT of moebi, the healthcheck
#      passes in every dyno, and every process of the app runs as the image's user.
#
# Fails (never skips) without root, podman, debootstrap or network namespaces. Times every
# phase; the base image and podman's build cache stay for the next run on this machine.
#
#   test/deploy/container.sh
#   CONTAINER_TEST_KEEP=1 test/deploy/container.sh    keep the exported image and the log
# Commands for the dynos are single-quoted on purpose: they expand there.
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
tag=${CONTAINER_TEST_TAG:-localhost/chat-node:test}
timeout_s=${CONTAINER_TEST_TIMEOUT:-2640}
user_expected=10001

fail() {
    echo "FAIL: $*"
    exit 1
}
ok() { echo "ok   $*"; }
say() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- the machine
[[ $(id -u) -eq 0 ]] || fail "not running as root: podman's storage, chroot and network namespaces need root"
for cmd in podman debootstrap ip dnsmasq chroot curl; do
    command -v "$cmd" >/dev/null || fail "$cmd not found: run scripts/install-deps"
done
"$PYTHON" -c 'import yaml, prometheus_client' 2>/dev/null ||
    fail "$PYTHON lacks yaml or prometheus_client: run scripts/install-deps (python3-yaml, python3-prometheus-client)"
probe=cs-probe-$$
ip netns add "$probe" 2>/dev/null || fail "'ip netns add' does not work on this machine"
ip netns del "$probe"

if [[ ${CONTAINER_TEST_INNER:-0} != 1 ]]; then
    # The body runs under `timeout`, so that it stops (and cleans up) before CTest's limit.
    CONTAINER_TEST_INNER=1 timeout -k 20 "$timeout_s" bash "${BASH_SOURCE[0]}" </dev/null &
    rc=0
    wait $! || rc=$?
    ((rc == 124 || rc == 137)) && echo "FAIL: did not finish within CONTAINER_TEST_TIMEOUT=${timeout_s}s"
    exit "$rc"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/chat-container.XXXXXX")
export SPACE_DIR=$work/space
space() { "$root/scripts/space" "$@"; }
started=$SECONDS
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    if [[ -f $SPACE_DIR/space.env ]]; then
        if ((rc != 0)); then
            echo "----- the space's log (last 150 lines) -----"
            tail -n 150 "$SPACE_DIR/log"
            echo "----- end of the space's log -----"
        fi
        space down
    fi
    if [[ ${CONTAINER_TEST_KEEP:-0} == 1 ]]; then
        echo "kept: $work"
    else
        rm -rf --one-file-system "$work"
    fi
    echo "container test: $((SECONDS - started)) s, exit status $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

phase_start=$SECONDS
phase() { # NAME: how long the phase since the last call took
    ok "$1 in $((SECONDS - phase_start)) s"
    phase_start=$SECONDS
}

# ---------------------------------------------------------------- 1. build
say "the image: base image, then podman build"
base_made=reused
podman image exists docker.io/library/debian:bookworm-slim || base_made=made
"$root/scripts/container" base
phase "base image debian:bookworm-slim ($base_made)"
"$root/scripts/container" build "$tag"
size=$(podman image inspect --format '{{.Size}}' "$tag")
phase "image $tag built: $size bytes ($((size / 1000000)) MB)"

# ---------------------------------------------------------------- 2. the runtime stage
say "what the runtime holds"
user=$(podman image inspect --format '{{.Config.User}}' "$tag")
[[ ${user%%:*} == "$user_expected" ]] || fail "the image runs as '$user', expected uid $user_expected"
ok "USER $user (not root)"
health=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$tag")
[[ $health == *bin/healthcheck* ]] || fail "no HEALTHCHECK in the image: $health"
ok "HEALTHCHECK: $health"
"$root/scripts/container" export "$tag" "$work/image"
rootfs=$work/image/rootfs
phase "exported"
found=()
for f in usr/bin/cc usr/bin/c++ usr/bin/gcc usr/bin/g++ usr/bin/clang usr/bin/clang++ usr/bin/as usr/bin/ld \
    usr/bin/make usr/bin/cmake; do
    [[ -e $rootfs/$f || -L $rootfs/$f ]] && found+=("/$f")
done
mapfile -t -O "${#found[@]}" found < <(cd "$rootfs" && find usr/lib/gcc usr/libexec/gcc -name 'cc1*' 2>/dev/null)
((${#found[@]} == 0)) || fail "the runtime has a compiler or build tool: ${found[*]}"
dev=$(chroot "$rootfs" dpkg-query -W -f '${Package}\n' | grep -E -- '-dev$' || true)
[[ -z $dev ]] || fail "the runtime has -dev packages: $(echo "$dev" | tr '\n' ' ')"
ok "no compiler, no build tool, no -dev package ($(chroot "$rootfs" dpkg-query -W -f '${Package}\n' | wc -l) packages)"
writable=$(find "$rootfs/app" \( ! -uid 0 -o -perm -o+w \) -print | head -n 5)
[[ -z $writable ]] || fail "the app user could change the app: ${writable//$'\n'/ }"
ok "/app belongs to root: read-only to the app user"

# ---------------------------------------------------------------- 3. the formation
say "heroku.yml's formation in a simulated Private Space, from the image"
"$PYTHON" - "$root/heroku.yml" >"$work/Procfile" <<'PY'
import sys, yaml
h = yaml.safe_load(open(sys.argv[1]))
for t, e in h["run"].items():
    print("%s: %s" % (t, e if isinstance(e, str) else e["command"][0]))
PY
sed 's/^/     | /' "$work/Procfile"
# The test's own Elixir scripts, for the one-off dynos (the image's /tmp; the app is untouched).
mkdir -p "$rootfs/tmp/chat-test"
cp "$root/test/space/amanda.exs" "$root/test/space/check.exs" "$rootfs/tmp/chat-test/"
chmod -R a+rX "$rootfs/tmp/chat-test"
app=c$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
SPACE_IMAGE=$work/image SPACE_PROCFILE=$work/Procfile SPACE_APP=$app CHAT_DISCOVERY_INTERVAL=2 \
    CHAT_METRICS_PORT=9100 space up
phase "formation up"

declare -A ip_of=()
nodes=()
while read -r d ip state; do
    [[ $state == up ]] || fail "$d is $state"
    ip_of[$d]=$ip
    nodes+=("${d%.*}@$ip")
done < <(space ps --porcelain)
for t in web moebi kate alex; do [[ -n ${ip_of[$t.1]:-} ]] || fail "no dyno $t.1"; done
space_id=$(sed -n 's/^SPACE_ID=//p' "$SPACE_DIR/space.env")

# Every process of the app runs in the image's root as its user (the space's own runner,
# outside the root, is root).
for d in "${!ip_of[@]}"; do
    n=0
    for pid in $(ip netns pids "cs-$space_id-$d"); do
        [[ $(readlink "/proc/$pid/root" 2>/dev/null) == "$rootfs" ]] || continue
        uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
        [[ $uid == "$user_expected" ]] || fail "$d: $(tr '\0' ' ' <"/proc/$pid/cmdline") runs as uid $uid"
        n=$((n + 1))
    done
    ((n > 0)) || fail "$d: no process runs in the image"
done
ok "every app process (nodes, their EPMDs, the shells) runs in the image as uid $user_expected"

# ---------------------------------------------------------------- 4. checks
# check_mesh [PREFIX]: a hidden checker in a one-off dyno sees every node of $nodes connected
# to all the others. PREFIX runs first in the dyno's shell (the TLS round's certificate).
check_mesh() {
    local out
    out=$(space run -e CHECK_MODE=mesh -e CHECK_NODES="${nodes[*]}" -e CHECK_TIMEOUT_MS=30000 \
        "${1:-}"'elixir --name check@$HEROKU_PRIVATE_IP --cookie "$ERLANG_COOKIE" --hidden /tmp/chat-test/check.exs' 2>&1) || {
        printf '%s\n' "$out" | sed 's/^/     | /'
        fail "no full mesh${1:+ over TLS}"
    }
    printf '%s\n' "$out" | sed 's/^/     | /'
}
# run_amanda [PREFIX]: amanda's one-off dyno (test/space/amanda.exs); what it printed is in $out.
run_amanda() {
    out=$(space run "${1:-}"'cd elixir_peer && elixir --name amanda@$HEROKU_PRIVATE_IP --cookie "$ERLANG_COOKIE" -S mix run /tmp/chat-test/amanda.exs' 2>&1) || {
        printf '%s\n' "$out" | sed 's/^/     | /'
        fail "amanda's one-off dyno failed${1:+ over TLS}"
    }
    printf '%s\n' "$out" | grep -v '^$' | sed 's/^/     | /'
}

say "the full mesh, asked over :rpc from a hidden one-off dyno"
check_mesh
ok "every node is connected to the ${#nodes[@]} - 1 others"
phase "mesh checked"

say "amanda, in a one-off dyno (heroku run), sends to moebi"
run_amanda
chicken=$(printf '%s\n' "$out" | grep -nx 'chicken?' | cut -d: -f1)
nil=$(printf '%s\n' "$out" | grep -nx 'nil' | cut -d: -f1)
if ! [[ $chicken =~ ^[0-9]+$ && $nil =~ ^[0-9]+$ ]] || ((chicken > nil)); then
    fail "\"chicken?\" then nil were not printed exactly once each, in that order"
fi
deadline=$((SECONDS + 10))
until grep -qF " app[moebi.1]: Hello from Amanda!" "$SPACE_DIR/log"; do
    ((SECONDS < deadline)) || fail "moebi.1 did not print the message"
    sleep 0.2
done
ok "\"chicken?\" on amanda's console before nil; moebi.1 printed \"Hello from Amanda!\""
phase "one-off checked"

say "\$PORT, /metrics, the healthcheck"
body=$(space http web.1 /health) || fail "GET /health on web.1's \$PORT"
[[ $body == ok* ]] || fail "GET /health: $body"
ok "GET http://${ip_of[web.1]}:5000/health: $body"
samples=$(space http web.1 /metrics | "$PYTHON" "$here/parse_metrics.py") || fail "web.1's /metrics does not parse"
up=$(awk '$1 ~ /^chat_dist_connections\{/ {n += $2} END {print n + 0}' <<<"$samples")
((up >= 3)) || fail "web.1's /metrics counts $up connections, expected 3 or more"
beam=$(awk '$1 ~ /^chat_dist_connections\{.*kind=beam/ {n += $2} END {print n + 0}' <<<"$samples")
((beam >= 1)) || fail "web.1's /metrics counts no BEAM peer (alex)"
ok "web.1 /metrics parses: $(wc -l <<<"$samples") samples, $up connections ($beam to BEAM nodes)"
moebi=$(ip netns exec "cs-$space_id-hub" curl -fsS --max-time 10 "http://${ip_of[moebi.1]}:9100/metrics" |
    "$PYTHON" "$here/parse_metrics.py") || fail "moebi.1's /metrics on CHAT_METRICS_PORT does not parse"
grep -q "^chat_node_info{kind=cpp,node=moebi@${ip_of[moebi.1]}} 1$" <<<"$moebi" || fail "moebi.1's /metrics: no chat_node_info"
ok "moebi.1 /metrics on CHAT_METRICS_PORT=9100 parses"
for d in web.1 moebi.1 kate.1 alex.1; do
    space exec "$d" 'bin/healthcheck' || fail "the image's HEALTHCHECK (bin/healthcheck) fails in $d"
done
ok "bin/healthcheck passes in web.1 (HTTP) and moebi.1, kate.1, alex.1 (EPMD)"
phase "HTTP checked"

# ---------------------------------------------------------------- 5. with TLS
say "the same formation with TLS distribution (space up --tls: the cluster CA in config vars)"
space down
SPACE_TLS=1 SPACE_IMAGE=$work/image SPACE_PROCFILE=$work/Procfile SPACE_APP=$app CHAT_DISCOVERY_INTERVAL=2 space up
phase "formation up with TLS"
nodes=()
while read -r d ip state; do
    [[ $state == up ]] || fail "$d is $state"
    nodes+=("${d%.*}@$ip")
done < <(space ps --porcelain)
for t in web moebi kate; do
    grep -F " app[$t.1]: " "$SPACE_DIR/log" | grep -qF "distribution over TLS (inet_tls)" ||
        fail "$t.1 did not turn TLS distribution on"
done
ok "web.1, moebi.1 and kate.1 run the distribution over TLS"
# What alex's Procfile line does in a one-off dyno: a certificate for its address, the erl flags.
beam_tls='tls_flags=$(build/chat-node tls-cert --if-configured "$HEROKU_PRIVATE_IP" --out "${TMPDIR:-/tmp}/chat-tls") && export ELIXIR_ERL_OPTIONS="$tls_flags" && '
check_mesh "$beam_tls"
ok "every node, alex (Elixir) included, is connected to the ${#nodes[@]} - 1 others over TLS"
run_amanda "$beam_tls"
printf '%s\n' "$out" | grep -qx 'chicken?' || fail "no \"chicken?\" over TLS"
ok "\"chicken?\" on amanda's console over TLS"
phase "TLS checked"

echo
echo "image $tag: $size bytes; base image $base_made; $((SECONDS - started)) s in all"
echo "PASS container"
