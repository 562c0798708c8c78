# shellcheck shell=bash
# Section 10 of scripts/bench, traffic rates (issue 16): round trips spaced by pauses of 0 to 100 ms,
# C++ node vs elixir_peer in alternated blocks from one BEAM client (bench/gap_client.exs),
# each node's CPU per call and when idle, and the floors measured in the same run by
# bench/ping-pong: a plain C TCP ping-pong of 64 B, and a C++ client's GenServer.call :count
# to the C++ node next to a plain TCP ping-pong of the same frame sizes.
#
# Sourced by scripts/bench after its helpers; it uses the script's variables and helpers
# (smoke, runs, work, cookie, ebin, root, bin_dir, cpp_svc, beam_svc and their pids, log, die,
# kv, add_raw, value, median, calc, fmt, test_expr, next_name, find_bin, json_* and json_rows).
# Three entry points: gaps_measure (during the run, while the two targets are up),
# gaps_table (the Markdown table and its notes) and gaps_json (rows for the JSON file).

if ((smoke)); then
    gaps_list=0,1   # a couple of gaps: back to back, and sparse enough for the loop to sleep
    gaps_client_sizes=(200 10 100 10 1)   # block ms, min calls, max calls, warm-up, idle s
    gaps_pp_opts=(--block-ms 100 --calls-min 10 --calls-max 200 --warmup 10)
else
    gaps_list=0,0.2,1,5,20,100
    gaps_client_sizes=(2000 100 3000 100 10)
    gaps_pp_opts=(--block-ms 1000 --calls-min 50 --calls-max 5000 --warmup 200)
fi
gaps_whats=(rt call)
gaps_idle_s=${gaps_client_sizes[4]}
gap_client=$root/bench/gap_client.exs
ping_pong=$(find_bin ping-pong)

gap_key() { echo "${1//./_}"; } # 0.2 -> 0_2 (keys of raw[])

# Runs every traffic-rate measurement once per run; the targets must be up.
gaps_measure() {
    local run out line what side g k name
    for run in $(seq 1 "$runs"); do
        log "traffic rates: gaps $gaps_list ms, C++ and BEAM blocks alternated, run $run/$runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
        name=$(next_name gapper)
        out=$(timeout -k 5 900 elixir --name "$name@127.0.0.1" --cookie "$cookie" -pa "$ebin" "$gap_client" \
            "$cpp_svc@127.0.0.1" "$cpp_svc_pid" "$beam_svc@127.0.0.1" "$beam_svc_pid" "$gaps_list" \
            "$(IFS=,; echo "${gaps_whats[*]}")" "${gaps_client_sizes[@]}" 2>>"$work/gap_client.err") ||
            die "gap client failed (status $?): $out"
        while read -r line; do
            case $line in
                gap\ *)
                    what=$(kv "$line" what) side=$(kv "$line" side) g=$(gap_key "$(kv "$line" gap_ms)")
                    for k in p50 p99 cpu gap; do add_raw "gap_${what}_${g}_${k}_$side" "$(kv "$line" "${k}_us")"; done
                    ;;
                idle\ *) add_raw "gap_idle_$(kv "$line" side)" "$(kv "$line" cpu_us_per_s)" ;;
            esac
        done <<<"$out"

        log "traffic rates: floors (plain TCP ping-pong; C++ client :count to the C++ node), run $run/$runs"
        out=$(timeout -k 5 600 "$ping_pong" dist --target "$cpp_svc@127.0.0.1" --cookie "$cookie" \
            --cpu-pid "$cpp_svc_pid" --floor --gaps "$gaps_list" "${gaps_pp_opts[@]}" 2>>"$work/ping_pong.err") ||
            die "ping-pong dist failed: $out"
        out+=$'\n'$(timeout -k 5 600 "$ping_pong" tcp --req 64 --rep 64 --gaps "$gaps_list" "${gaps_pp_opts[@]}" \
            2>>"$work/ping_pong.err" | sed 's/^tcp /tcp64 /') || die "ping-pong tcp failed: $out"
        while read -r line; do
            [[ -n $line ]] || continue
            what=${line%% *} g=$(gap_key "$(kv "$line" gap_ms)")
            for k in p50 p99 cpu; do add_raw "pp_${what}_${g}_$k" "$(kv "$line" "${k}_us")"; done
            add_raw "pp_${what}_req" "$(kv "$line" req)"
            add_raw "pp_${what}_rep" "$(kv "$line" rep)"
        done <<<"$out"
    done
}

# "X / Y (R×) met" for one cell; $3 is the target ratio (empty: no target).
gap_cell() {
    local c=$1 b=$2 goal=$3 r verdict=""
    if [[ -z $c || -z $b ]] || ! test_expr "$b != 0"; then
        printf '%s / %s' "$(fmt "$c")" "$(fmt "$b")"
        return
    fi
    r=$(calc "$c / $b")
    [[ -n $goal ]] && verdict=$(test_expr "$r <= $goal" && echo " met" || echo " **missed**")
    printf '%s / %s (%s×)%s' "$(fmt "$c")" "$(fmt "$b")" "$(fmt "$r")" "$verdict"
}

gap_label() { case $1 in rt) echo "Chat.send_message/2" ;; call) echo "GenServer.call :count" ;; esac; }

