#!/bin/sh
# The `backup` compose profile: one verified backup a day at BACKUP_AT (UTC, HH:MM), keeping BACKUP_KEEP.
# A failed run is logged and retried the next day; the backup-age alert fires if that keeps happening.
set -eu
at="${BACKUP_AT:-03:00}"
keep="${BACKUP_KEEP:-14}"
# Leading zeros stripped: sh arithmetic would read "08" as a bad octal number.
hours=$(echo "$at" | cut -d: -f1 | sed 's/^0*//')
minutes=$(echo "$at" | cut -d: -f2 | sed 's/^0*//')
target=$(( ${hours:-0} * 3600 + ${minutes:-0} * 60 ))
while true; do
    now=$(( $(date -u +%s) % 86400 ))
    wait=$(( (target - now + 86400) % 86400 ))
    [ "$wait" -eq 0 ] && wait=86400
    echo "next backup in ${wait}s (at ${at} UTC)"
    sleep "$wait"
    referral-service backup --verify --keep "$keep" || echo "backup FAILED (exit $?)" >&2
done
