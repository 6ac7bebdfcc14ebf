//! The polling source shared by `postgres` and `mysql`, with Kafka Connect JDBC
//! source semantics: `mode` = `bulk` | `incrementing` | `timestamp` |
//! `timestamp+incrementing` over `table.whitelist` or a `query`.
//!
//! Each poll runs one query per table and streams its rows (no LIMIT: the
//! database streams, the bounded channel to the engine pushes back):
//!
//! | mode | rows read | position kept |
//! |---|---|---|
//! | bulk | the whole table, every poll | none |
//! | incrementing | `inc > last` ordered by `inc` | last `inc` |
//! | timestamp | `last < ts < now - delay` ordered by `ts` | last `ts` whose rows were all emitted |
//! | timestamp+incrementing | `(ts = last_ts AND inc > last_inc) OR ts > last_ts`, `ts < now - delay`, ordered by `ts, inc` | last (`ts`, `inc`) |
//!
//! A batch is cut every `batch.max.rows` rows; its position travels with it, so
//! the engine commits it only once the sink has the rows. In timestamp mode a
//! batch that ends inside a run of equal timestamps keeps the previous complete
//! timestamp, so a restart re-reads that run (at-least-once) and never skips it.
//! Timestamps are compared in UTC (every session runs in UTC).
//!
//! With `schema.evolve` (the server sets it for JDBC source connector JSON, whose
//! columns it read from the catalog), each poll of a table first reads the table's
//! columns (one catalog query per poll) and stops, before reading a row, when the
//! table has a column that is not declared: the worker then reads the catalog
//! again and restarts the task from its last position, as Kafka Connect's JDBC
//! source follows a table whose columns change.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::CastOptions;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::api::Offsets;
use crate::api::{
    ConnectorError, OptionKind, OptionSpec, Options, Progress, RejectedRecord, Result, RowOrigins, Source, SourceBatch,
    SourceContext, Stage,
};

pub(crate) const MODE: OptionSpec = OptionSpec::new(
    "mode",
    OptionKind::Enum(&["bulk", "incrementing", "timestamp", "timestamp+incrementing"]),
    "bulk: the whole table each poll; incrementing: new rows by a strictly increasing column; timestamp: new and updated rows by a timestamp column; timestamp+incrementing: both, exact across restarts.",
)
.required();
pub(crate) const TABLES: OptionSpec = OptionSpec::new(
    "table.whitelist",
    OptionKind::List,
    "Tables to read (schema.table allowed), each with the declared columns. Either this or query.",
);
pub(crate) const QUERY: OptionSpec = OptionSpec::new(
    "query",
    OptionKind::String,
    "A SELECT to read instead of tables; incremental modes wrap it and add their WHERE and ORDER BY.",
);
pub(crate) const INCREMENTING: OptionSpec = OptionSpec::new(
    "incrementing.column.name",
    OptionKind::String,
    "The strictly increasing column (incrementing modes), e.g. an auto-increment id.",
);
pub(crate) const TIMESTAMP: OptionSpec = OptionSpec::new(
    "timestamp.column.name",
    OptionKind::List,
    "The modification-time column (timestamp modes); a list is read as COALESCE(first, second, …).",
);
pub(crate) const POLL_INTERVAL: OptionSpec = OptionSpec::new(
    "poll.interval.ms",
    OptionKind::Integer,
    "Milliseconds between polls once a poll has read everything new.",
)
.default("5000");
pub(crate) const BATCH_MAX_ROWS: OptionSpec = OptionSpec::new(
    "batch.max.rows",
    OptionKind::Integer,
    "Rows per batch handed to the pipeline (Kafka Connect's default is 100; larger batches are much faster here).",
)
.default("10000");
pub(crate) const TIMESTAMP_DELAY: OptionSpec = OptionSpec::new(
    "timestamp.delay.interval.ms",
    OptionKind::Integer,
    "Rows are read only once their timestamp is this old, so transactions still committing rows with earlier timestamps are not skipped.",
)
.default("0");
pub(crate) const ATTEMPTS: OptionSpec = OptionSpec::new(
    "connection.attempts",
    OptionKind::Integer,
    "Attempts to (re)connect and re-run a poll when the database is unreachable.",
)
.default("10");
pub(crate) const BACKOFF: OptionSpec = OptionSpec::new(
    "connection.backoff.ms",
    OptionKind::Integer,
    "Wait between those attempts, in milliseconds.",
)
.default("3000");

