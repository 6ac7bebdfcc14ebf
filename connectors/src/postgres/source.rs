//! Reading PostgreSQL for the polling source: each poll is one binary
//! `COPY (SELECT …) TO STDOUT`, streamed row by row into Arrow builders.
//!
//! Every declared column is selected with a cast to the wire type of its Arrow
//! type, so PostgreSQL does the conversion (uuid or jsonb → text, integer →
//! bigint, numeric → text parsed into the declared decimal):
//!
//! | declared | selected as |
//! |---|---|
//! | BOOLEAN | boolean |
//! | TINYINT, SMALLINT | smallint |
//! | INT | integer |
//! | BIGINT | bigint |
//! | REAL / DOUBLE | real / double precision |
//! | DECIMAL(p, s) | text, parsed into the decimal |
//! | STRING | text (any type: json, jsonb, uuid, enums, …) |
//! | BYTEA | bytea |
//! | DATE, TIME | date, time |
//! | TIMESTAMP | timestamp; with a zone: timestamptz (UTC) |
//! | arrays of BOOLEAN, integers, floats, STRING | the matching PostgreSQL array |

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, ListBuilder, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::DataType;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use futures::StreamExt;
use tokio_postgres::binary_copy::{BinaryCopyOutRow, BinaryCopyOutStream};
use tokio_postgres::types::Type;

use super::config::{PgConnection, error};
use crate::api::{ConnectorError, Result};
use crate::jdbc::source::{Dialect, Emitter, Reader};

pub(crate) static DIALECT: Dialect = Dialect {
    quote: super::sink::quote,
    literal: |s| format!("'{}'", s.replace('\'', "''")),
    as_text: |e| format!("({e})::text"),
    as_bigint: |e| format!("({e})::int8"),
    now_minus_ms: |ms| format!("(now() - interval '{ms} milliseconds')"),
};

/// The wire type a declared type is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    Text,
    Bytes,
    Date,
    Time,
    Ts,
    TsTz,
    ListBool,
    ListI64,
    ListF64,
    ListText,
}

fn wire(dt: &DataType) -> Option<Wire> {
    Some(match dt {
        DataType::Boolean => Wire::Bool,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Wire::I16,
        DataType::Int32 | DataType::UInt16 => Wire::I32,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Wire::I64,
        DataType::Float16 | DataType::Float32 => Wire::F32,
        DataType::Float64 => Wire::F64,
        DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View => Wire::Text,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Wire::Bytes,
        DataType::Date32 | DataType::Date64 => Wire::Date,
        DataType::Time32(_) | DataType::Time64(_) => Wire::Time,
        DataType::Timestamp(_, None) => Wire::Ts,
        DataType::Timestamp(_, Some(_)) => Wire::TsTz,
        DataType::List(f) | DataType::LargeList(f) => match wire(f.data_type())? {
            Wire::Bool => Wire::ListBool,
            Wire::I16 | Wire::I32 | Wire::I64 => Wire::ListI64,
            Wire::F32 | Wire::F64 => Wire::ListF64,
            Wire::Text => Wire::ListText,
            _ => return None,
        },
        _ => return None,
    })
}

pub(crate) fn supported(dt: &DataType) -> bool {
    wire(dt).is_some()
}

impl Wire {
    fn pg(self) -> (Type, &'static str) {
        match self {
            Wire::Bool => (Type::BOOL, "boolean"),
            Wire::I16 => (Type::INT2, "smallint"),
            Wire::I32 => (Type::INT4, "integer"),
            Wire::I64 => (Type::INT8, "bigint"),
            Wire::F32 => (Type::FLOAT4, "real"),
            Wire::F64 => (Type::FLOAT8, "double precision"),
            Wire::Text => (Type::TEXT, "text"),
            Wire::Bytes => (Type::BYTEA, "bytea"),
            Wire::Date => (Type::DATE, "date"),
            Wire::Time => (Type::TIME, "time"),
            Wire::Ts => (Type::TIMESTAMP, "timestamp"),
            Wire::TsTz => (Type::TIMESTAMPTZ, "timestamptz"),
            Wire::ListBool => (Type::BOOL_ARRAY, "boolean[]"),
            Wire::ListI64 => (Type::INT8_ARRAY, "bigint[]"),
            Wire::ListF64 => (Type::FLOAT8_ARRAY, "double precision[]"),
            Wire::ListText => (Type::TEXT_ARRAY, "text[]"),
        }
    }

