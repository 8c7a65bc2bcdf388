# protogate: gRPC -> HTTP/JSON gateway.
#
#   docker build -t protogate .
#   docker run --rm --network my-net -p 8080:8080 \
#       -e PROTOGATE_UPSTREAM=http://my-grpc-service:50051 protogate
#
# The image ships config/ as /etc/protogate (mount your own over it, read-only);
# PROTOGATE_LISTEN / PROTOGATE_UPSTREAM override its listen address and upstream.
#
# Stages:
#   chef     the Rust image plus cargo-chef (pinned)
#   planner  reduces the crate to recipe.json: manifests and lockfile, no code
#   builder  builds the dependencies from the recipe (a layer that a code-only
#            change leaves cached), then the gateway; gathers the runtime files
#   (final)  FROM scratch: the binary, the shared libraries ldd lists for it,
#            CA certificates, passwd/group for uid 10001, the config. No shell.
#
# Builds with the legacy builder (Docker 20.10, docker-compose 1.29) and with
# BuildKit alike: no `RUN --mount`, no heredocs. RUST_IMAGE is a build arg, so a
# mirror or a locally built base (scripts/docker-base-images) can stand in.
#
# CARGO_PROFILE picks the Cargo profile: `release` (the default: fat LTO, the image to
# ship, the one bench/ measures) or `quick` (no cross-crate LTO: a code-only change
# rebuilds in under a minute on 2 cores, for a build-and-try loop; a 3.6 MB bigger
# image and about 15% more instructions per request, docker/NOTES.md has the figures).
ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${RUST_IMAGE} AS chef
LABEL org.protogate.build-stage=builder
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
 && rm -rf "${CARGO_HOME:-/usr/local/cargo}/registry"
WORKDIR /build

# Only what cargo needs to see the crate's shape: the manifests and the targets'
# entry files. So a change to any other source file leaves this stage cached, and
# the recipe lists only the tests that Cargo.toml names in [[test]] (cargo rejects
# a manifest whose named targets are missing): adding a test file does not
# rebuild the dependencies. Name a new [[test]] here too.
FROM chef AS planner
COPY Cargo.toml Cargo.lock build.rs ./
COPY src/main.rs src/lib.rs ./src/
COPY tests/streaming.rs tests/protocol_grpc_streams.rs tests/json_mapping.rs tests/json_differential.rs tests/json_edges.rs tests/interop.rs tests/showcase.rs tests/otlp.rs tests/panic.rs tests/counts.rs tests/shape_output.rs tests/shape_errors.rs tests/shape_fields.rs tests/shape_patch.rs tests/shape_query.rs ./tests/
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG CARGO_PROFILE=release
# 1. Dependencies, [build-dependencies] included. recipe.json changes only when
#    Cargo.toml, Cargo.lock or the set of targets do, so this layer survives a
#    code change. cook leaves a stub source for every target of the recipe in
#    /build: the [[test]] stubs are what lets step 2 build without tests/.
COPY --from=planner /build/recipe.json recipe.json
RUN cargo chef cook --profile "${CARGO_PROFILE}" --locked --bin protogate --recipe-path recipe.json

# 2. The gateway. build.rs compiles proto/ with protox (no protoc).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --profile "${CARGO_PROFILE}" --locked --bin protogate \
 && mkdir -p /rootfs/usr/local/bin \
 && cp "target/${CARGO_PROFILE}/protogate" /rootfs/usr/local/bin/protogate

# 3. The rest of the runtime's filesystem, in /rootfs: every shared library ldd
#    lists for the binary (the loader too), dereferenced and at the same
#    paths; the CA bundle (for https:// upstreams); the user and group 10001;
#    hosts from /etc/hosts before DNS, as on Debian. Then the binary must run
#    inside it (chroot), so a missing library fails the build, not the pod.
#    (Library paths hold no spaces, so the word-split loop is fine.)
# hadolint ignore=SC2013
RUN ldd /rootfs/usr/local/bin/protogate > /tmp/ldd.txt \
 && mkdir -p /rootfs/etc/ssl/certs \
 && for lib in $(grep -o '/[^ ]*' /tmp/ldd.txt); do \
      cp --parents --dereference "$lib" /rootfs/; \
    done \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'protogate:x:10001:10001:protogate:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'protogate:x:10001:' > /rootfs/etc/group \
 && echo 'hosts: files dns' > /rootfs/etc/nsswitch.conf \
 && chroot --userspec=10001:10001 /rootfs /usr/local/bin/protogate --version

# The settings come before the files: the legacy builder spends about a second
# on each instruction it runs, and these stay cached when only the binary changed.
FROM scratch
USER 10001:10001
EXPOSE 8080
# There is no shell and no curl: the binary probes itself. Assumes the default port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/protogate", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
# Exec form: protogate is PID 1 and gets SIGTERM itself (graceful drain).
ENTRYPOINT ["/usr/local/bin/protogate"]
CMD ["--config", "/etc/protogate/protogate.toml"]
# Default config; compose (and you) mount your own over /etc/protogate.
COPY config/ /etc/protogate/
COPY --from=builder /rootfs/ /
