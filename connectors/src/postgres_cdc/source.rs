//! The CDC source's work: prepare the publication and slot, take the snapshot,
//! then stream changes, on a task of its own that hands batches to
//! [`CdcSource::next_batch`] through a bounded channel (the sink's pace holds the
//! stream back, and the replication client keeps the server's timeout at bay).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::FieldRef;
use arrow::error::ArrowError;
use async_trait::async_trait;
use pgwire_replication::{Lsn, PgWireError, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::config::{Autocreate, CdcConfig, SnapshotMode};
use super::debezium::Events;
use super::pgoutput::{self, Message, RelColumn, Relation, Value};
use super::rows::{Origin, Rows, Target};
use crate::api::{
    ConnectorError, OffsetCommitter, Offsets, Progress, RejectedRecord, Result, RowOrigins, Source, SourceBatch,
    SourceContext,
};
use crate::jdbc::SslMode;
use crate::postgres::{pg_error, quote};

/// The one source partition: the database's write-ahead log.
pub(crate) const PARTITION: &str = "wal";

/// PostgreSQL's epoch (2000-01-01) in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How far this source has delivered: every transaction that committed before
/// `end` (a commit record's end LSN), and the first `changes` changes of the
/// transaction that commits at `partial` (a batch cut inside a large one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) end: u64,
    pub(crate) partial: Option<(u64, u64)>,
}

/// What a committed offset says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Nothing committed: a fresh start.
    Fresh,
    /// A snapshot was under way and did not finish.
    Snapshot,
    Stream(Position),
}

fn lsn_text(lsn: u64) -> String {
    Lsn(lsn).to_pg_string()
}

fn parse_lsn(v: Option<&serde_json::Value>) -> Option<u64> {
    Lsn::parse(v?.as_str()?).ok().map(|l| l.0)
}

impl Position {
    pub(crate) fn offsets(&self) -> Offsets {
        let mut v = json!({ "lsn": lsn_text(self.end) });
        if let Some((commit, changes)) = self.partial {
            v["partial"] = json!({ "commit_lsn": lsn_text(commit), "changes": changes });
        }
        Offsets([(PARTITION.to_string(), v)].into_iter().collect())
    }
}

impl Resume {
    pub(crate) fn from(offsets: Option<&Offsets>) -> Resume {
        let Some(v) = offsets.and_then(|o| o.get(PARTITION)) else {
            return Resume::Fresh;
        };
        if v.get("snapshot").is_some() {
            return Resume::Snapshot;
        }
        let Some(end) = parse_lsn(v.get("lsn")) else {
            return Resume::Fresh;
        };
        let partial = v
            .get("partial")
            .and_then(|p| Some((parse_lsn(p.get("commit_lsn"))?, p.get("changes")?.as_u64()?)));
        Resume::Stream(Position { end, partial })
    }
}

/// Confirms to the slot what the sink made durable: the engine calls it after
/// each commit, and the streaming task passes the LSN on in its next standby
/// status update, so the server may recycle the WAL before it.
struct Committer {
    durable: watch::Sender<u64>,
}

