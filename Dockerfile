FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY alerts ./alerts
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 monitor
USER monitor
WORKDIR /data
ENV MONITOR_CONFIG=/config/monitor.yaml
# python -m, not the console script: parse workers then import only what they need
ENTRYPOINT ["python", "-m", "monitor"]
CMD ["run"]
