-- JSON-lines files → cleaned Parquet, partitioned by order status, with bad
-- records kept in a dead-letter queue instead of stopping the pipeline.
--
-- Run (from the repository root):
--   quiver run examples/orders_to_parquet.sql --until-caught-up
--   cat /tmp/quiver-examples/orders-dlq/orders_by_status.jsonl
--
-- Shows: the file source over a folder of JSON lines, nested objects read into a
-- STRUCT column, a cast that fails on one record ("n/a") and a record whose id is
-- not a number: both land in the dead-letter queue with file, line, stage and
-- error, and every other row is written.

CREATE SOURCE orders (
    order_id BIGINT NOT NULL,
    customer STRUCT<name TEXT, email TEXT>,
    items INT,
    total TEXT,
    status TEXT,
    created TIMESTAMP
) WITH (
    connector = 'file',
    path = 'examples/data/orders.jsonl',
    format = 'json'
);

CREATE SINK orders_by_status WITH (
    connector = 'filesystem',
    path = '/tmp/quiver-examples/orders',
    format = 'parquet',
    'partition.by' = 'status',
    'errors.tolerance' = 'all',
    'errors.deadletterqueue.path' = '/tmp/quiver-examples/orders-dlq'
) AS
SELECT
    order_id,
    customer['name'] AS customer_name,
    sha256_hex(lower(customer['email'])) AS email_hash,
    items,
    CAST(total AS DECIMAL(10, 2)) AS total,
    status,
    format_timestamp(created, 'yyyy-MM-dd') AS order_date
FROM orders
WHERE status <> 'cancelled';
