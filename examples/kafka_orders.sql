-- Kafka in both directions, with nothing installed: a development Kafka, a
-- producer pipeline and a consumer pipeline.
--
-- Terminal 1:  cargo run --bin quiver -- dev kafka --topic orders:3 --topic orders_dlq
-- Terminal 2:  export KAFKA_BOOTSTRAP=<the address terminal 1 printed>
--              cargo run --bin quiver -- run examples/kafka_orders.sql
--              (Ctrl-C flushes, commits and prints the summary)
-- Then:        ls -R /tmp/quiver-kafka/lake
--
-- Shows: the Kafka sink (a key from key.fields, a header column), the Kafka
-- source with its metadata columns (_key, _partition, _offset, _timestamp,
-- _headers), offsets committed to the consumer group only after the Parquet
-- files are durable, and bad records routed to a dead-letter topic with Kafka
-- Connect's context headers. Against a real cluster, set KAFKA_BOOTSTRAP to it.

-- 1. Generate orders and publish them as JSON, keyed by customer.
CREATE SOURCE generated (
    id BIGINT NOT NULL,
    customer TEXT,
    amount DOUBLE,
    ts TIMESTAMP
) WITH (
    connector = 'datagen',
    'rows.total' = '50000',
    'rows.per.second' = '5000',
    'fields.id.kind' = 'sequence',
    'fields.customer.values' = 'alice,bob,carol,dave',
    'fields.amount.min' = '1',
    'fields.amount.max' = '900'
);

CREATE SINK publish WITH (
    connector = 'kafka',
    'bootstrap.servers' = '${KAFKA_BOOTSTRAP:-127.0.0.1:9092}',
    topic = 'orders',
    'key.fields' = 'customer',
    'key.format' = 'string',
    'compression.type' = 'lz4'
) AS SELECT id, customer, amount, ts,
            map(['producer'], [arrow_cast('quiver-example', 'Binary')]) AS _headers
     FROM generated;

-- 2. Read the topic back into partitioned Parquet.
CREATE SOURCE orders (
    id BIGINT NOT NULL,
    customer TEXT,
    amount DOUBLE,
    ts TIMESTAMP
) WITH (
    connector = 'kafka',
    'bootstrap.servers' = '${KAFKA_BOOTSTRAP:-127.0.0.1:9092}',
    topic = 'orders',
    'key.format' = 'string',
    'scan.startup.mode' = 'earliest'
);

CREATE SINK lake WITH (
    connector = 'filesystem',
    path = '/tmp/quiver-kafka/lake',
    format = 'parquet',
    'partition.by' = 'customer',
    'rollover.interval' = '10s',
    'errors.tolerance' = 'all',
    'errors.deadletterqueue.topic.name' = 'orders_dlq',
    'errors.deadletterqueue.context.headers.enable' = 'true'
) AS SELECT id, customer, round(amount, 2) AS amount, ts,
            _partition AS kafka_partition, _offset AS kafka_offset, _timestamp AS published_at
     FROM orders
     WHERE amount > 10;
