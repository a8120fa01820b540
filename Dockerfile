# The gateway image; the migrate and backup services of docker/docker-compose.yml use it too.
# bookworm pinned: its apt has postgresql-client-15, matching the server's major version for pg_dump.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump/pg_restore for `referral-service backup` (the backup service); nothing else from apt.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml ./
COPY src/ ./src/
RUN pip install . && rm -rf ./src ./build

COPY migrations/ ./migrations/
# Secrets as files: reads PGPASSWORD_FILE for libpq, then runs the command (docker/app/entrypoint.sh).
COPY --chmod=0755 docker/app/entrypoint.sh /usr/local/bin/referral-entrypoint

# An unprivileged user owns only what it writes: generated local secrets and the backup folder.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin referral \
    && install -d -o referral -g referral /var/lib/referral /backups

# Installed (not editable), the package cannot find the repository's folders by itself.
ENV REFERRAL_MIGRATIONS_DIR=/app/migrations \
    REFERRAL_DATA_DIR=/var/lib/referral \
    REFERRAL_BACKUP_DIR=/backups \
    PGRST_SERVER_HOST=0.0.0.0 \
    PGRST_SERVER_PORT=3000

USER referral
EXPOSE 3000

# /live answers without the database: an outage shows in /ready and the alerts, not as container restarts.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/live' % os.environ.get('PGRST_SERVER_PORT', '3000'), timeout=2)" || exit 1

ENTRYPOINT ["/usr/local/bin/referral-entrypoint"]
CMD ["referral-service", "serve"]
