# The worker image (also runs the load generator): the `stream` package with its compiled core.
# docker compose builds it for the `worker` and `loadgen` services.
FROM python:3.11.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# clickhouse-driver[numpy] (pandas) gives the ClickHouse sink its NumPy columnar inserts.
RUN pip wheel --no-cache-dir --wheel-dir /wheels . "clickhouse-driver[numpy]>=0.2.6"

FROM python:3.11.11-slim-bookworm
RUN useradd --create-home --uid 10001 customs \
 && mkdir -p /var/lib/customs-stream && chown customs /var/lib/customs-stream
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER customs
WORKDIR /var/lib/customs-stream
ENV CUSTOMS_DATA_DIR=/var/lib/customs-stream \
    CUSTOMS_METRICS_PORT=9464 \
    CUSTOMS_WEB_PORT=6066
# 9464: Prometheus metrics; 6066: Faust web
EXPOSE 9464 6066
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=5 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('CUSTOMS_METRICS_PORT', '9464'), timeout=2)"
ENTRYPOINT ["customs-stream"]
CMD ["worker"]
