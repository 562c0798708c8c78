# Section 7 of scripts/bench: cluster membership (bench/mesh.exs). Sourced by scripts/bench,
# which defines log, die, add_raw, value, row, section, calc, fmt, judge and the variables used
# here (chat_node, ebin, cookie, runs, smoke, work, root).

# bench_mesh_measure: N nodes told about one other only (a chain) until fully meshed and
# globally synced, C++-heavy (all but 2 C++) and all BEAM; and a C++ node's RSS alone, in the
# mesh, and with global names and pg members added.
bench_mesh_measure() {
    local n=10 names=200 members=1000 run kind cpp out
    ((smoke)) && n=4 names=10 members=20
    mesh_n=$n mesh_names=$names mesh_members=$members
    for run in $(seq 1 "$runs"); do
        for kind in cpp beam; do
            cpp=$((n - 2))
            [[ $kind == beam ]] && cpp=0
            log "cluster membership: $n nodes, $cpp of them C++, run $run/$runs"
            out=$(timeout -k 5 600 elixir --hidden --name "$(next_name meshbench)@127.0.0.1" --cookie "$cookie" \
                "$root/bench/mesh.exs" "$chat_node" "$ebin" "$cookie" "$n" "$cpp" "$names" "$members" \
                2>>"$work/mesh.err") || die "bench/mesh.exs failed ($n nodes, $cpp C++)"
            out=$(grep '^mesh ' <<<"$out") || die "no mesh result"
            add_raw "mesh_ms_$kind" "$(kv "$out" mesh_ms)"
            add_raw "mesh_sync_ms_$kind" "$(kv "$out" sync_ms)"
            if [[ $kind == cpp ]]; then
                add_raw mesh_rss_alone "$(kv "$out" rss_alone_kb)"
                add_raw mesh_rss_mesh "$(kv "$out" rss_mesh_kb)"
                add_raw mesh_rss_tables "$(kv "$out" rss_tables_kb)"
            fi
        done
    done
}

bench_mesh_rows() {
    local mc mb
    mc=$(value mesh_ms_cpp) mb=$(value mesh_ms_beam)
    section "7. Cluster membership ($mesh_n nodes, each told about one other; C++ column: $((mesh_n - 2)) C++ + 2 BEAM, BEAM column: $mesh_n BEAM)"
    row mesh_ms "fully meshed (ms from the first Node.connect)" ms "$mc" "$mb" "" "" mesh_ms_cpp mesh_ms_beam
    row mesh_sync_ms "… and :global.sync() returned on every node (ms)" ms "$(value mesh_sync_ms_cpp)" "$(value mesh_sync_ms_beam)" "" "" mesh_sync_ms_cpp mesh_sync_ms_beam
    row mesh_rss_alone_kb "a C++ node's RSS alone, before joining (KB)" KB "$(value mesh_rss_alone)" "" "" "" mesh_rss_alone ""
    row mesh_rss_mesh_kb "… in the synced mesh (KB)" KB "$(value mesh_rss_mesh)" "" "" "" mesh_rss_mesh ""
    row mesh_rss_tables_kb "… with $mesh_names global names and $mesh_members pg members of the cluster in its tables (KB)" KB "$(value mesh_rss_tables)" "" "" "" mesh_rss_tables ""
}
