# The project's wheel is built with a C compiler (monitor/match/_speedups.c) in a first stage;
# the image that runs it has no compiler.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
COPY alerts ./alerts
COPY httpfields ./httpfields
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --create-home --uid 10001 monitor \
    && mkdir /data && chown monitor:monitor /data
# Runs as an unprivileged user; its only writable place is /data (the SQLite default).
USER monitor
WORKDIR /data
ENV MONITOR_CONFIG=/config/monitor.yaml
# The HTTP server listens on 0.0.0.0:8080 inside the container (examples/docker.yaml);
# publish it on the host's loopback only.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# python -m, not the console script: parse workers then import only what they need
ENTRYPOINT ["python", "-m", "monitor"]
CMD ["run"]
