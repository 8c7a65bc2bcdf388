# protogate: gRPC -> HTTP/JSON gateway.
#
#   docker build -t protogate .
#   docker run --rm --network my-net -p 8080:8080 \
#       -e PROTOGATE_UPSTREAM=http://my-grpc-service:50051 protogate
#
# The image ships config/ as /etc/protogate (mount your own over it, read-only);
# PROTOGATE_LISTEN / PROTOGATE_UPSTREAM override its listen address and upstream.
#
# The builder and the runtime must be the same Debian release (bookworm here),
# or the binary may need a newer glibc than the runtime has. Both images are
# build args, so a mirror or a locally built base can stand in for them.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
LABEL org.protogate.build-stage=builder
WORKDIR /build
# Writes a `fn main() {}` stub for every Cargo target the manifest names
# (bins, benches, tests, examples, lib) whose file is missing, so cargo can
# resolve and build the dependency graph without the real sources.
# hadolint ignore=SC2016
RUN printf '%s\n' \
  '#!/bin/sh' \
  'set -eu' \
  'awk '"'"'function flush() { if (kind != "") { p = path; if (p == "") { if (kind == "lib") p = "src/lib.rs"; else if (kind == "bin") p = "src/bin/" name ".rs"; else if (kind == "bench") p = "benches/" name ".rs"; else if (kind == "test") p = "tests/" name ".rs"; else if (kind == "example") p = "examples/" name ".rs" } print p } kind = ""; name = ""; path = "" }' \
  '/^[[:space:]]*\[/ { flush(); if ($0 ~ /^[[:space:]]*\[\[(bin|bench|test|example)\]\]/) { kind = $0; gsub(/[^a-z]/, "", kind) } else if ($0 ~ /^[[:space:]]*\[lib\]/) kind = "lib"; next }' \
  'kind != "" && /^[[:space:]]*name[[:space:]]*=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); name = v }' \
  'kind != "" && /^[[:space:]]*path[[:space:]]*=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); path = v }' \
  'END { flush() }'"'"' Cargo.toml | while read -r p; do' \
  '  [ -n "$p" ] && [ ! -e "$p" ] || continue' \
  '  mkdir -p "$(dirname "$p")" && echo "fn main() {}" > "$p"' \
  'done' \
  > /usr/local/bin/cargo-stub-targets \
 && chmod +x /usr/local/bin/cargo-stub-targets

# 1. Dependencies only (this layer is rebuilt only when Cargo.toml or
#    Cargo.lock change): stub sources and a no-op build script, which still
#    makes cargo compile every [build-dependencies] crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs && : > src/lib.rs && echo 'fn main() {}' > build.rs \
 && cargo-stub-targets \
 && cargo build --release --locked --bin protogate \
 && rm -rf src build.rs benches tests examples \
      target/release/protogate* target/release/deps/protogate-* target/release/deps/libprotogate-* \
      target/release/.fingerprint/protogate-* target/release/build/protogate-*

# 2. The crate itself. build.rs compiles proto/ with protox (no protoc).
COPY build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo-stub-targets \
 && find build.rs proto src -exec touch {} + \
 && cargo build --release --locked --bin protogate \
 && cp target/release/protogate /usr/local/bin/protogate

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 protogate \
 && useradd --system --uid 10001 --gid protogate --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin protogate
COPY --from=builder /usr/local/bin/protogate /usr/local/bin/protogate
# Default config; compose (and you) mount your own over /etc/protogate.
COPY config/ /etc/protogate/
USER 10001:10001
EXPOSE 8080
# The image has no curl: the binary probes itself. Assumes the default port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/protogate", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
# Exec form: protogate is PID 1 and gets SIGTERM itself (graceful drain).
ENTRYPOINT ["/usr/local/bin/protogate"]
CMD ["--config", "/etc/protogate/protogate.toml"]
