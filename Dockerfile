# syntax=docker/dockerfile:1.7
# CopyTrader worker image: `docker build -t copytrader .`
#   web:     vendors the dashboard's browser libraries from the npm registry (Node stage)
#   builder: builds wheels of the project and every dependency into /wheels (build tools live here only)
#   runtime: python:3.11-slim, installs those wheels offline, runs as a non-root user
# The same image runs every role; COPYTRADER_ROLES picks them (see helm/copytrader/values.yaml).

ARG PYTHON_VERSION=3.11

FROM node:20-slim AS web
WORKDIR /src
COPY scripts/vendor-web.sh scripts/vendor-web.sh
# Writes /src/web/static/vendor: lightweight-charts and socket.io-client, versions pinned there.
RUN COPYTRADER_WEB_NPM=/tmp/npm bash scripts/vendor-web.sh


FROM python:${PYTHON_VERSION}-slim AS builder
# Extras baked into the image (setup.cfg [options.extras_require]); PostgreSQL is the production store.
ARG EXTRAS=postgres
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# A compiler for any dependency without a wheel for this platform (quickfix is a C++ source build).
# Debian package versions are not pinned: the slim base image tag already fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The browser libraries go into the wheel with the dashboard (setup.cfg package_data).
COPY --from=web /src/web/static/vendor web/static/vendor
# requirements.txt names every wheel file: the runtime installs exactly this resolved set.
RUN pip wheel --wheel-dir /wheels ".[${EXTRAS}]" \
 && printf '%s\n' /wheels/*.whl > /wheels/requirements.txt


FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="copytrader" \
      org.opencontainers.image.description="Copy a leader account's trades to many follower accounts through Kafka" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    COPYTRADER_WEB_HOST=0.0.0.0 \
    COPYTRADER_WEB_PORT=6066 \
    COPYTRADER_DATA_DIR=/var/lib/copytrader
# Wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --requirement /wheels/requirements.txt \
 && pip check \
 && groupadd --system --gid 10001 copytrader \
 && useradd --system --uid 10001 --gid copytrader --home-dir /var/lib/copytrader --shell /usr/sbin/nologin copytrader \
 && mkdir -p /var/lib/copytrader \
 && chown copytrader:copytrader /var/lib/copytrader
WORKDIR /var/lib/copytrader
USER 10001:10001
EXPOSE 6066
# curl is not in slim images; urlopen raises (exit 1) on refusal, timeout or a non-2xx answer.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('COPYTRADER_WEB_PORT', '6066') + '/healthz', timeout=3)"]
ENTRYPOINT ["copytrader"]
CMD ["worker", "-l", "info"]
