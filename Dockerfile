# cryptowire hub image: `docker build -t cryptowire .`, `docker run -p 8000:8000 cryptowire`.
# docker-compose.yml builds it for every node. Tested without docker by
# tests/integration/cluster/test_dockerfile.py (its COPY, RUN pip, CMD and HEALTHCHECK steps
# run in a clean venv) and linted with hadolint (`make check`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XDG_DATA_HOME=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && groupadd --system --gid 10001 cryptowire \
    && useradd --no-log-init --system --create-home --home-dir /data \
        --uid 10001 --gid 10001 cryptowire

# The hub runs as an unprivileged user; a SQLite store (no store.url set) lands in /data.
USER 10001:10001
WORKDIR /data
EXPOSE 8000

HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]

CMD ["cryptowire", "serve", "--host", "0.0.0.0", "--port", "8000"]
