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
BEGIN {
    n = split(blocks, line, "\n")
    for (i = 1; i <= n; i++) {
        if (split(line[i], f, " ") < 5) continue
        nb++; key[nb] = f[1]; port[nb] = f[2]; calls[nb] = f[5]
        t0[nb] = (substr(f[3], 1, length(f[3]) - 9) "." substr(f[3], length(f[3]) - 8)) + 0
        t1[nb] = (substr(f[4], 1, length(f[4]) - 9) "." substr(f[4], length(f[4]) - 8)) + 0
    }
    b = 1
}
/ length [1-9]/ {
    t = $1 + 0
    while (b <= nb && t > t1[b]) b++
    if (b > nb) exit
    if (t < t0[b]) next
    if (b != cur) { cur = b; last = 0 }
    split($3, s, "."); split($5, d, "."); sub(":", "", d[5])
    if (d[5] == port[b]) { segs[b]++; last = t }
    else if (s[5] == port[b]) { if (last > 0 && t - last < 0.01) turns[b] += (t - last) * 1e6; last = 0 }
}
END { for (i = 1; i <= nb; i++) printf "%s %.2f %.1f\n", key[i], segs[i] / calls[i], turns[i] / calls[i] }
