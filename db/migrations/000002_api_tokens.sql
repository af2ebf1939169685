-- API tokens: only a hash of each secret is kept, so a database leak does not
-- hand out working tokens. A token is shown once, at creation.
CREATE TABLE api_tokens (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text        NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
  secret_hash bytea       NOT NULL,
  admin       boolean     NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Every task belongs to the token that created it (NULL when AUTH=off).
ALTER TABLE tasks ADD COLUMN owner_id bigint REFERENCES api_tokens (id);
CREATE INDEX tasks_owner_id_idx ON tasks (owner_id, id DESC);
