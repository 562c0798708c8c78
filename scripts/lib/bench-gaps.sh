# shellcheck shell=bash
# Section 10 of scripts/bench, traffic rates (issue 16): round trips spaced by pauses of 0 to 100 ms,
# C++ node vs elixir_peer in alternated blocks from one BEAM client (bench/gap_client.exs),
# each node's CPU per call and when idle, and the floors measured in the same run by
# bench/ping-pong: a plain C TCP ping-pong of 64 B, and a C++ client's GenServer.call :count
# to the C++ node next to a plain TCP ping-pong of the same frame sizes. With each figure, where
# the time and the CPU go: how often each node slept and waited for a CPU per call (/proc), and
# from further runs under tcpdump on loopback (three in a full run), each node's share of the
# round trip (bench/wire-turns.sh's reading, done here in the same run) and, from the kernel's
# scheduler trace of the same runs, each node's wait for a CPU call by call. The last table
# lists each missed target with the evidence the run holds for it
# (scripts/lib/bench-gaps-verdict.sh).
#
# Sourced by scripts/bench after its helpers; it uses the script's variables and helpers
# (smoke, runs, work, cookie, ebin, root, bin_dir, cpp_svc, beam_svc and their pids, log, die,
# kv, add_raw, value, median, calc, fmt, test_expr, next_name, find_bin, json_* and json_rows).
# The client also calls a third target in its own blocks: a C++ node started with --busy-wait
# none, which never polls, so that the first table shows what the default's polling costs and
# buys (the targets are judged on the default).
# Three entry points: gaps_measure (during the run, while the two targets are up),
# gaps_table (the Markdown tables and their notes) and gaps_json (rows for the JSON file).

if ((smoke)); then
    gaps_list=0,1   # a couple of gaps: back to back, and sparse enough for the loop to sleep
    gaps_client_sizes=(200 10 100 10 1)   # block ms, min calls, max calls, warm-up, idle s
    gaps_pp_opts=(--block-ms 100 --calls-min 10 --calls-max 200 --warmup 10)
    gaps_capture_runs=1
else
    gaps_list=0,0.2,1,5,20,100
    gaps_client_sizes=(2000 100 3000 100 10)
    gaps_pp_opts=(--block-ms 1000 --calls-min 50 --calls-max 5000 --warmup 200)
    gaps_capture_runs=3 # a p99 off one run moves by several times from run to run
fi
gaps_whats=(rt call)
gaps_idle_s=${gaps_client_sizes[4]}
gap_client=$root/bench/gap_client.exs
ping_pong=$(find_bin ping-pong)

gap_key() { echo "${1//./_}"; } # 0.2 -> 0_2 (keys of raw[])

# Runs bench/gap_client.exs against the two targets; prints its lines. $1: seconds left idle at
# the end (0: none); $2 (optional): the --busy-wait none node's name and pid, a third target.
gaps_client() {
    local out
    out=$(timeout -k 5 900 elixir --name "$(next_name gapper)@127.0.0.1" --cookie "$cookie" -pa "$ebin" "$gap_client" \
        "$cpp_svc@127.0.0.1" "$cpp_svc_pid" "$beam_svc@127.0.0.1" "$beam_svc_pid" "$gaps_list" \
        "$(IFS=,; echo "${gaps_whats[*]}")" "${gaps_client_sizes[@]:0:4}" "$1" ${2:+$2} 2>>"$work/gap_client.err") ||
        die "gap client failed (status $?): $out"
    printf '%s\n' "$out"
}

