#!/usr/bin/env bash
# Entrypoint of a standby container: on an empty volume, clone the primary
# with pg_basebackup -R (streaming, with a physical slot named after this
# node and application_name set so pg_stat_replication tells the standbys
# apart), then hand over to the official image's entrypoint, which starts
# the server as the postgres user. To re-clone (for example the old
# primary after a failover), remove the volume and start the service again.
set -euo pipefail

: "${PRIMARY_HOST:?name the primary to clone}"
: "${REPLICA_NAME:?give this standby a name}"
: "${POSTGRES_USER:?}" "${PGPASSWORD:?}"
slot=${REPLICA_NAME//-/_}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    until pg_isready -q -h "$PRIMARY_HOST" -U "$POSTGRES_USER"; do sleep 1; done
    # A slot left by an earlier clone of this node would make -C fail.
    psql -X -q -h "$PRIMARY_HOST" -U "$POSTGRES_USER" -d postgres -v ON_ERROR_STOP=1 -v slot="$slot" <<'SQL'
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
 WHERE slot_name = :'slot' AND NOT active;
SQL
    mkdir -p "$PGDATA"
    chown postgres: "$PGDATA"
    chmod 700 "$PGDATA"
    gosu postgres env PGPASSWORD="$PGPASSWORD" pg_basebackup -D "$PGDATA" -R -X stream -c fast \
        -C -S "$slot" \
        -d "host=$PRIMARY_HOST user=$POSTGRES_USER application_name=$REPLICA_NAME"
fi
exec docker-entrypoint.sh "$@"
