-- The first schema of the PostgreSQL engine. Every table is the engine's: give auditexport a
-- database of its own (or a schema, with search_path in the database URL).
--
-- Changed in place (the event chunks and ids, twice) before the first release with the engine; a
-- database made by a development build with the first draft (a table named events) is refused at
-- start (refuseDraft in migrate.go). Once released, never again: a change is the next migration.
--
-- Records are the store's JSON (the json type keeps them as written); the columns beside them are
-- what the engine looks them up and orders them by. Ids are compared as bytes (COLLATE "C"), so
-- UUIDv7 ids sort by creation time whatever the database's collation.

-- +goose Up
CREATE TABLE meta (
    key   text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE export_configurations (
    id              text COLLATE "C" PRIMARY KEY,
    name            text COLLATE "C" UNIQUE, -- NULL when unnamed
    enabled         boolean NOT NULL,
    cursor_seq      bigint NOT NULL,
    next_check_at   timestamptz NOT NULL,
    schedule_due_at timestamptz NOT NULL,
    record          json NOT NULL
);
-- The store's indexes of enabled configurations: lowest cursor first (the trim watermark), the
-- next background check, the next schedule boundary.
CREATE INDEX export_configurations_by_cursor ON export_configurations (cursor_seq, id) WHERE enabled;
CREATE INDEX export_configurations_by_check_due ON export_configurations (next_check_at, id) WHERE enabled;
CREATE INDEX export_configurations_by_schedule_due ON export_configurations (schedule_due_at, id) WHERE enabled;

-- Secrets sealed with the master key (AES-256-GCM), never in plaintext.
CREATE TABLE export_configuration_secrets (
    config_id text COLLATE "C" PRIMARY KEY REFERENCES export_configurations (id) ON DELETE CASCADE,
    sealed    bytea NOT NULL
);

-- Tokens as their SHA-256 inside the record; name_key is the lower-cased name (unique).
CREATE TABLE api_tokens (
    id       text COLLATE "C" PRIMARY KEY,
    name_key text COLLATE "C" NOT NULL UNIQUE,
    record   json NOT NULL
);

CREATE TABLE export_jobs (
    id         text COLLATE "C" PRIMARY KEY,
    config_id  text COLLATE "C" NOT NULL,
    unfinished boolean NOT NULL,
    record     json NOT NULL
);
CREATE INDEX export_jobs_by_configuration ON export_jobs (config_id, id);
CREATE INDEX export_jobs_unfinished ON export_jobs (id) WHERE unfinished;

CREATE TABLE export_tasks (
    job_id     text COLLATE "C" NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    task_index integer NOT NULL,
    record     json NOT NULL,
    PRIMARY KEY (job_id, task_index)
);

-- The event buffer. event_log is one row: the highest seq given and what is buffered, kept in
-- the transaction that changes them, so the buffer's size is never counted row by row. Every
-- write transaction locks this table first (see postgres.go): that one lock orders the writers,
-- and so gives seqs in commit order.
CREATE TABLE event_log (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    head      bigint NOT NULL,
    events    bigint NOT NULL,
    bytes     bigint NOT NULL
);
INSERT INTO event_log (head, events, bytes) VALUES (0, 0, 0);

-- Blocks are the buffer's trim unit: runs of seqs, closed by count or age; a trim deletes whole
-- blocks from the oldest on.
CREATE TABLE event_blocks (
    first_seq      bigint PRIMARY KEY,
    last_seq       bigint NOT NULL,
    events         bigint NOT NULL,
    bytes          bigint NOT NULL,
    opened_at      timestamptz NOT NULL,
    last_append_at timestamptz NOT NULL
);

-- The events, encoded (event.Record), in chunks: one row per run of events appended together
-- (store/postgres/chunks.go), first_seq … last_seq, never crossing a block; ids are their ids, in
-- seq order, for a trim to delete from event_ids. The engine compresses data itself, and ids
-- (random) do not compress, so both are stored as they come (EXTERNAL: out of line, never
-- compressed).
CREATE TABLE event_chunks (
    last_seq  bigint PRIMARY KEY,
    first_seq bigint NOT NULL,
    data      bytea NOT NULL,
    ids       uuid[] NOT NULL
);
ALTER TABLE event_chunks ALTER COLUMN data SET STORAGE EXTERNAL, ALTER COLUMN ids SET STORAGE EXTERNAL;

-- The ids of the buffered events: the dedup index, and nothing else (no seq, no second index:
-- each costs every ingested event an index entry; a trim finds the ids in the chunks it
-- deletes). An id stays a duplicate while its event is buffered, which is at least the buffer's
-- minimum retention.
CREATE TABLE event_ids (
    id uuid PRIMARY KEY
);
