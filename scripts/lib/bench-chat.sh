# shellcheck shell=bash
# Sections 1 to 7 of scripts/bench: the chat service measured on the C++ node and on
# elixir_peer (round trips, fire-and-forget, blast, start-up, memory with 1,000 peers,
# connection set-up; 7, cluster membership, is scripts/lib/bench-mesh.sh's), then their table
# rows and notes. Sourced by scripts/bench; uses its
# globals and scripts/lib/bench-common.sh.

chat_sections() {
    # ---- 1, 2, 3, 6: a C++ and a BEAM target serving the chat -----------------------------------
    cpp_svc=$(next_name cpp_svc)
    beam_svc=$(next_name beam_svc)
    sink=$(next_name sink)
    start_target cpp "$cpp_svc"
    cpp_svc_pid=$T_PID
    start_target beam "$beam_svc"
    beam_svc_pid=$T_PID
    "$swarm" sink --name "$sink@127.0.0.1" --cookie "$cookie" >"$work/sink.out" 2>>"$work/sink.err" &
    sink_pid=$!
    # The same C++ node with its chat lines going to /dev/null: the distribution path alone,
    # without the stdout pipe and its reader, which share this machine's cores with the sender.
    cpp_quiet=$(next_name cpp_quiet)
    "$chat_node" --name "$cpp_quiet@127.0.0.1" --cookie "$cookie" --log-level info >/dev/null 2>"$work/$cpp_quiet.err" &
    cpp_quiet_pid=$!
    chat_wait_line_prefix() { # like chat_wait_line, for a line starting with $2
        local polls=$((${3:-20} * 20))
        while ((polls-- > 0)); do
            grep -q "^$2" "$1" 2>/dev/null && return 0
            sleep 0.05
        done
        return 1
    }
    chat_wait_line_prefix "$work/sink.out" "sink ready" 20 || die "dist-swarm sink did not start"
    chat_wait_line_prefix "$work/$cpp_quiet.err" ".*node $cpp_quiet@127.0.0.1 up" 60 || die "$cpp_quiet did not start"

    profile_pass=0
    for run in $(seq 1 $((runs + profile))); do
        sides=(cpp beam)
        if ((run > runs)); then
            profile_pass=1 sides=(cpp)
            log "profile pass (perf on the C++ node; not part of the figures)"
        else
            log "round trips and fire-and-forget, run $run/$runs"
        fi
        for side in "${sides[@]}"; do
            target=$cpp_svc pid=$cpp_svc_pid
            [[ $side == beam ]] && target=$beam_svc pid=$beam_svc_pid
            for what in rt call; do
                cpu0=$(cpu_ns "$pid")
                prof_now && perf_start "$what" "$pid"
                out=$(run_client 300 "$what" "$target@127.0.0.1" "$rt_warmup" "$rt_calls" 1)
                label=Chat.send_message/2
                [[ $what == call ]] && label="GenServer.call :count"
                prof_now && perf_stop "C++ node serving $label round trips from a BEAM client" "$what"
                cpu1=$(cpu_ns "$pid")
                line=$(grep "^$what " <<<"$out") || die "no $what result: $out"
                add_raw "${what}_p50_$side" "$(kv "$line" p50_us)"
                add_raw "${what}_p99_$side" "$(kv "$line" p99_us)"
                add_raw "${what}_cpu_$side" "$(calc "($cpu1 - $cpu0) / 1000 / ($rt_warmup + $rt_calls)")"
            done
        done
        # The sink first, then the C++ node: the two figures compared in the sender note are
        # taken back to back.
        for side in sink "${sides[@]}"; do
            ((profile_pass)) && [[ $side == sink ]] && continue
            case $side in
                cpp) target=$cpp_svc pid=$cpp_svc_pid ;;
                beam) target=$beam_svc pid=$beam_svc_pid ;;
                sink) target=$sink pid=$sink_pid ;;
            esac
            prof_now && perf_start ff "$cpp_svc_pid"
            cpu0=$(cpu_ns "$pid")
            out=$(run_client 300 ff "$target@127.0.0.1" "$ff_count" 64 1)
            cpu1=$(cpu_ns "$pid")
            prof_now && perf_stop "C++ node receiving ${ff_count} fire-and-forget 64 B messages from a BEAM" ff
            line=$(grep '^ff ' <<<"$out") || die "no ff result: $out"
            [[ $(kv "$line" counted) == "$ff_count" ]] || die "$side counted $(kv "$line" counted) of $ff_count"
            add_raw "ff_$side" "$(kv "$line" msgs_per_s)"
            add_raw "ff_send_s_$side" "$(kv "$line" send_s)"
            add_raw "ff_total_s_$side" "$(kv "$line" total_s)"
            add_raw "ff_cpu_$side" "$(calc "($cpu1 - $cpu0) / 1000 / $ff_count")"
        done


        if ! prof_now; then
            # The ceiling in the same run as the figures it scales: this machine's loopback moves.
            out=$(timeout -k 5 120 "$tcp_blast" --bytes "$loopback_bytes") || die "tcp-blast failed"
            add_raw loopback "$(kv "$out" MBps)"
            # And the same transfer printed into a pipe that cat drains, as a target prints its chat lines.
            out=$(timeout -k 5 120 "$tcp_blast" --bytes "$loopback_bytes" --print) || die "tcp-blast --print failed"
            add_raw loopback_print "$(kv "$out" MBps)"
        fi
        ((profile_pass)) || log "blast (C++ sender), run $run/$runs"
        for i in "${!blast_sizes[@]}"; do
            size=${blast_sizes[$i]} count=${blast_counts[$i]}
            blast_sides=("${sides[@]}")
            ((size == 1048576)) && ! prof_now && blast_sides+=(quiet)
            for side in "${blast_sides[@]}"; do
                target=$cpp_svc
                [[ $side == beam ]] && target=$beam_svc
                [[ $side == quiet ]] && target=$cpp_quiet
                blaster=$(next_name blaster)
                profiling=0
                if prof_now; then profiling=1; fi
                ((profiling)) && perf_start "blast$size" "$cpp_svc_pid"
                if ((profiling && size > 1024)); then
                    out=$(timeout -k 5 300 perf record -F 999 -o "$work/blaster.perf" -- "$chat_node" blast "$target@127.0.0.1" \
                        --count "$count" --size "$size" --name "$blaster@127.0.0.1" --cookie "$cookie" --log-level warn \
                        2>>"$work/blast.err") || die "blast $size to $target failed"
                    profiles+=("### chat-node blast (the sender) sending $count x 1 MB"$'\n''```'$'\n'"$(perf_top "$work/blaster.perf")"$'\n''```')
                else
                    out=$(timeout -k 5 300 "$chat_node" blast "$target@127.0.0.1" --count "$count" --size "$size" \
                        --name "$blaster@127.0.0.1" --cookie "$cookie" --log-level warn 2>>"$work/blast.err") ||
                        die "blast $size to $target failed"
                fi
                ((profiling)) && perf_stop "C++ node receiving ${count} x ${blast_labels[$i]} from chat-node blast" "blast$size"
                # "sent N messages of S bytes in T s: R msg/s, M MB/s (target counted K)"
                rate=$(sed -n 's/.*: \([0-9.]*\) msg\/s, \([0-9.]*\) MB\/s.*/\1/p' <<<"$out")
                mbps=$(sed -n 's/.*: \([0-9.]*\) msg\/s, \([0-9.]*\) MB\/s.*/\2/p' <<<"$out")
                [[ -n $rate && -n $mbps ]] || die "unexpected blast output: $out"
                add_raw "blast_${size}_$side" "$rate"
                add_raw "blast_mbps_${size}_$side" "$mbps"
            done
        done

        ((profile_pass)) && break
        log "handshakes (connect, handshake, drop), run $run/$runs"
        for side in cpp beam; do
            target=$cpp_svc
            [[ $side == beam ]] && target=$beam_svc
            out=$(timeout -k 5 120 "$swarm" churn --target "$target@127.0.0.1" --cookie "$cookie" \
                --count "$churn_count" --concurrency "$churn_concurrency" 2>>"$work/swarm.err") || die "churn against $target failed"
            [[ $(kv "$out" failed) == 0 ]] || die "handshakes failed against $target: $out"
            add_raw "churn_$side" "$(kv "$out" handshakes_per_s)"
            add_raw "churn_p50_$side" "$(kv "$out" p50_ms)"
        done
    done
    profile_pass=0
    gaps_measure # 10: traffic rates (scripts/lib/bench-gaps.sh), on the same two targets
    stop_target "$sink_pid"
    stop_target "$cpp_svc_pid"
    stop_target "$beam_svc_pid"
    stop_target "$cpp_quiet_pid"


    # ---- 4: start-up ----------------------------------------------------------------------------------
    for run in $(seq 1 "$startup_runs"); do
        log "start-up, run $run/$startup_runs"
        for side in cpp beam; do
            port=$(free_port)
            name=$(next_name "web_$side")
            if [[ $side == cpp ]]; then
                cmd=("$chat_node" --name "$name@127.0.0.1" --cookie "$cookie" --port "$port" --log-level warn)
            else
                cmd=(env DYNO=web.1 PORT="$port" elixir --name "$name@127.0.0.1" --cookie "$cookie" -pa "$ebin"
                    -e 'Application.ensure_all_started(:chat); Process.sleep(:infinity)')
            fi
            out=$("$startup_probe" --health-port "$port" --timeout-ms 60000 --stderr "$work/startup.err" -- "${cmd[@]}") ||
                die "start-up of the $side node not observed: $out"
            add_raw "startup_name_$side" "$(kv "$out" node_name_ms)"
            add_raw "startup_health_$side" "$(kv "$out" health_ms)"
        done
    done

    # ---- 5: memory and 1,000 peers --------------------------------------------------------------------
    steps_csv=$(IFS=,; echo "${swarm_steps[*]}")
    small=${swarm_steps[0]} large=${swarm_steps[1]}
    for run in $(seq 1 "$runs"); do
        log "memory: idle, $small and $large peers, run $run/$runs"
        for side in cpp beam; do
            name=$(next_name "mem_$side")
            if [[ $side == cpp ]]; then
                start_target cpp "$name" --net-ticktime "$ticktime"
            else
                start_target beam "$name" --erl "-kernel net_ticktime $ticktime"
            fi
            pid=$T_PID
            out=$(timeout -k 5 180 "$swarm" hold --target "$name@127.0.0.1" --cookie "$cookie" --steps "$steps_csv" \
                --rss-pid "$pid" --ticks 2 --tick-deadline-ms $((ticktime * 3000)) 2>>"$work/swarm.err") ||
                die "dist-swarm hold against $name failed: $out"
            stop_target "$pid"
            idle=$(grep '^idle ' <<<"$out") || die "no idle line: $out"
            s1=$(grep "^step peers=$small " <<<"$out") || die "no $small-peer step: $out"
            s2=$(grep "^step peers=$large " <<<"$out") || die "no $large-peer step: $out"
            add_raw "rss_idle_$side" "$(kv "$idle" rss_kb)"
            add_raw "anon_idle_$side" "$(kv "$idle" anon_kb)"
            add_raw "rss_small_$side" "$(kv "$s1" rss_kb)"
            add_raw "rss_large_$side" "$(kv "$s2" rss_kb)"
            add_raw "per_conn_$side" "$(calc "($(kv "$s2" rss_kb) - $(kv "$s1" rss_kb)) / ($large - $small)")"
            add_raw "held_up_$side" "$(kv "$s2" up)"
            add_raw "held_ticked_$side" "$(kv "$s2" ticked)"
            add_raw "held_lost_$side" "$(($(kv "$s2" lost) + $(kv "$s2" failed)))"
            add_raw "setup_rate_$side" "$(kv "$s2" handshakes_per_s)"
        done
    done
    # ---- 7: cluster membership (scripts/lib/bench-mesh.sh) ---------------------------------------
    bench_mesh_measure
    bench_tls_measure # 8: TLS distribution (scripts/lib/bench-tls.sh)
}