    fn builder(self) -> Box<dyn ArrayBuilder> {
        match self {
            Wire::Bool => Box::new(BooleanBuilder::new()),
            Wire::I16 => Box::new(Int16Builder::new()),
            Wire::I32 => Box::new(Int32Builder::new()),
            Wire::I64 => Box::new(Int64Builder::new()),
            Wire::F32 => Box::new(Float32Builder::new()),
            Wire::F64 => Box::new(Float64Builder::new()),
            Wire::Text => Box::new(StringBuilder::new()),
            Wire::Bytes => Box::new(BinaryBuilder::new()),
            Wire::Date => Box::new(Date32Builder::new()),
            Wire::Time => Box::new(Time64MicrosecondBuilder::new()),
            Wire::Ts => Box::new(TimestampMicrosecondBuilder::new()),
            Wire::TsTz => Box::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            Wire::ListBool => Box::new(ListBuilder::new(BooleanBuilder::new())),
            Wire::ListI64 => Box::new(ListBuilder::new(Int64Builder::new())),
            Wire::ListF64 => Box::new(ListBuilder::new(Float64Builder::new())),
            Wire::ListText => Box::new(ListBuilder::new(StringBuilder::new())),
        }
    }
}

/// The select list for the declared columns: each cast to its wire type.
pub(crate) fn columns(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let q = super::sink::quote(f.name());
            let ty = wire(f.data_type()).map_or("text", |w| w.pg().1);
            format!("({q})::{ty} AS {q}")
        })
        .collect()
}

pub(crate) struct PgReader {
    conn: PgConnection,
    client: Option<tokio_postgres::Client>,
    wires: Vec<Wire>,
    names: Vec<String>,
    tracked: (bool, bool),
}

impl PgReader {
    pub(crate) async fn connect(
        conn: PgConnection,
        schema: &arrow::datatypes::Schema,
        tracked: (bool, bool),
    ) -> Result<Self> {
        let client = Some(conn.connect().await?);
        let wires = schema
            .fields()
            .iter()
            .map(|f| wire(f.data_type()).unwrap_or(Wire::Text))
            .collect();
        let names = schema.fields().iter().map(|f| f.name().clone()).collect();
        Ok(Self {
            conn,
            client,
            wires,
            names,
            tracked,
        })
    }
}

fn failed(target: &str, e: &tokio_postgres::Error) -> ConnectorError {
    error(&format!("reading {target}"), e)
}

#[async_trait]
impl Reader for PgReader {
    async fn run(&mut self, sql: &str, out: &mut Emitter) -> Result<()> {
        if self.client.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            self.client = Some(self.conn.connect().await?);
        }
        let Some(client) = &self.client else {
            return Err(ConnectorError::Internal("no PostgreSQL connection".into()));
        };
        let target = &self.conn.target;
        let mut types: Vec<Type> = self.wires.iter().map(|w| w.pg().0).collect();
        let (has_ts, has_inc) = self.tracked;
        if has_ts {
            types.push(Type::TEXT);
        }
        if has_inc {
            types.push(Type::INT8);
        }
        let copy = client
            .copy_out(&format!("COPY ({sql}) TO STDOUT (FORMAT binary)"))
            .await
            .map_err(|e| failed(target, &e))?;
        let rows = BinaryCopyOutStream::new(copy, &types);
        let mut rows = std::pin::pin!(rows);
        let mut builders: Vec<Box<dyn ArrayBuilder>> = self.wires.iter().map(|w| w.builder()).collect();
        let n = self.wires.len();
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| failed(target, &e))?;
            let ts: Option<String> = if has_ts {
                row.try_get::<Option<String>>(n).map_err(|e| failed(target, &e))?
            } else {
                None
            };
            let inc: Option<i64> = if has_inc {
                row.try_get::<Option<i64>>(n + usize::from(has_ts))
                    .map_err(|e| failed(target, &e))?
            } else {
                None
            };
            if out.cut_before() {
                out.emit(finish(&mut builders), ts.as_deref()).await?;
            }
            for (i, (w, b)) in self.wires.iter().zip(builders.iter_mut()).enumerate() {
                append(*w, b.as_mut(), &row, i).map_err(|e| {
                    ConnectorError::Config(format!("reading column {} from {target}: {e}", self.names[i]))
                })?;
            }
            out.push(ts, inc);
        }
        out.emit(finish(&mut builders), None).await
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<arrow::datatypes::Field>> {
        if self.client.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            self.client = Some(self.conn.connect().await?);
        }
        let Some(client) = &self.client else {
            return Err(ConnectorError::Internal("no PostgreSQL connection".into()));
        };
        super::discover::table_fields(client, table, &self.conn.target).await
    }

    fn reset(&mut self) {
        self.client = None;
    }
}

