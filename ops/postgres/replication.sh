#!/usr/bin/env bash
# For docker-compose's `replica` service: on `db`, a role that may stream WAL and do
# nothing else (REPLICATION LOGIN, no other privilege), and a pg_hba.conf entry letting
# it connect for replication from the compose network.
#
# The postgres image runs it once, when it creates a new data directory (it is mounted
# in /docker-entrypoint-initdb.d). On a data directory made before, run it once:
#   docker compose exec db bash /docker-entrypoint-initdb.d/replication.sh
# Safe to run again: it changes nothing that is already there.
set -eo pipefail

role="${REPLICATION_USER:-replicator}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=role="$role" --set=password="${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}" <<'SQL'
SELECT format('CREATE ROLE %I WITH REPLICATION LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SQL

# "all" in the database column does not match replication connections: they need their
# own line. Appended after the image's "host all all all scram-sha-256".
entry="host replication $role all scram-sha-256"
hba="$PGDATA/pg_hba.conf"
grep -qxF "$entry" "$hba" || echo "$entry" >>"$hba"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -qAtc "SELECT pg_reload_conf()" >/dev/null
