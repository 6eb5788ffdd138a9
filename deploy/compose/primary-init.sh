#!/usr/bin/env bash
# Runs once, when the official postgres image initialises the primary's
# volume (docker-entrypoint-initdb.d): lets the standbys replicate as
# testadmin and loads the seed's sample tables into testdb.
set -euo pipefail

echo "host replication ${POSTGRES_USER} all scram-sha-256" >>"$PGDATA/pg_hba.conf"

psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" <<'SQL'
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE nodes (id serial PRIMARY KEY, hostname text NOT NULL);
CREATE TABLE messages (id serial PRIMARY KEY, user_id int REFERENCES users, body text);
INSERT INTO users (name) SELECT 'user ' || i FROM generate_series(1, 100) i;
INSERT INTO nodes (hostname) VALUES ('postgres-primary'), ('postgres-replica-1'), ('postgres-replica-2');
INSERT INTO messages (user_id, body) SELECT 1 + i % 100, 'hello ' || i FROM generate_series(1, 1000) i;
ANALYZE;
SQL
