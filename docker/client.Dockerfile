# An SMP client in a container: smpmgr (the version `make test` pins), and the health probe.
#   docker build -f docker/client.Dockerfile -t smpsim-client .
#   docker run --rm --network container:<board> smpsim-client --ip 127.0.0.1 os echo hello
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS python
# Unpinned on purpose, as in docker/Dockerfile: bookworm's python3 is 3.11 with security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

FROM python AS build
ARG SMPMGR=0.19.1
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/smpmgr \
 && /opt/smpmgr/bin/pip install --no-cache-dir "smpmgr==${SMPMGR}" \
 && /opt/smpmgr/bin/pip uninstall --yes pip setuptools

FROM python
COPY --from=build /opt/smpmgr /opt/smpmgr
COPY docker/smp_probe.py /usr/local/bin/smp-probe
ENV PATH=/opt/smpmgr/bin:$PATH
USER 10002:10002
ENTRYPOINT ["smpmgr"]
