-- Postgres is the source of truth: everything Redis holds (queued jobs, live
-- events) can be rebuilt from these two tables.

CREATE TYPE task_status AS ENUM ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE tasks (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title           text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
  type            text        NOT NULL DEFAULT 'demo',
  payload         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  status          task_status NOT NULL DEFAULT 'PENDING',
  attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts    integer     NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
  -- Per-task limit on one attempt; NULL means the handler's or the worker's default.
  timeout_ms      integer     CHECK (timeout_ms > 0),
  progress        double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
  result          jsonb,
  error           text,
  -- Bumped on every change, so a client can order and de-duplicate messages.
  seq             integer     NOT NULL DEFAULT 1,
  idempotency_key text        UNIQUE,
  -- A PENDING task is due once run_after has passed (retries back off here,
  -- not in a timer a restart would forget).
  run_after       timestamptz NOT NULL DEFAULT now(),
  -- NULL while the task is not known to be on the jobs stream: the sweeper
  -- enqueues such tasks (the outbox property: a POST never depends on Redis).
  enqueued_at     timestamptz,
  -- The lease: which worker runs the task and until when it is presumed alive.
  locked_by       text,
  locked_until    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz
);

-- Listing is newest first, optionally filtered by status.
CREATE INDEX tasks_status_id_idx ON tasks (status, id DESC);
-- The sweeper's two questions: which pending tasks are due, which leases expired.
CREATE INDEX tasks_due_idx ON tasks (run_after) WHERE status = 'PENDING';
CREATE INDEX tasks_lease_idx ON tasks (locked_until) WHERE status = 'PROCESSING';

CREATE TABLE task_events (
  -- Also the resume cursor of the all-tasks feed: it survives a Redis wipe.
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id   bigint      NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  seq       integer     NOT NULL,
  status    task_status NOT NULL,
  progress  double precision NOT NULL,
  at        timestamptz NOT NULL DEFAULT now(),
  detail    jsonb,
  UNIQUE (task_id, seq)
);
