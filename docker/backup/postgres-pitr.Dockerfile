# The database image of docker/postgres/Dockerfile plus pgBackRest, for point-in-time recovery
# (docker/backup/pitr.compose.yml). Build context: the repository root.
FROM postgres:15-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15-cron pgbackrest \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 0700 /var/lib/pgbackrest /var/log/pgbackrest /var/spool/pgbackrest

COPY migrations/ /opt/referral-service/migrations/
COPY --chmod=0755 docker/postgres/initdb/10-referral-service.sh /docker-entrypoint-initdb.d/10-referral-service.sh
COPY --chmod=0755 docker/backup/stanza.sh /docker-entrypoint-initdb.d/05-pgbackrest-stanza.sh
COPY --chmod=0644 docker/backup/pgbackrest.conf /etc/pgbackrest/pgbackrest.conf

# As docker/postgres/Dockerfile, plus WAL archiving into the repository (archive_timeout: an idle server still
# closes a segment a minute, which bounds what losing the volume can take).
CMD ["postgres", \
     "-c", "shared_preload_libraries=pg_cron,pg_stat_statements", \
     "-c", "cron.database_name=referral_service", \
     "-c", "cron.use_background_workers=on", \
     "-c", "max_worker_processes=16", \
     "-c", "archive_mode=on", \
     "-c", "archive_command=pgbackrest --stanza=referral archive-push %p", \
     "-c", "archive_timeout=60"]
