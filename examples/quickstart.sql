-- Quickstart: generate orders, transform them with SQL, write day-partitioned Parquet.
--
-- Run:   cargo run --bin quiver -- run examples/quickstart.sql
-- Then:  ls -R /tmp/quiver-quickstart/orders
--
-- Shows: the datagen source (sequences, random ranges, value lists, NULLs),
-- a stateless SELECT (functions, CASE, casts, a WHERE filter), and the
-- filesystem sink writing zstd Parquet into day=YYYY-MM-DD/ folders. The run ends
-- by itself after 100 000 rows and prints a summary.

CREATE SOURCE orders (
    id BIGINT NOT NULL,
    customer TEXT,
    country TEXT,
    amount DOUBLE,
    ts TIMESTAMP
) WITH (
    connector = 'datagen',
    rows.total = '100000',
    seed = '42',
    'fields.id.kind' = 'sequence',
    'fields.id.start' = '1',
    'fields.customer.length' = '8',
    'fields.customer.null.rate' = '0.05',
    'fields.country.values' = 'DE,FR,NL,SE,US',
    'fields.amount.min' = '-20',
    'fields.amount.max' = '500',
    'fields.ts.min' = '2024-06-01 00:00:00',
    'fields.ts.max' = '2024-06-07 23:59:59'
);

CREATE SINK orders_lake WITH (
    connector = 'filesystem',
    path = '/tmp/quiver-quickstart/orders',
    format = 'parquet',
    'partition.by' = 'day',
    'rollover.rows' = '50000'
) AS
SELECT
    id,
    coalesce(upper(customer), 'ANONYMOUS') AS customer,
    country,
    CAST(round(amount * 100) AS BIGINT) AS cents,
    CASE WHEN amount >= 250 THEN 'large' ELSE 'small' END AS size,
    ts,
    CAST(date_trunc('day', ts) AS DATE) AS day
FROM orders
WHERE amount > 0;
