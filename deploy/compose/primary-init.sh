#!/usr/bin/env bash
# Runs once, when the official postgres image initialises the primary's
# volume (docker-entrypoint-initdb.d): lets the standbys replicate as
# testadmin. The seed's sample tables come from deploy/seed.sql, mounted
# beside this script (20-seed.sql), which the image runs next.
set -euo pipefail

echo "host replication ${POSTGRES_USER} all scram-sha-256" >>"$PGDATA/pg_hba.conf"