impl OffsetCommitter for Committer {
    fn commit(&self, offsets: &Offsets, _sync: bool) {
        if let Resume::Stream(p) = Resume::from(Some(offsets)) {
            self.durable.send_if_modified(|d| {
                let raised = p.end > *d;
                if raised {
                    *d = p.end;
                }
                raised
            });
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

pub(crate) struct CdcSource {
    rx: mpsc::Receiver<Result<SourceBatch>>,
    committer: Arc<Committer>,
    done: Arc<AtomicU64>,
    total: Arc<Mutex<Option<u64>>>,
    stop: watch::Sender<bool>,
}

impl CdcSource {
    pub(crate) fn start(config: CdcConfig, ctx: SourceContext) -> Self {
        let (tx, rx) = mpsc::channel(2);
        let start = Resume::from(ctx.start.as_ref());
        let durable0 = match &start {
            Resume::Stream(p) => p.end,
            _ => 0,
        };
        let (durable, durable_rx) = watch::channel(durable0);
        let (stop, stop_rx) = watch::channel(false);
        let done = Arc::new(AtomicU64::new(0));
        let total = Arc::new(Mutex::new(None));
        let mut run = Run {
            slot: config.slot_for(&ctx.pipeline),
            publication: config.publication_for(&ctx.pipeline),
            rows: Builder::new(&config, &ctx),
            config,
            ctx,
            tx,
            durable: durable_rx,
            stop: stop_rx,
            done: done.clone(),
            total: total.clone(),
            targets: HashMap::new(),
            emitted: Position::default(),
            started: Instant::now(),
        };
        tokio::spawn(async move {
            let outcome = run.main(start).await;
            run.cleanup().await;
            match outcome {
                Ok(()) => {}
                Err(e) => {
                    let _ = run.tx.send(Err(e)).await;
                }
            }
        });
        Self {
            rx,
            committer: Arc::new(Committer { durable }),
            done,
            total,
            stop,
        }
    }
}

impl Drop for CdcSource {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[async_trait]
impl Source for CdcSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        match self.rx.recv().await {
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }
    fn progress(&self) -> Progress {
        Progress {
            done: self.done.load(Ordering::Relaxed),
            total: *self.total.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }
    fn committer(&self) -> Option<Arc<dyn OffsetCommitter>> {
        Some(self.committer.clone())
    }
    fn partitions(&self) -> Option<crate::api::PartitionProbe> {
        Some(Arc::new(|| vec![PARTITION.to_string()]))
    }
}

/// Flattened rows (`envelope = 'none'`) or Debezium events.
enum Builder {
    Rows(Box<Rows>),
    Events(Box<Events>),
}

impl Builder {
    fn new(config: &CdcConfig, ctx: &SourceContext) -> Self {
        match &config.events {
            Some(events) => Builder::Events(Box::new(Events::new(
                events.clone(),
                &config.dbname,
                &ctx.schema,
                &ctx.used,
                &ctx.name,
            ))),
            None => Builder::Rows(Box::new(Rows::new(ctx.schema.clone(), &ctx.used, &ctx.name))),
        }
    }

    /// Readies `target`'s events before its rows (Avro: registers its schemas).
    async fn prepare(&mut self, target: &Target) -> std::result::Result<(), String> {
        match self {
            Builder::Rows(_) => Ok(()),
            Builder::Events(e) => e.prepare(target).await,
        }
    }

    fn push(&mut self, target: &Target, values: Option<&[Value<'_>]>, old: Option<&[Value<'_>]>, at: Origin) {
        match self {
            Builder::Rows(r) => r.push(target, values, old, at),
            Builder::Events(e) => e.push(target, values, old, at),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Rows(r) => r.len(),
            Builder::Events(e) => e.len(),
        }
    }

    /// The declared columns a table's columns are matched to (none for events).
    fn declared(&self) -> &[FieldRef] {
        match self {
            Builder::Rows(r) => r.declared(),
            Builder::Events(_) => &[],
        }
    }

    fn finish(&mut self) -> std::result::Result<(RecordBatch, RowOrigins, Vec<RejectedRecord>), ArrowError> {
        match self {
            Builder::Rows(r) => r.finish(),
            Builder::Events(e) => e.finish(),
        }
    }
}

/// The streaming task's state.
struct Run {
    config: CdcConfig,
    ctx: SourceContext,
    slot: String,
    publication: String,
    tx: mpsc::Sender<Result<SourceBatch>>,
    rows: Builder,
    durable: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    done: Arc<AtomicU64>,
    total: Arc<Mutex<Option<u64>>>,
    /// Relation id → how its rows are read (`None`: not captured).
    targets: HashMap<u32, Option<Target>>,
    /// What has been handed to the engine so far.
    emitted: Position,
    started: Instant,
}

/// An open transaction in the stream.
struct Txn {
    commit_lsn: u64,
    xid: u32,
    commit_micros: i64,
    /// Changes seen so far (whether delivered or skipped).
    changes: u64,
    /// Changes already delivered before a restart: skipped.
    skip: u64,
}

/// The stream ended, or must be opened again.
enum Ended {
    /// Caught up (`--until-caught-up`) or asked to stop.
    Done,
    /// The connection broke: open it again after a pause.
    Lost(String),
}

impl Run {
    fn at(&self) -> &str {
        &self.config.conn.target
    }

    /// Hands a batch to the engine; `false` once the source is gone.
    async fn send(&mut self, offsets: Offsets) -> Result<bool> {
        let (batch, origins, rejected) = self
            .rows
            .finish()
            .map_err(|e| ConnectorError::arrow(format!("building a batch of changes from {}", self.at()), e))?;
        self.done
            .fetch_add((batch.num_rows() + rejected.len()) as u64, Ordering::Relaxed);
        let batch = SourceBatch {
            batch,
            origins,
            offsets,
            rejected,
            raw: Vec::new(),
            filtered: None,
        };
        Ok(tokio::select! {
            sent = self.tx.send(Ok(batch)) => sent.is_ok(),
            _ = self.stop.wait_for(|s| *s) => false,
        })
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.tx.is_closed()
    }

    async fn main(&mut self, start: Resume) -> Result<()> {
        let sql = self.config.conn.connect().await?;
        self.preflight(&sql).await?;
        let tables = self.prepare_publication(&sql).await?;
        let slot = slot_state(&sql, &self.slot, self.at()).await?;
        if let Some((plugin, database)) = &slot
            && (plugin != "pgoutput" || database != &self.config.dbname)
        {
            return Err(ConnectorError::Config(format!(
                "replication slot {} in {} belongs to database {database} with plugin {plugin}; this source needs a pgoutput slot of database {}: name another with slot.name",
                self.slot,
                self.at(),
                self.config.dbname
            )));
        }
        let snapshot = match (self.config.snapshot, &start) {
            (SnapshotMode::Never, _) => false,
            (SnapshotMode::Always, _) => true,
            (_, Resume::Stream(_)) => false,
            _ => true,
        };
        if self.config.snapshot == SnapshotMode::InitialOnly && matches!(start, Resume::Stream(_)) {
            tracing::info!(slot = %self.slot, "the initial snapshot was taken already (snapshot.mode = initial_only): nothing to read");
            return Ok(());
        }
        let position = if snapshot {
            if start == Resume::Snapshot {
                tracing::warn!(slot = %self.slot, "the snapshot was interrupted; it is taken again from the start");
            }
            if slot.is_some() {
                drop_slot(&sql, &self.slot, self.at()).await?;
            }
            let end = self.snapshot(&sql, &tables).await?;
            if self.config.snapshot == SnapshotMode::InitialOnly {
                drop_slot(&sql, &self.slot, self.at()).await?;
                return Ok(());
            }
            match end {
                Some(end) => Position { end, partial: None },
                None => return Ok(()),
            }
        } else {
            match (&slot, &start) {
                (None, Resume::Stream(p)) => {
                    return Err(ConnectorError::Config(format!(
                        "replication slot {} no longer exists in {}: the changes after LSN {} cannot be read any more; reset the pipeline's offsets to take a new snapshot",
                        self.slot,
                        self.at(),
                        lsn_text(p.end)
                    )));
                }
                (None, _) => {
                    sql.execute(
                        "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                        &[&self.slot],
                    )
                    .await
                    .map_err(|e| pg_error(&format!("creating replication slot {} in {}", self.slot, self.at()), &e))?;
                    tracing::info!(slot = %self.slot, at = %self.at(), "replication slot created");
                    Position::default()
                }
                (Some(_), Resume::Stream(p)) => *p,
                (Some(_), _) => Position::default(),
            }
        };
        self.emitted = position;
        self.stream(sql).await
    }

    /// `wal_level = logical` and a user allowed to replicate: a clear error now
    /// beats a cryptic one from the replication connection.
    async fn preflight(&self, sql: &tokio_postgres::Client) -> Result<()> {
        let at = self.at();
        let row = sql
            .query_one(
                "SELECT current_setting('wal_level'), r.rolreplication OR r.rolsuper \
                 FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| pg_error(&format!("checking the replication settings of {at}"), &e))?;
        let (level, allowed): (String, bool) = (row.get(0), row.get(1));
        if level != "logical" {
            return Err(ConnectorError::Config(format!(
                "{at} has wal_level = {level}; change data capture needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)"
            )));
        }
        if !allowed {
            return Err(ConnectorError::Config(format!(
                "user {} may not replicate from {at}: grant it with ALTER ROLE {} WITH REPLICATION",
                self.config.user, self.config.user
            )));
        }
        Ok(())
    }

    /// Creates or adjusts the publication as `publication.autocreate.mode` says;
    /// returns the captured tables it publishes, for the snapshot.
    async fn prepare_publication(&self, sql: &tokio_postgres::Client) -> Result<Vec<(String, String)>> {
        let at = self.at();
        let all = sql
            .query(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' \
                 ORDER BY 1, 2",
                &[],
            )
            .await
            .map_err(|e| pg_error(&format!("listing the tables of {at}"), &e))?;
        let captured: Vec<(String, String)> = all
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .filter(|(s, t)| self.config.captures(&format!("{s}.{t}")))
            .collect();
        let exists = sql
            .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&self.publication])
            .await
            .map_err(|e| pg_error(&format!("looking for publication {} in {at}", self.publication), &e))?
            .is_some();
        let list = || {
            captured
                .iter()
                .map(|(s, t)| format!("{}.{}", quote(s), quote(t)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ddl = match (self.config.autocreate, exists) {
            (Autocreate::Disabled, false) => {
                return Err(ConnectorError::Config(format!(
                    "publication {} does not exist in {at}, and publication.autocreate.mode = 'disabled': create it, or let the source (all_tables, filtered)",
                    self.publication
                )));
            }
            (Autocreate::AllTables, false) => Some(format!(
                "CREATE PUBLICATION {} FOR ALL TABLES",
                quote(&self.publication)
            )),
            (Autocreate::Filtered, _) if captured.is_empty() => {
                return Err(ConnectorError::Config(format!(
                    "no table in {at} matches table.include.list / table.exclude.list: a filtered publication needs at least one"
                )));
            }
            (Autocreate::Filtered, false) => Some(format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote(&self.publication),
                list()
            )),
            (Autocreate::Filtered, true) => Some(format!(
                "ALTER PUBLICATION {} SET TABLE {}",
                quote(&self.publication),
                list()
            )),
            _ => None,
        };
        if let Some(ddl) = ddl {
            sql.batch_execute(&ddl)
                .await
                .map_err(|e| pg_error(&format!("{ddl} in {at}"), &e))?;
            tracing::info!(publication = %self.publication, statement = %ddl, "publication prepared");
        }
        let published = sql
            .query(
                "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
                &[&self.publication],
            )
            .await
            .map_err(|e| {
                pg_error(
                    &format!("reading the tables of publication {} in {at}", self.publication),
                    &e,
                )
            })?;
        let published: Vec<(String, String)> = published.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(captured.into_iter().filter(|t| published.contains(t)).collect())
    }

    fn replication_config(&self, start: u64, ack: u64) -> ReplicationConfig {
        let c = &self.config;
        let ca = c.root_cert_path.clone();
        let tls = match c.tls.mode {
            SslMode::Disable => TlsConfig::disabled(),
            SslMode::Prefer | SslMode::Require => TlsConfig::require(),
            SslMode::VerifyCa => TlsConfig::verify_ca(ca),
            SslMode::VerifyFull => TlsConfig::verify_full(ca),
        };
        // `prefer` tries TLS and falls back to plain, as libpq does.
        let tls = if c.tls.mode == SslMode::Prefer {
            TlsConfig {
                mode: pgwire_replication::SslMode::Prefer,
                ..tls
            }
        } else {
            tls
        };
        let status = c
            .heartbeat
            .unwrap_or(Duration::from_secs(10))
            .min(Duration::from_secs(10));
        ReplicationConfig::new(
            &c.host,
            &c.user,
            &c.password,
            &c.dbname,
            &self.slot,
            self.publication.as_str(),
        )
        .with_port(c.port)
        .with_tls(tls)
        .with_start_lsn(Lsn(start))
        .with_ack_lsn(Lsn(ack))
        .with_status_interval(Duration::from_secs(1))
        .with_wakeup_interval(status)
        .with_options("-c datestyle=ISO -c timezone=UTC -c intervalstyle=iso_8601 -c extra_float_digits=3")
        .with_application_name(format!("quiver-cdc-{}", self.slot))
    }

    /// Creates the slot with an exported snapshot and reads every captured table
    /// as of that snapshot; returns the slot's consistent point, where streaming
    /// starts, with nothing missed and nothing read twice at the seam.
    async fn snapshot(&mut self, sql: &tokio_postgres::Client, tables: &[(String, String)]) -> Result<Option<u64>> {
        let at = self.at().to_string();
        let mut gated = ReplicationClient::connect_gated(self.replication_config(0, 0))
            .await
            .map_err(|e| wire_error(&format!("opening a replication connection to {at}"), e))?;
        let rows = gated
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
                quote(&self.slot)
            ))
            .await
            .map_err(|e| wire_error(&format!("creating replication slot {} in {at}", self.slot), e))?;
        let cell = |i: usize| -> Result<String> {
            rows.first()
                .and_then(|r| r.get(i))
                .and_then(|c| c.as_ref())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or_else(|| ConnectorError::Internal("CREATE_REPLICATION_SLOT returned no row".into()))
        };
        let consistent = Lsn::parse(&cell(1)?)
            .map_err(|e| ConnectorError::Internal(format!("CREATE_REPLICATION_SLOT: {e}")))?
            .0;
        let snapshot_name = cell(2)?;
        tracing::info!(slot = %self.slot, lsn = %lsn_text(consistent), tables = tables.len(), "replication slot created; snapshot started");
        let estimate: i64 = {
            let names: Vec<String> = tables
                .iter()
                .map(|(s, t)| format!("{}.{}", quote(s), quote(t)))
                .collect();
            sql.query_one(
                "SELECT COALESCE(sum(greatest(reltuples, 0)), 0)::bigint FROM pg_class WHERE oid = ANY(SELECT unnest($1::text[])::regclass)",
                &[&names],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0)
        };
        *self.total.lock().unwrap_or_else(|p| p.into_inner()) = Some(estimate.max(0) as u64);
        sql.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot_name}'"
        ))
        .await
        .map_err(|e| pg_error(&format!("opening the snapshot in {at}"), &e))?;
        let fetch = self.ctx.batch.max_rows.max(1);
        let mut read = 0u64;
        for (i, (schema, table)) in tables.iter().enumerate() {
            let target = Target::new(table_relation(sql, schema, table, &at).await?, self.rows.declared());
            self.rows.prepare(&target).await.map_err(|e| {
                ConnectorError::Config(format!(
                    "registering the Avro schemas of {schema}.{table}'s events: {e}"
                ))
            })?;
            let select: Vec<String> = target
                .rel
                .columns
                .iter()
                .map(|c| format!("{}::text", quote(&c.name)))
                .collect();
            sql.batch_execute(&format!(
                "DECLARE quiver_snapshot NO SCROLL CURSOR FOR SELECT {} FROM {}.{}",
                if select.is_empty() {
                    "NULL".to_string()
                } else {
                    select.join(", ")
                },
                quote(schema),
                quote(table)
            ))
            .await
            .map_err(|e| pg_error(&format!("reading table {schema}.{table} in {at}"), &e))?;
            let mut table_rows = 0u64;
            loop {
                let chunk = sql
                    .query(&format!("FETCH FORWARD {fetch} FROM quiver_snapshot"), &[])
                    .await
                    .map_err(|e| pg_error(&format!("reading table {schema}.{table} in {at}"), &e))?;
                let origin = Origin {
                    op: b'r',
                    lsn: consistent,
                    xid: None,
                    commit_micros: None,
                    last_commit: consistent,
                };
                for row in &chunk {
                    let values: Vec<Value<'_>> = (0..row.len())
                        .map(|c| match row.get::<_, Option<&str>>(c) {
                            Some(s) => Value::Text(s.as_bytes()),
                            None => Value::Null,
                        })
                        .collect();
                    self.rows.push(&target, Some(&values), None, origin);
                }
                table_rows += chunk.len() as u64;
                read += chunk.len() as u64;
                let last = chunk.len() < fetch && i + 1 == tables.len();
                if chunk.is_empty() && !last {
                    break;
                }
                let offsets = if last {
                    Position {
                        end: consistent,
                        partial: None,
                    }
                    .offsets()
                } else {
                    Offsets(
                        [(
                            PARTITION.to_string(),
                            json!({ "snapshot": { "slot_lsn": lsn_text(consistent), "table": format!("{schema}.{table}"), "rows": table_rows } }),
                        )]
                        .into_iter()
                        .collect(),
                    )
                };
                if !self.send(offsets).await? {
                    return Ok(None);
                }
                if chunk.len() < fetch {
                    break;
                }
            }
            sql.batch_execute("CLOSE quiver_snapshot")
                .await
                .map_err(|e| pg_error(&format!("reading table {schema}.{table} in {at}"), &e))?;
            tracing::info!(table = %format!("{schema}.{table}"), rows = table_rows, "snapshot of table read");
        }
        if tables.is_empty() {
            // Nothing to read: the position alone says the snapshot is done.
            let offsets = Position {
                end: consistent,
                partial: None,
            }
            .offsets();
            if !self.send(offsets).await? {
                return Ok(None);
            }
        }
        sql.batch_execute("COMMIT")
            .await
            .map_err(|e| pg_error(&format!("closing the snapshot in {at}"), &e))?;
        *self.total.lock().unwrap_or_else(|p| p.into_inner()) = Some(read);
        // The exported snapshot lives as long as the session that created the
        // slot; closing it now lets the stream open a session of its own.
        drop(gated);
        tracing::info!(slot = %self.slot, rows = read, "snapshot done; streaming from its consistent point");
        Ok(Some(consistent))
    }

