# shellcheck shell=bash
# Helpers of scripts/bench: naming and starting the nodes it measures, arithmetic on figures,
# and the Markdown/JSON rows of its tables. Sourced by scripts/bench (and the sections in
# scripts/lib/bench-*.sh); they use its globals ($work, $cookie, $chat_node, $ebin, raw, rows).
# A fresh node name (random, so that it is unique even when made in a subshell).
next_name() { echo "$1_$(chat_random_hex 4)"; }

# key=value out of a tool's output line.
kv() { sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p" <<<" $1" | head -n 1; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }
# awk condition on numbers, e.g. test_expr "0.4 <= 0.5"
test_expr() { awk "BEGIN { exit !($1) }"; }

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        [[ -z $(ss -Htln "sport = :$p") ]] && { echo "$p"; return 0; }
    done
    die "no free TCP port"
}

# The stdout of a target goes through a FIFO to this reader: it records the "Node name:" line
# and then discards the rest (chat lines, megabytes of them in the blast phase).
drain_stdout() {
    local line
    while IFS= read -r line; do
        if [[ $line == "Node name:"* ]]; then
            printf '%s\n' "$line" >"$1"
            break
        fi
    done
    exec cat >/dev/null
}

# start_target cpp|beam NAME [extra arguments]: sets T_PID (the node's pid).
start_target() {
    local kind=$1 name=$2
    shift 2
    local fifo=$work/$name.fifo ready=$work/$name.ready
    mkfifo "$fifo"
    drain_stdout "$ready" <"$fifo" &
    case $kind in
        cpp) "$chat_node" --name "$name@127.0.0.1" --cookie "$cookie" --log-level warn "$@" \
                >"$fifo" 2>>"$work/$name.err" & ;;
        beam) elixir "$@" --name "$name@127.0.0.1" --cookie "$cookie" -pa "$ebin" \
                -e 'Application.ensure_all_started(:chat); Process.sleep(:infinity)' \
                >"$fifo" 2>>"$work/$name.err" & ;;
    esac
    T_PID=$!
    chat_wait_line "$ready" "Node name: $name@127.0.0.1" 60 || die "$name did not start"
}

# Stops a node we started: SIGTERM, then SIGKILL after 15 s.
stop_target() {
    local pid=$1 polls=300
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && ((polls-- > 0)); do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Runs the elixir client; prints its output. $1: timeout (s), then client arguments.
run_client() {
    local limit=$1 name
    shift
    name=$(next_name amanda)
    timeout -k 5 "$limit" elixir --name "$name@127.0.0.1" --cookie "$cookie" -pa "$ebin" "$client" "$@" \
        2>>"$work/client.err" || die "client $* failed (status $?)"
}

# CPU time (ns) used so far by every thread of process $1 (/proc/PID/task/*/schedstat).
cpu_ns() {
    local total=0 f ns
    for f in /proc/"$1"/task/*/schedstat; do
        read -r ns _ <"$f" 2>/dev/null && total=$((total + ns))
    done
    echo "$total"
}

# perf helpers (--profile): record a pid while a command runs, then keep the top symbols.
profiles=()
# --profile adds a last pass over the C++ node alone, under perf, that records no figures.
prof_now() { ((profile_pass)); }
perf_start() { perf record -F 2999 -o "$work/$1.perf" -p "$2" >/dev/null 2>&1 & PERF_PID=$!; }
# perf_top FILE: the share of each object (kernel, chat-node, libc...) and the top symbols.
perf_top() {
    printf 'by object: '
    perf report -i "$1" --stdio --no-children --sort dso --percent-limit 2 2>/dev/null |
        awk '!/^#/ && NF >= 2 { printf "%s%s %s", (n++ ? ", " : ""), $2, $1 } END { print "" }'
    perf report -i "$1" --stdio --no-children --sort dso,symbol --percent-limit 1.5 2>/dev/null |
        grep -v '^#' | grep -v '^$' | cut -c1-140 | sed -E 's/[[:space:]]+$//' | head -n 14
}
# perf_stop TITLE NAME: ends the recording started by perf_start NAME and keeps its summary.
perf_stop() {
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    profiles+=("### $1"$'\n''```'$'\n'"$(perf_top "$work/$2.perf")"$'\n''```')
}

declare -A raw=() # "key" -> space-separated values of every run
profile_pass=0

# Results of the profile pass are not recorded: perf slows what it watches.
add_raw() { ((profile_pass)) || raw[$1]="${raw[$1]:-} $2"; }
# shellcheck disable=SC2086 # the values are words on purpose
value() { median ${raw[$1]:-}; }
# shellcheck disable=SC2086
min_of() { printf "%s\n" ${raw[$1]:-} | sort -g | head -n 1; }
# shellcheck disable=SC2086
max_of() { printf "%s\n" ${raw[$1]:-} | sort -g | tail -n 1; }
raw_of() { [[ -n $1 ]] && printf "%s" "${raw[$1]:-}"; return 0; }

# ---- tables ----------------------------------------------------------------------------------
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
json_num() { if [[ $1 =~ ^-?[0-9.]+([eE][-+]?[0-9]+)?$ ]]; then printf '%s' "$1"; else printf 'null'; fi; }
json_list() { local out="" v; for v in $1; do out+="${out:+, }$(json_num "$v")"; done; printf '[%s]' "$out"; }
fmt() { # numbers for people: 3 significant digits below 1000, integers above
    [[ -z $1 ]] && { printf -- '—'; return; }
    awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v; if (a >= 100 || (a >= 1 && v == int(v))) printf "%.0f", v;
        else if (a >= 10) printf "%.1f", v; else if (a >= 1) printf "%.2f", v; else printf "%.3g", v }'
}

# row ID LABEL UNIT CPP BEAM TARGET_TEXT MET(met|missed|"") [RAW_CPP_KEY RAW_BEAM_KEY]
row() {
    local id=$1 label=$2 unit=$3 cpp=$4 beam=$5 target=$6 met=$7 kc=${8:-} kb=${9:-}
    local ratio="" shown_ratio="—"
    if [[ -n $cpp && -n $beam ]] && test_expr "$beam != 0"; then
        ratio=$(calc "$cpp / $beam")
        shown_ratio="$(fmt "$ratio")×"
    fi
    local result=${met:-—}
    rows+=("| $label | $(fmt "$cpp") | $(fmt "$beam") | $shown_ratio | ${target:-—} | $result |")
    local met_json=null
    [[ $met == met ]] && met_json=true
    [[ $met == missed ]] && met_json=false
    json_rows+=("{\"id\": $(json_str "$id"), \"label\": $(json_str "$label"), \"unit\": $(json_str "$unit"), \"cpp\": $(json_num "$cpp"), \"beam\": $(json_num "$beam"), \"ratio\": $(json_num "$ratio"), \"target\": $(json_str "$target"), \"met\": $met_json, \"runs\": {\"cpp\": $(json_list "$(raw_of "$kc")"), \"beam\": $(json_list "$(raw_of "$kb")")}}")
}
judge() { if test_expr "$1"; then echo met; else echo missed; fi; }
section() { rows+=("| **$1** | | | | | |"); }
