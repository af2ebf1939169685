
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

CREATE TYPE public.task_status AS ENUM (
    'PENDING',
    'PROCESSING',
    'COMPLETED',
    'FAILED',
    'CANCELLED'
);

CREATE FUNCTION public.owner_turns_for_new_token() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO owner_turns (owner_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  RETURN NEW;
END $$;

CREATE FUNCTION public.task_counts_on_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO task_count_deltas (owner_key, queue, type, status, delta)
  SELECT coalesce(owner_id, 0), queue, type, status, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;

CREATE FUNCTION public.task_counts_on_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO task_count_deltas (owner_key, queue, type, status, delta)
  SELECT coalesce(owner_id, 0), queue, type, status, count(*) FROM new_rows GROUP BY 1, 2, 3, 4;
  RETURN NULL;
END $$;

CREATE FUNCTION public.task_counts_on_truncate() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  DELETE FROM task_count_deltas;
  DELETE FROM task_counts;
  RETURN NULL;
END $$;

CREATE FUNCTION public.task_counts_on_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE public.api_tokens (
    id bigint NOT NULL,
    name text NOT NULL,
    secret_hash bytea NOT NULL,
    admin boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    rate_limit_per_sec integer,
    CONSTRAINT api_tokens_name_check CHECK ((name ~ '^[A-Za-z0-9_.-]{1,64}$'::text)),
    CONSTRAINT api_tokens_rate_limit_per_sec_check CHECK ((rate_limit_per_sec >= 0))
);

ALTER TABLE public.api_tokens ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.api_tokens_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.owner_turns (
    owner_id bigint NOT NULL,
    last_claimed_at timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL
);

CREATE TABLE public.queues (
    name text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    rate_tokens double precision DEFAULT 0 NOT NULL,
    rate_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT queues_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'::text))
);

CREATE TABLE public.schedules (
    id bigint NOT NULL,
    owner_id bigint,
    name text NOT NULL,
    cron text NOT NULL,
    timezone text DEFAULT 'UTC'::text NOT NULL,
    task jsonb NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    next_run_at timestamp with time zone NOT NULL,
    last_run_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.schedules ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.schedules_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.task_count_deltas (
    id bigint NOT NULL,
    owner_key bigint NOT NULL,
    queue text NOT NULL,
    type text NOT NULL,
    status public.task_status NOT NULL,
    delta bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.task_count_deltas ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.task_count_deltas_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.task_counts (
    owner_key bigint NOT NULL,
    queue text NOT NULL,
    type text NOT NULL,
    status public.task_status NOT NULL,
    n bigint NOT NULL
);

CREATE TABLE public.task_events (
    id bigint NOT NULL,
    task_id bigint NOT NULL,
    seq integer NOT NULL,
    status public.task_status NOT NULL,
    progress double precision NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    detail jsonb
);

ALTER TABLE public.task_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.task_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.task_outcomes (
    minute timestamp with time zone NOT NULL,
    owner_key bigint NOT NULL,
    queue text NOT NULL,
    type text NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL
);

CREATE TABLE public.task_type_workers (
    type text NOT NULL,
    worker_id text NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.task_types (
    name text NOT NULL,
    payload_schema jsonb NOT NULL,
    timeout_ms integer,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.taskline_migrations (
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.tasks (
    id bigint NOT NULL,
    title text NOT NULL,
    type text DEFAULT 'demo'::text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    status public.task_status DEFAULT 'PENDING'::public.task_status NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 3 NOT NULL,
    timeout_ms integer,
    progress double precision DEFAULT 0 NOT NULL,
    result jsonb,
    error text,
    seq integer DEFAULT 1 NOT NULL,
    idempotency_key text,
    run_after timestamp with time zone DEFAULT now() NOT NULL,
    enqueued_at timestamp with time zone,
    locked_by text,
    locked_until timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    owner_id bigint,
    queue text DEFAULT 'default'::text NOT NULL,
    priority smallint DEFAULT 0 NOT NULL,
    depends_on bigint[],
    request_id text,
    CONSTRAINT tasks_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT tasks_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT tasks_payload_check CHECK ((jsonb_typeof(payload) = 'object'::text)),
    CONSTRAINT tasks_priority_check CHECK (((priority >= '-10'::integer) AND (priority <= 10))),
    CONSTRAINT tasks_progress_check CHECK (((progress >= (0)::double precision) AND (progress <= (1)::double precision))),
    CONSTRAINT tasks_queue_check CHECK ((queue ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'::text)),
    CONSTRAINT tasks_timeout_ms_check CHECK ((timeout_ms > 0)),
    CONSTRAINT tasks_title_check CHECK (((char_length(title) >= 1) AND (char_length(title) <= 200)))
);

ALTER TABLE public.tasks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.tasks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.workers (
    id text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    queues text[],
    types text[] NOT NULL,
    concurrency integer NOT NULL,
    running integer DEFAULT 0 NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL,
    stopped_at timestamp with time zone
);

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_name_key UNIQUE (name);

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.owner_turns
    ADD CONSTRAINT owner_turns_pkey PRIMARY KEY (owner_id);

ALTER TABLE ONLY public.queues
    ADD CONSTRAINT queues_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.task_count_deltas
    ADD CONSTRAINT task_count_deltas_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.task_counts
    ADD CONSTRAINT task_counts_pkey PRIMARY KEY (owner_key, queue, type, status);

ALTER TABLE ONLY public.task_events
    ADD CONSTRAINT task_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.task_events
    ADD CONSTRAINT task_events_task_id_seq_key UNIQUE (task_id, seq);

ALTER TABLE ONLY public.task_outcomes
    ADD CONSTRAINT task_outcomes_pkey PRIMARY KEY (minute, owner_key, queue, type);

ALTER TABLE ONLY public.task_type_workers
    ADD CONSTRAINT task_type_workers_pkey PRIMARY KEY (type, worker_id);

ALTER TABLE ONLY public.task_types
    ADD CONSTRAINT task_types_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.taskline_migrations
    ADD CONSTRAINT taskline_migrations_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);

CREATE INDEX schedules_next_run_at_idx ON public.schedules USING btree (next_run_at) WHERE (NOT paused);

CREATE UNIQUE INDEX schedules_owner_name_key ON public.schedules USING btree (owner_id, name) NULLS NOT DISTINCT;

CREATE INDEX task_type_workers_worker_id ON public.task_type_workers USING btree (worker_id);

CREATE INDEX tasks_finished_idx ON public.tasks USING btree (status, finished_at) WHERE (status = ANY (ARRAY['COMPLETED'::public.task_status, 'FAILED'::public.task_status, 'CANCELLED'::public.task_status]));

CREATE UNIQUE INDEX tasks_idempotency_key_idx ON public.tasks USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL);

CREATE INDEX tasks_lease_idx ON public.tasks USING btree (locked_until) WHERE (status = 'PROCESSING'::public.task_status);

CREATE INDEX tasks_owner_id_idx ON public.tasks USING btree (owner_id, id DESC) WHERE (owner_id IS NOT NULL);

CREATE INDEX tasks_ready_idx ON public.tasks USING btree (queue, COALESCE(owner_id, (0)::bigint), priority DESC, run_after, id) WHERE ((status = 'PENDING'::public.task_status) AND (enqueued_at IS NOT NULL));

CREATE INDEX tasks_status_id_idx ON public.tasks USING btree (status, id DESC);

CREATE INDEX tasks_waiting_idx ON public.tasks USING btree (run_after) WHERE ((status = 'PENDING'::public.task_status) AND (enqueued_at IS NULL));

CREATE INDEX workers_last_seen_idx ON public.workers USING btree (last_seen);

CREATE TRIGGER api_tokens_owner_turn AFTER INSERT ON public.api_tokens FOR EACH ROW EXECUTE FUNCTION public.owner_turns_for_new_token();

CREATE TRIGGER task_counts_delete AFTER DELETE ON public.tasks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.task_counts_on_delete();

CREATE TRIGGER task_counts_insert AFTER INSERT ON public.tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.task_counts_on_insert();

CREATE TRIGGER task_counts_truncate AFTER TRUNCATE ON public.tasks FOR EACH STATEMENT EXECUTE FUNCTION public.task_counts_on_truncate();

CREATE TRIGGER task_counts_update AFTER UPDATE ON public.tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.task_counts_on_update();

ALTER TABLE ONLY public.schedules
    ADD CONSTRAINT schedules_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES public.api_tokens(id);

ALTER TABLE ONLY public.task_type_workers
    ADD CONSTRAINT task_type_workers_type_fkey FOREIGN KEY (type) REFERENCES public.task_types(name) ON DELETE CASCADE;

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES public.api_tokens(id);

