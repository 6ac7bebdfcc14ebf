//! The PostgreSQL side of the table sink ([`crate::jdbc::table_sink`]): table
//! set-up, one transaction per batch (binary COPY, staging-table merges), bad-row
//! isolation under savepoints.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tracing::info;

use super::PostgresSinkConfig;
use super::config::{error, is_lost};
use super::types::pg_type;
use crate::api::{ConnectorError, Offsets, Result, SinkContext};
use crate::jdbc::batch::{BatchRows, Bisection};
use crate::jdbc::sink::{InsertMode, KAFKA_PK, PkMode, qualified};
use crate::jdbc::table_sink::{Database, TableSink};
use crate::jdbc::values::Cell;

/// `"ident"` with embedded quotes doubled: no table or column name can inject SQL.
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A target table as the sink writes it.
struct Table {
    /// Quoted, possibly schema-qualified name.
    quoted: String,
    /// As the user wrote it, for messages.
    name: String,
    /// Column names in COPY order: the output columns, then the key columns the
    /// sink adds (Kafka coordinates or the record key).
    columns: Vec<String>,
    types: Vec<Type>,
    /// Key column names (for upsert and update).
    key: Vec<String>,
    /// The table's own column types equal ours: COPY straight in. Otherwise rows go
    /// through a staging table and an INSERT … SELECT, which applies PostgreSQL's
    /// assignment casts (an INTEGER column fed BIGINT values, say).
    direct: bool,
    /// Every column type has an equality operator (no json, xml or geometric
    /// types), so an upsert can skip rows whose values did not change.
    comparable: bool,
}

/// Types without an equality operator: json, xml, point, lseg, path, box, polygon, line, circle.
const NOT_COMPARABLE: [u32; 9] = [114, 142, 600, 601, 602, 603, 604, 628, 718];

/// The database refused the data (constraint, type, value): isolate the rows.
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        let class = &c.code()[..2];
        // 22: data exception, 23: integrity constraint violation.
        class == "22" || class == "23" || *c == SqlState::DATATYPE_MISMATCH
    })
}

pub(crate) struct Postgres {
    cfg: PostgresSinkConfig,
    /// The sink's name, for logs.
    name: String,
    schema: arrow::datatypes::SchemaRef,
    client: Option<Client>,
    tables: HashMap<String, Arc<Table>>,
    /// Exactly-once: this task instance's epoch in `quiver_task_epochs` (see
    /// [`Postgres::claim_epoch`]), and the task's index.
    epoch: Option<(i32, i64)>,
}

/// Replaces a pipeline's rows in `quiver_offsets` with `to` (or deletes them) in
/// one transaction. A database without the table has nothing to reset.
pub(crate) async fn overwrite_offsets(cfg: &PostgresSinkConfig, pipeline: &str, to: Option<&Offsets>) -> Result<()> {
    let target = cfg.conn.target.clone();
    let context = format!("resetting the offsets in quiver_offsets in {target}");
    let mut client = cfg.conn.connect().await?;
    let tx = client.transaction().await.map_err(|e| error(&context, &e))?;
    match tx
        .execute("DELETE FROM quiver_offsets WHERE pipeline = $1", &[&pipeline])
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => return Ok(()),
        Err(e) => return Err(error(&context, &e)),
    }
    for (partition, position) in to.map(|o| o.0.iter()).into_iter().flatten() {
        tx.execute(
            "INSERT INTO quiver_offsets (pipeline, source_partition, position, updated_at) VALUES ($1, $2, $3, now())",
            &[&pipeline, partition, position],
        )
        .await
        .map_err(|e| error(&context, &e))?;
    }
    tx.commit().await.map_err(|e| error(&context, &e))
}

