-- Each chunk's event hour (when its events share one) and size, so that a job's first pass, which
-- lays its files out by hour, reads these instead of every event (store.EventHourReader).
-- Chunks written before, and those whose events span hours, have no hour: they are read.

-- +goose Up
ALTER TABLE event_chunks ADD COLUMN event_hour bigint, ADD COLUMN bytes bigint;

-- +goose Down
ALTER TABLE event_chunks DROP COLUMN event_hour, DROP COLUMN bytes;
