-- The operator view: live workers, task counts cheap at any table size,
-- throughput from history, and the request that created each task.

-- Each worker says it is alive every few seconds (src/worker/heartbeat.ts);
-- one whose last_seen is old died, one with stopped_at stopped cleanly.
CREATE TABLE workers (
  id          text PRIMARY KEY,
  host        text        NOT NULL,
  pid         integer     NOT NULL,
  version     text        NOT NULL,
  -- NULL: every queue.
  queues      text[],
  types       text[]      NOT NULL,
  concurrency integer     NOT NULL,
  running     integer     NOT NULL DEFAULT 0,
  started_at  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now(),
  stopped_at  timestamptz
);
CREATE INDEX workers_last_seen_idx ON workers (last_seen);

-- Counts by owner, queue, type and status without counting rows: every
-- statement that inserts, deletes or moves tasks between statuses appends its
-- net changes to task_count_deltas (insert-only, so concurrent writers never
-- wait on one counter row), and a worker folds them into task_counts and
-- task_outcomes every few seconds. A count is task_counts plus the deltas not
-- yet folded.
CREATE TABLE task_counts (
  owner_key bigint NOT NULL,
  queue     text   NOT NULL,
  type      text   NOT NULL,
  status    task_status NOT NULL,
  n         bigint NOT NULL,
  PRIMARY KEY (owner_key, queue, type, status)
);
CREATE TABLE task_count_deltas (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner_key bigint NOT NULL,
  queue     text   NOT NULL,
  type      text   NOT NULL,
  status    task_status NOT NULL,
  delta     bigint NOT NULL,
  at        timestamptz NOT NULL DEFAULT now()
);
-- Outcomes per minute, folded from the deltas that moved tasks into COMPLETED
-- or FAILED: the throughput chart reads an hour of these, not of history.
CREATE TABLE task_outcomes (
  minute    timestamptz NOT NULL,
  owner_key bigint NOT NULL,
  queue     text   NOT NULL,
  type      text   NOT NULL,
  completed bigint NOT NULL DEFAULT 0,
  failed    bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (minute, owner_key, queue, type)
);

CREATE FUNCTION task_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_count_deltas (owner_key, queue, type, status, delta)
  SELECT coalesce(owner_id, 0), queue, type, status, count(*) FROM new_rows GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;

CREATE FUNCTION task_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_count_deltas (owner_key, queue, type, status, delta)
  SELECT coalesce(owner_id, 0), queue, type, status, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;

-- Every old row counts -1 and every new row +1, netted per key: a row whose
-- status (queue, type, owner) did not change nets to nothing. No join between
-- the two sets, whose plan (cached per connection) could turn quadratic.
CREATE FUNCTION task_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_count_deltas (owner_key, queue, type, status, delta)
  SELECT owner_key, queue, type, status, sum(delta) FROM (
    SELECT coalesce(owner_id, 0) AS owner_key, queue, type, status, -1 AS delta FROM old_rows
    UNION ALL
    SELECT coalesce(owner_id, 0), queue, type, status, 1 FROM new_rows
  ) d
  GROUP BY 1, 2, 3, 4
  HAVING sum(delta) <> 0;
  RETURN NULL;
END $$;

-- TRUNCATE removes every task without row triggers: the totals start again from nothing.
CREATE FUNCTION task_counts_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM task_count_deltas;
  DELETE FROM task_counts;
  RETURN NULL;
END $$;

CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION task_counts_on_insert();
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION task_counts_on_delete();
CREATE TRIGGER task_counts_update AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION task_counts_on_update();
CREATE TRIGGER task_counts_truncate AFTER TRUNCATE ON tasks
  FOR EACH STATEMENT EXECUTE FUNCTION task_counts_on_truncate();

-- The tasks that exist already.
INSERT INTO task_counts (owner_key, queue, type, status, n)
SELECT coalesce(owner_id, 0), queue, type, status, count(*) FROM tasks GROUP BY 1, 2, 3, 4;

-- The request that created the task, so one request can be followed into the worker's log.
ALTER TABLE tasks ADD COLUMN request_id text;