/// Runs a `CREATE TABLE IF NOT EXISTS`. Two sessions creating the same table at
/// once (sibling tasks starting together) make PostgreSQL fail the slower one on
/// its catalog's unique index although the table then exists: that counts as done.
async fn create_if_missing(client: &Client, sql: &str) -> std::result::Result<(), tokio_postgres::Error> {
    match client.batch_execute(sql).await {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) || e.code() == Some(&SqlState::DUPLICATE_TABLE) => {
            Ok(())
        }
        other => other,
    }
}

/// Connects, prepares `quiver_offsets` and a fixed table, and returns the sink.
pub(crate) async fn start(cfg: PostgresSinkConfig, ctx: SinkContext) -> Result<TableSink<Postgres>> {
    let (table_cfg, location) = (cfg.table.clone(), cfg.conn.target.clone());
    let db = Postgres::start(cfg, &ctx).await?;
    Ok(TableSink::new(db, table_cfg, ctx.name, location))
}

impl Postgres {
    async fn start(cfg: PostgresSinkConfig, ctx: &SinkContext) -> Result<Self> {
        let mut sink = Self {
            name: ctx.name.clone(),
            schema: Arc::clone(&ctx.schema),
            client: None,
            tables: HashMap::new(),
            epoch: None,
            cfg,
        };
        sink.connect().await?;
        if sink.cfg.table.exactly_once {
            let target = sink.cfg.conn.target.clone();
            for ddl in [
                "CREATE TABLE IF NOT EXISTS quiver_offsets (pipeline TEXT NOT NULL, source_partition TEXT NOT NULL, \
                 position JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, source_partition))",
                "CREATE TABLE IF NOT EXISTS quiver_task_epochs (pipeline TEXT NOT NULL, task INTEGER NOT NULL, \
                 epoch BIGINT NOT NULL, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, task))",
            ] {
                create_if_missing(sink.connect().await?, ddl)
                    .await
                    .map_err(|e| error(&format!("creating Quiver's bookkeeping tables in {target}"), &e))?;
            }
            sink.claim_epoch(ctx.task.index).await?;
        }
        if let Some(t) = sink.cfg.table.table.clone().filter(|t| !t.contains("${topic}")) {
            sink.table(&t).await?;
        }
        info!(sink = %sink.name, target = %sink.cfg.conn.target, "PostgreSQL sink started");
        Ok(sink)
    }

    /// Exactly-once: takes a new epoch for this task of the pipeline. Every batch's
    /// transaction checks that the epoch is still this instance's, under a row lock,
    /// so once a newer instance of the task started (on another worker, after a
    /// rebalance) an older one that still runs — a paused worker that came back —
    /// can commit no rows and no positions: its transaction is rolled back and the
    /// task fails with [`ConnectorError::Fenced`]. Kafka's transactional ids fence
    /// the same way.
    async fn claim_epoch(&mut self, task: u32) -> Result<()> {
        let (pipeline, target) = (self.name.clone(), self.cfg.conn.target.clone());
        let task = i32::try_from(task).unwrap_or(i32::MAX);
        let row = self
            .connect()
            .await?
            .query_one(
                "INSERT INTO quiver_task_epochs (pipeline, task, epoch) VALUES ($1, $2, 1) \
                 ON CONFLICT (pipeline, task) DO UPDATE SET epoch = quiver_task_epochs.epoch + 1, started_at = now() \
                 RETURNING epoch",
                &[&pipeline, &task],
            )
            .await
            .map_err(|e| {
                error(
                    &format!("claiming task {task}'s epoch in quiver_task_epochs in {target}"),
                    &e,
                )
            })?;
        self.epoch = Some((task, row.get(0)));
        Ok(())
    }

