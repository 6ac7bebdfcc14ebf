//! The MySQL/MariaDB side of the table sink ([`crate::jdbc::table_sink`]): table
//! set-up, one transaction per batch of multi-row statements, bad-row isolation
//! under savepoints.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tracing::info;

use super::MysqlSinkConfig;
use super::config::{error, is_lost, reason};
use super::types::{mysql_type, push_field, push_literal, push_str_literal, quote};
use crate::api::{ConnectorError, Offsets, Result, SinkContext};
use crate::jdbc::batch::{BatchRows, Bisection};
use crate::jdbc::sink::{InsertMode, KAFKA_PK, PkMode, qualified};
use crate::jdbc::table_sink::{Database, TableSink};
use crate::jdbc::values::Cell;

/// Statements are cut at this size, well under MySQL's and MariaDB's default
/// `max_allowed_packet` (16 MiB in MariaDB 10.11, 64 MiB in MySQL 8).
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// A target table as the sink writes it.
struct Table {
    /// Quoted, possibly database-qualified name.
    quoted: String,
    /// As the user wrote it, for messages.
    name: String,
    /// Quoted column names in value order: the output columns, then the key
    /// columns the sink adds (Kafka coordinates or the record key).
    columns: Vec<String>,
    /// Positions of the key columns in `columns`.
    key: Vec<usize>,
}

/// The database refused the data (constraint, type, value): isolate the rows.
fn is_data_error(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Server(s) => {
            s.state.starts_with("22")
                || s.state.starts_with("23")
                // Incorrect value, data truncated, bad null, out of range, invalid JSON, check constraint.
                || matches!(s.code, 1048 | 1062 | 1264 | 1265 | 1292 | 1366 | 1406 | 1451 | 1452 | 1690 | 3140 | 3819 | 4025)
        }
        _ => false,
    }
}

/// A batch's rows rendered once as SQL literals: one text buffer, each cell's span.
pub(crate) struct Rendered {
    text: String,
    /// (start, end) of every cell, row after row.
    cells: Vec<(u32, u32)>,
    width: usize,
    /// Batch row → index of its rendered row.
    index: Vec<u32>,
}

impl Rendered {
    fn cell(&self, row: usize, col: usize) -> &str {
        let (a, b) = self.cells[self.index[row] as usize * self.width + col];
        &self.text[a as usize..b as usize]
    }
    fn push_tuple(&self, out: &mut String, row: usize, cols: impl Iterator<Item = usize>) {
        out.push('(');
        for (n, c) in cols.enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            out.push_str(self.cell(row, c));
        }
        out.push(')');
    }
}

pub(crate) struct Mysql {
    cfg: MysqlSinkConfig,
    /// The sink's name, for logs.
    name: String,
    schema: arrow::datatypes::SchemaRef,
    conn: Option<Conn>,
    tables: HashMap<String, Arc<Table>>,
    /// Appends stream as `LOAD DATA LOCAL INFILE` (the server allows it, insert
    /// mode, no deletes); otherwise, or when a load is not clean, multi-row INSERTs.
    load_data: bool,
}

/// Replaces a pipeline's rows in `quiver_offsets` with `to` (or deletes them) in
/// one transaction. A database without the table has nothing to reset.
pub(crate) async fn overwrite_offsets(cfg: &MysqlSinkConfig, pipeline: &str, to: Option<&Offsets>) -> Result<()> {
    let context = format!("resetting the offsets in quiver_offsets in {}", cfg.conn.target);
    let mut conn = cfg.conn.connect().await?;
    let mut delete = String::from("DELETE FROM quiver_offsets WHERE pipeline = ");
    push_str_literal(&mut delete, pipeline);
    let statements = std::iter::once(delete).chain(to.and_then(|o| offsets_statement(pipeline, o)));
    let outcome: std::result::Result<(), mysql_async::Error> = async {
        conn.query_drop("START TRANSACTION").await?;
        for sql in statements {
            conn.query_drop(sql).await?;
        }
        conn.query_drop("COMMIT").await
    }
    .await;
    match outcome {
        Ok(()) => Ok(()),
        // ER_NO_SUCH_TABLE: the sink never ran exactly-once here.
        Err(mysql_async::Error::Server(e)) if e.code == 1146 => Ok(()),
        Err(e) => {
            let _ = conn.query_drop("ROLLBACK").await;
            Err(error(&context, &e))
        }
    }
}

