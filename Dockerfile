# syntax=docker/dockerfile:1
# Multi-stage build. Every build step is a Makefile target that CI also runs
# (`make assets`, `make dist`; tests/test_packaging.py checks the wheel, the lock and
# this file), so nothing here is exercised only by Docker.
#
#   docker build -t kombo-gateway .
#   docker run -e KOMBO_API_KEY=... -p 8000:8000 kombo-gateway
#   docker run -e GATEWAY_ALLOW_SANDBOX=true -p 8000:8000 kombo-gateway   # demo on the sandbox

FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# GraphiQL's bundles from the npm registry first: they need only the script, so a
# change to the gateway's code reuses this layer instead of running npm again.
COPY Makefile ./
COPY scripts ./scripts
RUN make assets
# Then a wheel that carries them (`make dist` finds the assets up to date).
COPY pyproject.toml README.md schema.graphql ./
COPY gateway ./gateway
RUN make dist PYTHON=python3

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Production defaults: listen on every interface, and never fall back to the sandbox
# when KOMBO_API_KEY is missing (`-e GATEWAY_ALLOW_SANDBOX=true` for a demo).
ENV GATEWAY_ALLOW_SANDBOX=false GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8000
RUN useradd --create-home --uid 10001 gateway
# Runtime dependencies from the lock: exact versions, every file's sha256 checked
# (`make lock` regenerates it). This layer changes only when the lock does.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock \
 && rm /tmp/requirements.lock
# The gateway itself; its dependencies are all installed above, so nothing is resolved.
COPY --from=build /src/dist/*.whl /tmp/
RUN pip install --no-cache-dir --no-deps /tmp/*.whl && rm /tmp/*.whl
USER gateway
EXPOSE 8000
# `health` checks GATEWAY_PORT, so the check follows `-e GATEWAY_PORT=...`.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["kombo-gateway", "health"]
# SIGTERM (docker stop) drains requests in flight for up to 30 s: use `docker stop -t 35`.
CMD ["kombo-gateway", "serve"]