    async fn connect(&mut self) -> Result<&Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(self.cfg.conn.connect().await?);
        }
        self.client
            .as_ref()
            .ok_or_else(|| ConnectorError::Internal("no PostgreSQL connection".into()))
    }

    /// Looks the table up (creating or widening it if allowed) once per name.
    async fn table(&mut self, name: &str) -> Result<Arc<Table>> {
        if let Some(t) = self.tables.get(name) {
            return Ok(Arc::clone(t));
        }
        let (schema_name, table_name, quoted) = qualified(name, quote);
        // Our columns and their types.
        let mut columns = Vec::new();
        let mut types = Vec::new();
        let mut ddl = Vec::new();
        for i in &self.cfg.table.columns {
            let f = self.schema.field(*i);
            let (ty, sql) =
                pg_type(f.data_type()).ok_or_else(|| ConnectorError::Internal(format!("no type for {}", f.name())))?;
            columns.push(f.name().clone());
            types.push(ty);
            ddl.push((f.name().clone(), sql, !f.is_nullable()));
        }
        let key: Vec<String> = match &self.cfg.table.pk {
            PkMode::None => Vec::new(),
            PkMode::Kafka => {
                for (c, ty, sql) in [
                    (KAFKA_PK[0], Type::TEXT, "TEXT"),
                    (KAFKA_PK[1], Type::INT4, "INTEGER"),
                    (KAFKA_PK[2], Type::INT8, "BIGINT"),
                ] {
                    columns.push(c.to_string());
                    types.push(ty);
                    ddl.push((c.to_string(), sql.to_string(), true));
                }
                KAFKA_PK.iter().map(|s| s.to_string()).collect()
            }
            PkMode::RecordKey(col) => {
                let f = self
                    .schema
                    .field_with_name("_key")
                    .map_err(|e| ConnectorError::Internal(e.to_string()))?;
                let (ty, sql) =
                    pg_type(f.data_type()).ok_or_else(|| ConnectorError::Internal("no type for _key".into()))?;
                columns.push(col.clone());
                types.push(ty);
                ddl.push((col.clone(), sql, true));
                vec![col.clone()]
            }
            PkMode::RecordValue(fields) => fields.clone(),
        };
        let (target, auto_create, auto_evolve, sink) = (
            self.cfg.conn.target.clone(),
            self.cfg.table.auto_create,
            self.cfg.table.auto_evolve,
            self.name.clone(),
        );
        let client = self.connect().await?;
        let existing = client
            .query(
                "SELECT a.attname, a.atttypid FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname = $1 AND n.nspname = coalesce($2, current_schema()) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&table_name, &schema_name],
            )
            .await
            .map_err(|e| error(&format!("looking up table {name} in {target}"), &e))?;
        let found: HashMap<String, u32> = existing
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, u32>(1)))
            .collect();
        if found.is_empty() {
            if !auto_create {
                return Err(ConnectorError::Config(format!(
                    "table {name} does not exist in {target} (set auto.create = 'true' to create it)"
                )));
            }
            let mut cols: Vec<String> = ddl
                .iter()
                .map(|(c, t, not_null)| format!("{} {t}{}", quote(c), if *not_null { " NOT NULL" } else { "" }))
                .collect();
            if !key.is_empty() {
                cols.push(format!(
                    "PRIMARY KEY ({})",
                    key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
                ));
            }
            let sql = format!("CREATE TABLE IF NOT EXISTS {quoted} ({})", cols.join(", "));
            create_if_missing(client, &sql)
                .await
                .map_err(|e| error(&format!("creating table {name}"), &e))?;
            info!(sink = %sink, table = %name, "created table");
        } else {
            let missing: Vec<&(String, String, bool)> = ddl.iter().filter(|(c, _, _)| !found.contains_key(c)).collect();
            if !missing.is_empty() {
                if !auto_evolve {
                    let names: Vec<&str> = missing.iter().map(|(c, _, _)| c.as_str()).collect();
                    return Err(ConnectorError::Config(format!(
                        "table {name} has no column {} (set auto.evolve = 'true' to add it)",
                        names.join(", ")
                    )));
                }
                for (c, t, _) in missing {
                    // Added nullable, as Kafka Connect does: existing rows have no value.
                    let sql = format!("ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS {} {t}", quote(c));
                    client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| error(&format!("adding column {c} to {name}"), &e))?;
                    info!(sink = %sink, table = %name, column = %c, "added column");
                }
            }
        }
        let direct = columns
            .iter()
            .zip(&types)
            .all(|(c, t)| found.get(c).is_none_or(|oid| *oid == t.oid()));
        let comparable = found.values().all(|oid| !NOT_COMPARABLE.contains(oid));
        let t = Arc::new(Table {
            quoted,
            name: name.to_string(),
            columns,
            types,
            key,
            direct,
            comparable,
        });
        self.tables.insert(name.to_string(), Arc::clone(&t));
        Ok(t)
    }

    /// Writes a batch's rows, every table, in one transaction. Each group of rows is
    /// tried under a savepoint; on a data error it is rolled back and split until
    /// the bad rows are found. With exactly-once, the batch's source positions are
    /// written to `quiver_offsets` in the same transaction. Returns (row, database
    /// error) for each bad row.
    async fn write_batch(
        &mut self,
        work: &[(Arc<Table>, Vec<usize>)],
        data: &BatchRows<'_>,
        offsets: Option<(&str, &Offsets)>,
    ) -> Result<Vec<(usize, String)>> {
        let (mode, batch_size, target) = (
            self.cfg.table.insert_mode,
            self.cfg.table.batch_size,
            self.cfg.conn.target.clone(),
        );
        self.connect().await?;
        let Some(client) = self.client.as_mut() else {
            return Err(ConnectorError::Internal("no PostgreSQL connection".into()));
        };
        let fence = self.epoch;
        let outcome = async {
            let mut tx = client.transaction().await?;
            let mut bad = Vec::new();
            for (table, rows) in work {
                let mut groups = Bisection::new(rows);
                while let Some(rows) = groups.next_group() {
                    let sp = tx.savepoint("quiver_rows").await?;
                    match write_rows(&sp, mode, batch_size, table, data, &rows).await {
                        Ok(()) => sp.commit().await?,
                        Err(e) if is_data_error(&e) => {
                            sp.rollback().await?;
                            if let Some(row) = groups.refused(&rows) {
                                bad.push((row, format!("table {}: {}", table.name, db_message(&e))));
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            if let Some((pipeline, positions)) = offsets {
                if let Some((task, epoch)) = fence {
                    let mine = tx
                        .execute(
                            "UPDATE quiver_task_epochs SET epoch = epoch WHERE pipeline = $1 AND task = $2 AND epoch = $3",
                            &[&pipeline, &task, &epoch],
                        )
                        .await?;
                    if mine == 0 {
                        return Ok(Err(task));
                    }
                }
                for (partition, position) in &positions.0 {
                    tx.execute(
                        "INSERT INTO quiver_offsets (pipeline, source_partition, position, updated_at) VALUES ($1, $2, $3, now()) \
                         ON CONFLICT (pipeline, source_partition) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at",
                        &[&pipeline, partition, position],
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(Ok(bad))
        }
        .await;
        match outcome {
            Ok(Ok(bad)) => Ok(bad),
            Ok(Err(task)) => Err(ConnectorError::Fenced(format!(
                "task {task} of '{}' was started again (on another worker): this instance writes nothing more to {target}",
                self.name
            ))),
            Err(e) if is_lost(&e) => {
                self.client = None;
                Err(error(&format!("writing to {target}"), &e))
            }
            Err(e) => {
                let tables: Vec<&str> = work.iter().map(|(t, _)| t.name.as_str()).collect();
                Err(error(&format!("writing to {} in {target}", tables.join(", ")), &e))
            }
        }
    }

    async fn read_offsets(&mut self, pipeline: &str) -> Result<Option<Offsets>> {
        let name = pipeline.to_string();
        let target = self.cfg.conn.target.clone();
        let client = self.connect().await?;
        let rows = client
            .query(
                "SELECT source_partition, position FROM quiver_offsets WHERE pipeline = $1",
                &[&name],
            )
            .await
            .map_err(|e| error(&format!("reading quiver_offsets in {target}"), &e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(Offsets(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, serde_json::Value>(1)))
                .collect(),
        )))
    }
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(
        || e.to_string(),
        |d| match d.detail() {
            Some(detail) => format!("{}: {} ({detail})", d.code().code(), d.message()),
            None => format!("{}: {}", d.code().code(), d.message()),
        },
    )
}

/// COPYs rows into the table (straight in, or into a staging table and merged),
/// inside the caller's transaction.
async fn write_rows(
    tx: &tokio_postgres::Transaction<'_>,
    mode: InsertMode,
    batch_size: usize,
    table: &Table,
    data: &BatchRows<'_>,
    rows: &[usize],
) -> std::result::Result<(), tokio_postgres::Error> {
    let deletes = data.deletes.is_some();
    let col_list = table.columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let staged = mode != InsertMode::Insert || !table.direct || deletes;
    let into = if staged {
        // A staging table with our own column types, dropped once merged.
        let defs: Vec<String> = table
            .columns
            .iter()
            .zip(&table.types)
            .map(|(c, t)| format!("{} {}", quote(c), type_sql(t)))
            .collect();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE quiver_stage ({}, quiver_seq BIGINT, quiver_delete BOOLEAN) ON COMMIT DROP",
            defs.join(", ")
        ))
        .await?;
        "quiver_stage".to_string()
    } else {
        table.quoted.clone()
    };
    let mut types = table.types.clone();
    if staged {
        types.push(Type::INT8);
        types.push(Type::BOOL);
    }
    let copy_cols = if staged {
        format!("{col_list}, quiver_seq, quiver_delete")
    } else {
        col_list.clone()
    };
    // One row's values, reused for every row (no allocation per row).
    let mut values: Vec<Cell<'_>> = Vec::with_capacity(types.len());
    for chunk in rows.chunks(batch_size) {
        let sink = tx
            .copy_in(&format!("COPY {into} ({copy_cols}) FROM STDIN (FORMAT binary)"))
            .await?;
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
        for (n, &row) in chunk.iter().enumerate() {
            values.clear();
            data.push_row(row, &mut values);
            if staged {
                values.push(Cell::I64(n as i64));
                values.push(Cell::Bool(data.is_delete(row)));
            }
            writer.as_mut().write_raw(values.iter()).await?;
        }
        writer.finish().await?;
        if staged {
            merge(tx, table, mode, &col_list, deletes).await?;
            tx.batch_execute("TRUNCATE quiver_stage").await?;
        }
    }
    if staged {
        tx.batch_execute("DROP TABLE quiver_stage").await?;
    }
    Ok(())
}

/// Moves the staged rows into the table: insert, upsert or update, then deletes.
/// Within one chunk the last row for a key wins, as it would with row-by-row
/// statements, so a key written and then deleted ends up deleted.
async fn merge(
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    mode: InsertMode,
    col_list: &str,
    deletes: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let keys = table.key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let latest = |what: &str| {
        if table.key.is_empty() {
            format!("SELECT {what} FROM quiver_stage WHERE NOT quiver_delete ORDER BY quiver_seq")
        } else {
            format!(
                "SELECT * FROM (SELECT DISTINCT ON ({keys}) {what}, quiver_delete FROM quiver_stage ORDER BY {keys}, quiver_seq DESC) AS l WHERE NOT l.quiver_delete"
            )
        }
    };
    let written = latest(col_list);
    // Only the table's columns, in order, from the de-duplicated rows.
    let pick = table
        .columns
        .iter()
        .map(|c| format!("w.{}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let others: Vec<&String> = table.columns.iter().filter(|c| !table.key.contains(c)).collect();
    let sql = match mode {
        InsertMode::Insert => format!(
            "INSERT INTO {} ({col_list}) SELECT {pick} FROM ({written}) AS w",
            table.quoted
        ),
        InsertMode::Upsert if others.is_empty() => {
            format!(
                "INSERT INTO {} ({col_list}) SELECT {pick} FROM ({written}) AS w ON CONFLICT ({keys}) DO NOTHING",
                table.quoted
            )
        }
        InsertMode::Upsert => {
            let set: Vec<String> = others.iter().map(|c| format!("{0} = EXCLUDED.{0}", quote(c))).collect();
            // A row whose values did not change is not rewritten: no new row version,
            // no index or WAL traffic (replays and snapshots re-send mostly unchanged rows).
            let unchanged = if table.comparable {
                let old: Vec<String> = others.iter().map(|c| format!("t.{}", quote(c))).collect();
                let new: Vec<String> = others.iter().map(|c| format!("EXCLUDED.{}", quote(c))).collect();
                format!(" WHERE ({}) IS DISTINCT FROM ({})", old.join(", "), new.join(", "))
            } else {
                String::new()
            };
            format!(
                "INSERT INTO {} AS t ({col_list}) SELECT {pick} FROM ({written}) AS w ON CONFLICT ({keys}) DO UPDATE SET {}{unchanged}",
                table.quoted,
                set.join(", ")
            )
        }
        InsertMode::Update => {
            let set: Vec<String> = others.iter().map(|c| format!("{0} = s.{0}", quote(c))).collect();
            let on: Vec<String> = table.key.iter().map(|k| format!("t.{0} = s.{0}", quote(k))).collect();
            if set.is_empty() {
                String::new()
            } else {
                format!(
                    "UPDATE {} AS t SET {} FROM ({written}) AS s WHERE {}",
                    table.quoted,
                    set.join(", "),
                    on.join(" AND ")
                )
            }
        }
    };
    if !sql.is_empty() {
        tx.batch_execute(&sql).await?;
    }
    if deletes {
        let on: Vec<String> = table.key.iter().map(|k| format!("t.{0} = d.{0}", quote(k))).collect();
        let last = format!(
            "SELECT DISTINCT ON ({keys}) {keys}, quiver_delete FROM quiver_stage ORDER BY {keys}, quiver_seq DESC"
        );
        tx.batch_execute(&format!(
            "DELETE FROM {} AS t USING ({last}) AS d WHERE d.quiver_delete AND {}",
            table.quoted,
            on.join(" AND ")
        ))
        .await?;
    }
    Ok(())
}

fn type_sql(t: &Type) -> String {
    match *t {
        Type::NUMERIC => "NUMERIC".into(),
        Type::TIMESTAMPTZ => "TIMESTAMPTZ".into(),
        Type::TIMESTAMP => "TIMESTAMP".into(),
        Type::FLOAT8 => "DOUBLE PRECISION".into(),
        _ => t.name().to_string(),
    }
}

#[async_trait]
impl Database for Postgres {
    type Prepared = ();
    const NAME: &'static str = "PostgreSQL";

    fn prepare(&self, _rows: &mut BatchRows<'_>) -> ((), Vec<(usize, String)>) {
        // Binary COPY takes every value `Column` can convert.
        ((), Vec::new())
    }

    async fn write(
        &mut self,
        rows: &BatchRows<'_>,
        _prepared: &(),
        offsets: Option<(&str, &Offsets)>,
    ) -> Result<Vec<(usize, String)>> {
        let mut work = Vec::with_capacity(rows.by_table.len());
        for (name, table_rows) in &rows.by_table {
            work.push((self.table(name).await?, table_rows.clone()));
        }
        self.write_batch(&work, rows, offsets).await
    }

    async fn stored_offsets(&mut self, pipeline: &str) -> Result<Option<Offsets>> {
        self.read_offsets(pipeline).await
    }
}