    /// Streams changes, opening the connection again (with backoff) when it breaks.
    async fn stream(&mut self, mut sql: tokio_postgres::Client) -> Result<()> {
        // `--until-caught-up`: a logical message marks the WAL's end as of now;
        // the stream stops once it arrives.
        let marker = format!("quiver.caught-up.{}", self.slot);
        let stop_at = if self.ctx.bounded {
            let row = sql
                .query_one("SELECT pg_logical_emit_message(false, $1, '')::text", &[&marker])
                .await
                .map_err(|e| pg_error(&format!("marking the end of the WAL in {}", self.at()), &e))?;
            Some(Lsn::parse(&row.get::<_, String>(0)).map(|l| l.0).unwrap_or(u64::MAX))
        } else {
            None
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            let durable = *self.durable.borrow();
            let cfg = self.replication_config(self.emitted.end.max(durable), durable);
            // The SQL session (heartbeats, the retained-WAL check) died with a
            // server restart too: open it again beside the stream.
            if sql.is_closed() {
                match self.config.conn.connect().await {
                    Ok(fresh) => sql = fresh,
                    Err(e) => {
                        tracing::warn!(slot = %self.slot, error = %e, "cannot reopen the SQL session; heartbeats wait")
                    }
                }
            }
            let outcome = match ReplicationClient::connect(cfg).await {
                Ok(client) => self.follow(client, &sql, stop_at, &marker).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(Ended::Done) => return Ok(()),
                Ok(Ended::Lost(why)) => {
                    tracing::warn!(slot = %self.slot, at = %self.at(), reason = %why, retry_in = ?backoff, "replication stream lost; reconnecting");
                }
                Err(e) => {
                    let e = wire_error(&format!("streaming from slot {} in {}", self.slot, self.at()), e);
                    if !e.is_retriable() {
                        return Err(e);
                    }
                    tracing::warn!(slot = %self.slot, error = %e, retry_in = ?backoff, "replication stream failed; reconnecting");
                }
            }
            if self.stopped() {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.wait_for(|s| *s) => return Ok(()),
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// One replication session: decode, batch, hand over, acknowledge.
    async fn follow(
        &mut self,
        mut client: ReplicationClient,
        sql: &tokio_postgres::Client,
        stop_at: Option<u64>,
        marker: &str,
    ) -> std::result::Result<Ended, PgWireError> {
        self.targets.clear();
        let skip_before = self.emitted;
        let mut txn: Option<Txn> = None;
        let mut linger = tokio::time::interval(self.ctx.batch.linger);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(self.config.heartbeat.unwrap_or(Duration::from_secs(3600)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut wal_check = tokio::time::interval(Duration::from_secs(60));
        wal_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rows_at = Instant::now();
        loop {
            enum Wake {
                Stop,
                Durable(bool),
                Linger,
                Heartbeat,
                WalCheck,
                Event(std::result::Result<Option<ReplicationEvent>, PgWireError>),
            }
            let wake = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => Wake::Stop,
                changed = self.durable.changed() => Wake::Durable(changed.is_ok()),
                _ = linger.tick() => Wake::Linger,
                _ = heartbeat.tick(), if self.config.heartbeat.is_some() => Wake::Heartbeat,
                _ = wal_check.tick() => Wake::WalCheck,
                event = client.recv() => Wake::Event(event),
            };
            let event = match wake {
                Wake::Stop => {
                    let _ = client.shutdown().await;
                    return Ok(Ended::Done);
                }
                Wake::Durable(changed) => {
                    if changed {
                        client.update_applied_lsn(Lsn(*self.durable.borrow()));
                    }
                    continue;
                }
                Wake::Linger => {
                    if self.rows.len() > 0 && last_rows_at.elapsed() >= self.ctx.batch.linger {
                        let offsets = self.position(txn.as_ref()).offsets();
                        if !self.flush(offsets).await {
                            let _ = client.shutdown().await;
                            return Ok(Ended::Done);
                        }
                    }
                    continue;
                }
                Wake::Heartbeat => {
                    if let Err(e) = sql
                        .execute("SELECT pg_logical_emit_message(false, 'quiver.heartbeat', '')", &[])
                        .await
                    {
                        tracing::warn!(slot = %self.slot, error = %pg_error("writing a heartbeat", &e), "heartbeat failed");
                    }
                    continue;
                }
                Wake::WalCheck => {
                    self.check_retained_wal(sql).await;
                    continue;
                }
                Wake::Event(event) => event,
            };
            let event = match event {
                Ok(Some(e)) => e,
                Ok(None) => {
                    self.emitted = self.position(txn.as_ref());
                    return Ok(Ended::Lost("the server ended the stream".into()));
                }
                Err(e) => {
                    // The changes of an open transaction gathered so far stay in
                    // the batch: the replay skips them.
                    self.emitted = self.position(txn.as_ref());
                    return Err(e);
                }
            };
            match event {
                ReplicationEvent::Begin {
                    final_lsn,
                    xid,
                    commit_time_micros,
                } => {
                    let skip = match skip_before.partial {
                        _ if final_lsn.0 < skip_before.end => u64::MAX,
                        Some((commit, changes)) if commit == final_lsn.0 => changes,
                        _ => 0,
                    };
                    txn = Some(Txn {
                        commit_lsn: final_lsn.0,
                        xid,
                        commit_micros: commit_time_micros + PG_EPOCH_MICROS,
                        changes: 0,
                        skip,
                    });
                }
                ReplicationEvent::XLogData { wal_start, data, .. } => {
                    let message = match pgoutput::decode(&data) {
                        Ok(m) => m,
                        Err(e) => {
                            self.emitted = self.position(txn.as_ref());
                            return Err(PgWireError::Protocol(format!("at LSN {}: {e}", lsn_text(wal_start.0))));
                        }
                    };
                    if let Message::Relation(mut rel) = message {
                        let id = rel.id;
                        let qualified = format!("{}.{}", rel.schema, rel.table);
                        let captured = self.config.captures(&qualified);
                        if captured
                            && self.config.events.is_some()
                            && let Err(e) = complete_relation(sql, &mut rel, &self.config.conn.target).await
                        {
                            // The events still go out, keyed by the replica identity.
                            tracing::warn!(table = %qualified, error = %e, "could not read the primary key and NOT NULL columns from the catalog");
                        }
                        let target = captured.then(|| Target::new(rel, self.rows.declared()));
                        if let Some(t) = &target
                            && let Err(e) = self.rows.prepare(t).await
                        {
                            // The registry is down: open the stream again after a pause.
                            self.emitted = self.position(txn.as_ref());
                            let _ = client.shutdown().await;
                            return Ok(Ended::Lost(format!(
                                "registering the Avro schemas of {qualified}'s events: {e}"
                            )));
                        }
                        if let Some(t) = target.as_ref().filter(|_| self.config.events.is_none()) {
                            let undeclared: Vec<&str> = t
                                .rel
                                .columns
                                .iter()
                                .zip(&t.slots)
                                .filter(|(_, slot)| slot.is_none())
                                .map(|(c, _)| c.name.as_str())
                                .collect();
                            if undeclared.len() == t.slots.len() {
                                tracing::warn!(table = %qualified, "no declared column matches a column of this table: its rows carry only metadata");
                            } else if !undeclared.is_empty() {
                                // A table that grew (ALTER TABLE … ADD COLUMN), or columns left out on purpose.
                                tracing::warn!(table = %qualified, columns = %undeclared.join(", "), "table columns that are not declared are not read; declare them to capture them");
                            }
                        }
                        self.targets.insert(id, target);
                        continue;
                    }
                    let Some(open) = txn.as_mut() else {
                        continue;
                    };
                    let counted = !matches!(message, Message::Other(_));
                    if counted {
                        open.changes += 1;
                    }
                    if !counted || open.changes <= open.skip {
                        continue;
                    }
                    let (xid, commit_micros) = (open.xid, open.commit_micros);
                    let last_commit = self.emitted.end;
                    let origin = |op| Origin {
                        op,
                        lsn: wal_start.0,
                        xid: Some(xid),
                        commit_micros: Some(commit_micros),
                        last_commit,
                    };
                    let skipped = &self.config.skipped;
                    match message {
                        Message::Insert { rel, new } if !skipped.contains(&b'c') => {
                            if let Some(Some(t)) = self.targets.get(&rel) {
                                self.rows.push(t, Some(&new), None, origin(b'c'));
                            }
                        }
                        Message::Update { rel, old, new } if !skipped.contains(&b'u') => {
                            if let Some(Some(t)) = self.targets.get(&rel) {
                                self.rows.push(t, Some(&new), old.as_deref(), origin(b'u'));
                            }
                        }
                        Message::Delete { rel, old } if !skipped.contains(&b'd') => {
                            if let Some(Some(t)) = self.targets.get(&rel) {
                                self.rows.push(t, None, Some(&old), origin(b'd'));
                            }
                        }
                        Message::Truncate { rels } if !skipped.contains(&b't') => {
                            for rel in rels {
                                if let Some(Some(t)) = self.targets.get(&rel) {
                                    self.rows.push(t, None, None, origin(b't'));
                                }
                            }
                        }
                        _ => {}
                    }
                    last_rows_at = Instant::now();
                    if self.rows.len() >= self.ctx.batch.max_rows {
                        let offsets = self.position(txn.as_ref()).offsets();
                        if !self.flush(offsets).await {
                            let _ = client.shutdown().await;
                            return Ok(Ended::Done);
                        }
                    }
                }
                ReplicationEvent::Commit { end_lsn, .. } => {
                    // A transaction delivered before (a replay after a restart)
                    // leaves the position as it is.
                    if txn.take().is_some_and(|t| t.skip != u64::MAX) {
                        self.emitted = Position {
                            end: end_lsn.0.max(self.emitted.end),
                            partial: None,
                        };
                    }
                    if self.rows.len() >= self.ctx.batch.max_rows {
                        let offsets = self.emitted.offsets();
                        if !self.flush(offsets).await {
                            let _ = client.shutdown().await;
                            return Ok(Ended::Done);
                        }
                    }
                }
                ReplicationEvent::KeepAlive { wal_end, .. } => {
                    // Nothing in flight: everything before the server's position
                    // is delivered and durable, so the slot may move on (an idle
                    // slot must not hold WAL back forever).
                    if txn.is_none() && self.rows.len() == 0 && *self.durable.borrow() >= self.emitted.end {
                        client.update_applied_lsn(wal_end);
                    }
                }
                ReplicationEvent::Message { prefix, lsn, .. } => {
                    if txn.is_none() && self.rows.len() == 0 && *self.durable.borrow() >= self.emitted.end {
                        client.update_applied_lsn(lsn);
                    }
                    if prefix == marker && stop_at.is_some_and(|s| lsn.0 >= s) {
                        if self.rows.len() > 0 {
                            let offsets = self.emitted.offsets();
                            self.flush(offsets).await;
                        }
                        tracing::info!(slot = %self.slot, lsn = %lsn_text(lsn.0), elapsed = ?self.started.elapsed(), "caught up with the WAL as of the start");
                        let _ = client.shutdown().await;
                        return Ok(Ended::Done);
                    }
                }
                ReplicationEvent::StoppedAt { .. } => return Ok(Ended::Done),
            }
        }
    }

    /// The position after the rows gathered so far.
    fn position(&self, txn: Option<&Txn>) -> Position {
        match txn {
            Some(t) if t.skip != u64::MAX && t.changes > 0 => Position {
                end: self.emitted.end,
                partial: Some((t.commit_lsn, t.changes)),
            },
            _ => self.emitted,
        }
    }

    /// Sends the gathered rows; `false` once nobody reads them.
    async fn flush(&mut self, offsets: Offsets) -> bool {
        let position = Resume::from(Some(&offsets));
        match self.send(offsets).await {
            Ok(sent) => {
                if let Resume::Stream(p) = position {
                    self.emitted = p;
                }
                sent
            }
            Err(e) => {
                let _ = self.tx.send(Err(e)).await;
                false
            }
        }
    }

    async fn check_retained_wal(&self, sql: &tokio_postgres::Client) {
        let row = sql
            .query_opt(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .await;
        match row {
            Ok(Some(r)) => {
                let retained: Option<i64> = r.get(0);
                if let Some(bytes) = retained.filter(|b| *b as u64 > self.config.wal_warn) {
                    tracing::warn!(slot = %self.slot, retained_bytes = bytes, "the replication slot holds back more WAL than slot.retained.wal.warn: the pipeline falls behind, or its tables are idle while others are busy (set heartbeat.interval.ms)");
                }
            }
            Ok(None) => tracing::warn!(slot = %self.slot, "the replication slot is gone"),
            Err(e) => {
                tracing::warn!(slot = %self.slot, error = %pg_error("checking the slot's retained WAL", &e), "cannot check the slot")
            }
        }
    }

    /// Drops the slot when `slot.drop.on.stop` says so.
    async fn cleanup(&mut self) {
        if !self.config.drop_on_stop {
            return;
        }
        let Ok(sql) = self.config.conn.connect().await else {
            tracing::warn!(slot = %self.slot, "cannot drop the replication slot: the database is unreachable");
            return;
        };
        // The walsender lets go of the slot a moment after the stream ends.
        for _ in 0..20 {
            match drop_slot(&sql, &self.slot, self.at()).await {
                Ok(()) => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        tracing::warn!(slot = %self.slot, "the replication slot could not be dropped (still active?)");
    }
}

async fn slot_state(sql: &tokio_postgres::Client, slot: &str, at: &str) -> Result<Option<(String, String)>> {
    let row = sql
        .query_opt(
            "SELECT plugin::text, database::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| pg_error(&format!("looking for replication slot {slot} in {at}"), &e))?;
    Ok(row.map(|r| {
        (
            r.get::<_, Option<String>>(0).unwrap_or_default(),
            r.get::<_, Option<String>>(1).unwrap_or_default(),
        )
    }))
}

async fn drop_slot(sql: &tokio_postgres::Client, slot: &str, at: &str) -> Result<()> {
    sql.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
        &[&slot],
    )
    .await
    .map_err(|e| pg_error(&format!("dropping replication slot {slot} in {at}"), &e))?;
    tracing::info!(slot = %slot, "replication slot dropped");
    Ok(())
}

/// A table's columns as a Relation (what the stream would send), for the snapshot.
async fn table_relation(sql: &tokio_postgres::Client, schema: &str, table: &str, at: &str) -> Result<Relation> {
    let qualified = format!("{}.{}", quote(schema), quote(table));
    let oid = sql
        .query_one("SELECT $1::text::regclass::oid::bigint", &[&qualified])
        .await
        .map_err(|e| pg_error(&format!("reading the columns of {schema}.{table} in {at}"), &e))?
        .get::<_, i64>(0);
    let columns = catalog_columns(sql, oid as u32)
        .await
        .map_err(|e| pg_error(&format!("reading the columns of {schema}.{table} in {at}"), &e))?;
    Ok(Relation {
        id: oid as u32,
        schema: schema.to_string(),
        table: table.to_string(),
        replica_identity: b'd',
        columns: columns
            .into_iter()
            .map(|(name, type_oid, type_mod, primary, not_null)| RelColumn {
                name,
                key: primary,
                type_oid,
                type_mod,
                primary,
                not_null,
            })
            .collect(),
    })
}

/// A table's columns from the catalog: name, type, type modifier, part of the
/// primary key, NOT NULL.
async fn catalog_columns(
    sql: &tokio_postgres::Client,
    oid: u32,
) -> std::result::Result<Vec<(String, u32, i32, bool, bool)>, tokio_postgres::Error> {
    let rows = sql
        .query(
            "SELECT a.attname::text, a.atttypid::oid::bigint, a.atttypmod, \
             COALESCE(a.attnum = ANY(i.indkey), false), a.attnotnull \
             FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&i64::from(oid)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as u32, r.get(2), r.get(3), r.get(4)))
        .collect())
}

/// Fills what pgoutput's Relation message leaves out (the primary key and NOT
/// NULL) from the catalog, for Debezium's key and schemas. A column the catalog
/// no longer has (dropped since) keeps the message's facts.
async fn complete_relation(sql: &tokio_postgres::Client, rel: &mut Relation, at: &str) -> Result<()> {
    let columns = catalog_columns(sql, rel.id).await.map_err(|e| {
        pg_error(
            &format!("reading the columns of {}.{} in {at}", rel.schema, rel.table),
            &e,
        )
    })?;
    for c in &mut rel.columns {
        if let Some((_, _, _, primary, not_null)) = columns.iter().find(|(n, ..)| *n == c.name) {
            c.primary = *primary;
            c.not_null = *not_null;
        }
    }
    Ok(())
}

/// A replication client error with context: a lost connection is retriable, a
/// refusal from the server (slot or publication missing, no permission) is not,
/// except a slot another session still holds (a previous instance going away).
fn wire_error(context: &str, e: PgWireError) -> ConnectorError {
    let message = format!("{context}: {e}");
    match &e {
        PgWireError::Io(_) | PgWireError::Task(_) => ConnectorError::Unavailable(message),
        PgWireError::Server(s) if s.contains("is active for PID") || s.contains("57P") || s.contains("terminating") => {
            ConnectorError::Unavailable(message)
        }
        _ => ConnectorError::Config(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_offsets_and_drive_the_committer() {
        let whole = Position {
            end: 0x1_0000_0020,
            partial: None,
        };
        assert_eq!(whole.offsets().get(PARTITION), Some(&json!({"lsn": "1/20"})));
        assert_eq!(Resume::from(Some(&whole.offsets())), Resume::Stream(whole));
        let cut = Position {
            end: 0x20,
            partial: Some((0x40, 2000)),
        };
        assert_eq!(Resume::from(Some(&cut.offsets())), Resume::Stream(cut));
        assert_eq!(Resume::from(None), Resume::Fresh);
        let snapshot = Offsets(
            [(
                PARTITION.to_string(),
                json!({"snapshot": {"table": "public.t", "rows": 5}}),
            )]
            .into(),
        );
        assert_eq!(Resume::from(Some(&snapshot)), Resume::Snapshot);

        // Only a stream position moves the slot, and never backwards.
        let (durable, rx) = watch::channel(0u64);
        let committer = Committer { durable };
        committer.commit(&snapshot, false);
        assert_eq!(*rx.borrow(), 0);
        committer.commit(&cut.offsets(), false);
        assert_eq!(*rx.borrow(), 0x20);
        committer.commit(&whole.offsets(), false);
        assert_eq!(*rx.borrow(), 0x1_0000_0020);
        committer.commit(&cut.offsets(), true);
        assert_eq!(*rx.borrow(), 0x1_0000_0020);
    }
}
