-- CSV sensor readings → JSON lines, reading fields out of a JSON text column.
--
-- Run (from the repository root):
--   quiver run examples/sensor_readings.sql --until-caught-up
--   cat /tmp/quiver-examples/readings/*.jsonl
--
-- Shows: the CSV format with a header and quoted fields, json_get_int /
-- json_get_bool on a TEXT column, TRY_CAST (NULL instead of an error) next to
-- CAST (an error routed to the dead-letter queue), and the JSON-lines output.

CREATE SOURCE readings (
    sensor TEXT NOT NULL,
    reading_time TIMESTAMP,
    celsius TEXT,
    payload TEXT
) WITH (
    connector = 'file',
    path = 'examples/data/readings.csv',
    format = 'csv',
    'csv.header' = 'true'
);

CREATE SINK readings_json WITH (
    connector = 'filesystem',
    path = '/tmp/quiver-examples/readings',
    format = 'json',
    'errors.tolerance' = 'all',
    'errors.deadletterqueue.path' = '/tmp/quiver-examples/readings-dlq',
    'errors.log.enable' = 'true'
) AS
SELECT
    sensor,
    reading_time,
    TRY_CAST(celsius AS DOUBLE) AS celsius,
    TRY_CAST(celsius AS DOUBLE) * 9 / 5 + 32 AS fahrenheit,
    json_get_int(payload, '$.battery') AS battery,
    json_get_bool(payload, '$.ok') AS ok
FROM readings;
