# Local stand-in for the public `rust:<ver>-bookworm` image, for machines with
# no container registry. Built by scripts/docker-base-images; not for users.
#
# Build context: a directory holding `toolchain/` (bin/cargo, bin/rustc, lib/),
# a minimal copy of the host's pinned rustup toolchain.
ARG BASE_IMAGE=protogate-local/debian:bookworm
FROM ${BASE_IMAGE}
ARG RUST_VERSION
# gcc drives the link step (rustc calls `cc`); libc6-dev provides crt*.o and libc.
# Unpinned on purpose: a local stand-in tracks bookworm like the public image.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rustup/toolchains/${RUST_VERSION}-x86_64-unknown-linux-gnu
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=${RUST_VERSION} \
    CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt
# Same layout and variables as the official image (no rustup proxy: plain
# cargo/rustc, so a rust-toolchain.toml in a build context is ignored).
RUN mkdir -p /usr/local/cargo/bin \
 && ln -s /usr/local/rustup/toolchains/${RUST_VERSION}-x86_64-unknown-linux-gnu/bin/cargo /usr/local/cargo/bin/cargo \
 && ln -s /usr/local/rustup/toolchains/${RUST_VERSION}-x86_64-unknown-linux-gnu/bin/rustc /usr/local/cargo/bin/rustc \
 && chmod -R a+rX /usr/local/rustup /usr/local/cargo \
 && cargo --version && rustc --version

