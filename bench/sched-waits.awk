# How long a node waited for a CPU during each call: the time some thread of it was runnable
# and not running, from the kernel's scheduler trace (tracefs text, trace_clock mono, events
# sched_waking and sched_switch of the nodes' threads).
#
#   awk -v offset_ns=N -v calls_file=FILE -v blocks_file=FILE -f bench/sched-waits.awk TRACE
#
# offset_ns: CLOCK_REALTIME less CLOCK_MONOTONIC (ping-pong clock). calls_file: one call a line,
# "START_NS DT_NS" on the wall clock, in the order they ran (bench/gap_client.exs's GAP_CALLS).
# blocks_file: one block of calls a line, in the order they ran, "T0_NS T1_NS TID,TID,...": its
# wall-clock bounds and the threads of the node it called. Prints every call's line with a
# third field, WAIT_NS: the part of the call during which at least one of those threads was
# waiting for a CPU (0 outside every block).
#
# A thread waits from when another thread starts to wake it (sched_waking, on the waker's CPU)
# or from when it is preempted (switched out still runnable, prev_state R), to when it is
# switched in. sched_wakeup would start it too late: with the woken thread's CPU idle, the
# kernel emits it there once that CPU has been told, and here that CPU is a vCPU the host must
# wake first. A C++ node woken after a 0.2 ms pause waited 44 us (p50) from sched_waking and
# 1 us from sched_wakeup; schedstat's run_delay gave 3-7 us a call.
function us_of_ns(ns) { return (substr(ns, 1, length(ns) - 3) + 0) + substr(ns, length(ns) - 2) / 1000 }
function field(name,    i) { # the value of NAME=VALUE among the event's fields
    for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2)
    return ""
}
function wait_on(tid, t,    s) {
    if (waiting[tid]) return
    waiting[tid] = 1; s = set_of[tid]
    if (nwait[s]++ == 0) since[s] = t
}
function wait_off(tid, t,    s) {
    if (!waiting[tid]) return
    waiting[tid] = 0; s = set_of[tid]
    if (--nwait[s] == 0) { n = ++nint[s]; ws[s, n] = since[s]; we[s, n] = t }
}
BEGIN {
    offset_us = us_of_ns(offset_ns)
    while ((getline l < blocks_file) > 0) {
        if (split(l, f, " ") < 3) continue
        nb++; b0[nb] = us_of_ns(f[1]); b1[nb] = us_of_ns(f[2])
        if (!(f[3] in set_id)) set_id[f[3]] = ++nsets
        bset[nb] = set_id[f[3]]
        nt = split(f[3], tids, ",")
        for (i = 1; i <= nt; i++) set_of[tids[i]] = set_id[f[3]]
    }
    close(blocks_file)
}
/^#/ { next }
{
    t = -1
    for (i = 1; i < NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { t = substr($i, 1, length($i) - 1) * 1e6 + offset_us; break }
    if (t < 0) next
    ev = $(i + 1)
    if (ev == "sched_waking:") {
        p = field("pid")
        if ((p in set_of) && !running[p]) wait_on(p, t)
    } else if (ev == "sched_switch:") {
        p = field("prev_pid")
        if (p in set_of) {
            running[p] = 0
            if (field("prev_state") ~ /^R/) wait_on(p, t)
        }
        p = field("next_pid")
        if (p in set_of) { running[p] = 1; wait_off(p, t) }
    }
}
END {
    b = 1
    while ((getline l < calls_file) > 0) {
        if (split(l, f, " ") < 2) continue
        cs = us_of_ns(f[1]); ce = cs + f[2] / 1000
        while (b <= nb && cs > b1[b]) b++
        w = 0
        if (b <= nb && cs >= b0[b]) {
            s = bset[b]
            while (next_int[s] + 1 <= nint[s] && we[s, next_int[s] + 1] <= cs) next_int[s]++
            for (k = next_int[s] + 1; k <= nint[s] && ws[s, k] < ce; k++)
                w += (we[s, k] < ce ? we[s, k] : ce) - (ws[s, k] > cs ? ws[s, k] : cs)
        }
        printf "%s %s %.0f\n", f[1], f[2], w * 1000
    }
}
