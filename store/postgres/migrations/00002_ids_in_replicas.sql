-- Event ids are deduplicated in each replica's memory (store/postgres/idindex.go), from the ids
-- every chunk keeps (event_chunks.ids): the unique index of every buffered id cost each ingested
-- event an index entry, about half the database's work for an ingest.

-- +goose Up
DROP TABLE event_ids;

-- +goose Down
CREATE TABLE event_ids (
    id uuid PRIMARY KEY
);
INSERT INTO event_ids (id) SELECT unnest(ids) FROM event_chunks;
