# shellcheck shell=bash
# Section 10 of scripts/bench, its last table: every target of the first table that the run
# missed, with how many runs met it on their own, and what the same run measured that puts it
# out of reach (issue 16 asks for a target met, or the measurement that says why not):
#  - latency: the round trips of a node answering in no time, and of a node whose turns were
#    only its wait for a CPU (the tcpdump runs, each judged against the BEAM's figure in the same
#    runs);
#  - CPU: the node's wake-ups priced at the plain C server's CPU per wake-up (the floor table);
#    and where the `--busy-wait none` node meets it, that the default spent it on polling;
#  - none: nothing in the run explains the miss.
# Sourced by scripts/bench after bench-gaps.sh; gaps_misses_table prints the Markdown and
# gaps_misses_json adds one JSON row per miss.

# "k of N": how many runs' own ratio of raw keys $1 over $2 is at most $3.
gaps_runs_meeting() {
    local -a num den
    local i met=0
    read -ra num <<<"$(raw_of "$1")"
    read -ra den <<<"$(raw_of "$2")"
    ((${#num[@]} == ${#den[@]})) || return 0
    for i in "${!num[@]}"; do
        test_expr "${den[i]} != 0 && ${num[i]} / ${den[i]} <= $3" && met=$((met + 1))
    done
    printf '%s of %s' "$met" "${#num[@]}"
}

# The evidence for a missed latency target: $1 what, $2 gap key, $3 p50|p99, $4 the target ratio.
gaps_latency_evidence() {
    local k=cap_$1_$2 n=${3#p} out=""
    out=$(gaps_floor_evidence "$1" "$2" "$3" "$4" "${k}_client${n}_cpp" "${k}_${3}_beam" "a node answering in no time")
    out+=$(gaps_floor_evidence "$1" "$2" "$3" "$4" "${k}_waited${n}_cpp" "${k}_${3}_beam" "a node whose turns were only its wait for a CPU" "${out:+; }")
    printf '%s' "$out"
}

# One floor of the tcpdump runs against the BEAM's figure of the same runs ($5 over $6, named $7,
# for target $3 of row $1, $2 with line $4), printed after $8 when it is over the line. Where the
# BEAM's figure in those runs is over 1.2× its figure in the judged runs, it says so.
gaps_floor_evidence() {
    local r slow
    r=$(gap_div "$(value "$5")" "$(value "$6")")
    [[ -n $r ]] && test_expr "$r > $4" || return 0
    printf '%s%s: %s× of the BEAM'"'"'s %s (tcpdump runs)' "${8:-}" "$7" "$(fmt "$r")" "$3"
    slow=$(gap_div "$(value "$6")" "$(value "gap_$1_$2_${3}_beam")")
    [[ -n $slow ]] && test_expr "$slow > 1.2" && printf ', its %s there %s× its %s in the judged runs' "$3" "$(fmt "$slow")" "$3"
    return 0
}

# The evidence for a missed CPU target: $1 what, $2 gap key, $3 the target ratio.
gaps_cpu_evidence() {
    local k=gap_$1_$2 wakes price r out="" none none50 def50
    wakes=$(value "${k}_wakes_cpp")
    price=$(gap_div "$(value "pp_tcp64_$2_cpu")" "$(value "pp_tcp64_$2_wakes")")
    if [[ -n $wakes && -n $price ]] && test_expr "$wakes >= 0.1"; then
        r=$(gap_div "$(calc "$wakes * $price")" "$(value "${k}_cpu_beam")")
        [[ -n $r ]] && test_expr "$r > $3" &&
            out+="its $(fmt "$wakes") wake-ups a call at the plain C server's price: $(fmt "$r")× of the BEAM's CPU"
    fi
    # Only a trade is evidence: `none` meeting the line with a slower p50 than the default's.
    read -r none none50 def50 <<<"$(gaps_none_figures "$1" "$2")"
    if [[ -n $def50 ]] && test_expr "$none <= $3 && $none50 > $def50"; then
        out+="${out:+; }the polling trade: \`--busy-wait none\` met it ($(fmt "$none")×) at p50 $(fmt "$none50")× of the BEAM's, the default $(fmt "$def50")×"
    fi
    printf '%s' "$out"
}

# The `--busy-wait none` node's CPU and p50 as ratios to the BEAM's, and the default's p50 ratio
# ($1 what, $2 gap key); nothing unless all three are known.
gaps_none_figures() {
    local k=gap_$1_$2 none none50 def50
    none=$(gap_div "$(value "${k}_cpu_cpp_none")" "$(value "${k}_cpu_beam")")
    none50=$(gap_div "$(value "${k}_p50_cpp_none")" "$(value "${k}_p50_beam")")
    def50=$(gap_div "$(value "${k}_p50_cpp")" "$(value "${k}_p50_beam")")
    [[ -n $none && -n $none50 && -n $def50 ]] && echo "$none $none50 $def50"
    return 0
}

# A remark, not evidence, on a missed CPU target ($1 what, $2 gap key, $3 the line): where the
# `none` node met it while answering as fast as the default or faster.
gaps_cpu_remark() {
    local none none50 def50
    read -r none none50 def50 <<<"$(gaps_none_figures "$1" "$2")"
    [[ -n $def50 ]] && test_expr "$none <= $3 && $none50 <= $def50" &&
        printf '%s' "\`--busy-wait none\` met it ($(fmt "$none")×) with p50 $(fmt "$none50")× of the BEAM's against the default's $(fmt "$def50")×: here the default's polling bought nothing"
    return 0
}

# A remark on a missed p99 ($1 what, $2 gap key): what the slowest 1% of calls of the tcpdump
# runs were made of, each node's turns and its wait for a CPU within them.
gaps_tail_remark() {
    local k=cap_$1_$2 side out=""
    [[ -n $(value "${k}_tailwait_cpp") && -n $(value "${k}_tailwait_beam") ]] || return 0
    for side in cpp beam; do
        out+="${out:+; }$([[ $side == cpp ]] && echo C++ || echo BEAM) $(fmt "$(value "${k}_tailrt_$side")") µs, turns $(fmt "$(value "${k}_tailturns_$side")") of which $(fmt "$(value "${k}_tailwait_$side")") waiting for a CPU"
    done
    printf 'the slowest 1%% of calls in the tcpdump runs: %s' "$out"
}

# One line per missed target: "label|target|ratio|runs meeting it|evidence|remark" (the last two
# may be empty).
gaps_misses() {
    local what g gk k m goal r ev remark
    for what in "${gaps_whats[@]}"; do
        for g in ${gaps_list//,/ }; do
            gk=$(gap_key "$g") k=gap_${what}_$(gap_key "$g")
            for m in p50:0.6 p99:0.8 cpu:0.8; do
                goal=${m#*:} m=${m%%:*}
                r=$(gap_div "$(value "${k}_${m}_cpp")" "$(value "${k}_${m}_beam")")
                if [[ -z $r ]] || ! test_expr "$r > $goal"; then continue; fi
                remark=""
                if [[ $m == cpu ]]; then
                    ev=$(gaps_cpu_evidence "$what" "$gk" "$goal") remark=$(gaps_cpu_remark "$what" "$gk" "$goal")
                else
                    ev=$(gaps_latency_evidence "$what" "$gk" "$m" "$goal")
                    [[ $m == p99 ]] && remark=$(gaps_tail_remark "$what" "$gk")
                fi
                printf '%s|%s|%s|%s|%s|%s\n' "$(gap_label "$what"), ${g} ms, $([[ $m == cpu ]] && echo "node CPU per call" || echo "$m")" \
                    "≤ ${goal}×" "$(fmt "$r")" "$(gaps_runs_meeting "${k}_${m}_cpp" "${k}_${m}_beam" "$goal")" "$ev" "$remark"
            done
        done
    done
    r=$(gap_div "$(value gap_idle_cpp)" "$(value gap_idle_beam)")
    if [[ -n $r ]] && test_expr "$r > 1"; then
        printf '%s|%s|%s|%s||\n' "idle CPU" "≤ 1×" "$(fmt "$r")" "$(gaps_runs_meeting gap_idle_cpp gap_idle_beam 1)"
    fi
}

gaps_misses_table() {
    local label goal r runs ev remark n=0 bare=0
    echo
    echo "Every target of the first table missed in this run, how many runs met it on their own (each run's C++ figure against the BEAM's of the same run), and what this run measured that puts it out of reach: the tcpdump runs' round trips of a node taking no time, or whose turns were only its wait for a CPU, above the line; the node's wake-ups priced at the plain C server's CPU per wake-up, above the line; or \`--busy-wait none\` meeting a CPU line that the default's polling spends on latency. \"None in this run\" means nothing here explains the miss."
    echo
    echo "| missed target | line | C++/BEAM (runs meeting the line) | evidence in this run |"
    echo "|---|---|---|---|"
    while IFS='|' read -r label goal r runs ev remark; do
        n=$((n + 1))
        [[ -n $ev ]] || bare=$((bare + 1))
        echo "| $label | $goal | ${r}× (${runs:-—}) | ${ev:-**none in this run**}${remark:+ ($remark)} |"
    done < <(gaps_misses)
    ((n)) || echo "| (none: every target met) | | | |"
    echo
    echo "Targets missed: $n; with no evidence in this run: $bare."
}

gaps_misses_json() {
    local label goal r runs ev remark
    while IFS='|' read -r label goal r runs ev remark; do
        json_rows+=("{\"id\": $(json_str "gap_miss: $label"), \"label\": $(json_str "$label (missed)"), \"target\": $(json_str "$goal BEAM"), \"ratio\": $(json_num "$r"), \"runs_meeting\": $(json_str "$runs"), \"evidence\": $(json_str "${ev:-none in this run}"), \"remark\": $(json_str "$remark")}")
    done < <(gaps_misses)
}
