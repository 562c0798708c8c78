# shellcheck shell=bash
# Section 9 of scripts/bench, "Hostile peers": every row of issue 17's table (a hostile or heavy
# peer) against the C++ node and against elixir_peer, side by side. For each row, a driver node
# (bench/hostile/main.exs) starts an attacker node, runs the attack from there, and meanwhile
# calls the target every ~50 ms (GenServer.call :count, and GET /health where HTTP is served)
# and samples its RSS: the slowest answer (the loop stall a client sees), peak RSS, RSS once
# the attacker has left and memory has settled, and the calls served / failed.
#
# Targets are fresh for each group of rows that can share one; the rows that break a node for
# good on some builds (links, kill_sup) and the one that needs a stdout nobody reads get their
# own. Sourced by scripts/bench; uses its globals and scripts/lib/bench-common.sh.

# Rows in the order of the issue's table, then the ones this section adds, with their labels.
hostile_rows=(monitors links kill_sup tasks monitors_kept stdout nil_bomb spawn_io spawn_io_hole made_up
    made_up_posts sse_posts idle_events open_relay)
declare -A hostile_label=(
    [monitors]="Process.monitor({Chat, node}) × {N}, then each demonitored"
    [links]="{N} processes linked to the Chat process, then their node leaves"
    [kill_sup]="Process.exit(Chat.TaskSupervisor, :kill), then Chat.send_message"
    [tasks]="{N} concurrent Task.Supervisor.async to the node"
    [monitors_kept]="{N} monitors kept, then their node leaves"
    [stdout]="stdout a pipe nobody reads, {N} × 1 KB to Chat, then SIGTERM"
    [nil_bomb]="one frame holding a list of {N} []"
    [spawn_io]="{N} × {S} MB spawn requests whose group leader never answers io_request"
    [spawn_io_hole]="the same, the group leader on a node whose handshake never completes"
    [made_up]="{N} calls asking the node to Chat.send_message to made-up nodes"
    [made_up_posts]="no cookie: {N} POST /messages naming made-up nodes"
    [sse_posts]="no cookie: idle /events streams that never read + POST /messages to the node"
    [idle_events]="no cookie: {N} /events connections that never read"
    [open_relay]="no cookie: POST /messages to any name@host"
)
# Target groups: rows that can share one target, run in this order.
hostile_groups=("open_relay,made_up_posts,sse_posts,idle_events,nil_bomb,spawn_io,spawn_io_hole,made_up"
    "monitors,tasks,monitors_kept" "links" "kill_sup" "stdout")
declare -A hostile=() # "row.kind" -> the driver's line

# Starts a target whose stdout is a FIFO held open by a reader that never reads.
start_stuck_target() {
    local kind=$1 name=$2 fifo=$work/$2.stuck
    mkfifo "$fifo"
    sleep 1000000 <"$fifo" &
    case $kind in
        cpp) "$chat_node" --name "$name@127.0.0.1" --cookie "$cookie" --log-level warn >"$fifo" 2>>"$work/$name.err" & ;;
        beam) elixir --name "$name@127.0.0.1" --cookie "$cookie" -pa "$ebin" \
                -e 'Application.ensure_all_started(:chat); Process.sleep(:infinity)' >"$fifo" 2>>"$work/$name.err" & ;;
    esac
    T_PID=$!
}

# hostile_group KIND ROWS: a fresh target, the driver over ROWS, the target stopped.
hostile_group() {
    local kind=$1 rows=$2 name port="" out line row args=()
    name=$(next_name "hostile_$kind")
    if [[ $rows == stdout ]]; then
        start_stuck_target "$kind" "$name"
    else
        port=$(free_port)
        if [[ $kind == cpp ]]; then
            start_target cpp "$name" --port "$port"
        else
            DYNO=web.1 PORT=$port start_target beam "$name"
        fi
        args=(--http-port "$port")
    fi
    local pid=$T_PID
    ((smoke)) && args+=(--smoke)
    log "hostile ($kind): $rows"
    out=$(timeout -k 5 1800 elixir --name "$(next_name driver)@127.0.0.1" --cookie "$cookie" -pa "$ebin" \
        "$root/bench/hostile/main.exs" --target "$name@127.0.0.1" --os-pid "$pid" --rows "$rows" "${args[@]}" \
        2>>"$work/hostile-driver.err") || log "warning: the hostile driver ended with status $? on $rows ($kind)"
    while IFS= read -r line; do
        row=$(kv "$line" row)
        [[ -n $row ]] && hostile["$row.$kind"]=$line
    done < <(grep '^hostile row=' <<<"$out")
    stop_target "$pid"
}

