#!/usr/bin/env bash
# Regenerates src/infra/database.ts from a scratch database migrated from
# db/migrations, and db/schema.sql beside it, so types and schema never drift.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
scratch="taskline_codegen_$$"
psql "$base" -qc "create database $scratch"
trap 'psql "$base" -qc "drop database if exists $scratch"' EXIT
url="${base%/*}/$scratch"
DATABASE_URL="$url" bun scripts/migrate.ts
DATABASE_URL="$url" bunx kysely-codegen --dialect postgres --out-file src/infra/database.ts \
  --exclude-pattern taskline_migrations --type-mapping '{"int8":"number"}' "$@"
pg_dump --schema-only --no-owner --no-privileges "$url" | grep -v '^--' | cat -s > db/schema.sql
