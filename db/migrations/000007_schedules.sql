-- Schedules: a cron expression that creates a task from a template at each
-- tick. next_run_at is the one tick still to come; a worker that finds it due
-- creates the tick's task (its idempotency key names the schedule and the
-- tick) and moves next_run_at on with a guarded UPDATE, in one transaction,
-- so however many workers look at once, each tick makes one task.
CREATE TABLE schedules (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner_id    bigint REFERENCES api_tokens (id),
  name        text        NOT NULL,
  cron        text        NOT NULL,
  timezone    text        NOT NULL DEFAULT 'UTC',
  -- What each tick creates: {title, type, payload, max_attempts, timeout_ms?}, as POST /api/tasks/ takes it.
  task        jsonb       NOT NULL,
  paused      boolean     NOT NULL DEFAULT false,
  next_run_at timestamptz NOT NULL,
  last_run_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Names are unique per owner; with AUTH=off every schedule has no owner, and those names are unique too.
CREATE UNIQUE INDEX schedules_owner_name_key ON schedules (owner_id, name) NULLS NOT DISTINCT;
-- What the scheduler asks every second: the due, unpaused ones.
CREATE INDEX schedules_next_run_at_idx ON schedules (next_run_at) WHERE NOT paused;
