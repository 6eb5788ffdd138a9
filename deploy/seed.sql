-- The seed's sample tables and rows, in the database the HA cluster
-- monitors (testdb). Loaded once on the primary, as its owner: by
-- deploy/local/cluster.sh, and by the postgres image's initdb hook in the
-- compose layout (deploy/docker-compose.yml mounts this file).
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE nodes (id serial PRIMARY KEY, hostname text NOT NULL);
CREATE TABLE messages (id serial PRIMARY KEY, user_id int REFERENCES users, body text);
INSERT INTO users (name) SELECT 'user ' || i FROM generate_series(1, 100) i;
INSERT INTO nodes (hostname) VALUES ('postgres-primary'), ('postgres-replica-1'), ('postgres-replica-2');
INSERT INTO messages (user_id, body) SELECT 1 + i % 100, 'hello ' || i FROM generate_series(1, 1000) i;
ANALYZE;
