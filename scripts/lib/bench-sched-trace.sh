# shellcheck shell=bash
# The kernel's scheduler trace of some threads (tracefs, an instance of its own so that nothing
# else using the tracer is disturbed): when each was woken, preempted and switched in, for
# bench/sched-waits.awk. Needs root and tracefs (mounted here if it is not); without them,
# sched_trace_start leaves the reason in sched_trace_note and the caller goes without.
#
#   sched_trace_start TID...  # sched_trace_note empty: recording
#   sched_trace_stop FILE     # the trace as text; sched_trace_note set if events were lost
#
# sched_trace_cleanup removes an instance left behind (scripts/bench's exit trap).

sched_trace_inst="" sched_trace_note=""

sched_trace_start() {
    local t=/sys/kernel/tracing inst tid woken="" switched=""
    for tid in "$@"; do
        woken+="${woken:+ || }pid == $tid"
        switched+="${switched:+ || }next_pid == $tid || prev_pid == $tid"
    done
    sched_trace_note=""
    [[ -d $t/instances ]] || mount -t tracefs nodev "$t" 2>/dev/null || true
    if [[ ! -d $t/instances ]]; then
        sched_trace_note="no scheduler trace: tracefs is not mounted and could not be"
        return 0
    fi
    inst=$t/instances/chat-bench-$$
    if ! mkdir "$inst" 2>/dev/null; then
        sched_trace_note="no scheduler trace: cannot create a tracing instance (root is needed)"
        return 0
    fi
    sched_trace_inst=$inst
    # Wall-clock matching needs a clock with a known offset to CLOCK_REALTIME (ping-pong clock).
    if ! {
        echo 0 >"$inst/tracing_on" &&
            echo mono >"$inst/trace_clock" &&
            echo 32768 >"$inst/buffer_size_kb" &&
            echo "$woken" >"$inst/events/sched/sched_waking/filter" &&
            echo "$switched" >"$inst/events/sched/sched_switch/filter" &&
            echo 1 >"$inst/events/sched/sched_waking/enable" &&
            echo 1 >"$inst/events/sched/sched_switch/enable" &&
            echo 1 >"$inst/tracing_on"
    } 2>/dev/null; then
        sched_trace_note="no scheduler trace: the tracer refused its settings"
        sched_trace_cleanup
    fi
    return 0
}

sched_trace_stop() {
    local inst=$sched_trace_inst lost
    [[ -n $inst ]] || return 0
    echo 0 >"$inst/tracing_on"
    cat "$inst/trace" >"$1"
    lost=$(awk '$1 == "overrun:" { n += $2 } END { print n + 0 }' "$inst"/per_cpu/cpu*/stats)
    ((lost == 0)) || sched_trace_note="the scheduler trace lost $lost events (buffer full)"
    sched_trace_cleanup
}

sched_trace_cleanup() {
    [[ -n $sched_trace_inst ]] || return 0
    rmdir "$sched_trace_inst" 2>/dev/null || true
    sched_trace_inst=""
}