# Runs every traffic-rate measurement once per run; the targets must be up.
gaps_measure() {
    local run out line what side g k none_svc none_pid
    none_svc=$(next_name cpp_none)
    start_target cpp "$none_svc" --busy-wait none
    none_pid=$T_PID
    for run in $(seq 1 "$runs"); do
        log "traffic rates: gaps $gaps_list ms, C++ and BEAM blocks alternated (and C++ --busy-wait none), run $run/$runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
        out=$(gaps_client "$gaps_idle_s" "$none_svc@127.0.0.1 $none_pid")
        while read -r line; do
            case $line in
                gap\ *)
                    what=$(kv "$line" what) side=$(kv "$line" side) g=$(gap_key "$(kv "$line" gap_ms)")
                    for k in p50 p99 cpu gap run_wait; do add_raw "gap_${what}_${g}_${k}_$side" "$(kv "$line" "${k}_us")"; done
                    add_raw "gap_${what}_${g}_wakes_$side" "$(kv "$line" wakes)"
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
            add_raw "pp_${what}_${g}_wakes" "$(kv "$line" wakes)"
            add_raw "pp_${what}_req" "$(kv "$line" req)"
            add_raw "pp_${what}_rep" "$(kv "$line" rep)"
        done <<<"$out"
    done
    stop_target "$none_pid"
    gaps_trace_note=""
    for run in $(seq 1 "$gaps_capture_runs"); do
        gaps_capture "$run"
        [[ -z $gaps_capture_note ]] || break
    done
}

