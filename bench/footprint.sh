#!/usr/bin/env bash
# The code a C++ node runs per request, counted rather than timed: for each kind of request a
# BEAM client makes (pausing 20 ms between them, as sparse traffic does), valgrind's callgrind
# counts the instructions the node executes over CALLS requests and lists every code address
# that ran. What a request touches matters most after a pause: a CPU idle for milliseconds on a
# shared machine has lost much of the node's code from its caches and TLB, and each 64-byte line
# and 4 KB page the request runs is then fetched again (section 10's CPU per wake-up grows with
# the pause; a plain C echo server, which runs a few lines of its own, grows less). Unlike the
# timings, these figures do not move with the machine's load (two runs differ by a few tenths of
# a percent): compare them across commits or build flags to see whether a change made the
# sparse path lighter.
#
#   bench/footprint.sh [--bin-dir build-release] [--calls 100] [--what count,send,cast]
#
# count: GenServer.call({Chat, node}, :count); send: Chat.send_message(node, "hello"), the
# elixir_peer client; cast: send({Chat, node}, "hello") followed by nothing. The lines and pages
# are those any of the CALLS requests ran (each runs nearly the same code, so about what one
# request runs); the span is from the lowest to the highest of them in the text.
#
# The figures are for the build given: the bench's Release build by default (build-release,
# made by scripts/bench). By hand. Needs valgrind (apt-get install valgrind), elixir, and
# elixir_peer built (scripts/build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=$root/build-release calls=100 whats=count,send,cast
while (($#)); do
    case $1 in
        --bin-dir) bin_dir=$(cd "$2" && pwd); shift 2 ;;
        --calls) calls=$2; shift 2 ;;
        --what) whats=$2; shift 2 ;;
        *) echo "usage: $0 [--bin-dir DIR] [--calls N] [--what count,send,cast]" >&2; exit 2 ;;
    esac
done
for tool in valgrind callgrind_control elixir epmd; do
    command -v "$tool" >/dev/null || { echo "needs $tool (valgrind: apt-get install valgrind)" >&2; exit 2; }
done
ebin=${ELIXIR_PEER_EBIN:-$root/elixir_peer/_build/prod/lib/chat/ebin}
[[ -d $ebin ]] || { echo "elixir_peer is not built ($ebin): run scripts/build" >&2; exit 2; }
[[ -x $bin_dir/chat-node ]] || { echo "no $bin_dir/chat-node: scripts/bench builds it there (Release), or --bin-dir" >&2; exit 2; }

# shellcheck source=scripts/lib/cluster.sh
source "$root/scripts/lib/cluster.sh"
work=$(mktemp -d)
mark=footprint-$(chat_random_hex 6)
export CHAT_RUN_MARK=$mark
cleanup() {
    chat_kill_marked "$mark"
    rm -rf "$work"
}
trap cleanup EXIT
chat_trap_signals
chat_start_epmd "$work/epmd.log"
export ERL_EPMD_PORT=$CHAT_EPMD_PORT

# Instructions, then distinct 64-byte lines, 4 KB pages and the span in KB of the code that
# ran, from a callgrind file written with --dump-instr=yes --compress-pos=no: each cost line
# is "0xADDRESS LINE IR".
count_code() {
    awk "$(chat_awk_hex)"'
        /^totals:/ { total = $2 }
        /^0x/ && NF >= 3 && $3 != "0" {
            a = hex($1)
            if (!(a in seen)) {
                seen[a] = 1
                line[int(a / 64)] = 1; page[int(a / 4096)] = 1
                if (lo == "" || a < lo) lo = a
                if (a > hi) hi = a
            }
        }
        END { nl = 0; np = 0; for (k in line) nl++; for (k in page) np++
              printf "%d %d %d %d\n", total, nl, np, (hi - lo) / 1024 }' "$1"
}

printf '| request (BEAM client, 20 ms apart) | instructions per request | 64-byte code lines run (KB) | 4 KB code pages | span of the text run (KB) |\n'
printf '|---|---:|---:|---:|---:|\n'
n=0
for what in ${whats//,/ }; do
    case $what in
        count) call='GenServer.call({Chat, n}, :count)' label='GenServer.call :count' ;;
        send) call='Chat.send_message(n, "hello")' label='Chat.send_message/2' ;;
        cast) call='send({Chat, n}, "hello")' label='send to {Chat, node}' ;;
        *) echo "unknown --what $what" >&2; exit 2 ;;
    esac
    n=$((n + 1))
    name=fp$n$$
    out=$work/callgrind.$n
    valgrind --tool=callgrind --instr-atstart=no --dump-instr=yes --compress-pos=no --callgrind-out-file="$out" \
        "$bin_dir/chat-node" --name "$name@127.0.0.1" --cookie "fp$$" --log-level warn >/dev/null 2>"$work/node.$n" &
    vg=$!
    deadline=$((SECONDS + 60))
    until epmd -port "$ERL_EPMD_PORT" -names 2>/dev/null | grep -q "name $name "; do
        ((SECONDS < deadline)) || { echo "chat-node under valgrind did not register: $(cat "$work/node.$n")" >&2; exit 1; }
        sleep 0.2
    done
    # One client for the warm-up and the counted requests: its connection, and the atom cache
    # entries it sets up, are made before counting starts. The casts are given a second to be
    # handled (under valgrind a turn takes about a millisecond), with nothing else to run.
    elixir --name "c$name@127.0.0.1" --cookie "fp$$" -pa "$ebin" -e "
        n = :\"$name@127.0.0.1\"
        true = Node.connect(n)
        instrument = fn on -> {_, 0} = System.cmd(\"callgrind_control\", [\"-i\", on, \"$vg\"], stderr_to_stdout: true) end
        for _ <- 1..50, do: ($call; Process.sleep(20))
        GenServer.call({Chat, n}, :count, 60_000)
        instrument.(\"on\")
        for _ <- 1..$calls, do: ($call; Process.sleep(20))
        if \"$what\" == \"cast\", do: Process.sleep(1000)
        instrument.(\"off\")
    " >/dev/null
    kill "$vg"
    wait "$vg" 2>/dev/null || true
    read -r total lines pages span < <(count_code "$out")
    awk -v l="$label" -v t="$total" -v c="$calls" -v nl="$lines" -v np="$pages" -v s="$span" 'BEGIN {
        printf "| %s | %.0f | %d (%.0f) | %d | %d |\n", l, t / c, nl, nl * 64 / 1024, np, s }'
done
