# Local stand-in for the public `python:3.11-slim-bookworm` image, for machines
# with no container registry. Built by scripts/docker-base-images; not for users.
# Debian bookworm ships CPython 3.11, the same minor version as the public image.
ARG BASE_IMAGE=protogate-local/debian:bookworm
FROM ${BASE_IMAGE}
# Unpinned on purpose: a local stand-in tracks bookworm like the public image.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python-is-python3 \
 && rm -rf /var/lib/apt/lists/* \
 && python --version
# pip would otherwise use its bundled certifi and ignore the CAs this image
# inherited from the host (see scripts/docker-base-images).
ENV LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
