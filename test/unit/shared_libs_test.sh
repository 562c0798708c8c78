#!/usr/bin/env bash
# A lean chat-node or chat-node-tls (CHAT_STATIC_DEPS) names no shared library when it is linked static-pie
# ($2 = none), and glibc's libc and its loader only where the toolchain cannot ($2 = libc):
# every shared library it names is mapped by every node, idle or not (libm alone was 0.3 MB of
# RSS, pulled in by std::to_chars(double) though nothing called into it).
set -euo pipefail
bin=$1 allowed=${2:-libc}
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
for lib in $needed; do
    case $allowed:$lib in
        libc:libc.so.* | libc:ld-linux*.so.*) ;;
        *) echo "FAIL: $bin needs $lib (readelf -d: $needed; allowed: $allowed)" >&2; exit 1 ;;
    esac
done
if [[ $allowed == none ]] && readelf -l "$bin" | grep -q INTERP; then
    echo "FAIL: $bin asks for a program interpreter (readelf -l)" >&2
    exit 1
fi
echo "ok: ${needed:-no shared libraries}"
