-- Task types from users' handler modules, registered by the workers that run
-- them, so the API can check a payload without loading any handler code.
-- payload_schema is the JSON Schema of the handler's zod schema; the last
-- worker to start with a type sets it.
CREATE TABLE task_types (
  name           text PRIMARY KEY,
  payload_schema jsonb       NOT NULL,
  timeout_ms     integer,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Which worker instances handle a type; a worker refreshes last_seen_at while
-- it runs and deletes its rows when it stops, so a type is handled while one
-- of its rows is recent.
CREATE TABLE task_type_workers (
  type         text        NOT NULL REFERENCES task_types (name) ON DELETE CASCADE,
  worker_id    text        NOT NULL,
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (type, worker_id)
);
CREATE INDEX task_type_workers_worker_id ON task_type_workers (worker_id);
