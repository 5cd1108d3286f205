# syntax=docker/dockerfile:1
# Multi-stage build. Every build step is a Makefile target that CI also runs
# (`make assets`, `make dist`; tests/test_packaging.py checks the wheel), so nothing
# here is exercised only by Docker.

FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md Makefile schema.graphql ./
COPY scripts ./scripts
COPY gateway ./gateway
# GraphiQL's bundles from the npm registry, then a wheel that carries them.
RUN make assets dist PYTHON=python3

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 gateway
COPY --from=build /src/dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER gateway
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["kombo-gateway", "health", "--url", "http://127.0.0.1:8000/healthz"]
# Without KOMBO_API_KEY the container serves the embedded sandbox.
CMD ["kombo-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
