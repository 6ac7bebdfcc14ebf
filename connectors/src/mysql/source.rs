//! Reading MySQL/MariaDB for the polling source: each poll is one text-protocol
//! query whose rows stream off the socket (the server waits while the pipeline
//! is busy). Values arrive as text and are cast to the declared Arrow types;
//! a value the declared type cannot hold makes its row a decode error. Columns
//! declared BYTEA keep the raw bytes. MySQL has no arrays: JSON columns are read
//! as STRING (and taken apart with `json_get_*`).

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, StringBuilder};
use arrow::datatypes::DataType;
use async_trait::async_trait;
use mysql_async::Value;
use mysql_async::prelude::Queryable;

use super::config::{MysqlConnection, error};
use super::types::{push_str_literal, quote};
use crate::api::{ConnectorError, Result};
use crate::jdbc::source::{Dialect, Emitter, Reader};

pub(crate) static DIALECT: Dialect = Dialect {
    quote,
    literal: |s| {
        let mut out = String::new();
        push_str_literal(&mut out, s);
        out
    },
    as_text: |e| format!("CAST({e} AS CHAR)"),
    as_bigint: |e| format!("CAST({e} AS SIGNED)"),
    now_minus_ms: |ms| format!("(NOW(6) - INTERVAL {} MICROSECOND)", ms * 1000),
};

pub(crate) fn supported(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::Date32
            | DataType::Time64(_)
            | DataType::Timestamp(..)
    )
}

fn is_binary(dt: &DataType) -> bool {
    matches!(dt, DataType::Binary | DataType::LargeBinary)
}

/// The select list for the declared columns.
pub(crate) fn columns(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| quote(f.name())).collect()
}

enum Column {
    Text(StringBuilder),
    Bytes(BinaryBuilder),
}

impl Column {
    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Text(b) => Arc::new(b.finish()),
            Column::Bytes(b) => Arc::new(b.finish()),
        }
    }
}

pub(crate) struct MysqlReader {
    conn: MysqlConnection,
    db: Option<mysql_async::Conn>,
    binary: Vec<bool>,
    tracked: (bool, bool),
}

impl MysqlReader {
    pub(crate) async fn connect(
        conn: MysqlConnection,
        schema: &arrow::datatypes::Schema,
        tracked: (bool, bool),
    ) -> Result<Self> {
        let db = Some(conn.connect().await?);
        Ok(Self {
            conn,
            db,
            binary: schema.fields().iter().map(|f| is_binary(f.data_type())).collect(),
            tracked,
        })
    }
}

fn failed(target: &str, e: &mysql_async::Error) -> ConnectorError {
    error(&format!("reading {target}"), e)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Some(Value::Int(i)) => Some(i.to_string()),
        Some(Value::UInt(i)) => Some(i.to_string()),
        Some(Value::Float(f)) => Some(f.to_string()),
        Some(Value::Double(f)) => Some(f.to_string()),
        _ => None,
    }
}

#[async_trait]
impl Reader for MysqlReader {
    async fn run(&mut self, sql: &str, out: &mut Emitter) -> Result<()> {
        if self.db.is_none() {
            self.db = Some(self.conn.connect().await?);
        }
        let target = self.conn.target.clone();
        let outcome = async {
            let Some(db) = self.db.as_mut() else {
                return Err(ConnectorError::Internal("no MySQL connection".into()));
            };
            let mut result = db.query_iter(sql).await.map_err(|e| failed(&target, &e))?;
            let mut cols: Vec<Column> = self
                .binary
                .iter()
                .map(|b| {
                    if *b {
                        Column::Bytes(BinaryBuilder::new())
                    } else {
                        Column::Text(StringBuilder::new())
                    }
                })
                .collect();
            let n = cols.len();
            let (has_ts, has_inc) = self.tracked;
            while let Some(row) = result.next().await.map_err(|e| failed(&target, &e))? {
                let ts = if has_ts { text(row.as_ref(n)) } else { None };
                let inc = if has_inc {
                    text(row.as_ref(n + usize::from(has_ts))).and_then(|s| s.parse::<i64>().ok())
                } else {
                    None
                };
                if out.cut_before() {
                    out.emit(cols.iter_mut().map(Column::finish).collect(), ts.as_deref())
                        .await?;
                }
                for (i, c) in cols.iter_mut().enumerate() {
                    match (c, row.as_ref(i)) {
                        (Column::Bytes(b), Some(Value::Bytes(v))) => b.append_value(v),
                        (Column::Bytes(b), _) => b.append_null(),
                        // Text arrives as UTF-8 bytes (the connection's charset is utf8mb4):
                        // appended as is, without a String per cell.
                        (Column::Text(b), Some(Value::Bytes(v))) => match std::str::from_utf8(v) {
                            Ok(t) => b.append_value(t),
                            Err(_) => b.append_value(String::from_utf8_lossy(v)),
                        },
                        (Column::Text(b), v) => b.append_option(text(v)),
                    }
                }
                out.push(ts, inc);
            }
            drop(result);
            out.emit(cols.iter_mut().map(Column::finish).collect(), None).await
        }
        .await;
        if outcome.as_ref().is_err_and(ConnectorError::is_retriable) {
            self.db = None;
        }
        outcome
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<arrow::datatypes::Field>> {
        if self.db.is_none() {
            self.db = Some(self.conn.connect().await?);
        }
        let Some(db) = self.db.as_mut() else {
            return Err(ConnectorError::Internal("no MySQL connection".into()));
        };
        super::discover::table_fields(db, table, &self.conn.target).await
    }

    fn reset(&mut self) {
        self.db = None;
    }
}
