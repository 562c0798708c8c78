# shellcheck shell=bash
# scripts/bench, part 8: TLS distribution. The C++ node and elixir_peer both run
# -proto_dist inet_tls with one optfile (a CA and a certificate for 127.0.0.1 made by
# chat-node tls-ca / tls-cert), and the same clients measure both, on TLS too: the BEAM client
# (round trips, fire-and-forget), chat-node blast (1 MB) and dist-swarm (handshakes, memory).
#
# Sourced by scripts/bench, whose helpers these functions use (start_target, run_client's
# conventions, add_raw, value, row, kv, ...). bench_tls_measure runs the measurements;
# bench_tls_rows adds the table's section 8.
#
# TLS versions as the peers negotiate them: OTP 25 and 27 offer TLS 1.2 only to distribution
# peers unless their optfile says otherwise (inet_tls_dist's default versions), so the BEAM
# client and C++ → BEAM run TLS 1.2, while C++ → C++ runs TLS 1.3.

# The BEAM client over TLS (scripts/bench's run_client, with the erl flags).
bench_tls_client() {
    local limit=$1 name
    shift
    name=$(next_name amanda)
    timeout -k 5 "$limit" elixir --erl "$tls_erl_flags" --name "$name@127.0.0.1" --cookie "$cookie" -pa "$ebin" \
        "$client" "$@" 2>>"$work/client.err" || die "TLS client $* failed (status $?)"
}