# The rows (rows, json_rows) and notes (sender_note, floor_note, peers_note) of sections 1-7.
chat_table() {
    rows=()      # Markdown
    json_rows=() # JSON objects

    rt50c=$(value rt_p50_cpp) rt50b=$(value rt_p50_beam) rt99c=$(value rt_p99_cpp) rt99b=$(value rt_p99_beam)
    section "1. Chat.send_message/2 round trip, BEAM client ($rt_calls calls after $rt_warmup warm-up)"
    row rt_p50_us "p50 (µs)" us "$rt50c" "$rt50b" "≤ 0.5× BEAM" "$(judge "$rt50c <= 0.5 * $rt50b")" rt_p50_cpp rt_p50_beam
    row rt_p99_us "p99 (µs)" us "$rt99c" "$rt99b" "≤ 0.7× BEAM" "$(judge "$rt99c <= 0.7 * $rt99b")" rt_p99_cpp rt_p99_beam
    row rt_cpu_us "node CPU per Chat.send_message/2 (µs, all threads)" us "$(value rt_cpu_cpp)" "$(value rt_cpu_beam)" "" "" rt_cpu_cpp rt_cpu_beam
    row call_p50_us "for scale: GenServer.call :count round trip p50 (µs)" us "$(value call_p50_cpp)" "$(value call_p50_beam)" "" "" call_p50_cpp call_p50_beam
    row call_p99_us "for scale: GenServer.call :count round trip p99 (µs)" us "$(value call_p99_cpp)" "$(value call_p99_beam)" "" "" call_p99_cpp call_p99_beam
    row call_cpu_us "node CPU per :count call (µs, all threads)" us "$(value call_cpu_cpp)" "$(value call_cpu_beam)" "" "" call_cpu_cpp call_cpu_beam

    ffc=$(value ff_cpp) ffb=$(value ff_beam) ffs=$(value ff_sink)
    section "2. Fire-and-forget: BEAM client sends $ff_count × 64 B to {Chat, node}, then :count"
    row ff_msgs_per_s "messages/s (until the :count answer)" msg/s "$ffc" "$ffb" "≥ 1.5× BEAM" "$(judge "$ffc >= 1.5 * $ffb")" ff_cpp ff_beam
    row ff_cpu_us "node CPU per message (µs, all threads)" us "$(value ff_cpu_cpp)" "$(value ff_cpu_beam)" "" "" ff_cpu_cpp ff_cpu_beam
    row ff_sender_ceiling "the BEAM sender's ceiling: same client to dist-swarm sink (counts, decodes nothing)" msg/s "$ffs" "" "" "" ff_sink ""
    # Per run (the sink and the C++ node measured back to back), then the median.
    read -ra ff_c_runs <<<"${raw[ff_cpp]}"
    read -ra ff_s_runs <<<"${raw[ff_sink]}"
    shares=()
    for i in "${!ff_c_runs[@]}"; do shares+=("$(calc "100 * ${ff_c_runs[$i]} / ${ff_s_runs[$i]}")"); done
    sender_share=$(median "${shares[@]}")
    beam_share=$(calc "100 * $ffb / $ffs")

    loop=$(value loopback)
    section "3. chat-node blast (C++ sender): C++ → C++ and C++ → BEAM"
    for i in "${!blast_sizes[@]}"; do
        size=${blast_sizes[$i]} label=${blast_labels[$i]}
        bc=$(value "blast_${size}_cpp") bb=$(value "blast_${size}_beam")
        mc=$(value "blast_mbps_${size}_cpp") mb=$(value "blast_mbps_${size}_beam")
        target="" met=""
        if ((size == 64)); then target="C++→C++ ≥ 2,500,000 msg/s (issue 16)"; met=$(judge "$bc >= 2500000"); fi
        row "blast_${size}_msgs_per_s" "$label: messages/s (${blast_counts[$i]} messages)" msg/s "$bc" "$bb" "$target" "$met" "blast_${size}_cpp" "blast_${size}_beam"
        target="" met=""
        if ((size == 1048576)); then
            target="C++→C++ ≥ 50% of loopback ($(fmt "$(calc "$loop / 2")") MB/s)"
            met=$(judge "$mc >= 0.5 * $loop")
        fi
        row "blast_${size}_mb_per_s" "$label: MB/s ($(fmt "$(calc "100 * $mc / $loop")")% / $(fmt "$(calc "100 * $mb / $loop")")% of loopback)" MB/s "$mc" "$mb" "$target" "$met" "blast_mbps_${size}_cpp" "blast_mbps_${size}_beam"
        if ((size == 1048576)); then
            mq=$(value "blast_mbps_${size}_quiet")
            # Per run, as the two were measured a minute apart at most on a machine whose speed moves.
            read -r -a pipe_runs <<<"${raw[blast_mbps_${size}_cpp]}"
            read -r -a print_runs <<<"${raw[loopback_print]}"
            shares=()
            for r in "${!pipe_runs[@]}"; do shares+=("$(calc "100 * ${pipe_runs[$r]} / ${print_runs[$r]}")"); done
            row blast_1m_print_share "$label: C++→C++ MB/s as % of the same path in plain C (tcp-blast --print below: socket → pipe → cat; median of per-run ratios)" "%" "$(median "${shares[@]}")" "" "" "" "" ""
            row blast_1m_quiet_mb_per_s "$label: MB/s to a C++ node whose stdout is /dev/null ($(fmt "$(calc "100 * $mq / $loop")")% of loopback: the distribution path without the pipe and its reader)" MB/s "$mq" "" "" "" "blast_mbps_${size}_quiet" ""
        fi
    done
    row loopback_mb_per_s "loopback TCP ceiling (tcp-blast, $((loopback_bytes >> 20)) MB, 4 MB writes, whole-chunk reads)" MB/s "$loop" "" "" "" loopback ""
    row loopback_print_mb_per_s "the same, every chunk also written by a second thread into a 1 MB pipe that cat drains (tcp-blast --print)" MB/s "$(value loopback_print)" "" "" "" loopback_print ""

    suc=$(value startup_name_cpp) sub=$(value startup_name_beam)
    shc=$(value startup_health_cpp) shb=$(value startup_health_beam)
    section "4. Start-up ($startup_runs runs): C++ --port vs elixir_peer web dyno"
    row startup_node_name_ms "exec → \`Node name:\` printed (ms)" ms "$suc" "$sub" "≤ 0.03× BEAM" "$(judge "$suc <= 0.03 * $sub")" startup_name_cpp startup_name_beam
    row startup_health_ms "exec → GET /health answers 200 (ms)" ms "$shc" "$shb" "≤ 0.03× BEAM" "$(judge "$shc <= 0.03 * $shb")" startup_health_cpp startup_health_beam

    ric=$(value rss_idle_cpp) rib=$(value rss_idle_beam)
    pcc=$(value per_conn_cpp) pcb=$(value per_conn_beam)
    section "5. Memory (RSS of the node's process tree; peers from dist-swarm, net_ticktime $ticktime s)"
    row rss_idle_mb "idle RSS (MB)" MB "$(calc "$ric / 1024")" "$(calc "$rib / 1024")" "≤ 0.05× BEAM" "$(judge "$ric <= 0.05 * $rib")" rss_idle_cpp rss_idle_beam
    row anon_idle_mb "idle RSS, anonymous pages only (MB; the rest is shared libraries and code)" MB "$(calc "$(value anon_idle_cpp) / 1024")" "$(calc "$(value anon_idle_beam) / 1024")" "" "" anon_idle_cpp anon_idle_beam
    row rss_small_mb "RSS with $small peers (MB)" MB "$(calc "$(value rss_small_cpp) / 1024")" "$(calc "$(value rss_small_beam) / 1024")" "" "" rss_small_cpp rss_small_beam
    row rss_large_mb "RSS with $large peers (MB)" MB "$(calc "$(value rss_large_cpp) / 1024")" "$(calc "$(value rss_large_beam) / 1024")" "" "" rss_large_cpp rss_large_beam
    row per_connection_kb "KB per idle connection ((RSS@$large − RSS@$small) / $((large - small)))" KB "$pcc" "$pcb" "C++ ≤ 20 KB" "$(judge "$pcc <= 20")" per_conn_cpp per_conn_beam
    row peers_held "peers held with ticks flowing (of $large; worst run)" peers \
        "$(min_of held_ticked_cpp)" "$(min_of held_ticked_beam)" "C++ holds $large, ticks answered" \
        "$(judge "$(min_of held_ticked_cpp) >= $large && $(max_of held_lost_cpp) == 0")" held_ticked_cpp held_ticked_beam

    section "6. Connection set-up (dist-swarm, $churn_concurrency handshakes in flight)"
    row handshakes_per_s "handshakes/s (connect, handshake, drop; $churn_count per run)" 1/s "$(value churn_cpp)" "$(value churn_beam)" "" "" churn_cpp churn_beam
    row handshake_p50_ms "handshake latency p50 (ms)" ms "$(value churn_p50_cpp)" "$(value churn_p50_beam)" "" "" churn_p50_cpp churn_p50_beam
    row setup_rate_held "handshakes/s while growing to $large held peers" 1/s "$(value setup_rate_cpp)" "$(value setup_rate_beam)" "" "" setup_rate_cpp setup_rate_beam
    bench_mesh_rows
    bench_tls_rows
    gaps_json # 10: traffic rates (scripts/lib/bench-gaps.sh)

    call50c=$(value call_p50_cpp)
    floor=$(calc "2 * $call50c") goal=$(calc "0.5 * $rt50b")
    floor_note="Chat.send_message/2 is two request/reply exchanges (Task.Supervisor start_child, then the task's reply) plus one-way link, monitor and exit signals. The simplest exchange, GenServer.call :count, takes $(fmt "$call50c") µs (p50) from this client to the C++ node, so two exchanges cost about $(fmt "$floor") µs when the node does almost nothing"
    if test_expr "$goal < $floor"; then
        floor_note+="; the 0.5× target ($(fmt "$goal") µs) is below that floor, out of reach for the node alone."
    else
        floor_note+="; the 0.5× target ($(fmt "$goal") µs) is above that floor."
    fi
    ffcpu=$(value ff_cpu_cpp)
    capacity=$(calc "1000000 / $ffcpu")
    if test_expr "$sender_share >= 80"; then
        sender_note="Test 2 is bound by the BEAM sender, not by the C++ node: the same client sends $(fmt "$ffs") msg/s to dist-swarm sink (which only counts), and the C++ node got $(fmt "$sender_share")% of that (median of per-run ratios; the BEAM node: $(fmt "$beam_share")%). The C++ node spent $(fmt "$ffcpu") µs of CPU per message, enough for about $(fmt "$capacity") msg/s, so the ratio understates it."
    else
        sender_note="Test 2 is not bound by the BEAM sender: the same client sends $(fmt "$ffs") msg/s to dist-swarm sink (which only counts) and the C++ node got $(fmt "$sender_share")% of that (median of per-run ratios; the BEAM node: $(fmt "$beam_share")%), spending $(fmt "$ffcpu") µs of CPU per message (about $(fmt "$capacity") msg/s at most)."
    fi

    peers_note="Peers are simulated by bench/dist-swarm: one process, one epoll loop, one real TCP connection per peer, each with its own node name, doing the version 6 handshake with chat::dist::Handshake, then sending a tick every second and counting the target's ticks. They are hidden nodes (no DFLAG_PUBLISHED) so that a BEAM does not start a global name-registry sync they could not answer. A step counts a peer as held once it has received 2 ticks from the target after the step was reached; the target runs with net_ticktime $ticktime s, so it would drop any peer whose ticks it stopped reading."
}
