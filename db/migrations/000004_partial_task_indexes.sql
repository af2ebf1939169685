-- Every status change updates an indexed column (status), so Postgres cannot
-- update the row in place and writes a new entry in each of its indexes. Most
-- tasks have no idempotency key, and every task has no owner when AUTH=off:
-- those NULL entries were written three times per task and never read.
-- Lookups by key or owner compare with =, which never matches NULL, so they
-- can use the partial indexes.
ALTER TABLE tasks DROP CONSTRAINT tasks_idempotency_key_key;
CREATE UNIQUE INDEX tasks_idempotency_key_idx ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

DROP INDEX tasks_owner_id_idx;
CREATE INDEX tasks_owner_id_idx ON tasks (owner_id, id DESC) WHERE owner_id IS NOT NULL;