bench_tls_measure() {
    local tls_dir=$work/tls
    "$chat_node" tls-ca --out "$tls_dir/ca" >/dev/null || die "chat-node tls-ca failed"
    "$chat_node" tls-cert 127.0.0.1 --ca "$tls_dir/ca" --out "$tls_dir/node" >/dev/null || die "chat-node tls-cert failed"
    tls_optfile=$tls_dir/node/ssl_dist.conf
    tls_erl_flags="-proto_dist inet_tls -ssl_dist_optfile $tls_optfile"

    local cpp beam quiet cpp_pid beam_pid quiet_pid
    cpp=$(next_name cpp_tls)
    beam=$(next_name beam_tls)
    quiet=$(next_name cpp_tls_quiet)
    start_target cpp "$cpp" --ssl-dist-optfile "$tls_optfile"
    cpp_pid=$T_PID
    start_target beam "$beam" --erl "$tls_erl_flags"
    beam_pid=$T_PID
    "$chat_node" --name "$quiet@127.0.0.1" --cookie "$cookie" --log-level info --ssl-dist-optfile "$tls_optfile" \
        >/dev/null 2>"$work/$quiet.err" &
    quiet_pid=$!
    chat_wait_line_prefix "$work/$quiet.err" ".*node $quiet@127.0.0.1 up" 60 || die "$quiet did not start"

    local run side target pid what out line cpu0 cpu1 blaster
    for run in $(seq 1 "$runs"); do
        log "TLS: round trips, fire-and-forget, 1 MB, handshakes, run $run/$runs"
        for side in cpp beam; do
            target=$cpp pid=$cpp_pid
            [[ $side == beam ]] && target=$beam pid=$beam_pid
            cpu0=$(cpu_ns "$pid")
            out=$(bench_tls_client 300 rt "$target@127.0.0.1" "$rt_warmup" "$rt_calls" 1)
            cpu1=$(cpu_ns "$pid")
            line=$(grep "^rt " <<<"$out") || die "no TLS rt result: $out"
            add_raw "tls_rt_p50_$side" "$(kv "$line" p50_us)"
            add_raw "tls_rt_p99_$side" "$(kv "$line" p99_us)"
            add_raw "tls_rt_cpu_$side" "$(calc "($cpu1 - $cpu0) / 1000 / ($rt_warmup + $rt_calls)")"
            out=$(bench_tls_client 300 ff "$target@127.0.0.1" "$ff_count" 64 1)
            line=$(grep '^ff ' <<<"$out") || die "no TLS ff result: $out"
            [[ $(kv "$line" counted) == "$ff_count" ]] || die "$side (TLS) counted $(kv "$line" counted) of $ff_count"
            add_raw "tls_ff_$side" "$(kv "$line" msgs_per_s)"
        done
        for side in cpp beam quiet; do
            target=$cpp
            [[ $side == beam ]] && target=$beam
            [[ $side == quiet ]] && target=$quiet
            blaster=$(next_name blaster)
            out=$(timeout -k 5 300 "$chat_node" blast "$target@127.0.0.1" --count "${blast_counts[2]}" --size 1048576 \
                --name "$blaster@127.0.0.1" --cookie "$cookie" --log-level warn --ssl-dist-optfile "$tls_optfile" \
                2>>"$work/blast.err") || die "TLS blast 1 MB to $target failed"
            what=$(sed -n 's/.*: \([0-9.]*\) msg\/s, \([0-9.]*\) MB\/s.*/\2/p' <<<"$out")
            [[ -n $what ]] || die "unexpected blast output: $out"
            add_raw "tls_blast_mbps_$side" "$what"
        done
        for side in cpp beam; do
            target=$cpp
            [[ $side == beam ]] && target=$beam
            out=$(timeout -k 5 180 "$swarm" churn --target "$target@127.0.0.1" --cookie "$cookie" \
                --count "$tls_churn_count" --concurrency "$churn_concurrency" --ssl-dist-optfile "$tls_optfile" \
                2>>"$work/swarm.err") || die "TLS churn against $target failed"
            [[ $(kv "$out" failed) == 0 ]] || die "TLS handshakes failed against $target: $out"
            add_raw "tls_churn_$side" "$(kv "$out" handshakes_per_s)"
            add_raw "tls_churn_p50_$side" "$(kv "$out" p50_ms)"
        done
    done
    stop_target "$cpp_pid"
    stop_target "$beam_pid"
    stop_target "$quiet_pid"

    # Memory of TLS nodes: idle, then the two steps of held peers, every peer on TLS.
    local name s1 s2 idle
    for run in $(seq 1 "$runs"); do
        log "TLS: memory, idle and with $small / $large peers, run $run/$runs"
        for side in cpp beam; do
            name=$(next_name "mem_tls_$side")
            if [[ $side == cpp ]]; then
                start_target cpp "$name" --net-ticktime "$ticktime" --ssl-dist-optfile "$tls_optfile"
            else
                start_target beam "$name" --erl "-kernel net_ticktime $ticktime $tls_erl_flags"
            fi
            pid=$T_PID
            out=$(timeout -k 5 300 "$swarm" hold --target "$name@127.0.0.1" --cookie "$cookie" --steps "$steps_csv" \
                --rss-pid "$pid" --ticks 2 --tick-deadline-ms $((ticktime * 3000)) \
                --ssl-dist-optfile "$tls_optfile" 2>>"$work/swarm.err") || die "TLS hold against $name failed: $out"
            stop_target "$pid"
            idle=$(grep '^idle ' <<<"$out") || die "no idle line: $out"
            s1=$(grep "^step peers=$small " <<<"$out") || die "no $small-peer step: $out"
            s2=$(grep "^step peers=$large " <<<"$out") || die "no $large-peer step: $out"
            add_raw "tls_rss_idle_$side" "$(kv "$idle" rss_kb)"
            add_raw "tls_rss_large_$side" "$(kv "$s2" rss_kb)"
            add_raw "tls_per_conn_$side" "$(calc "($(kv "$s2" rss_kb) - $(kv "$s1" rss_kb)) / ($large - $small)")"
            add_raw "tls_held_ticked_$side" "$(kv "$s2" ticked)"
        done
    done
}

