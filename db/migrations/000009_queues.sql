-- Queues, priorities, dependencies. Workers claim from Postgres (the jobs
-- stream only wakes them), so each of these is a column or a table here and
-- survives losing Redis like everything else.
ALTER TABLE tasks
  ADD COLUMN queue      text     NOT NULL DEFAULT 'default' CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  ADD COLUMN priority   smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN -10 AND 10),
  -- Tasks that must be COMPLETED before this one may run; NULL: none.
  ADD COLUMN depends_on bigint[];

-- enqueued_at now means "ready": due, its dependencies done, and waiting for
-- a worker. The claim walks this index: (queue, owner) pairs by a skip scan,
-- then each pair's tasks by priority and by how long they have been due.
-- Delayed, blocked and running tasks never enter it, so a claim never steps
-- over them.
CREATE INDEX tasks_ready_idx ON tasks (queue, (coalesce(owner_id, 0)), priority DESC, run_after, id)
  WHERE status = 'PENDING' AND enqueued_at IS NOT NULL;
-- The sweeper's promotion: PENDING tasks not yet ready (delayed, backing off,
-- or waiting on dependencies), by when they are due.
CREATE INDEX tasks_waiting_idx ON tasks (run_after) WHERE status = 'PENDING' AND enqueued_at IS NULL;
DROP INDEX tasks_due_idx;

-- A queue's operator state and its start-rate bucket. A queue needs no row to
-- exist: one appears when it is first paused or rate limited.
CREATE TABLE queues (
  name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  paused      boolean     NOT NULL DEFAULT false,
  -- QUEUE_RATE's token bucket, shared by every worker: tokens left at rate_at.
  rate_tokens double precision NOT NULL DEFAULT 0,
  rate_at     timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Redis no longer holds a queue to rebuild (workers claim from Postgres), so
-- nothing needs to notice that it lost its data.
DROP TABLE redis_epoch;
