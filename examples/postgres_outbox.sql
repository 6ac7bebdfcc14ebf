-- The transactional outbox, as Debezium's outbox event router does it, in Quiver
-- SQL: a service writes its business rows and an event row into `outbox` in one
-- transaction; change data capture reads the outbox rows from the WAL and routes
-- each event to the Kafka topic `outbox.event.{aggregatetype}`, keyed by
-- `aggregateid` (so one aggregate's events stay in order on one partition), with
-- the payload as the value and `id` / `type` as headers. Deletes of outbox rows
-- (services often delete an event right after inserting it) are left out, as are
-- updates and truncates: only inserts are events.
--
-- Needs the local PostgreSQL with wal_level = logical (tests/run sets it) and a
-- Kafka broker (`quiver dev kafka`, Tansu, or a real cluster; topics are created
-- by the broker on first write, or beforehand). Set up:
--   psql -h 127.0.0.1 -U postgres -d test -c "CREATE TABLE IF NOT EXISTS outbox (
--     id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text NOT NULL,
--     aggregateid text NOT NULL, type text NOT NULL, payload jsonb)"
-- Run it (Ctrl-C to stop):
--   quiver run examples/postgres_outbox.sql
-- Then write an event the way a service does, in its own transaction:
--   psql -h 127.0.0.1 -U postgres -d test -c "BEGIN;
--     INSERT INTO outbox (aggregatetype, aggregateid, type, payload)
--       VALUES ('order', 'o-1', 'OrderCreated', '{\"total\": 12.5}');
--     DELETE FROM outbox; COMMIT"
-- and read it from the topic outbox.event.order.

CREATE SOURCE outbox (
  id STRING NOT NULL,
  aggregatetype STRING NOT NULL,
  aggregateid STRING NOT NULL,
  type STRING NOT NULL,
  payload STRING
) WITH (
  connector = 'postgres-cdc',
  'database.hostname' = '127.0.0.1',
  'database.dbname' = 'test',
  'database.user' = 'postgres',
  'table.include.list' = 'public\.outbox',
  'publication.autocreate.mode' = 'filtered',
  'slot.name' = 'quiver_outbox',
  -- Only inserts are events; existing rows are not replayed as events either.
  'skipped.operations' = 'u,d,t',
  'snapshot.mode' = 'no_data'
);

CREATE SINK outbox_events WITH (
  connector = 'kafka',
  'bootstrap.servers' = '127.0.0.1:9092',
  format = 'raw',
  'sink.delivery.guarantee' = 'exactly-once'
) AS SELECT
  'outbox.event.' || aggregatetype AS _topic,
  aggregateid AS _key,
  payload AS value,
  map(['id', 'type'], [id, type]) AS _headers
FROM outbox;