pub(crate) const SCHEMA_EVOLVE: OptionSpec = OptionSpec::new(
    "schema.evolve",
    OptionKind::Bool,
    "Tables only: each poll first checks the table's columns and stops the task, naming them, when the table has columns that are not declared (rather than leaving them unread). The server sets it for JDBC source connector JSON, and then reads the catalog again and restarts from the last position.",
)
.default("false");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

/// What one poll reads: a table or the user's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Table(String),
    Query(String),
}

impl Target {
    /// The position key of this target.
    pub(crate) fn key(&self) -> &str {
        match self {
            Target::Table(t) => t,
            Target::Query(_) => "query",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PollConfig {
    pub mode: Mode,
    pub targets: Vec<Target>,
    pub incrementing: Option<String>,
    pub timestamp: Vec<String>,
    pub poll_interval: Duration,
    pub batch_rows: usize,
    pub delay_ms: u64,
    pub attempts: u32,
    pub backoff: Duration,
    /// `schema.evolve`: check each table's columns before each poll.
    pub evolve: bool,
}

pub(crate) fn parse(opts: &mut Options, schema: &SchemaRef, supported: fn(&DataType) -> bool) -> Result<PollConfig> {
    let mode = match opts.pull_enum(&MODE)?.unwrap_or("bulk") {
        "incrementing" => Mode::Incrementing,
        "timestamp" => Mode::Timestamp,
        "timestamp+incrementing" => Mode::TimestampIncrementing,
        _ => Mode::Bulk,
    };
    let tables = opts.pull_list(&TABLES)?.unwrap_or_default();
    let query = opts.pull_str(&QUERY)?.filter(|q| !q.trim().is_empty());
    let targets = match (tables.is_empty(), query) {
        (false, None) => tables.into_iter().map(Target::Table).collect(),
        (true, Some(q)) => vec![Target::Query(q)],
        (false, Some(_)) => {
            return Err(ConnectorError::option(
                QUERY.key,
                "give either table.whitelist or query, not both",
            ));
        }
        (true, None) => {
            return Err(ConnectorError::option(
                TABLES.key,
                "name the table(s) to read, or give a query",
            ));
        }
    };
    let evolve = opts.pull_bool(&SCHEMA_EVOLVE)?.unwrap_or(false);
    if evolve && targets.iter().any(|t| matches!(t, Target::Query(_))) {
        return Err(ConnectorError::option(
            SCHEMA_EVOLVE.key,
            "applies to table.whitelist, not to a query",
        ));
    }
    let incrementing = opts.pull_str(&INCREMENTING)?.filter(|c| !c.trim().is_empty());
    let timestamp = opts.pull_list(&TIMESTAMP)?.unwrap_or_default();
    match mode {
        Mode::Incrementing | Mode::TimestampIncrementing if incrementing.is_none() => {
            return Err(ConnectorError::option(
                INCREMENTING.key,
                "this mode needs the strictly increasing column's name",
            ));
        }
        Mode::Timestamp | Mode::TimestampIncrementing if timestamp.is_empty() => {
            return Err(ConnectorError::option(
                TIMESTAMP.key,
                "this mode needs the timestamp column's name",
            ));
        }
        _ => {}
    }
    if incrementing.is_some() && matches!(mode, Mode::Bulk | Mode::Timestamp) {
        return Err(ConnectorError::option(
            INCREMENTING.key,
            "only applies with mode = 'incrementing' or 'timestamp+incrementing'",
        ));
    }
    if !timestamp.is_empty() && matches!(mode, Mode::Bulk | Mode::Incrementing) {
        return Err(ConnectorError::option(
            TIMESTAMP.key,
            "only applies with mode = 'timestamp' or 'timestamp+incrementing'",
        ));
    }
    for f in schema.fields() {
        if !supported(f.data_type()) {
            return Err(ConnectorError::option(
                "connector",
                format!(
                    "column '{}' is declared {}, which this source cannot read; declare it as a scalar type (STRING for json, uuid and other types)",
                    f.name(),
                    f.data_type()
                ),
            ));
        }
    }
    Ok(PollConfig {
        mode,
        targets,
        incrementing,
        timestamp,
        poll_interval: Duration::from_millis(opts.pull_u64(&POLL_INTERVAL)?.unwrap_or(5000)),
        batch_rows: opts.pull_u64(&BATCH_MAX_ROWS)?.unwrap_or(10_000).max(1) as usize,
        delay_ms: opts.pull_u64(&TIMESTAMP_DELAY)?.unwrap_or(0),
        attempts: opts.pull_u64(&ATTEMPTS)?.unwrap_or(10).max(1) as u32,
        backoff: Duration::from_millis(opts.pull_u64(&BACKOFF)?.unwrap_or(3000)),
        evolve,
    })
}

/// The last values seen of a target's tracking columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Position {
    /// The timestamp as the database's text (compared back as a literal).
    pub ts: Option<String>,
    pub inc: Option<i64>,
}

impl Position {
    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::Map::new();
        if let Some(ts) = &self.ts {
            v.insert("timestamp".into(), json!(ts));
        }
        if let Some(inc) = self.inc {
            v.insert("incrementing".into(), json!(inc));
        }
        serde_json::Value::Object(v)
    }
    fn from_json(v: &serde_json::Value) -> Self {
        Self {
            ts: v.get("timestamp").and_then(|t| t.as_str()).map(String::from),
            inc: v.get("incrementing").and_then(serde_json::Value::as_i64),
        }
    }
}

/// How a database spells what the queries need.
pub(crate) struct Dialect {
    pub quote: fn(&str) -> String,
    /// A string literal.
    pub literal: fn(&str) -> String,
    /// An expression's value as text, in a form that reads back as a literal of its type.
    pub as_text: fn(&str) -> String,
    /// An expression as a 64-bit integer.
    pub as_bigint: fn(&str) -> String,
    /// The current time minus `ms` milliseconds.
    pub now_minus_ms: fn(u64) -> String,
}

/// Builds one poll's query: the declared columns (as `columns` renders each), then
/// the tracking columns `__quiver_ts` and `__quiver_inc` when the mode has them.
pub(crate) fn poll_query(cfg: &PollConfig, d: &Dialect, target: &Target, columns: &[String], at: &Position) -> String {
    let from = match target {
        Target::Table(t) => t.split('.').map(d.quote).collect::<Vec<_>>().join("."),
        Target::Query(q) => format!("({q}) AS quiver_query"),
    };
    let ts = match cfg.timestamp.as_slice() {
        [] => None,
        [one] => Some((d.quote)(one)),
        many => Some(format!(
            "COALESCE({})",
            many.iter().map(|c| (d.quote)(c)).collect::<Vec<_>>().join(", ")
        )),
    };
    let inc = cfg.incrementing.as_deref().map(d.quote);
    let mut select = columns.to_vec();
    if let Some(ts) = &ts {
        select.push(format!("{} AS __quiver_ts", (d.as_text)(ts)));
    }
    if let Some(inc) = &inc {
        select.push(format!("{} AS __quiver_inc", (d.as_bigint)(inc)));
    }
    let mut sql = format!("SELECT {} FROM {from}", select.join(", "));
    let mut conditions = Vec::new();
    if let Some(ts) = &ts {
        conditions.push(format!("{ts} < {}", (d.now_minus_ms)(cfg.delay_ms)));
    }
    match (cfg.mode, &at.ts, at.inc) {
        (Mode::Incrementing, _, Some(last)) => {
            conditions.push(format!("{} > {last}", inc.as_deref().unwrap_or_default()))
        }
        (Mode::Timestamp, Some(last), _) => {
            conditions.push(format!("{} > {}", ts.as_deref().unwrap_or_default(), (d.literal)(last)))
        }
        (Mode::TimestampIncrementing, Some(last), Some(last_inc)) => {
            let (ts, inc) = (ts.as_deref().unwrap_or_default(), inc.as_deref().unwrap_or_default());
            let l = (d.literal)(last);
            conditions.push(format!("(({ts} = {l} AND {inc} > {last_inc}) OR {ts} > {l})"));
        }
        _ => {}
    }
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    let order: Vec<&String> = ts.iter().chain(inc.iter()).collect();
    if !order.is_empty() && cfg.mode != Mode::Bulk {
        sql.push_str(&format!(
            " ORDER BY {}",
            order.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    sql
}

/// A database connection that runs a poll query and hands rows to an [`Emitter`].
#[async_trait]
pub(crate) trait Reader: Send {
    /// Streams `sql`'s rows into `out` (calling `out.cut_before` before each row
    /// and `out.emit` when it says so), then `out.finish`. A lost connection is
    /// an `Unavailable` error; the poll is then re-run from the emitted position.
    async fn run(&mut self, sql: &str, out: &mut Emitter) -> Result<()>;
    /// A table's columns as the catalog has them now (`schema.evolve`).
    async fn columns(&mut self, table: &str) -> Result<Vec<arrow::datatypes::Field>>;
    /// Drops the connection so the next `run` reconnects.
    fn reset(&mut self);
}

/// Cuts rows into batches, casts them to the declared columns and sends them to
/// the engine with their positions.
pub(crate) struct Emitter {
    schema: SchemaRef,
    mode: Mode,
    batch_rows: usize,
    key: Arc<str>,
    /// The source's name, for dead-letter records.
    source: String,
    tx: mpsc::Sender<Result<SourceBatch>>,
    done: Arc<AtomicU64>,
    /// Position after the last emitted batch.
    pub(crate) emitted: Position,
    /// Tracking values of the rows in the current batch (first and last kept).
    rows: usize,
    last: Position,
    /// Timestamp mode: the last timestamp known to be complete (a later one was seen).
    complete: Option<String>,
    /// Row number within this poll, for row origins when there is no incrementing column.
    seq: i64,
    first_seq: i64,
    incs: Vec<i64>,
}

impl Emitter {
    fn new(
        cfg: &PollConfig,
        schema: SchemaRef,
        key: &str,
        source: String,
        tx: mpsc::Sender<Result<SourceBatch>>,
        done: Arc<AtomicU64>,
        emitted: Position,
    ) -> Self {
        Self {
            schema,
            mode: cfg.mode,
            batch_rows: cfg.batch_rows,
            key: Arc::from(key),
            source,
            tx,
            done,
            emitted,
            rows: 0,
            last: Position::default(),
            complete: None,
            seq: 0,
            first_seq: 0,
            incs: Vec::new(),
        }
    }

    /// Whether the batch should be cut before a row with these tracking values.
    pub(crate) fn cut_before(&self) -> bool {
        self.rows >= self.batch_rows
    }

    /// Records a row's tracking values (after its columns were appended).
    pub(crate) fn push(&mut self, ts: Option<String>, inc: Option<i64>) {
        if self.mode == Mode::Timestamp && self.last.ts.is_some() && ts != self.last.ts {
            self.complete = self.last.ts.take();
        }
        if self.rows == 0 {
            self.first_seq = self.seq;
            self.incs.clear();
        }
        if let Some(i) = inc {
            self.incs.push(i);
        }
        self.last = Position { ts, inc };
        self.rows += 1;
        self.seq += 1;
    }

    /// Sends the rows so far (`columns` in the wire types). `next_ts` is the
    /// timestamp of the row that follows, or None at the end of the poll.
    pub(crate) async fn emit(&mut self, columns: Vec<ArrayRef>, next_ts: Option<&str>) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let position = match self.mode {
            Mode::Bulk => None,
            Mode::Timestamp => {
                // The last timestamp is complete unless the next row shares it.
                let done = next_ts.is_none_or(|n| Some(n) != self.last.ts.as_deref());
                let ts = if done {
                    self.last.ts.clone()
                } else {
                    self.complete.clone()
                };
                Some(Position {
                    ts: ts.or_else(|| self.emitted.ts.clone()),
                    inc: None,
                })
            }
            _ => Some(self.last.clone()),
        };
        let (batch, rejected) = self.cast(columns, rows)?;
        let mut origins = RowOrigins::with_capacity(rows);
        let mut bad = vec![false; rows];
        for (r, _) in &rejected {
            bad[*r] = true;
        }
        for r in (0..rows).filter(|r| !bad[*r]) {
            origins.push(
                &self.key,
                self.incs.get(r).copied().unwrap_or(self.first_seq + r as i64),
            );
        }
        let rejected = rejected
            .into_iter()
            .map(|(r, (error, record))| RejectedRecord {
                source: self.source.clone(),
                partition: self.key.to_string(),
                position: self.incs.get(r).copied().unwrap_or(self.first_seq + r as i64),
                stage: Stage::Decode,
                error,
                record,
                raw: None,
            })
            .collect();
        let mut offsets = Offsets::default();
        if let Some(p) = position {
            offsets.0.insert(self.key.to_string(), p.to_json());
            self.emitted = p;
        }
        self.done.fetch_add(rows as u64, Ordering::Relaxed);
        let out = SourceBatch {
            batch,
            origins,
            offsets,
            rejected,
            raw: Vec::new(),
            filtered: None,
        };
        self.tx
            .send(Ok(out))
            .await
            .map_err(|_| ConnectorError::Internal("the pipeline stopped reading".into()))
    }

    /// Casts wire columns to the declared types. A value the declared type cannot
    /// hold, or a NULL in a NOT NULL column, makes its row a decode error (the rest
    /// of the batch goes on).
    fn cast(&self, columns: Vec<ArrayRef>, rows: usize) -> Result<(RecordBatch, Vec<BadRow>)> {
        let mut out = Vec::with_capacity(columns.len());
        let mut bad: Vec<BadRow> = Vec::new();
        let mut is_bad = vec![false; rows];
        let safe = CastOptions {
            safe: true,
            ..Default::default()
        };
        for (col, field) in columns.into_iter().zip(self.schema.fields()) {
            if !field.is_nullable() && col.null_count() > 0 {
                for r in (0..rows).filter(|r| col.is_null(*r)) {
                    if !std::mem::replace(&mut is_bad[r], true) {
                        bad.push((
                            r,
                            (
                                format!(
                                    "column {} is declared NOT NULL and the database value is NULL",
                                    field.name()
                                ),
                                json!({ field.name(): null }),
                            ),
                        ));
                    }
                }
            }
            if col.data_type() == field.data_type() {
                out.push(col);
                continue;
            }
            let cast = arrow::compute::cast_with_options(&col, field.data_type(), &safe)
                .map_err(|e| ConnectorError::arrow(format!("column {}", field.name()), e))?;
            if cast.null_count() > col.null_count() {
                let text = arrow::compute::cast(&col, &DataType::Utf8).ok();
                for (r, seen) in is_bad.iter_mut().enumerate() {
                    if cast.is_null(r) && col.is_valid(r) && !*seen {
                        *seen = true;
                        let value = text
                            .as_ref()
                            .map(|t| arrow::array::AsArray::as_string::<i32>(t).value(r).to_string())
                            .unwrap_or_default();
                        bad.push((
                            r,
                            (
                                format!(
                                    "column {}: '{value}' is not a valid {}",
                                    field.name(),
                                    field.data_type()
                                ),
                                json!({ field.name(): value }),
                            ),
                        ));
                    }
                }
            }
            out.push(cast);
        }
        if !bad.is_empty() {
            let keep: BooleanArray = is_bad.iter().map(|b| Some(!b)).collect();
            out = out
                .iter()
                .map(|c| arrow::compute::filter(c, &keep))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| ConnectorError::arrow("dropping bad rows", e))?;
            bad.sort_by_key(|(r, _)| *r);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), out)
            .map_err(|e| ConnectorError::arrow("building a batch", e))?;
        Ok((batch, bad))
    }
}

/// A row that cannot be read: (row, (error, the offending value as JSON)).
type BadRow = (usize, (String, serde_json::Value));

/// The source: a task polls the database and sends batches through a small
/// channel; `next_batch` receives them (cancel-safe).
pub(crate) struct PollingSource {
    rx: mpsc::Receiver<Result<SourceBatch>>,
    done: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PollingSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PollingSource {
    /// Starts polling with `reader` (already connected, so a bad URL fails here).
    pub(crate) fn start(
        cfg: PollConfig,
        dialect: &'static Dialect,
        columns: Vec<String>,
        mut reader: Box<dyn Reader>,
        ctx: &SourceContext,
    ) -> Self {
        let (tx, rx) = mpsc::channel(2);
        let done = Arc::new(AtomicU64::new(0));
        let mut positions: Vec<Position> = cfg
            .targets
            .iter()
            .map(|t| {
                ctx.start
                    .as_ref()
                    .and_then(|s| s.get(t.key()))
                    .map(Position::from_json)
                    .unwrap_or_default()
            })
            .collect();
        let (bounded, schema, name, counter) = (
            ctx.bounded,
            Arc::clone(&ctx.schema),
            ctx.name.clone(),
            Arc::clone(&done),
        );
        let task = tokio::spawn(async move {
            loop {
                for (i, target) in cfg.targets.iter().enumerate() {
                    let mut out = Emitter::new(
                        &cfg,
                        Arc::clone(&schema),
                        target.key(),
                        name.clone(),
                        tx.clone(),
                        Arc::clone(&counter),
                        positions[i].clone(),
                    );
                    let mut attempt = 0;
                    loop {
                        let outcome = match (cfg.evolve, target) {
                            (true, Target::Table(table)) => match reader.columns(table).await {
                                Ok(now) => {
                                    let added: Vec<_> = now
                                        .into_iter()
                                        .filter(|f| schema.field_with_name(f.name()).is_err())
                                        .collect();
                                    if !added.is_empty() {
                                        let _ = tx
                                            .send(Err(ConnectorError::SchemaGrew {
                                                context: format!("table {table}"),
                                                added,
                                            }))
                                            .await;
                                        return;
                                    }
                                    Ok(())
                                }
                                Err(e) => Err(e),
                            },
                            _ => Ok(()),
                        };
                        let outcome = match outcome {
                            Ok(()) => {
                                let sql = poll_query(&cfg, dialect, target, &columns, &out.emitted);
                                reader.run(&sql, &mut out).await
                            }
                            Err(e) => Err(e),
                        };
                        match outcome {
                            Ok(()) => break,
                            Err(e) if e.is_retriable() && attempt + 1 < cfg.attempts => {
                                attempt += 1;
                                warn!(source = %name, target = %target.key(), attempt, error = %e, backoff_ms = cfg.backoff.as_millis() as u64, "database unreachable; retrying the poll");
                                reader.reset();
                                // Rows after the last emitted batch are read again.
                                out.rows = 0;
                                out.last = Position::default();
                                out.complete = None;
                                tokio::time::sleep(cfg.backoff).await;
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                    }
                    positions[i] = out.emitted;
                }
                if bounded {
                    info!(source = %name, rows = counter.load(Ordering::Relaxed), "read everything present at start");
                    return;
                }
                tokio::time::sleep(cfg.poll_interval).await;
            }
        });
        Self { rx, done, task }
    }
}

#[async_trait]
impl Source for PollingSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        self.rx.recv().await.transpose()
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.done.load(Ordering::Relaxed),
            total: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Dialect = Dialect {
        quote: |s| format!("\"{s}\""),
        literal: |s| format!("'{s}'"),
        as_text: |e| format!("({e})::text"),
        as_bigint: |e| format!("({e})::int8"),
        now_minus_ms: |ms| format!("now() - interval '{ms} milliseconds'"),
    };

    fn cfg(mode: Mode) -> PollConfig {
        PollConfig {
            mode,
            targets: vec![Target::Table("s.t".into())],
            incrementing: matches!(mode, Mode::Incrementing | Mode::TimestampIncrementing).then(|| "id".into()),
            timestamp: if matches!(mode, Mode::Timestamp | Mode::TimestampIncrementing) {
                vec!["updated".into()]
            } else {
                vec![]
            },
            poll_interval: Duration::from_secs(1),
            batch_rows: 10,
            delay_ms: 500,
            attempts: 1,
            backoff: Duration::ZERO,
            evolve: false,
        }
    }

    #[test]
    fn each_mode_reads_after_its_position() {
        let cols = vec!["\"a\"".to_string()];
        let t = Target::Table("s.t".into());
        assert_eq!(
            poll_query(&cfg(Mode::Bulk), &D, &t, &cols, &Position::default()),
            "SELECT \"a\" FROM \"s\".\"t\""
        );
        let at = Position {
            ts: Some("2026-01-01 00:00:00".into()),
            inc: Some(7),
        };
        assert_eq!(
            poll_query(&cfg(Mode::Incrementing), &D, &t, &cols, &at),
            "SELECT \"a\", (\"id\")::int8 AS __quiver_inc FROM \"s\".\"t\" WHERE \"id\" > 7 ORDER BY \"id\""
        );
        assert_eq!(
            poll_query(
                &cfg(Mode::Timestamp),
                &D,
                &t,
                &cols,
                &Position {
                    inc: None,
                    ..at.clone()
                }
            ),
            "SELECT \"a\", (\"updated\")::text AS __quiver_ts FROM \"s\".\"t\" WHERE \"updated\" < now() - interval '500 milliseconds' AND \"updated\" > '2026-01-01 00:00:00' ORDER BY \"updated\""
        );
        assert_eq!(
            poll_query(&cfg(Mode::TimestampIncrementing), &D, &t, &cols, &at),
            "SELECT \"a\", (\"updated\")::text AS __quiver_ts, (\"id\")::int8 AS __quiver_inc FROM \"s\".\"t\" WHERE \"updated\" < now() - interval '500 milliseconds' \
             AND ((\"updated\" = '2026-01-01 00:00:00' AND \"id\" > 7) OR \"updated\" > '2026-01-01 00:00:00') ORDER BY \"updated\", \"id\""
        );
        // Nothing seen yet: no lower bound.
        assert!(!poll_query(&cfg(Mode::Incrementing), &D, &t, &cols, &Position::default()).contains("WHERE"));
    }

    /// Timestamp mode: a batch cut inside a run of equal timestamps keeps the last
    /// complete timestamp, so a restart re-reads the run instead of skipping it.
    #[tokio::test]
    async fn timestamp_positions_never_split_a_run_of_equal_timestamps() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "id",
            DataType::Int64,
            false,
        )]));
        let (tx, mut rx) = mpsc::channel(8);
        let poll = PollConfig {
            batch_rows: 2,
            ..cfg(Mode::Timestamp)
        };
        let mut out = Emitter::new(
            &poll,
            schema,
            "t",
            "s".into(),
            tx,
            Arc::new(AtomicU64::new(0)),
            Position::default(),
        );
        let stamps = ["a", "a", "a", "b", "c"];
        let mut ids = Vec::new();
        for (i, ts) in stamps.iter().enumerate() {
            if out.cut_before() {
                let col: ArrayRef = Arc::new(arrow::array::Int64Array::from(std::mem::take(&mut ids)));
                out.emit(vec![col], Some(ts)).await.unwrap();
            }
            ids.push(i as i64);
            out.push(Some(ts.to_string()), None);
        }
        let col: ArrayRef = Arc::new(arrow::array::Int64Array::from(ids));
        out.emit(vec![col], None).await.unwrap();
        drop(out);
        let mut positions = Vec::new();
        while let Some(Ok(b)) = rx.recv().await {
            positions.push((b.batch.num_rows(), b.offsets.get("t").cloned()));
        }
        assert_eq!(
            positions,
            vec![
                // [a, a] and another a follows: nothing is complete yet.
                (2, Some(json!({}))),
                // [a, b] and c follows: b is complete.
                (2, Some(json!({"timestamp": "b"}))),
                // [c] at the end of the poll: complete.
                (1, Some(json!({"timestamp": "c"}))),
            ]
        );
    }
}