/// Connects, prepares `quiver_offsets` and a fixed table, and returns the sink.
pub(crate) async fn start(cfg: MysqlSinkConfig, ctx: SinkContext) -> Result<TableSink<Mysql>> {
    let (table_cfg, location) = (cfg.table.clone(), cfg.conn.target.clone());
    let db = Mysql::start(cfg, &ctx).await?;
    Ok(TableSink::new(db, table_cfg, ctx.name, location))
}

impl Mysql {
    async fn start(cfg: MysqlSinkConfig, ctx: &SinkContext) -> Result<Self> {
        let mut sink = Self {
            name: ctx.name.clone(),
            schema: Arc::clone(&ctx.schema),
            conn: None,
            tables: HashMap::new(),
            load_data: false,
            cfg,
        };
        sink.connect().await?;
        if sink.cfg.table.insert_mode == InsertMode::Insert && sink.cfg.table.deletes.is_none() {
            let allowed: Vec<i64> = sink
                .fetch("SELECT @@local_infile".to_string(), "reading @@local_infile")
                .await?;
            sink.load_data = allowed.first() == Some(&1);
            if !sink.load_data {
                info!(sink = %sink.name, "the server has local_infile off: appends use multi-row INSERT");
            }
        }
        if sink.cfg.table.exactly_once {
            let ddl = "CREATE TABLE IF NOT EXISTS quiver_offsets (pipeline VARCHAR(255) NOT NULL, source_partition VARCHAR(255) NOT NULL, \
                       position TEXT NOT NULL, updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (pipeline, source_partition)) \
                       DEFAULT CHARSET = utf8mb4";
            sink.execute(ddl.to_string(), "creating quiver_offsets").await?;
        }
        if let Some(t) = sink.cfg.table.table.clone().filter(|t| !t.contains("${topic}")) {
            sink.table(&t).await?;
        }
        info!(sink = %sink.name, target = %sink.cfg.conn.target, "MySQL sink started");
        Ok(sink)
    }

    async fn connect(&mut self) -> Result<&mut Conn> {
        if self.conn.is_none() {
            self.conn = Some(self.cfg.conn.connect().await?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| ConnectorError::Internal("no MySQL connection".into()))
    }

    /// Runs a statement; a lost connection is dropped so the next call reconnects.
    async fn execute(&mut self, sql: String, context: &str) -> Result<()> {
        let outcome = self.connect().await?.query_drop(sql).await;
        outcome.map_err(|e| self.failed(context, &e))
    }

    /// Runs a query and collects its rows (same connection handling as `execute`).
    async fn fetch<T: mysql_async::prelude::FromRow + Send + 'static>(
        &mut self,
        sql: String,
        context: &str,
    ) -> Result<Vec<T>> {
        let outcome = self.connect().await?.query(sql).await;
        outcome.map_err(|e| self.failed(context, &e))
    }

    fn failed(&mut self, context: &str, e: &mysql_async::Error) -> ConnectorError {
        if is_lost(e) {
            self.conn = None;
        }
        error(&format!("{context} in {}", self.cfg.conn.target), e)
    }

