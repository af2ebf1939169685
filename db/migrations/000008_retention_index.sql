-- Retention deletes finished tasks oldest first, per status ("COMPLETED ones
-- finished before X"): this index hands it exactly those rows in order, so a
-- batch reads its few hundred entries instead of scanning the table. Partial:
-- PENDING and PROCESSING rows, which change most, never enter it, and
-- tasks_status_id_idx (status, id) cannot order by finished_at.
CREATE INDEX tasks_finished_idx ON tasks (status, finished_at) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