# One more run of the client ($1 of gaps_capture_runs) with tcpdump recording loopback (its
# figures are not in the medians of the other runs): for each block, the client's data segments
# per call and the node's turns, each the time from the client's last data packet to the node's
# answer (the first packet of it: a BEAM may spread an answer over several). The rest of a round
# trip is the client and the kernel; the client also lists its calls, so that this rest is known
# call by call (its p50 and p99). The kernel's scheduler trace of both nodes' threads, taken in
# the same run (scripts/lib/bench-sched-trace.sh), says how long each node waited for a CPU in
# each call (bench/sched-waits.awk): the wire table's last two columns, and the slowest calls'.
# Needs tcpdump and the right to capture, and for the trace root and tracefs; without them the
# table says why a figure is missing.
gaps_capture() {
    local pcap=$work/gaps.pcap err=$work/tcpdump.err spans=$work/gaps.calls trace=$work/gaps.trace
    local cport bport tp polls out line blocks="" threads="" what side g calls offset ctids btids
    gaps_capture_note=""
    command -v tcpdump >/dev/null || { gaps_capture_note="not measured: tcpdump is not installed"; return 0; }
    cport=$(epmd -port "$ERL_EPMD_PORT" -names | awk -v n="$cpp_svc" '$2 == n { print $5 }')
    bport=$(epmd -port "$ERL_EPMD_PORT" -names | awk -v n="$beam_svc" '$2 == n { print $5 }')
    [[ -n $cport && -n $bport ]] || die "EPMD does not know $cpp_svc and $beam_svc"
    log "traffic rates: with tcpdump on loopback and the nodes' scheduler trace (their turns and waits), run $1/$gaps_capture_runs"
    tcpdump -i lo -n -s 96 -U -w "$pcap" "tcp port $cport or tcp port $bport" 2>"$err" &
    tp=$!
    polls=200
    until grep -q 'listening on' "$err"; do
        if ! kill -0 "$tp" 2>/dev/null || ((polls-- == 0)); then
            kill "$tp" 2>/dev/null || true
            wait "$tp" 2>/dev/null || true
            gaps_capture_note="not measured: tcpdump could not capture ($(tail -n 1 "$err"))"
            return 0
        fi
        sleep 0.05
    done
    rm -f "$spans" "$trace"
    ctids=$(ls "/proc/$cpp_svc_pid/task") btids=$(ls "/proc/$beam_svc_pid/task")
    # shellcheck disable=SC2086 # one argument per thread
    sched_trace_start $ctids $btids
    out=$(GAP_CALLS=$spans gaps_client 0)
    sched_trace_stop "$trace"
    [[ -z $sched_trace_note ]] || gaps_trace_note=$sched_trace_note
    kill "$tp" 2>/dev/null || true
    wait "$tp" 2>/dev/null || true
    while read -r line; do
        [[ $line == gap\ * ]] || continue
        what=$(kv "$line" what) side=$(kv "$line" side) g=$(gap_key "$(kv "$line" gap_ms)") calls=$(kv "$line" calls)
        add_raw "cap_${what}_${g}_mean_$side" "$(kv "$line" mean_us)"
        add_raw "cap_${what}_${g}_p50_$side" "$(kv "$line" p50_us)"
        add_raw "cap_${what}_${g}_p99_$side" "$(kv "$line" p99_us)"
        blocks+="cap_${what}_${g}_$side $([[ $side == cpp ]] && echo "$cport" || echo "$bport") $(kv "$line" t0_ns) $(kv "$line" t1_ns) $calls"$'\n'
        threads+="$(kv "$line" t0_ns) $(kv "$line" t1_ns) $(paste -sd, <<<"$([[ $side == cpp ]] && echo "$ctids" || echo "$btids")")"$'\n'
    done <<<"$out"
    if [[ -s $trace ]]; then
        offset=$(kv "$("$ping_pong" clock)" realtime_minus_monotonic_ns)
        printf '%s' "$threads" >"$work/gaps.threads"
        awk -v offset_ns="$offset" -v calls_file="$spans" -v blocks_file="$work/gaps.threads" \
            -f "$root/bench/sched-waits.awk" "$trace" >"$spans.waits" && mv "$spans.waits" "$spans"
    fi
    while read -r k segs turns c50 c99 w50 w99 trt ttu twa; do
        side=${k##*_} k=${k%_*}
        add_raw "${k}_segs_$side" "$segs"
        add_raw "${k}_turns_$side" "$turns"
        [[ $c50 == - ]] || add_raw "${k}_client50_$side" "$c50"
        [[ $c99 == - ]] || add_raw "${k}_client99_$side" "$c99"
        [[ ${trt:--} == - ]] || add_raw "${k}_tailrt_$side" "$trt"
        [[ ${ttu:--} == - ]] || add_raw "${k}_tailturns_$side" "$ttu"
        [[ ${twa:--} == - ]] || add_raw "${k}_tailwait_$side" "$twa"
        # The floor of a node whose turns were only its wait is the C++ node's.
        [[ $side == cpp && ${w50:--} != - ]] || continue
        add_raw "${k}_waited50_cpp" "$w50"
        add_raw "${k}_waited99_cpp" "$w99"
    done < <(tcpdump -r "$pcap" -n -tt 2>/dev/null | awk -v blocks="$blocks" -v calls_file="$spans" -f "$root/bench/turns.awk")
}


# The median over runs of each run's own ratio, raw key $1 over raw key $2; empty unless both have
# one value for every run. The BEAM's slow runs and the node's are not the same runs, so this can
# differ from the ratio of the two medians (the target's measure) by tenths.
run_ratio() {
    local -a num den r=()
    local i
    read -ra num <<<"$(raw_of "$1")"
    read -ra den <<<"$(raw_of "$2")"
    ((${#num[@]} > 1 && ${#num[@]} == ${#den[@]})) || return 0
    for i in "${!num[@]}"; do
        test_expr "${den[i]} != 0" && r+=("$(calc "${num[i]} / ${den[i]}")")
    done
    ((${#r[@]} == ${#num[@]})) && median "${r[@]}"
    return 0
}

# "X / Y (R×) met" for one cell; $3 is the target ratio (empty: no target). With raw keys $4 and
# $5, the median of the per-run ratios follows R ("R×, per run P×"); the verdict stays on R.
gap_cell() {
    local c=$1 b=$2 goal=$3 r per="" verdict=""
    if [[ -z $c || -z $b ]] || ! test_expr "$b != 0"; then
        printf '%s / %s' "$(fmt "$c")" "$(fmt "$b")"
        return
    fi
    r=$(calc "$c / $b")
    [[ -n ${4:-} ]] && per=$(run_ratio "$4" "$5")
    [[ -n $goal ]] && verdict=$(test_expr "$r <= $goal" && echo " met" || echo " **missed**")
    printf '%s / %s (%s×%s)%s' "$(fmt "$c")" "$(fmt "$b")" "$(fmt "$r")" "${per:+, per run $(fmt "$per")×}" "$verdict"
}

# gap_cell for metric $2 of row $1 (a raw key's stem), C++ against the BEAM, target $3.
gap_metric_cell() { gap_cell "$(value "${1}_${2}_cpp")" "$(value "${1}_${2}_beam")" "$3" "${1}_${2}_cpp" "${1}_${2}_beam"; }

# The --busy-wait none node's p50 / p99 / CPU of row $1 (a raw key's stem), with ratios to the BEAM's.
gap_none_cell() {
    local m v="" r=""
    for m in p50 p99 cpu; do
        v+="${v:+ / }$(fmt "$(value "${1}_${m}_cpp_none")")"
        r+="${r:+ / }$(fmt "$(gap_div "$(value "${1}_${m}_cpp_none")" "$(value "${1}_${m}_beam")")")×"
    done
    printf '%s (%s)' "$v" "$r"
}

gap_label() { case $1 in rt) echo "Chat.send_message/2" ;; call) echo "GenServer.call :count" ;; esac; }

gaps_table() {
    local what g k label ic ib
    echo
    echo "## 10. Traffic rates: round trips spaced by a pause (issue 16)"
    echo
    echo "One BEAM client calls the C++ node and elixir_peer in alternated blocks (C++ first, then BEAM first), pausing between calls; medians of $runs run(s). Cells are C++ / BEAM (ratio of the medians, which the target judges; with more than one run, then the median of each run's own ratio); node CPU is per call, pauses included. The last column is a third target in the same run, between the two: the C++ node started with \`--busy-wait none\` (it never polls; the targets are judged on the default, \`medium\`), its p50, p99 and CPU per call, each as a ratio to the BEAM's."
    echo
    echo "| call, pause between calls | p50 µs (target ≤ 0.6×) | p99 µs (≤ 0.8×) | node CPU per call µs (≤ 0.8×) | pause actually taken (µs, C++ / BEAM) | \`--busy-wait none\`: p50 / p99 / CPU µs (× BEAM) |"
    echo "|---|---|---|---|---|---|"
    for what in "${gaps_whats[@]}"; do
        label=$(gap_label "$what")
        for g in ${gaps_list//,/ }; do
            k=gap_${what}_$(gap_key "$g")
            echo "| $label, ${g} ms | $(gap_metric_cell "$k" p50 0.6) | $(gap_metric_cell "$k" p99 0.8) | $(gap_metric_cell "$k" cpu 0.8) | $(fmt "$(value "${k}_gap_cpp")") / $(fmt "$(value "${k}_gap_beam")") | $(gap_none_cell "$k") |"
        done
    done
    ic=$(value gap_idle_cpp) ib=$(value gap_idle_beam)
    echo "| idle: no traffic for ${gaps_idle_s} s, connections up (CPU µs per second; target ≤ 1×) | | | $(gap_cell "$ic" "$ib" 1) | | $(fmt "$(value gap_idle_cpp_none)") ($(fmt "$(gap_div "$(value gap_idle_cpp_none)" "$ib")")×) |"
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
    gaps_where_table
    gaps_misses_table # scripts/lib/bench-gaps-verdict.sh
}

# "X / Y" with both numbers formatted (a dash for a missing one).
gap_pair() { printf '%s / %s' "$(fmt "$1")" "$(fmt "$2")"; }

# Divides, or prints nothing when either side is missing or the divisor is 0.
gap_div() { [[ -n $1 && -n $2 ]] && test_expr "$2 != 0" && calc "$1 / $2"; return 0; }

# The tables that say where the time and the CPU of each row go.
gaps_where_table() {
    local what g k label cw bw tw cn bn floor r cm bm ct bt cc bc
    echo
    echo "Where each node's CPU goes, from the same blocks (per call, medians): how often the node went to sleep and had to be woken (voluntary context switches of all its threads, /proc/PID/task/*/status), how long it waited, runnable, for a CPU (schedstat; in this virtual machine that includes the host waking an idle vCPU), and its CPU per wake-up. For scale, the plain C server of the 64 B ping-pong above sleeps once per call: its CPU per call is the price of one wake-up, a read and a write on this machine. The last column prices the C++ node's wake-ups at that: where it is over 0.8× of the BEAM's CPU, no node that sleeps as often can meet the CPU target (a node that polls instead of sleeping spends the polling)."
    echo
    echo "| call, pause | wake-ups per call, C++ / BEAM | waiting for a CPU, µs per call, C++ / BEAM | CPU per wake-up µs, C++ / BEAM / plain C server | the C++ node's wake-ups at the plain C server's price: µs per call (×BEAM) |"
    echo "|---|---|---|---|---|"
    for what in "${gaps_whats[@]}"; do
        label=$(gap_label "$what")
        for g in ${gaps_list//,/ }; do
            k=gap_${what}_$(gap_key "$g")
            cn=$(value "${k}_wakes_cpp") bn=$(value "${k}_wakes_beam")
            tw=$(gap_div "$(value "pp_tcp64_$(gap_key "$g")_cpu")" "$(value "pp_tcp64_$(gap_key "$g")_wakes")")
            cw="" bw="" floor="—"
            # Under a tenth of a wake-up a call the node polled through the pauses: no price per wake-up.
            if [[ -n $cn ]] && test_expr "$cn >= 0.1"; then
                cw=$(gap_div "$(value "${k}_cpu_cpp")" "$cn")
                if [[ -n $tw ]]; then
                    floor=$(calc "$cn * $tw")
                    r=$(gap_div "$floor" "$(value "${k}_cpu_beam")")
                    floor="$(fmt "$floor") ($(fmt "$r")×)"
                    [[ -n $r ]] && test_expr "$r > 0.8" && floor+=" CPU target out of reach at these wake-ups"
                fi
            fi
            [[ -n $bn ]] && test_expr "$bn >= 0.1" && bw=$(gap_div "$(value "${k}_cpu_beam")" "$bn")
            echo "| $label, ${g} ms | $(gap_pair "$cn" "$bn") | $(gap_pair "$(value "${k}_run_wait_cpp")" "$(value "${k}_run_wait_beam")") | $(fmt "$cw") / $(fmt "$bw") / $(fmt "$tw") | $floor |"
        done
    done
    echo
    if [[ -n ${gaps_capture_note:-} ]]; then
        echo "Read off the wire: $gaps_capture_note."
        return
    fi
    echo "Read off the wire: $gaps_capture_runs more run(s) of the same client with tcpdump on loopback (not in the medians above; each cell below is the median over these runs). A node's turns are, for each answer it sends, the time from the client's last data packet before it (to the first packet of the answer: a BEAM may spread one over several, so its column is a lower bound); the rest of the round trip is the client and the kernel. The client also lists its calls, so that the rest is known call by call: the sixth and seventh columns are its p50 and p99 over the block, the round trips a C++ node answering in no time at all would have given, against the BEAM's p50 and p99 in the same run. Where they are above 0.6× and 0.8×, no node can meet that target with this client. The last two columns put back into each call, at most up to its turns, how long the C++ node waited, some thread of it runnable, for a CPU during that call, from the kernel's scheduler trace of the same runs (from sched_waking, when the waker starts to wake it, to sched_switch, when it runs; a node that sleeps through a pause must be woken, and on this machine that includes the host waking an idle vCPU, which schedstat and sched_wakeup mostly do not see): the round trips of a node whose turns were only that wait, against the BEAM's p50 and p99 in the same runs. Where they are above the line, a node that sleeps as this one does cannot meet it even if its own work took no time.${gaps_trace_note:+ The last two columns: $gaps_trace_note.}"
    echo
    echo "| call, pause | client's data segments per call, C++ / BEAM | node turns µs per call, C++ / BEAM | round trip mean µs, C++ / BEAM | client and kernel µs per call, C++ / BEAM | a C++ node taking 0 µs: p50 µs, C++ / BEAM (target ≤ 0.6×) | … p99 µs (≤ 0.8×) | a C++ node whose turns were only its wait for a CPU: p50 µs (≤ 0.6×) | … p99 µs (≤ 0.8×) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for what in "${gaps_whats[@]}"; do
        label=$(gap_label "$what")
        for g in ${gaps_list//,/ }; do
            k=cap_${what}_$(gap_key "$g")
            cm=$(value "${k}_mean_cpp") bm=$(value "${k}_mean_beam") ct=$(value "${k}_turns_cpp") bt=$(value "${k}_turns_beam")
            cc="" bc=""
            if [[ -n $cm && -n $ct ]]; then cc=$(calc "$cm - $ct"); fi
            if [[ -n $bm && -n $bt ]]; then bc=$(calc "$bm - $bt"); fi
            echo "| $label, ${g} ms | $(gap_pair "$(value "${k}_segs_cpp")" "$(value "${k}_segs_beam")") | $(gap_pair "$ct" "$bt") | $(gap_pair "$cm" "$bm") | $(gap_pair "$cc" "$bc") | $(gap_reach "$(value "${k}_client50_cpp")" "$(value "${k}_p50_beam")" 0.6 p50) | $(gap_reach "$(value "${k}_client99_cpp")" "$(value "${k}_p99_beam")" 0.8 p99) | $(gap_reach "$(value "${k}_waited50_cpp")" "$(value "${k}_p50_beam")" 0.6 p50 sleeping) | $(gap_reach "$(value "${k}_waited99_cpp")" "$(value "${k}_p99_beam")" 0.8 p99 sleeping) |"
        done
    done
    gaps_tail_table
}

# What the slowest calls of the tcpdump runs were made of, from the scheduler trace of both nodes.
gaps_tail_table() {
    local what g k m row tt tw
    local -a own
    [[ -z ${gaps_trace_note:-} ]] || { echo; echo "The slowest calls: not measured ($gaps_trace_note)."; return; }
    echo
    echo "The slowest 1% of each block's calls in the same tcpdump runs (those at its p99 and above; means, medians over the runs), each node's turns in them and how much of those turns the node spent waiting for a CPU (some thread of it runnable and not running, from the kernel's scheduler trace of both nodes; at most the turns). The last column is what is left of the turns: the node's own work, and its polling where it polled. Where the waits make up most of a node's slow turns, its tail is set by the machine's scheduling (the other threads on its two CPUs: the client's and, in these runs, tcpdump's), not by its code."
    echo
    echo "| call, pause | slowest 1%: round trip µs, C++ / BEAM | node turns µs, C++ / BEAM | of which waiting for a CPU µs, C++ / BEAM | turns less the wait µs, C++ / BEAM |"
    echo "|---|---|---|---|---|"
    for what in "${gaps_whats[@]}"; do
        for g in ${gaps_list//,/ }; do
            k=cap_${what}_$(gap_key "$g") row="| $(gap_label "$what"), ${g} ms"
            for m in tailrt tailturns tailwait; do row+=" | $(gap_pair "$(value "${k}_${m}_cpp")" "$(value "${k}_${m}_beam")")"; done
            own=()
            for m in cpp beam; do
                tt=$(value "${k}_tailturns_$m") tw=$(value "${k}_tailwait_$m")
                if [[ -n $tt && -n $tw ]]; then own+=("$(calc "$tt - $tw")"); else own+=(""); fi
            done
            echo "$row | $(gap_pair "${own[0]}" "${own[1]}") |"
        done
    done
}

# "X / Y (R×)" and whether a target ratio $3 is within reach of a node taking no time ($4: which
# target; $5 "sleeping": of a node that waits for a CPU as this one did).
gap_reach() {
    local r
    r=$(gap_div "$1" "$2")
    printf '%s' "$(gap_pair "$1" "$2")"
    [[ -n $r ]] || return 0
    printf ' (%s×) ' "$(fmt "$r")"
    if ! test_expr "$r > $3"; then
        printf 'within reach'
    elif [[ ${5:-} == sleeping ]]; then
        printf '%s target out of reach for a node that sleeps as this one' "$4"
    else
        printf '%s target out of reach with this client' "$4"
    fi
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
            for m in p50 p99 cpu wakes; do
                gap_json_row "${k}_${m}_busy_wait_none" "$(gap_label "$what"), pause ${g} ms: $m, C++ node with --busy-wait none (cpp column)" "$([[ $m == wakes ]] && echo count || echo us)" "${k}_${m}_cpp_none" "${k}_${m}_beam" ""
            done
        done
    done
    for what in "${gaps_whats[@]}"; do
        for g in ${gaps_list//,/ }; do
            k=gap_${what}_$(gap_key "$g")
            gap_json_row "${k}_wakes" "$(gap_label "$what"), pause ${g} ms: wake-ups per call" count "${k}_wakes_cpp" "${k}_wakes_beam" ""
            gap_json_row "${k}_run_wait_us" "$(gap_label "$what"), pause ${g} ms: waiting for a CPU per call (µs)" us "${k}_run_wait_cpp" "${k}_run_wait_beam" ""
            k=cap_${what}_$(gap_key "$g")
            gap_json_row "${k}_segments" "$(gap_label "$what"), pause ${g} ms: client's data segments per call (tcpdump run)" count "${k}_segs_cpp" "${k}_segs_beam" ""
            gap_json_row "${k}_turns_us" "$(gap_label "$what"), pause ${g} ms: node turns per call (µs, tcpdump run)" us "${k}_turns_cpp" "${k}_turns_beam" ""
            gap_json_row "${k}_mean_us" "$(gap_label "$what"), pause ${g} ms: round trip mean (µs, tcpdump run)" us "${k}_mean_cpp" "${k}_mean_beam" ""
            gap_json_row "${k}_zero_p50_us" "$(gap_label "$what"), pause ${g} ms: p50 of the round trip less the node's turns (µs, tcpdump run; BEAM column: its p50)" us "${k}_client50_cpp" "${k}_p50_beam" ""
            gap_json_row "${k}_zero_p99_us" "$(gap_label "$what"), pause ${g} ms: p99 of the round trip less the node's turns (µs, tcpdump run; BEAM column: its p99)" us "${k}_client99_cpp" "${k}_p99_beam" ""
            gap_json_row "${k}_tail_rt_us" "$(gap_label "$what"), pause ${g} ms: mean round trip of the slowest 1% of calls (µs, tcpdump run)" us "${k}_tailrt_cpp" "${k}_tailrt_beam" ""
            gap_json_row "${k}_tail_turns_us" "$(gap_label "$what"), pause ${g} ms: node turns in the slowest 1% of calls (µs, tcpdump run)" us "${k}_tailturns_cpp" "${k}_tailturns_beam" ""
            gap_json_row "${k}_tail_wait_us" "$(gap_label "$what"), pause ${g} ms: of those turns, waiting for a CPU (µs, tcpdump run, the scheduler's trace)" us "${k}_tailwait_cpp" "${k}_tailwait_beam" ""
            gap_json_row "${k}_waited_p50_us" "$(gap_label "$what"), pause ${g} ms: p50 of the round trip less the node's turns, its wait for a CPU put back (µs, tcpdump runs, the scheduler's trace; BEAM column: its p50)" us "${k}_waited50_cpp" "${k}_p50_beam" ""
            gap_json_row "${k}_waited_p99_us" "$(gap_label "$what"), pause ${g} ms: p99 of the round trip less the node's turns, its wait for a CPU put back (µs, tcpdump runs, the scheduler's trace; BEAM column: its p99)" us "${k}_waited99_cpp" "${k}_p99_beam" ""
        done
    done
    gaps_misses_json # scripts/lib/bench-gaps-verdict.sh
    gap_json_row gap_idle_cpu_us_per_s "idle node CPU (µs per second, ticks only)" us/s gap_idle_cpp gap_idle_beam 1
    gap_json_row gap_idle_cpu_us_per_s_busy_wait_none "idle node CPU (µs per second, ticks only), C++ node with --busy-wait none (cpp column)" us/s gap_idle_cpp_none gap_idle_beam ""
    for g in ${gaps_list//,/ }; do
        k=$(gap_key "$g")
        for m in p50 p99 cpu; do
            gap_json_row "floor_tcp64_${k}_${m}_us" "plain C TCP ping-pong 64 B, pause $g ms: $m (µs)" us "pp_tcp64_${k}_$m" "" ""
            gap_json_row "floor_dist_${k}_${m}_us" "C++ client → C++ node :count, pause $g ms: $m (µs)" us "pp_dist_${k}_$m" "" ""
            gap_json_row "floor_tcp_sized_${k}_${m}_us" "plain TCP ping-pong of the :count sizes, pause $g ms: $m (µs)" us "pp_tcp_${k}_$m" "" ""
        done
    done
}