    /// Looks the table up (creating or widening it if allowed) once per name.
    async fn table(&mut self, name: &str) -> Result<Arc<Table>> {
        if let Some(t) = self.tables.get(name) {
            return Ok(Arc::clone(t));
        }
        let (db, table_name, quoted) = qualified(name, quote);
        let key_names = self.cfg.table.pk.key_columns();
        // (name, DDL type, NOT NULL) of every column we write.
        let mut ddl: Vec<(String, String, bool)> = Vec::new();
        for i in &self.cfg.table.columns {
            let f = self.schema.field(*i);
            let ty = mysql_type(f.data_type(), key_names.contains(f.name()))
                .ok_or_else(|| ConnectorError::Internal(format!("no type for {}", f.name())))?;
            ddl.push((f.name().clone(), ty, !f.is_nullable()));
        }
        match &self.cfg.table.pk {
            PkMode::Kafka => {
                for (c, ty) in KAFKA_PK.iter().zip(["VARCHAR(255)", "INT", "BIGINT"]) {
                    ddl.push((c.to_string(), ty.to_string(), true));
                }
            }
            PkMode::RecordKey(col) => {
                let f = self
                    .schema
                    .field_with_name("_key")
                    .map_err(|e| ConnectorError::Internal(e.to_string()))?;
                let ty = mysql_type(f.data_type(), true)
                    .ok_or_else(|| ConnectorError::Internal("no type for _key".into()))?;
                ddl.push((col.clone(), ty, true));
            }
            _ => {}
        }
        let (target, auto_create, auto_evolve, sink) = (
            self.cfg.conn.target.clone(),
            self.cfg.table.auto_create,
            self.cfg.table.auto_evolve,
            self.name.clone(),
        );
        let mut lookup = String::from("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ");
        match &db {
            Some(d) => push_str_literal(&mut lookup, d),
            None => lookup.push_str("DATABASE()"),
        }
        lookup.push_str(" AND TABLE_NAME = ");
        push_str_literal(&mut lookup, &table_name);
        let found: Vec<String> = self.fetch(lookup, &format!("looking up table {name}")).await?;
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
            if !key_names.is_empty() {
                cols.push(format!(
                    "PRIMARY KEY ({})",
                    key_names.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
                ));
            }
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {quoted} ({}) DEFAULT CHARSET = utf8mb4",
                cols.join(", ")
            );
            self.execute(sql, &format!("creating table {name}")).await?;
            info!(sink = %sink, table = %name, "created table");
        } else {
            // MySQL compares column names case-insensitively.
            let missing: Vec<&(String, String, bool)> = ddl
                .iter()
                .filter(|(c, _, _)| !found.iter().any(|f| f.eq_ignore_ascii_case(c)))
                .collect();
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
                    self.execute(
                        format!("ALTER TABLE {quoted} ADD COLUMN {} {t}", quote(c)),
                        &format!("adding column {c} to {name}"),
                    )
                    .await?;
                    info!(sink = %sink, table = %name, column = %c, "added column");
                }
            }
        }
        let columns: Vec<String> = ddl.iter().map(|(c, _, _)| quote(c)).collect();
        let key = key_names
            .iter()
            .filter_map(|k| ddl.iter().position(|(c, _, _)| c == k))
            .collect();
        let t = Arc::new(Table {
            quoted,
            name: name.to_string(),
            columns,
            key,
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
        prepared: &Prepared,
        offsets: Option<(&str, &Offsets)>,
    ) -> Result<Vec<(usize, String)>> {
        let (mode, batch_size, target, width) = (
            self.cfg.table.insert_mode,
            self.cfg.table.batch_size,
            self.cfg.conn.target.clone(),
            self.width(),
        );
        let offsets = offsets.and_then(|(pipeline, positions)| offsets_statement(pipeline, positions));
        let conn = self.connect().await?;
        // A plain transaction on the connection (not mysql_async's Transaction), so a
        // LOAD DATA LOCAL handler can be installed on it.
        let outcome = async {
            conn.query_drop("START TRANSACTION").await?;
            let mut bad = Vec::new();
            for (table, rows) in work {
                let mut groups = Bisection::new(rows);
                while let Some(rows) = groups.next_group() {
                    conn.query_drop("SAVEPOINT quiver_rows").await?;
                    let written = match prepared {
                        Prepared::Lines(lines) => {
                            if load_rows(conn, table, lines, &rows).await? {
                                Ok(())
                            } else {
                                // Not clean (a duplicate skipped, a value adjusted): redo these
                                // rows as INSERTs, whose errors name each bad row.
                                conn.query_drop("ROLLBACK TO SAVEPOINT quiver_rows").await?;
                                let (lits, _) = render(data, &rows, width);
                                write_rows(conn, mode, batch_size, table, data, &lits, &rows).await
                            }
                        }
                        Prepared::Literals(lits) => write_rows(conn, mode, batch_size, table, data, lits, &rows).await,
                    };
                    match written {
                        Ok(()) => conn.query_drop("RELEASE SAVEPOINT quiver_rows").await?,
                        Err(e) if is_data_error(&e) => {
                            conn.query_drop("ROLLBACK TO SAVEPOINT quiver_rows").await?;
                            if let Some(row) = groups.refused(&rows) {
                                bad.push((row, format!("table {}: {}", table.name, reason(&e))));
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            if let Some(sql) = offsets {
                conn.query_drop(sql).await?;
            }
            conn.query_drop("COMMIT").await?;
            Ok(bad)
        }
        .await;
        match outcome {
            Ok(bad) => Ok(bad),
            Err(e) => {
                // Whatever failed, the connection must not keep a half-done transaction.
                if is_lost(&e) || conn.query_drop("ROLLBACK").await.is_err() {
                    self.conn = None;
                }
                if is_lost(&e) {
                    return Err(error(&target, &e));
                }
                let tables: Vec<&str> = work.iter().map(|(t, _)| t.name.as_str()).collect();
                Err(error(&format!("writing to {} in {target}", tables.join(", ")), &e))
            }
        }
    }

    /// Values per row: the written columns and the key columns the sink adds.
    fn width(&self) -> usize {
        let cfg = &self.cfg.table;
        cfg.columns.len()
            + match cfg.pk {
                PkMode::Kafka => 3,
                PkMode::RecordKey(_) => 1,
                _ => 0,
            }
    }

    async fn read_offsets(&mut self, pipeline: &str) -> Result<Option<Offsets>> {
        let mut sql = String::from("SELECT source_partition, position FROM quiver_offsets WHERE pipeline = ");
        push_str_literal(&mut sql, pipeline);
        let target = self.cfg.conn.target.clone();
        let rows: Vec<(String, String)> = self.fetch(sql, "reading quiver_offsets").await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Offsets::default();
        for (partition, position) in rows {
            let v = serde_json::from_str(&position).map_err(|e| {
                ConnectorError::Config(format!(
                    "quiver_offsets in {target} holds a broken position for {partition}: {e}"
                ))
            })?;
            out.0.insert(partition, v);
        }
        Ok(Some(out))
    }
}

/// The upsert of a batch's positions into `quiver_offsets`, or None if there are none.
fn offsets_statement(pipeline: &str, positions: &Offsets) -> Option<String> {
    if positions.is_empty() {
        return None;
    }
    let mut sql = String::from("INSERT INTO quiver_offsets (pipeline, source_partition, position, updated_at) VALUES ");
    for (n, (partition, position)) in positions.0.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        push_str_literal(&mut sql, pipeline);
        sql.push_str(", ");
        push_str_literal(&mut sql, partition);
        sql.push_str(", ");
        push_str_literal(&mut sql, &position.to_string());
        sql.push_str(", CURRENT_TIMESTAMP(6))");
    }
    sql.push_str(" ON DUPLICATE KEY UPDATE position = VALUES(position), updated_at = VALUES(updated_at)");
    Some(sql)
}

/// Writes rows in their order: runs of writes as multi-row INSERTs (or UPDATEs),
/// runs of deletes as one DELETE … WHERE key IN (…) per chunk.
async fn write_rows(
    tx: &mut Conn,
    mode: InsertMode,
    batch_size: usize,
    table: &Table,
    data: &BatchRows<'_>,
    lits: &Rendered,
    rows: &[usize],
) -> std::result::Result<(), mysql_async::Error> {
    let all: Vec<usize> = (0..table.columns.len()).collect();
    let others: Vec<usize> = all.iter().copied().filter(|c| !table.key.contains(c)).collect();
    let col_list = table.columns.join(", ");
    let mut sql = String::new();
    let mut start = 0;
    while start < rows.len() {
        let delete = data.is_delete(rows[start]);
        let run = rows[start..]
            .iter()
            .take_while(|r| data.is_delete(**r) == delete)
            .count();
        for chunk in rows[start..start + run].chunks(batch_size) {
            let mut n = 0;
            while n < chunk.len() {
                sql.clear();
                if delete {
                    let keys: Vec<&str> = table.key.iter().map(|k| table.columns[*k].as_str()).collect();
                    write!(sql, "DELETE FROM {} WHERE ({}) IN (", table.quoted, keys.join(", ")).unwrap_or_default();
                    n += fill(&mut sql, &chunk[n..], |s, i, row| {
                        if i > 0 {
                            s.push_str(", ");
                        }
                        lits.push_tuple(s, row, table.key.iter().copied());
                    });
                    sql.push(')');
                } else if mode == InsertMode::Update {
                    n += fill(&mut sql, &chunk[n..], |s, _, row| {
                        if others.is_empty() {
                            return;
                        }
                        write!(s, "UPDATE {} SET ", table.quoted).unwrap_or_default();
                        for (i, c) in others.iter().enumerate() {
                            write!(
                                s,
                                "{}{} = {}",
                                if i > 0 { ", " } else { "" },
                                table.columns[*c],
                                lits.cell(row, *c)
                            )
                            .unwrap_or_default();
                        }
                        s.push_str(" WHERE ");
                        for (i, k) in table.key.iter().enumerate() {
                            write!(
                                s,
                                "{}{} = {}",
                                if i > 0 { " AND " } else { "" },
                                table.columns[*k],
                                lits.cell(row, *k)
                            )
                            .unwrap_or_default();
                        }
                        s.push_str(";\n");
                    });
                } else {
                    write!(sql, "INSERT INTO {} ({col_list}) VALUES ", table.quoted).unwrap_or_default();
                    n += fill(&mut sql, &chunk[n..], |s, i, row| {
                        if i > 0 {
                            s.push_str(", ");
                        }
                        lits.push_tuple(s, row, all.iter().copied());
                    });
                    if mode == InsertMode::Upsert {
                        // Later rows for a key update earlier ones: the last change wins.
                        let set: Vec<String> = if others.is_empty() {
                            table
                                .key
                                .iter()
                                .map(|k| format!("{0} = {0}", table.columns[*k]))
                                .collect()
                        } else {
                            others
                                .iter()
                                .map(|c| format!("{0} = VALUES({0})", table.columns[*c]))
                                .collect()
                        };
                        write!(sql, " ON DUPLICATE KEY UPDATE {}", set.join(", ")).unwrap_or_default();
                    }
                }
                if !sql.is_empty() {
                    tx.query_drop(sql.as_str()).await?;
                }
            }
        }
        start += run;
    }
    Ok(())
}

/// Appends rows with `push` until the statement reaches its size limit; returns
/// how many rows it took (at least one).
fn fill(sql: &mut String, rows: &[usize], mut push: impl FnMut(&mut String, usize, usize)) -> usize {
    let mut taken = 0;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 && sql.len() >= MAX_STATEMENT_BYTES {
            break;
        }
        push(sql, i, *row);
        taken += 1;
    }
    taken
}

/// Renders `rows` as SQL literals; rows with a value MySQL cannot hold (NaN,
/// infinity) come back with the reason instead.
fn render(data: &BatchRows<'_>, rows: &[usize], width: usize) -> (Rendered, Vec<(usize, String)>) {
    let mut out = Rendered {
        text: String::with_capacity(rows.len() * width * 12),
        cells: Vec::with_capacity(rows.len() * width),
        width,
        index: vec![u32::MAX; data.batch_rows()],
    };
    let mut bad = Vec::new();
    let mut values: Vec<Cell<'_>> = Vec::with_capacity(width);
    let mut count = 0u32;
    'row: for &row in rows {
        values.clear();
        data.push_row(row, &mut values);
        let (mark, cells) = (out.text.len(), out.cells.len());
        for v in &values {
            let a = out.text.len() as u32;
            if let Err(e) = push_literal(&mut out.text, v) {
                out.text.truncate(mark);
                out.cells.truncate(cells);
                bad.push((row, e));
                continue 'row;
            }
            out.cells.push((a, out.text.len() as u32));
        }
        out.index[row] = count;
        count += 1;
    }
    (out, bad)
}

/// Renders `rows` as `LOAD DATA` lines (tab-separated, `\N` for NULL); rows MySQL
/// cannot hold come back with the reason instead.
fn render_lines(data: &BatchRows<'_>, rows: &[usize]) -> (Lines, Vec<(usize, String)>) {
    let mut out = Lines {
        text: Vec::with_capacity(rows.len() * 96),
        spans: vec![(0, 0); data.batch_rows()],
    };
    let mut bad = Vec::new();
    let mut values: Vec<Cell<'_>> = Vec::new();
    'row: for &row in rows {
        values.clear();
        data.push_row(row, &mut values);
        let start = out.text.len();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.text.push(b'\t');
            }
            if let Err(e) = push_field(&mut out.text, v) {
                out.text.truncate(start);
                bad.push((row, e));
                continue 'row;
            }
        }
        out.text.push(b'\n');
        out.spans[row] = (start, out.text.len());
    }
    (out, bad)
}

