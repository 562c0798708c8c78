# How long one thread waited, runnable, for a CPU during each call, from the kernel's scheduler
# trace (tracefs text, trace_clock mono, events sched_wakeup and sched_switch of that thread).
#
#   awk -v tid=TID -v offset_ns=N -v calls_file=FILE -f bench/sched-waits.awk TRACE
#
# offset_ns: CLOCK_REALTIME less CLOCK_MONOTONIC (ping-pong clock). calls_file: one call a line,
# "START_NS DT_NS" on the wall clock (bench/gap_client.exs's GAP_CALLS). Prints every call's
# line with a third field, WAIT_NS: the part of the call the thread spent runnable and not
# running. A wait starts when the thread is woken (sched_wakeup) or preempted (switched out
# still runnable, prev_state R) and ends when it is switched in. Unlike schedstat's run_delay,
# this sees the whole of a wake-up here (the host waking an idle vCPU included: a C++ node woken
# after a 0.2 ms pause waited ~38 us by this trace, 3-7 us by schedstat).
# With -v waits_out=FILE, also writes each wait as "START_US END_US" (wall clock) for a look.
function us_of_ns(ns) { return (substr(ns, 1, length(ns) - 3) + 0) + substr(ns, length(ns) - 2) / 1000 }
function field(name,    i) { # the value of NAME=VALUE among the event's fields
    for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2)
    return ""
}
BEGIN { offset_us = us_of_ns(offset_ns); since = -1 }
/^#/ { next }
{
    t = -1
    for (i = 1; i < NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { t = substr($i, 1, length($i) - 1) * 1e6 + offset_us; break }
    if (t < 0) next
    ev = $(i + 1)
    if (ev == "sched_wakeup:") {
        if (field("pid") == tid && since < 0) since = t
    } else if (ev == "sched_switch:") {
        if (field("next_pid") == tid) {
            if (since >= 0) { nw++; ws[nw] = since; we[nw] = t }
            since = -1
        } else if (field("prev_pid") == tid) {
            since = (field("prev_state") ~ /^R/) ? t : -1
        }
    }
}
END {
    if (waits_out != "") for (j = 1; j <= nw; j++) printf "%.1f %.1f\n", ws[j], we[j] > waits_out
    j = 1
    while ((getline l < calls_file) > 0) {
        if (split(l, f, " ") < 2) continue
        cs = us_of_ns(f[1]); ce = cs + f[2] / 1000
        while (j <= nw && we[j] <= cs) j++
        w = 0
        for (k = j; k <= nw && ws[k] < ce; k++) w += (we[k] < ce ? we[k] : ce) - (ws[k] > cs ? ws[k] : cs)
        printf "%s %s %.0f\n", f[1], f[2], w * 1000
    }
}
