#!/usr/bin/env bash
# First start of an empty data volume (before the migrations, whose WAL it then archives): create the pgBackRest stanza, so WAL archiving
# works from the start. A volume made before PITR was added: run it once by hand (docs/deployment.md).
set -euo pipefail
pgbackrest --stanza=referral --pg1-socket-path=/var/run/postgresql stanza-create