/// What a batch becomes before its transaction.
pub(crate) enum Prepared {
    /// SQL literals for multi-row statements.
    Literals(Rendered),
    /// `LOAD DATA` lines for appends.
    Lines(Lines),
}

/// A batch's rows as `LOAD DATA` lines: one buffer, each row's byte span.
pub(crate) struct Lines {
    text: Vec<u8>,
    /// Batch row → (start, end) of its line.
    spans: Vec<(usize, usize)>,
}

/// Appends rows with `LOAD DATA LOCAL INFILE`, streaming their lines from memory.
/// Returns whether the load was clean: every row in, no warning. (With LOCAL, the
/// server skips duplicates and turns bad values into warnings instead of failing,
/// so anything less than clean is redone as INSERTs by the caller.)
async fn load_rows(
    conn: &mut Conn,
    table: &Table,
    lines: &Lines,
    rows: &[usize],
) -> std::result::Result<bool, mysql_async::Error> {
    let mut data = Vec::with_capacity(rows.iter().map(|r| lines.spans[*r].1 - lines.spans[*r].0).sum());
    for &r in rows {
        let (a, b) = lines.spans[r];
        data.extend_from_slice(&lines.text[a..b]);
    }
    let data = bytes::Bytes::from(data);
    conn.set_infile_handler(async move { Ok(futures::stream::iter([Ok(data)]).boxed()) });
    // Sessions run with NO_BACKSLASH_ESCAPES: '\' is one backslash; the tab and the
    // newline are literal characters.
    let sql = format!(
        "LOAD DATA LOCAL INFILE 'quiver' INTO TABLE {} CHARACTER SET binary FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' ({})",
        table.quoted,
        table.columns.join(", ")
    );
    conn.query_drop(sql).await?;
    Ok(conn.affected_rows() == rows.len() as u64 && conn.get_warnings() == 0)
}