bench_tls_rows() {
    local p50c p50b p99c p99b mc mb plain hc hb
    p50c=$(value tls_rt_p50_cpp) p50b=$(value tls_rt_p50_beam)
    p99c=$(value tls_rt_p99_cpp) p99b=$(value tls_rt_p99_beam)
    section "8. TLS distribution: both nodes on -proto_dist inet_tls with one optfile (mutual verification); the BEAM client and C++ → BEAM negotiate TLS 1.2, C++ → C++ TLS 1.3"
    row tls_rt_p50_us "Chat.send_message/2 round trip p50 (µs), BEAM client on TLS" us "$p50c" "$p50b" "≤ 0.5× BEAM" \
        "$(judge "$p50c <= 0.5 * $p50b")" tls_rt_p50_cpp tls_rt_p50_beam
    row tls_rt_p99_us "round trip p99 (µs)" us "$p99c" "$p99b" "" "" tls_rt_p99_cpp tls_rt_p99_beam
    row tls_rt_cpu_us "node CPU per Chat.send_message/2 (µs, all threads)" us "$(value tls_rt_cpu_cpp)" \
        "$(value tls_rt_cpu_beam)" "" "" tls_rt_cpu_cpp tls_rt_cpu_beam
    row tls_ff_msgs_per_s "fire-and-forget: messages/s ($ff_count × 64 B, then :count)" msg/s "$(value tls_ff_cpp)" \
        "$(value tls_ff_beam)" "" "" tls_ff_cpp tls_ff_beam
    mc=$(value tls_blast_mbps_cpp) mb=$(value tls_blast_mbps_beam) plain=$(value blast_mbps_1048576_cpp)
    row tls_blast_1m_mb_per_s "1 MB: MB/s, chat-node blast (${blast_counts[2]} messages; $(fmt "$(calc "100 * $mc / $plain")")% of the plain C++→C++ figure in section 3)" \
        MB/s "$mc" "$mb" "≥ 3× BEAM and ≥ 40% of plain ($(fmt "$(calc "0.4 * $plain")") MB/s)" \
        "$(judge "$mc >= 3 * $mb && $mc >= 0.4 * $plain")" tls_blast_mbps_cpp tls_blast_mbps_beam
    row tls_blast_1m_quiet_mb_per_s "1 MB: MB/s to a C++ node whose stdout is /dev/null" MB/s \
        "$(value tls_blast_mbps_quiet)" "" "" "" tls_blast_mbps_quiet ""
    hc=$(value tls_churn_cpp) hb=$(value tls_churn_beam)
    row tls_handshakes_per_s "handshakes/s (dist-swarm on TLS: connect, TLS and distribution handshakes, drop; $tls_churn_count per run, $churn_concurrency in flight)" \
        1/s "$hc" "$hb" "≥ 2× BEAM" "$(judge "$hc >= 2 * $hb")" tls_churn_cpp tls_churn_beam
    row tls_handshake_p50_ms "handshake latency p50 (ms)" ms "$(value tls_churn_p50_cpp)" "$(value tls_churn_p50_beam)" \
        "" "" tls_churn_p50_cpp tls_churn_p50_beam
    row tls_rss_idle_mb "idle RSS on TLS (MB)" MB "$(calc "$(value tls_rss_idle_cpp) / 1024")" \
        "$(calc "$(value tls_rss_idle_beam) / 1024")" "" "" tls_rss_idle_cpp tls_rss_idle_beam
    row tls_rss_large_mb "RSS with $large TLS peers (MB)" MB "$(calc "$(value tls_rss_large_cpp) / 1024")" \
        "$(calc "$(value tls_rss_large_beam) / 1024")" "" "" tls_rss_large_cpp tls_rss_large_beam
    row tls_per_connection_kb "KB per idle TLS connection ((RSS@$large − RSS@$small) / $((large - small)))" KB \
        "$(value tls_per_conn_cpp)" "$(value tls_per_conn_beam)" "" "" tls_per_conn_cpp tls_per_conn_beam
    row tls_peers_held "TLS peers held with ticks flowing (of $large; worst run)" peers \
        "$(min_of tls_held_ticked_cpp)" "$(min_of tls_held_ticked_beam)" "" "" tls_held_ticked_cpp tls_held_ticked_beam
}
