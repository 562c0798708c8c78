#!/usr/bin/env bash
# A lean chat-node (CHAT_STATIC_DEPS) needs glibc's libc and its loader, nothing else: every
# shared library it names is mapped by every node, idle or not (libm alone was 0.3 MB of RSS,
# pulled in by std::to_chars(double) though nothing called into it).
set -euo pipefail
bin=$1
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
for lib in $needed; do
    case $lib in
        libc.so.* | ld-linux*.so.*) ;;
        *) echo "FAIL: chat-node needs $lib (readelf -d: $needed)" >&2; exit 1 ;;
    esac
done
echo "ok: $needed"
