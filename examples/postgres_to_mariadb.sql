-- PostgreSQL → MariaDB, kept in sync: a polling source picks up new and changed
-- rows (timestamp+incrementing, exact across restarts) and an upserting sink
-- writes them, with the positions committed in the target's own transactions.
--
-- Needs the local PostgreSQL and MariaDB (database `test` on both). Set up:
--   psql -h 127.0.0.1 -U postgres -d test -c "CREATE TABLE IF NOT EXISTS accounts (
--     id serial PRIMARY KEY, owner text, balance numeric(12, 2), tags text[],
--     updated timestamptz NOT NULL DEFAULT now());
--     INSERT INTO accounts (owner, balance, tags) VALUES ('ada', 10.50, '{vip}'), ('bob', 3, '{}')"
-- Run it (Ctrl-C to stop; add --until-caught-up to stop once caught up):
--   quiver run examples/postgres_to_mariadb.sql
-- Then change a row in PostgreSQL and watch it arrive:
--   psql -h 127.0.0.1 -U postgres -d test -c "UPDATE accounts SET balance = 99, updated = now() WHERE id = 1"
--   mysql -h 127.0.0.1 -u root test -e "SELECT * FROM accounts_copy"

CREATE SOURCE accounts (
  id INT NOT NULL,
  owner STRING,
  balance DECIMAL(12, 2),
  tags STRING[],
  updated TIMESTAMP WITH TIME ZONE
) WITH (
  connector = 'postgres',
  'connection.url' = 'jdbc:postgresql://127.0.0.1:5432/test?user=postgres',
  mode = 'timestamp+incrementing',
  'incrementing.column.name' = 'id',
  'timestamp.column.name' = 'updated',
  'table.whitelist' = 'accounts',
  'poll.interval.ms' = '1000'
);

CREATE SINK accounts_copy WITH (
  connector = 'mysql',
  'connection.url' = 'jdbc:mariadb://127.0.0.1:3306/test?user=root',
  'insert.mode' = 'upsert',
  'pk.mode' = 'record_value',
  'pk.fields' = 'id',
  'auto.create' = 'true',
  'auto.evolve' = 'true',
  'sink.delivery.guarantee' = 'exactly-once'
) AS SELECT id, upper(owner) AS owner, balance, array_length(tags, 1) AS tag_count, updated FROM accounts;
