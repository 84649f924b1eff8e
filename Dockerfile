# The project's wheel is built with a C compiler (monitor/match/_speedups.c) in a first stage;
# the image that runs it has no compiler.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
COPY alerts ./alerts
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --create-home --uid 10001 monitor
USER monitor
WORKDIR /data
ENV MONITOR_CONFIG=/config/monitor.yaml
# python -m, not the console script: parse workers then import only what they need
ENTRYPOINT ["python", "-m", "monitor"]
CMD ["run"]
