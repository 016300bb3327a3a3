#!/bin/sh
# Runs once, when the PostgreSQL container initialises an empty data directory: the role the
# services run as. It owns nothing; `pms migrate` (as the owner, POSTGRES_USER) grants it each
# service's runtime role.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$PMS_APP_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE pms_app LOGIN PASSWORD :'password';
SQL
