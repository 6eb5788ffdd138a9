#!/usr/bin/env bash
# Runs pgpulse against a throw-away local PostgreSQL 15: installs what is
# missing, builds pgpulse, creates a database like the HA seed's (testdb,
# user testadmin, tables users/nodes/messages), starts the server on
# 127.0.0.1:$PGPORT and pgpulse on :$PULSE_PORT in the foreground.
# Ctrl-C stops both and removes the server's files.
#
#   PGPORT=5432 PULSE_PORT=9187 deploy/local/demo.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGPORT=${PGPORT:-5432}
PULSE_PORT=${PULSE_PORT:-9187}
PGBIN=/usr/lib/postgresql/15/bin

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PGPORT:PGPORT" "$PULSE_PORT:PULSE_PORT"; do
    if port_taken "${p%%:*}"; then
        echo "demo: port ${p%%:*} is taken; pick another one with ${p##*:}=<port>" >&2
        exit 1
    fi
done

"$root/deploy/deps.sh" build server
cmake -S "$root" -B "$root/build" >/dev/null
cmake --build "$root/build" -j "$(nproc)" >/dev/null

work=$(mktemp -d -t pgpulse-demo.XXXXXX)
chmod 755 "$work"
as_pg=()
if [[ $(id -u) == 0 ]]; then
    chown postgres: "$work"
    as_pg=(runuser -u postgres --)
fi
cleanup() {
    "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"${as_pg[@]}" "$PGBIN/initdb" -D "$work/data" -U postgres -A trust >/dev/null
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
    -o "-p $PGPORT -k $work -c listen_addresses=127.0.0.1" start >/dev/null
"${as_pg[@]}" psql -X -q -h "$work" -p "$PGPORT" -U postgres -d postgres <<'SQL'
CREATE ROLE testadmin LOGIN SUPERUSER PASSWORD 'securepwd123';
CREATE DATABASE testdb OWNER testadmin;
\c testdb
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE nodes (id serial PRIMARY KEY, hostname text NOT NULL);
CREATE TABLE messages (id serial PRIMARY KEY, user_id int REFERENCES users, body text);
INSERT INTO users (name) SELECT 'user ' || i FROM generate_series(1, 100) i;
INSERT INTO nodes (hostname) VALUES ('postgres-primary'), ('postgres-replica-1'), ('postgres-replica-2');
INSERT INTO messages (user_id, body) SELECT 1 + i % 100, 'hello ' || i FROM generate_series(1, 1000) i;
ANALYZE;
SQL

echo "demo: PostgreSQL 15 on 127.0.0.1:$PGPORT (testdb, testadmin/securepwd123)"
echo "demo: metrics on http://127.0.0.1:$PULSE_PORT/metrics (Ctrl-C to stop)"
DATA_SOURCE_NAME="postgresql://testadmin:securepwd123@127.0.0.1:$PGPORT/testdb?sslmode=disable" \
    "$root/build/pgpulse" --web.listen-address=":$PULSE_PORT" || true