fn finish(builders: &mut [Box<dyn ArrayBuilder>]) -> Vec<ArrayRef> {
    builders.iter_mut().map(|b| b.finish()).collect()
}

fn micros(t: NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000)
}

fn days(d: NaiveDate) -> i32 {
    d.signed_duration_since(NaiveDate::default()).num_days() as i32
}

fn downcast<T: 'static>(b: &mut dyn ArrayBuilder) -> std::result::Result<&mut T, String> {
    b.as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| "internal error: builder does not match its wire type".to_string())
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a BinaryCopyOutRow,
    i: usize,
) -> std::result::Result<Option<T>, String> {
    row.try_get::<Option<T>>(i).map_err(|e| e.to_string())
}

fn append(w: Wire, b: &mut dyn ArrayBuilder, row: &BinaryCopyOutRow, i: usize) -> std::result::Result<(), String> {
    match w {
        Wire::Bool => downcast::<BooleanBuilder>(b)?.append_option(get::<bool>(row, i)?),
        Wire::I16 => downcast::<Int16Builder>(b)?.append_option(get::<i16>(row, i)?),
        Wire::I32 => downcast::<Int32Builder>(b)?.append_option(get::<i32>(row, i)?),
        Wire::I64 => downcast::<Int64Builder>(b)?.append_option(get::<i64>(row, i)?),
        Wire::F32 => downcast::<Float32Builder>(b)?.append_option(get::<f32>(row, i)?),
        Wire::F64 => downcast::<Float64Builder>(b)?.append_option(get::<f64>(row, i)?),
        Wire::Text => downcast::<StringBuilder>(b)?.append_option(get::<&str>(row, i)?),
        Wire::Bytes => downcast::<BinaryBuilder>(b)?.append_option(get::<&[u8]>(row, i)?),
        Wire::Date => downcast::<Date32Builder>(b)?.append_option(get::<NaiveDate>(row, i)?.map(days)),
        Wire::Time => downcast::<Time64MicrosecondBuilder>(b)?.append_option(get::<NaiveTime>(row, i)?.map(micros)),
        Wire::Ts => downcast::<TimestampMicrosecondBuilder>(b)?
            .append_option(get::<NaiveDateTime>(row, i)?.map(|t| t.and_utc().timestamp_micros())),
        Wire::TsTz => downcast::<TimestampMicrosecondBuilder>(b)?
            .append_option(get::<DateTime<Utc>>(row, i)?.map(|t| t.timestamp_micros())),
        Wire::ListBool => downcast::<ListBuilder<BooleanBuilder>>(b)?.append_option(get::<Vec<Option<bool>>>(row, i)?),
        Wire::ListI64 => downcast::<ListBuilder<Int64Builder>>(b)?.append_option(get::<Vec<Option<i64>>>(row, i)?),
        Wire::ListF64 => downcast::<ListBuilder<Float64Builder>>(b)?.append_option(get::<Vec<Option<f64>>>(row, i)?),
        Wire::ListText => downcast::<ListBuilder<StringBuilder>>(b)?.append_option(get::<Vec<Option<String>>>(row, i)?),
    }
    Ok(())
}
