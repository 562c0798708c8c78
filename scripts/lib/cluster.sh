# shellcheck shell=bash
# Shell helpers shared by scripts/demo and test/integration/run.sh.
#
# Source this file; it defines functions only. Every process that one of our
# scripts starts carries CHAT_RUN_MARK=<unique value> in its environment, so
# cleanup can find all of them again, including the ones that detached into
# their own session (the Erlang VM gives every port program a new session, so
# process-group kills are not enough).

# Print a random lowercase hex string of $1 bytes (default 12).
chat_random_hex() {
    od -An -N"${1:-12}" -tx1 /dev/urandom | tr -d ' \n'
}

# Print an awk function, hex(s): the value of a hexadecimal string (with or without 0x), for
# mawk too (no strtonum). Put it before an awk program: awk "$(chat_awk_hex)"'...'.
chat_awk_hex() {
    printf '%s' 'function hex(s,  i, v) { s = tolower(s); sub(/^0x/, "", s); v = 0
    for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return v }'
}

# Print the pids of every live process whose environment holds
# CHAT_RUN_MARK=$1, except the calling shell itself.
chat_marked_pids() {
    local mark="CHAT_RUN_MARK=$1" dir pid kv
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [[ $pid == "$$" || $pid == "${BASHPID:-}" ]] && continue
        # Reading environ is done by bash itself: no helper process is
        # spawned (it would inherit the mark and confuse the scan).
        while IFS= read -r -d '' kv; do
            if [[ $kv == "$mark" ]]; then
                echo "$pid"
                break
            fi
        done 2>/dev/null <"$dir/environ" || true
    done
}

# Terminate every process carrying mark $1: SIGTERM, up to ${2:-5} seconds of
# grace, then SIGKILL for whatever is left.
chat_kill_marked() {
    local mark=$1 grace=${2:-5} pids tries
    pids=$(chat_marked_pids "$mark")
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -TERM $pids 2>/dev/null || true
    tries=$((grace * 10))
    while ((tries-- > 0)); do
        pids=$(chat_marked_pids "$mark")
        [[ -z $pids ]] && return 0
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    return 0
}

# Start a private EPMD listening on 127.0.0.1 at a free TCP port, as a child of
# the calling shell. On success sets CHAT_EPMD_PORT and CHAT_EPMD_PID.
# $1: file that receives epmd's own output (default /dev/null).
chat_start_epmd() {
    local log=${1:-/dev/null} attempt port pid polls
    command -v epmd >/dev/null || {
        echo "error: epmd not found (run scripts/install-deps)" >&2
        return 1
    }
    for attempt in $(seq 1 40); do
        # 20000..31999: below Linux's default ephemeral range, so outgoing
        # connections do not compete for these ports.
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        if [[ -n $(ss -Htln "sport = :$port" 2>/dev/null) ]]; then
            continue
        fi
        ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$port" >>"$log" 2>&1 &
        pid=$!
        polls=100
        while ((polls-- > 0)); do
            kill -0 "$pid" 2>/dev/null || break # exited: port was taken
            if epmd -port "$port" -names >/dev/null 2>&1; then
                # shellcheck disable=SC2034 # used by the sourcing script
                CHAT_EPMD_PORT=$port
                # shellcheck disable=SC2034
                CHAT_EPMD_PID=$pid
                return 0
            fi
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "note: epmd attempt $attempt on port $port failed, retrying" >&2
    done
    echo "error: could not start a private epmd on any port" >&2
    return 1
}

# Wait until file $1 contains a line exactly equal to $2, for at most $3
# seconds (default 20). Returns non-zero on timeout.
chat_wait_line() {
    local file=$1 line=$2 polls=$((${3:-20} * 20))
    while ((polls-- > 0)); do
        if [[ -f $file ]] && grep -qxF -- "$line" "$file"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# For a failed run: the last lines of every non-empty log file given, then a closing line
# naming LABEL.
chat_show_logs() {
    local label=$1 f
    shift
    for f in "$@"; do
        [[ -s $f ]] || continue
        echo "----- $(basename "$f") (last 60 lines) -----"
        tail -n 60 "$f"
    done
    echo "----- end of node logs ($label) -----"
}

# Turns the usual terminating signals into an exit with the shell's status for them, so that
# an EXIT trap (the cleanup) runs however the script is stopped.
chat_trap_signals() {
    trap 'exit 143' TERM
    trap 'exit 130' INT
    trap 'exit 129' HUP
    trap 'exit 141' PIPE
}

# The usual start of a test script that runs nodes: a run mark that everything it starts
# carries, a scratch directory ($CHAT_TEST_TMP) that sanitizer reports go to, a private EPMD
# (exported as ERL_EPMD_PORT), and chat_test_end on exit. LABEL names the test in the mark,
# the directory and the logs of a failed run.
chat_test_begin() {
    CHAT_TEST_LABEL=$1
    CHAT_RUN_MARK=$1-$$-$(chat_random_hex 6)
    export CHAT_RUN_MARK
    CHAT_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/chat-$1.XXXXXX")
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$CHAT_TEST_TMP/sanitizer"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$CHAT_TEST_TMP/sanitizer"
    trap chat_test_end EXIT
    chat_trap_signals
    chat_start_epmd "$CHAT_TEST_TMP/epmd.log"
    export ERL_EPMD_PORT=$CHAT_EPMD_PORT
}

# Stops everything that carries the run mark; a sanitizer report fails the run; a failed
# run shows its logs (*.log in the scratch directory); the directory goes.
chat_test_end() {
    local rc=$? report
    trap - EXIT INT TERM HUP
    set +e
    chat_kill_marked "$CHAT_RUN_MARK" 5
    wait 2>/dev/null
    for report in "$CHAT_TEST_TMP"/sanitizer.*; do
        [[ -s $report ]] || continue
        echo "----- sanitizer report -----"
        cat "$report"
        rc=1
    done
    ((rc == 0)) || chat_show_logs "$CHAT_TEST_LABEL test, exit status $rc" "$CHAT_TEST_TMP"/*.log
    rm -rf "$CHAT_TEST_TMP"
    exit "$rc"
}
