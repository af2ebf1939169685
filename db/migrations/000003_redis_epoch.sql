-- Which Redis dataset the jobs stream lives in. The sweeper writes the same
-- random value here and under the epoch key in Redis; a Redis that lost its
-- data no longer holds it, and only then is every PENDING task re-enqueued
-- (a first start, with nothing recorded here yet, re-enqueues nothing).
CREATE TABLE redis_epoch (
  key_prefix text PRIMARY KEY,
  epoch      text        NOT NULL,
  set_at     timestamptz NOT NULL DEFAULT now()
);
