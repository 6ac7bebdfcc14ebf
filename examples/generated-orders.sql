-- A connector file for `quiver server`: generated orders into JSON-lines files,
-- 100 a second, until the connector is stopped or deleted.
--
--   quiver server --worker-config examples/connect-standalone.properties examples/generated-orders.sql
--
-- The connector is named after the file (generated-orders). Over the REST API:
--   curl -s localhost:8083/connectors/generated-orders/status
--   curl -s -X PUT localhost:8083/connectors/generated-orders/pause
CREATE SOURCE orders (id BIGINT NOT NULL, amount DOUBLE) WITH (
    connector = 'datagen',
    'rows.per.second' = '100',
    'fields.id.kind' = 'sequence',
    'fields.amount.min' = '1',
    'fields.amount.max' = '500'
);

CREATE SINK generated_orders WITH (
    connector = 'filesystem',
    path = '/tmp/quiver-server/orders',
    format = 'json',
    'rollover.rows' = '10000'
) AS SELECT id, amount FROM orders;
