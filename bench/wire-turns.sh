#!/usr/bin/env bash
# Where the time of a BEAM client's round trip goes, read off the wire: for each pause between
# calls, bench/gap_client.exs calls a C++ node and elixir_peer (alternated blocks) while tcpdump
# records loopback. A node's share of a call is the sum of its turns (bench/turns.awk: the
# client's last packet before an answer, to that answer); the rest is the client and the kernel.
# scripts/bench's section 10 reads the same off one run of its own; this script adds --tls.
# The last column is the ratio a C++ node answering in no time at all would reach against the
# BEAM node: where it is above a target, no change to the node can meet that target with this
# client. The C++ node answers a turn in one packet; a BEAM may spread an answer over several,
# and its column counts to the first (so for Chat.send_message/2 it is a lower bound).
#
#   bench/wire-turns.sh [--bin-dir build] [--gaps 0,1,5,20] [--what call,rt] [--block-ms 2000]
#                       [--tls OPTFILE]
#
# With --tls, all three nodes run the distribution over TLS from that -ssl_dist_optfile
# (certificates for 127.0.0.1: chat-node tls-ca, then tls-cert 127.0.0.1). A turn then ends
# at the first record of the answer.
#
# By hand, as root (tcpdump). Needs tcpdump (apt-get install tcpdump), elixir and elixir_peer
# built (scripts/build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=$root/build gaps=0,1,5,20 whats=call,rt block_ms=2000 optfile=
while (($#)); do
    case $1 in
        --bin-dir) bin_dir=$(cd "$2" && pwd); shift 2 ;;
        --gaps) gaps=$2; shift 2 ;;
        --what) whats=$2; shift 2 ;;
        --block-ms) block_ms=$2; shift 2 ;;
        --tls) optfile=$(realpath "$2"); shift 2 ;;
        *) echo "usage: $0 [--bin-dir DIR] [--gaps LIST] [--what call,rt] [--block-ms MS] [--tls OPTFILE]" >&2; exit 2 ;;
    esac
done
command -v tcpdump >/dev/null || { echo "needs tcpdump (apt-get install tcpdump)" >&2; exit 2; }
ebin=${ELIXIR_PEER_EBIN:-$root/elixir_peer/_build/prod/lib/chat/ebin}
[[ -d $ebin ]] || { echo "elixir_peer is not built ($ebin): run scripts/build" >&2; exit 2; }

cpp_tls=() beam_tls=()
if [[ -n $optfile ]]; then
    cpp_tls=(--ssl-dist-optfile "$optfile")
    beam_tls=(--erl "-proto_dist inet_tls -ssl_dist_optfile $optfile")
fi

work=$(mktemp -d)
export ERL_EPMD_PORT=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
epmd -port "$ERL_EPMD_PORT" -daemon -relaxed_command_check
tag=wt$$
"$bin_dir/chat-node" --name "c$tag@127.0.0.1" --cookie "$tag" "${cpp_tls[@]}" --log-level warn >/dev/null 2>"$work/cpp.err" &
cpp_pid=$!
pids+=("$cpp_pid")
elixir "${beam_tls[@]}" --name "b$tag@127.0.0.1" --cookie "$tag" -pa "$ebin" \
    -e 'Application.ensure_all_started(:chat); Process.sleep(:infinity)' >/dev/null 2>&1 &
pids+=($!)

port_of() { epmd -port "$ERL_EPMD_PORT" -names 2>/dev/null | awk -v n="$1" '$2 == n { print $5 }'; }
deadline=$((SECONDS + 30))
until [[ -n $(port_of "c$tag") && -n $(port_of "b$tag") ]]; do
    ((SECONDS < deadline)) || { echo "the nodes did not register with EPMD" >&2; exit 1; }
    sleep 0.1
done
cpp_port=$(port_of "c$tag") beam_port=$(port_of "b$tag")
beam_pid=$(pgrep -f "beam.*b$tag@" | head -1)

kv() { sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"; }

printf '| call, pause | C++: round trip mean (µs) | C++: node turns per call | BEAM: round trip mean | BEAM: node turns per call | C++/BEAM | a C++ node taking 0 µs: C++/BEAM |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for what in ${whats//,/ }; do
    for gap in ${gaps//,/ }; do
        tcpdump -i lo -n -s 96 -U -w "$work/cap.pcap" "tcp port $cpp_port or tcp port $beam_port" 2>"$work/tcpdump.err" &
        tp=$!
        pids+=("$tp")
        deadline=$((SECONDS + 10))
        until grep -q 'listening on' "$work/tcpdump.err"; do
            ((SECONDS < deadline)) || { echo "tcpdump did not start: $(cat "$work/tcpdump.err")" >&2; exit 1; }
            sleep 0.05
        done
        out=$(elixir "${beam_tls[@]}" --name "g$tag$RANDOM@127.0.0.1" --cookie "$tag" -pa "$ebin" "$root/bench/gap_client.exs" \
            "c$tag@127.0.0.1" "$cpp_pid" "b$tag@127.0.0.1" "$beam_pid" "$gap" "$what" "$block_ms" 100 3000 100 0)
        kill "$tp"
        wait "$tp" 2>/dev/null || true
        cpp=$(grep 'side=cpp' <<<"$out") beam=$(grep 'side=beam' <<<"$out")
        blocks=$(while read -r line; do
            side=$(kv "$line" side)
            echo "$side $([[ $side == cpp ]] && echo "$cpp_port" || echo "$beam_port") $(kv "$line" t0_ns) $(kv "$line" t1_ns) $(kv "$line" calls)"
        done < <(grep '^gap ' <<<"$out"))
        turns=$(tcpdump -r "$work/cap.pcap" -n -tt 2>/dev/null | awk -v blocks="$blocks" -f "$root/bench/turns.awk")
        c_node=$(awk '$1 == "cpp" { print $3 }' <<<"$turns") b_node=$(awk '$1 == "beam" { print $3 }' <<<"$turns")
        c_rt=$(kv "$cpp" mean_us) b_rt=$(kv "$beam" mean_us)
        awk -v w="$what" -v g="$gap" -v cr="$c_rt" -v cn="$c_node" -v br="$b_rt" -v bn="$b_node" 'BEGIN {
            printf "| %s, %s ms | %.0f | %.0f | %.0f | %.0f | %.2f× | %.2f× |\n",
                (w == "rt" ? "Chat.send_message/2" : "GenServer.call :count"), g, cr, cn, br, bn, cr / br, (cr - cn) / br }'
    done
done
