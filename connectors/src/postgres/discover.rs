//! The columns of a polled table or query, read from PostgreSQL itself, as Kafka
//! Connect's JDBC source learns its schema from the driver's metadata: a table's
//! from `pg_attribute` (so `numeric(10,2)` keeps its precision and `NOT NULL` its
//! nullability), a query's from the statement PostgreSQL prepares for it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::config::PgConnection;
use super::config::error;
use crate::api::{Discovery, Result};
use crate::jdbc::source::Target;

/// The columns of the first target (a source's tables share their columns).
pub(crate) async fn columns(conn: &PgConnection, targets: &[Target]) -> Result<Discovery> {
    let Some(target) = targets.first() else {
        return Ok(Discovery::Unsupported);
    };
    let client = conn.connect().await?;
    let at = &conn.target;
    let fields: Vec<Field> = match target {
        Target::Table(table) => table_fields(&client, table, at).await?,
        Target::Query(q) => {
            let stmt = client
                .prepare(&format!("SELECT * FROM ({q}) AS quiver_query"))
                .await
                .map_err(|e| error(&format!("preparing the query in {at} to learn its columns"), &e))?;
            stmt.columns()
                .iter()
                .map(|c| Field::new(c.name(), column_type(c.type_().name()), true))
                .collect()
        }
    };
    let what = match target {
        Target::Table(t) => format!("the catalog of table {t} in {at}"),
        Target::Query(_) => format!("the query's result columns in {at}"),
    };
    Ok(Discovery::Columns {
        schema: Schema::new(fields),
        from: what,
    })
}

/// A table's columns from `pg_attribute`, in table order.
pub(crate) async fn table_fields(client: &tokio_postgres::Client, table: &str, at: &str) -> Result<Vec<Field>> {
    let quoted = table.split('.').map(super::sink::quote).collect::<Vec<_>>().join(".");
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
             FROM pg_attribute a WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 \
             AND NOT a.attisdropped ORDER BY a.attnum",
            &[&quoted],
        )
        .await
        .map_err(|e| error(&format!("reading the columns of table {table} in {at}"), &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let (name, ty, not_null): (String, String, bool) = (r.get(0), r.get(1), r.get(2));
            Field::new(name, column_type(&ty), !not_null)
        })
        .collect())
}

/// The Arrow type a PostgreSQL type (as `format_type` or the type's name spells it)
/// is read as; anything without a closer match is read as its text.
pub(crate) fn column_type(ty: &str) -> DataType {
    let ty = ty.trim().to_ascii_lowercase();
    if let Some(inner) = ty.strip_suffix("[]").or_else(|| ty.strip_prefix('_')) {
        return DataType::List(Arc::new(Field::new("item", column_type(inner), true)));
    }
    // `numeric(10,2)` keeps its arguments; `timestamp(3) without time zone` drops them.
    let args = ty
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(a, _)| a.to_string());
    let base: String = {
        let mut out = String::new();
        let mut depth = 0;
        for c in ty.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    match base.as_str() {
        "boolean" | "bool" => DataType::Boolean,
        "smallint" | "int2" => DataType::Int16,
        "integer" | "int" | "int4" => DataType::Int32,
        "bigint" | "int8" => DataType::Int64,
        "real" | "float4" => DataType::Float32,
        "double precision" | "float8" => DataType::Float64,
        "numeric" | "decimal" => {
            let (p, s) = args
                .as_deref()
                .and_then(|a| {
                    let mut it = a.split(',').map(|n| n.trim().parse::<i16>().ok());
                    Some((it.next()??, it.next().flatten().unwrap_or(0)))
                })
                .unwrap_or((38, 10));
            if (1..=38).contains(&p) && (0..=p).contains(&s) {
                DataType::Decimal128(p as u8, s as i8)
            } else {
                DataType::Utf8
            }
        }
        "bytea" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" | "timestamp without time zone" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamptz" | "timestamp with time zone" => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        _ => DataType::Utf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_types_map_to_the_columns_the_source_reads() {
        assert_eq!(column_type("integer"), DataType::Int32);
        assert_eq!(column_type("numeric(10,2)"), DataType::Decimal128(10, 2));
        assert_eq!(column_type("numeric"), DataType::Decimal128(38, 10));
        assert_eq!(column_type("character varying(20)"), DataType::Utf8);
        assert_eq!(
            column_type("timestamp(3) without time zone"),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(
            column_type("timestamp with time zone"),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        assert_eq!(
            column_type("integer[]"),
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true)))
        );
        assert_eq!(column_type("_int8"), column_type("bigint[]"));
        assert_eq!(column_type("jsonb"), DataType::Utf8);
    }
}
