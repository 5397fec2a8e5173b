#!/bin/sh
# Runs once, when the postgres container starts on an empty volume
# (/docker-entrypoint-initdb.d): one role and one database per service, so no
# service can read another's tables.
set -eu
for service in auth notify portal; do
    password_var=$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD
    eval "password=\${$password_var}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$service" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
