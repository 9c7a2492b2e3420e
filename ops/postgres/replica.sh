#!/usr/bin/env bash
# docker-compose's `replica` service (profile `replica`): a streaming standby of `db`,
# made as CI makes its replica. An empty data directory is filled with pg_basebackup -R
# (a copy of the primary, plus standby.signal and primary_conninfo, so it starts as a
# standby that streams WAL from the primary); then postgres runs in hot standby and
# answers reads. Runs as the postgres user; its arguments go to postgres.
#
#   PRIMARY_HOST, PRIMARY_PORT   the primary (db, 5432)
#   REPLICATION_USER, PGPASSWORD the role ops/postgres/replication.sh creates there
set -euo pipefail

primary_host="${PRIMARY_HOST:-db}"
primary_port="${PRIMARY_PORT:-5432}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "$primary_host" -p "$primary_port"; do sleep 1; done
  pg_basebackup --pgdata "$PGDATA" --write-recovery-conf --wal-method stream \
    --checkpoint fast --host "$primary_host" --port "$primary_port" \
    --username "${REPLICATION_USER:-replicator}" --no-password
fi
chmod 0700 "$PGDATA"
exec postgres "$@"
