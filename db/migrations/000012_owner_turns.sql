-- When each owner (0: tasks without one) last had a task claimed. Owners whose
-- turn numbers tie (with few slots, none of either's tasks is running) go in
-- the order they last got one, so two owners alternate instead of the older
-- tasks' owner taking every slot. Losing it only loses tie-breaks.
CREATE TABLE owner_turns (
  owner_id bigint PRIMARY KEY,
  last_claimed_at timestamptz NOT NULL DEFAULT '-infinity'
);

-- Every owner has its row before its first claim, so a claim only updates
-- rows, skipping those another claim holds: claims never wait on each other
-- here, however many owners and statements a transaction claims for.
INSERT INTO owner_turns (owner_id) SELECT 0 UNION ALL SELECT id FROM api_tokens;

CREATE FUNCTION owner_turns_for_new_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO owner_turns (owner_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER api_tokens_owner_turn AFTER INSERT ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION owner_turns_for_new_token();
