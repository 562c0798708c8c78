# The chat-node image: every process type of the Procfile (the C++ web, moebi
# and kate, the Elixir alex) runs from it. Heroku builds it from heroku.yml
# (`heroku stack:set container`); elsewhere:
#
#   docker build -t chat-node .          # or: podman build -t chat-node .
#   docker run -e ERLANG_COOKIE=... -e PORT=5000 -p 5000:5000 chat-node
#
# Three stages: the toolchain (Debian's compilers and -dev packages, Erlang
# and Elixir), then chat-node and elixir_peer built in stages of their own
# (a change to one does not rebuild the other), then the runtime, which holds
# only what the four process types run: chat-node (every dependency but
# glibc linked in), Erlang/Elixir with mix (alex runs `mix run`) and epmd,
# and the compiled peer. No compiler, no -dev package; a non-root user.
# docs/deploy.md describes the image; test/container/ builds and runs it.

ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS toolchain
# The packages of scripts/install-deps that building needs (the ones for
# tests, fuzzing and the browser are left out).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        g++ make cmake pkg-config \
        erlang-dev elixir \
        libuv1-dev libspdlog-dev libboost-program-options-dev libssl-dev libhttp-parser-dev \
 && rm -rf /var/lib/apt/lists/*

FROM toolchain AS chat-node
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include/
COPY src src/
COPY bench bench/
# Release, without the tests; CHAT_STATIC_DEPS (on by default) links every
# dependency into the binaries, glibc included (static-pie), so the runtime
# needs no -dev or lib package for them. The check fails the build if one ever
# names a shared library beyond glibc's.
# chat-node-tls (the same program with OpenSSL, which chat-node runs in its place
# for TLS distribution and tls-cert) is built and checked alike.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build --target chat-node chat-node-tls -j"$(nproc)" \
 && strip build/chat-node build/chat-node-tls \
 && for b in build/chat-node build/chat-node-tls; do \
        if readelf -d "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' \
               | grep -vE '^(ld-linux.*|lib(c|m|dl|rt|pthread|resolv)\.so.*)$' ; then \
            echo "$b links a shared library the runtime stage does not install" >&2; exit 1; \
        fi; \
    done

FROM toolchain AS elixir-peer
WORKDIR /src/elixir_peer
COPY elixir_peer/mix.exs elixir_peer/.formatter.exs ./
COPY elixir_peer/config config/
COPY elixir_peer/lib lib/
# No dependencies: mix compiles offline, without Hex.
RUN MIX_ENV=prod HEX_OFFLINE=1 MIX_HOME=/tmp/mix mix compile

FROM ${DEBIAN_IMAGE}
# elixir brings erlang-base (erl, epmd) and what mix needs; nothing else.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends elixir \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
RUN useradd --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin chat
WORKDIR /app
# Owned by root and read-only to the app user: nothing of the app is written
# at run time (mix finds the peer compiled and up to date).
COPY --from=elixir-peer /src/elixir_peer elixir_peer/
COPY --from=chat-node /src/build/chat-node /src/build/chat-node-tls build/
COPY deploy/dyno deploy/healthcheck bin/
# The Procfile is read at run time: DNS discovery queries <type>.<app> for
# each of its process types. heroku.yml's run: section repeats it.
COPY Procfile heroku.yml ./
ENV HOME=/app LANG=C.UTF-8 MIX_ENV=prod
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["/app/bin/healthcheck"]
CMD ["/app/bin/dyno", "web"]
