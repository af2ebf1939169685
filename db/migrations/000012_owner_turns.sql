-- When each owner (0: tasks without one) last had a task claimed. Owners whose
-- turn numbers tie (with few slots, none of either's tasks is running) go in
-- the order they last got one, so two owners alternate instead of the older
-- tasks' owner taking every slot. Postgres holds it, like everything a claim
-- reads; losing it only loses tie-breaks until the next claims.
CREATE TABLE owner_turns (
  owner_id bigint PRIMARY KEY,
  last_claimed_at timestamptz NOT NULL
);