hostile_section() {
    hostile_settle_text="at least 10 s after it left, then 3 s without falling, 30 s at most"
    ((smoke)) && hostile_settle_text="at least 3 s after it left, then 1 s without falling, 15 s at most"
    # idle_events opens ~20,000 connections from the attacker; the targets need room as well.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    local group kind row rows
    for group in "${hostile_groups[@]}"; do
        rows=$group
        if [[ -n ${hostile_only:-} ]]; then
            rows=""
            for row in ${group//,/ }; do
                [[ ,$hostile_only, == *,$row,* ]] && rows+="${rows:+,}$row"
            done
            [[ -n $rows ]] || continue
        fi
        for kind in cpp beam; do hostile_group "$kind" "$rows"; done
    done
}

# The fields of a driver line that are not the common measurements: what the row itself saw.
hostile_outcome() {
    local w out=""
    for w in $1; do
        case ${w%%=*} in hostile | row | served | failed | max_ms | p99_ms | base_kb | peak_kb | after_kb) continue ;; esac
        out+="${out:+ }$w"
    done
    printf '%s' "${out//|/\\|}"
}

# Markdown table and JSON rows of the section (in hostile_md and hostile_json).
hostile_table() {
    local row kind line cells n label mb size key
    hostile_md=()
    hostile_json=()
    hostile_md+=("| Attack | C++: slowest (p99) answer (ms) | C++: RSS before → peak → after (MB) | C++: probe served (failed) | C++: what the attack saw | BEAM: slowest (p99) answer (ms) | BEAM: RSS before → peak → after (MB) | BEAM: probe served (failed) | BEAM: what the attack saw |")
    hostile_md+=("|---|---:|---|---:|---|---:|---|---:|---|")
    for row in "${hostile_rows[@]}"; do
        line=${hostile[$row.cpp]:-${hostile[$row.beam]:-}}
        n=$(kv "$line" monitors)
        for key in links tasks messages elements spawns calls posts connections; do
            [[ -z $n ]] && n=$(kv "$line" "$key")
        done
        label=${hostile_label[$row]//\{N\}/${n:-N}}
        size=$(kv "$line" size)
        [[ -n $size ]] && label=${label//\{S\}/$((size >> 20))}
        cells="| $label"
        local json="{\"row\": $(json_str "$row"), \"label\": $(json_str "$label")"
        for kind in cpp beam; do
            line=${hostile[$row.$kind]:-}
            if [[ -z $line ]]; then
                cells+=" | — | — | — | not measured"
                json+=", \"$kind\": null"
                continue
            fi
            mb="$(fmt "$(calc "$(kv "$line" base_kb) / 1024")") → $(fmt "$(calc "$(kv "$line" peak_kb) / 1024")") → $(fmt "$(calc "$(kv "$line" after_kb) / 1024")")"
            cells+=" | $(kv "$line" max_ms) ($(kv "$line" p99_ms)) | $mb | $(kv "$line" served) ($(kv "$line" failed)) | $(hostile_outcome "$line")"
            json+=", \"$kind\": {\"max_ms\": $(json_num "$(kv "$line" max_ms)"), \"p99_ms\": $(json_num "$(kv "$line" p99_ms)"), \"base_kb\": $(json_num "$(kv "$line" base_kb)"), \"peak_kb\": $(json_num "$(kv "$line" peak_kb)"), \"after_kb\": $(json_num "$(kv "$line" after_kb)"), \"served\": $(json_num "$(kv "$line" served)"), \"failed\": $(json_num "$(kv "$line" failed)"), \"outcome\": $(json_str "$(hostile_outcome "$line")")}"
        done
        hostile_md+=("$cells |")
        hostile_json+=("$json}")
    done
}