#[async_trait]
impl Database for Mysql {
    type Prepared = Prepared;
    const NAME: &'static str = "MySQL";

    fn prepare(&self, rows: &mut BatchRows<'_>) -> (Prepared, Vec<(usize, String)>) {
        let order: Vec<usize> = rows.by_table.iter().flat_map(|(_, r)| r.iter().copied()).collect();
        let (prepared, bad) = if self.load_data {
            let (lines, bad) = render_lines(rows, &order);
            (Prepared::Lines(lines), bad)
        } else {
            let (lits, bad) = render(rows, &order, self.width());
            (Prepared::Literals(lits), bad)
        };
        if !bad.is_empty() {
            // Rows that cannot be written leave their tables.
            for (_, table_rows) in &mut rows.by_table {
                table_rows.retain(|r| !bad.iter().any(|(b, _)| b == r));
            }
        }
        (prepared, bad)
    }

    async fn write(
        &mut self,
        rows: &BatchRows<'_>,
        lits: &Prepared,
        offsets: Option<(&str, &Offsets)>,
    ) -> Result<Vec<(usize, String)>> {
        let mut work = Vec::with_capacity(rows.by_table.len());
        for (name, table_rows) in &rows.by_table {
            work.push((self.table(name).await?, table_rows.clone()));
        }
        self.write_batch(&work, rows, lits, offsets).await
    }

    async fn stored_offsets(&mut self, pipeline: &str) -> Result<Option<Offsets>> {
        self.read_offsets(pipeline).await
    }
}