gaps_table() {
    local what g k label ic ib
    echo
    echo "## 10. Traffic rates: round trips spaced by a pause (issue 16)"
    echo
    echo "One BEAM client calls the C++ node and elixir_peer in alternated blocks (C++ first, then BEAM first), pausing between calls; medians of $runs run(s). Cells are C++ / BEAM (ratio); node CPU is per call, pauses included."
    echo
    echo "| call, pause between calls | p50 µs (target ≤ 0.6×) | p99 µs (≤ 0.8×) | node CPU per call µs (≤ 0.8×) | pause actually taken (µs, C++ / BEAM) |"
    echo "|---|---|---|---|---|"
    for what in "${gaps_whats[@]}"; do
        label=$(gap_label "$what")
        for g in ${gaps_list//,/ }; do
            k=gap_${what}_$(gap_key "$g")
            echo "| $label, ${g} ms | $(gap_cell "$(value "${k}_p50_cpp")" "$(value "${k}_p50_beam")" 0.6) | $(gap_cell "$(value "${k}_p99_cpp")" "$(value "${k}_p99_beam")" 0.8) | $(gap_cell "$(value "${k}_cpu_cpp")" "$(value "${k}_cpu_beam")" 0.8) | $(fmt "$(value "${k}_gap_cpp")") / $(fmt "$(value "${k}_gap_beam")") |"
        done
    done
    ic=$(value gap_idle_cpp) ib=$(value gap_idle_beam)
    echo "| idle: no traffic for ${gaps_idle_s} s, connections up (CPU µs per second; target ≤ 1×) | | | $(gap_cell "$ic" "$ib" 1) | |"
    echo
    echo "Floors measured in the same run (bench/ping-pong; the client reads with blocking read(2), pauses under 1 ms are busy-waited and longer ones slept, as the BEAM client does):"
    echo
    echo "| pause (ms) | plain C TCP ping-pong 64 B (blocking epoll_wait, no spin): p50 / p99 µs, server CPU per call | C++ client → C++ node GenServer.call :count: p50 / p99 µs, node CPU per call | plain TCP ping-pong of the same sizes ($(value pp_tcp_req) B / $(value pp_tcp_rep) B): p50 / p99 µs | :count / plain p50 (target ≤ 2×) |"
    echo "|---|---|---|---|---|"
    for g in ${gaps_list//,/ }; do
        k=$(gap_key "$g")
        local d50 t50 r verdict
        d50=$(value "pp_dist_${k}_p50") t50=$(value "pp_tcp_${k}_p50")
        r=$(calc "$d50 / $t50")
        verdict=$(test_expr "$r <= 2" && echo met || echo "**missed**")
        echo "| $g | $(fmt "$(value "pp_tcp64_${k}_p50")") / $(fmt "$(value "pp_tcp64_${k}_p99")"), $(fmt "$(value "pp_tcp64_${k}_cpu")") | $(fmt "$d50") / $(fmt "$(value "pp_dist_${k}_p99")"), $(fmt "$(value "pp_dist_${k}_cpu")") | $(fmt "$t50") / $(fmt "$(value "pp_tcp_${k}_p99")") | $(fmt "$r")× $verdict |"
    done
}

# JSON rows (the same shape as scripts/bench's own) for every traffic-rate figure.
gaps_json() {
    local what g k m id
    gap_json_row() { # ID LABEL UNIT CPP_KEY BEAM_KEY TARGET_RATIO
        local c b="" ratio="" met=null
        c=$(value "$4")
        if [[ -n $5 ]]; then b=$(value "$5"); fi
        if [[ -n $c && -n $b ]] && test_expr "$b != 0"; then
            ratio=$(calc "$c / $b")
            if [[ -n $6 ]]; then
                if test_expr "$ratio <= $6"; then met=true; else met=false; fi
            fi
        fi
        json_rows+=("{\"id\": $(json_str "$1"), \"label\": $(json_str "$2"), \"unit\": $(json_str "$3"), \"cpp\": $(json_num "$c"), \"beam\": $(json_num "$b"), \"ratio\": $(json_num "$ratio"), \"target\": $(json_str "${6:+≤ $6× BEAM}"), \"met\": $met, \"runs\": {\"cpp\": $(json_list "$(raw_of "$4")"), \"beam\": $(json_list "$(raw_of "$5")")}}")
    }
    for what in "${gaps_whats[@]}"; do
        for g in ${gaps_list//,/ }; do
            k=gap_${what}_$(gap_key "$g")
            for m in p50:0.6 p99:0.8 cpu:0.8 gap:; do
                id="${k}_${m%%:*}_us"
                gap_json_row "$id" "$(gap_label "$what"), pause ${g} ms: ${m%%:*} (µs)" us "${k}_${m%%:*}_cpp" "${k}_${m%%:*}_beam" "${m#*:}"
            done
        done
    done
    gap_json_row gap_idle_cpu_us_per_s "idle node CPU (µs per second, ticks only)" us/s gap_idle_cpp gap_idle_beam 1
    for g in ${gaps_list//,/ }; do
        k=$(gap_key "$g")
        for m in p50 p99 cpu; do
            gap_json_row "floor_tcp64_${k}_${m}_us" "plain C TCP ping-pong 64 B, pause $g ms: $m (µs)" us "pp_tcp64_${k}_$m" "" ""
            gap_json_row "floor_dist_${k}_${m}_us" "C++ client → C++ node :count, pause $g ms: $m (µs)" us "pp_dist_${k}_$m" "" ""
            gap_json_row "floor_tcp_sized_${k}_${m}_us" "plain TCP ping-pong of the :count sizes, pause $g ms: $m (µs)" us "pp_tcp_${k}_$m" "" ""
        done
    done
}
