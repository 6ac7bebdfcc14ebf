//! The columns of a polled table or query, read from MySQL/MariaDB itself, as Kafka
//! Connect's JDBC source learns its schema from the driver's metadata: a table's
//! from `information_schema.COLUMNS` (`decimal(10,2)` keeps its precision,
//! `unsigned` its range, `NOT NULL` its nullability), a query's from the result
//! columns of the query run with `LIMIT 0`.

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;

use super::config::{MysqlConnection, error};
use crate::api::{Discovery, Result};
use crate::jdbc::source::Target;

/// MySQL's number for the `binary` character set: such text columns hold bytes.
const BINARY_CHARSET: u16 = 63;

/// The columns of the first target (a source's tables share their columns).
pub(crate) async fn columns(conn: &MysqlConnection, targets: &[Target]) -> Result<Discovery> {
    let Some(target) = targets.first() else {
        return Ok(Discovery::Unsupported);
    };
    let mut db = conn.connect().await?;
    let at = &conn.target;
    let (fields, from) = match target {
        Target::Table(table) => (
            table_fields(&mut db, table, at).await?,
            format!("the catalog of table {table} in {at}"),
        ),
        Target::Query(q) => {
            let result = db
                .query_iter(format!("SELECT * FROM ({q}) AS quiver_query LIMIT 0"))
                .await
                .map_err(|e| error(&format!("running the query in {at} to learn its columns"), &e))?;
            let fields = result
                .columns()
                .map(|cols| {
                    cols.iter()
                        .map(|c| Field::new(c.name_str().into_owned(), result_type(c), true))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            drop(result);
            (fields, format!("the query's result columns in {at}"))
        }
    };
    let _ = db.disconnect().await;
    Ok(Discovery::Columns {
        schema: Schema::new(fields),
        from,
    })
}

/// A table's columns from `information_schema.COLUMNS`, in table order.
pub(crate) async fn table_fields(db: &mut mysql_async::Conn, table: &str, at: &str) -> Result<Vec<Field>> {
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (Some(s.to_string()), n.to_string()),
        None => (None, table.to_string()),
    };
    let rows: Vec<(String, String, String)> = db
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (schema, name),
        )
        .await
        .map_err(|e| error(&format!("reading the columns of table {table} in {at}"), &e))?;
    if rows.is_empty() {
        return Err(crate::api::ConnectorError::Config(format!(
            "table {table} does not exist in {at}, so its columns cannot be read"
        )));
    }
    Ok(rows
        .into_iter()
        .map(|(name, ty, nullable)| Field::new(name, column_type(&ty), nullable == "YES"))
        .collect())
}

/// The Arrow type a MySQL `COLUMN_TYPE` (`int(11) unsigned`, `decimal(10,2)`) is read
/// as; anything without a closer match is read as its text.
pub(crate) fn column_type(ty: &str) -> DataType {
    let ty = ty.trim().to_ascii_lowercase();
    let unsigned = ty.contains("unsigned");
    let base = ty.split(['(', ' ']).next().unwrap_or("");
    let args = ty
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(a, _)| a.to_string());
    match (base, unsigned) {
        ("tinyint", false) => DataType::Int8,
        ("tinyint", true) => DataType::UInt8,
        ("smallint", false) | ("year", _) => DataType::Int16,
        ("smallint", true) => DataType::UInt16,
        ("mediumint" | "int" | "integer", false) => DataType::Int32,
        ("mediumint" | "int" | "integer", true) => DataType::UInt32,
        ("bigint", false) | ("bit", _) => DataType::Int64,
        ("bigint", true) => DataType::UInt64,
        ("float", _) => DataType::Float32,
        ("double" | "real", _) => DataType::Float64,
        ("decimal" | "numeric", _) => {
            let (p, s) = args
                .as_deref()
                .and_then(|a| {
                    let mut it = a.split(',').map(|n| n.trim().parse::<u8>().ok());
                    Some((it.next()??, it.next().flatten().unwrap_or(0)))
                })
                .unwrap_or((10, 0));
            if (1..=38).contains(&p) && s <= p {
                DataType::Decimal128(p, s as i8)
            } else {
                DataType::Utf8
            }
        }
        ("date", _) => DataType::Date32,
        ("datetime" | "timestamp", _) => DataType::Timestamp(TimeUnit::Microsecond, None),
        ("binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob", _) => DataType::Binary,
        _ => DataType::Utf8,
    }
}

/// The Arrow type of a result column, from the protocol's column metadata.
fn result_type(c: &mysql_async::Column) -> DataType {
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = c.character_set() == BINARY_CHARSET;
    match c.column_type() {
        ColumnType::MYSQL_TYPE_TINY if unsigned => DataType::UInt8,
        ColumnType::MYSQL_TYPE_TINY => DataType::Int8,
        ColumnType::MYSQL_TYPE_SHORT if unsigned => DataType::UInt16,
        ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR => DataType::Int16,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG if unsigned => DataType::UInt32,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG => DataType::Int32,
        ColumnType::MYSQL_TYPE_LONGLONG if unsigned => DataType::UInt64,
        ColumnType::MYSQL_TYPE_LONGLONG | ColumnType::MYSQL_TYPE_BIT => DataType::Int64,
        ColumnType::MYSQL_TYPE_FLOAT => DataType::Float32,
        ColumnType::MYSQL_TYPE_DOUBLE => DataType::Float64,
        ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => {
            // The display length counts the digits, a point and (signed) a sign.
            let scale = c.decimals();
            let digits = c.column_length() as i64 - i64::from(scale > 0) - i64::from(!unsigned);
            match u8::try_from(digits) {
                Ok(p) if (1..=38).contains(&p) && scale <= p => DataType::Decimal128(p, scale as i8),
                _ => DataType::Utf8,
            }
        }
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => DataType::Date32,
        ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_DATETIME2
        | ColumnType::MYSQL_TYPE_TIMESTAMP
        | ColumnType::MYSQL_TYPE_TIMESTAMP2 => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
            if binary =>
        {
            DataType::Binary
        }
        _ => DataType::Utf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_column_types_map_to_the_columns_the_source_reads() {
        assert_eq!(column_type("int(11)"), DataType::Int32);
        assert_eq!(column_type("int(10) unsigned"), DataType::UInt32);
        assert_eq!(column_type("decimal(10,2)"), DataType::Decimal128(10, 2));
        assert_eq!(column_type("varchar(20)"), DataType::Utf8);
        assert_eq!(
            column_type("datetime(3)"),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(column_type("longblob"), DataType::Binary);
        assert_eq!(column_type("json"), DataType::Utf8);
    }
}
