# A node's turns in a packet capture (tcpdump -n -tt on stdin): for each answer the node sends,
# the time from the client's last data packet before it to the answer's first packet. A BEAM
# may spread one answer over several packets; the turn ends at the first. Turns over 10 ms are
# a connection's set-up, not a call: left out.
#
#   tcpdump -r CAP -n -tt | awk -v blocks="$blocks" -f bench/turns.awk
#
# blocks: one block a line, in the order they ran, "KEY PORT T0_NS T1_NS CALLS": the node's
# TCP port and the block's wall-clock bounds (ns since the epoch, as tcpdump -tt stamps
# packets). Prints, per block: KEY SEGMENTS_PER_CALL TURNS_US_PER_CALL, the segments being the
# client's packets with data. Used by scripts/lib/bench-gaps.sh and bench/wire-turns.sh.
#
# With -v calls_file=FILE (bench/gap_client.exs's GAP_CALLS: "START_NS DT_NS [WAIT_NS]" a call, in
# the order they ran), each line goes on with CLIENT_P50_US CLIENT_P99_US: the median and the 99th
# percentile over the block's calls of the call's round trip less the node's turns within it,
# the round trip a node answering in no time would have given that call. Then WAITED_P50_US
# WAITED_P99_US, the same with the node's wait for a CPU during the call put back (at most its
# turns; bench/sched-waits.awk): the round trip of a node whose turns were nothing but that wait.
# Then TAIL_RT_US TAIL_TURNS_US TAIL_WAIT_US: over the block's slowest 1% of calls (those at
# its p99 and above), the mean round trip, the node's turns in it and, of those, its wait for a
# CPU. A dash where the block's calls came without a wait.
function ns_to_s(ns) { return (substr(ns, 1, length(ns) - 9) "." substr(ns, length(ns) - 8)) + 0 }
function sort(a, lo, hi,    i, j, p, t) { # quicksort of a[lo..hi], ascending
    while (lo < hi) {
        p = a[int((lo + hi) / 2)]; i = lo; j = hi
        while (i <= j) {
            while (a[i] < p) i++
            while (a[j] > p) j--
            if (i <= j) { t = a[i]; a[i] = a[j]; a[j] = t; i++; j-- }
        }
        if (j - lo < hi - i) { sort(a, lo, j); lo = i } else { sort(a, i, hi); hi = j }
    }
}
function percentiles(a, n,    p99) { # prints " P50 P99" of a[0..n-1], or " - -"
    if (n == 0) { printf " - -"; return }
    sort(a, 0, n - 1)
    p99 = int(n * 99 / 100); if (p99 > n - 1) p99 = n - 1
    printf " %.1f %.1f", a[int(n * 50 / 100)], a[p99]
}
BEGIN {
    n = split(blocks, line, "\n")
    for (i = 1; i <= n; i++) {
        if (split(line[i], f, " ") < 5) continue
        nb++; key[nb] = f[1]; port[nb] = f[2]; calls[nb] = f[5]
        t0[nb] = ns_to_s(f[3]); t1[nb] = ns_to_s(f[4])
    }
    b = 1
    if (calls_file != "") {
        cb = 1
        while ((getline l < calls_file) > 0) {
            if (split(l, f, " ") < 2) continue
            s0 = ns_to_s(f[1])
            while (cb <= nb && s0 > t1[cb]) cb++
            if (cb > nb || s0 < t0[cb]) continue
            nc++; cs[nc] = s0; ce[nc] = s0 + f[2] / 1e9; cdt[nc] = f[2] / 1e3; cblk[nc] = cb
            cwait[nc] = (f[3] == "") ? -1 : f[3] / 1e3
        }
        close(calls_file)
        ci = 1
    }
}
/ length [1-9]/ {
    t = $1 + 0
    while (b <= nb && t > t1[b]) b++
    if (b > nb) exit
    if (t < t0[b]) next
    if (b != cur) { cur = b; last = 0 }
    split($3, s, "."); split($5, d, "."); sub(":", "", d[5])
    if (d[5] == port[b]) { segs[b]++; last = t }
    else if (s[5] == port[b]) {
        if (last > 0 && t - last < 0.01) {
            turns[b] += (t - last) * 1e6
            while (ci <= nc && t > ce[ci]) ci++
            if (ci <= nc && t >= cs[ci] && cblk[ci] == b) cturns[ci] += (t - last) * 1e6
        }
        last = 0
    }
}
END {
    for (i = 1; i <= nb; i++) {
        printf "%s %.2f %.1f", key[i], segs[i] / calls[i], turns[i] / calls[i]
        if (calls_file != "") {
            n = 0; waited = 1
            for (j = 1; j <= nc; j++) {
                if (cblk[j] != i) continue
                part[n] = cdt[j] - cturns[j]
                if (cwait[j] < 0) waited = 0
                else ownwait[n] = (cwait[j] < cturns[j] ? cwait[j] : cturns[j])
                with[n] = part[n] + ownwait[n]
                rt[n] = cdt[j]; rts[n] = cdt[j]; tu[n] = cturns[j]
                n++
            }
            percentiles(part, n)
            if (waited) percentiles(with, n); else percentiles(with, 0)
            tail(n, waited)
            split("", part); split("", with); split("", rt); split("", rts); split("", tu); split("", ownwait)
        }
        printf "\n"
    }
}
function tail(n, waited,    cut, j, m, srt, stu, swa) { # prints " RT TURNS WAIT" of the slowest 1%
    if (n == 0) { printf " - - -"; return }
    sort(rts, 0, n - 1)
    cut = rts[int(n * 99 / 100) < n ? int(n * 99 / 100) : n - 1]
    for (j = 0; j < n; j++) if (rt[j] >= cut) { m++; srt += rt[j]; stu += tu[j]; swa += ownwait[j] }
    printf " %.1f %.1f", srt / m, stu / m
    if (waited) printf " %.1f", swa / m; else printf " -"
}
