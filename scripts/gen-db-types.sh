#!/usr/bin/env bash
# Regenerates src/infra/database.ts from a scratch database migrated from
# db/migrations, and db/schema.sql beside it, so types and schema never drift
# (test/schema.drift.test.ts writes them elsewhere, via TYPES_OUT and
# SCHEMA_OUT, and compares).
set -euo pipefail
cd "$(dirname "$0")/.."
types_out=${TYPES_OUT:-src/infra/database.ts}
schema_out=${SCHEMA_OUT:-db/schema.sql}
base=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
scratch="taskline_codegen_$$"
psql "$base" -qc "create database $scratch"
trap 'psql "$base" -qc "drop database if exists $scratch"' EXIT
url="${base%/*}/$scratch"
DATABASE_URL="$url" bun src/bin/migrate.ts
DATABASE_URL="$url" bunx kysely-codegen --dialect postgres --out-file "$types_out" \
  --exclude-pattern taskline_migrations --type-mapping '{"int8":"number"}' "$@"
# Without comments and pg_dump's random \restrict key, so the file changes only when the schema does.
pg_dump --schema-only --no-owner --no-privileges "$url" | grep -v -e '^--' -e '^\\restrict ' -e '^\\unrestrict ' | cat -s > "$schema_out"
