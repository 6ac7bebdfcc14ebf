//! A record as SQL expressions: what the transform chain rewrites.
//!
//! Each value field, the key, topic, partition, offset, timestamp and headers is an
//! [`Expr`] over the source's columns, with its Arrow type (Flatten, MaskField and
//! Cast depend on it). `None` is a slot the record does not have (a record from a
//! database has no key or offset).

use arrow::datatypes::DataType;

use super::ident;

/// A SQL expression and the type it evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub sql: String,
    pub ty: DataType,
}

impl Expr {
    pub(crate) fn new(sql: impl Into<String>, ty: DataType) -> Self {
        Self { sql: sql.into(), ty }
    }
    pub(crate) fn column(name: &str, ty: DataType) -> Self {
        Self::new(ident(name), ty)
    }
}

/// Where the records come from, which decides what the metadata slots mean.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Records read from Kafka (a sink connector): partition and offset exist.
    pub from_kafka: bool,
    /// SQL that is true for a tombstone (a record whose value is null), when the
    /// source can have them.
    pub tombstone: Option<String>,
    /// The connector kind, for messages ("records from a JDBC source").
    pub origin: String,
    /// The key is JSON text (key.converter JsonConverter).
    pub key_json: bool,
    /// The value is one primitive (StringConverter, ByteArrayConverter, a text
    /// line), carried as the one column `value`.
    pub primitive: bool,
    /// The alias of a Debezium unwrap transform the source format already does.
    pub unwrapped: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub fields: Vec<(String, Expr)>,
    pub key: Option<Expr>,
    pub topic: Option<Expr>,
    pub partition: Option<Expr>,
    pub offset: Option<Expr>,
    pub timestamp: Option<Expr>,
    pub headers: Option<Expr>,
    /// ValueToKey: the key is these value fields (as they are at the end of the chain).
    pub key_fields: Option<Vec<String>>,
    /// Conditions a record must meet to be kept (Filter), ANDed.
    pub keep: Vec<String>,
}

impl Record {
    pub(crate) fn field(&self, name: &str) -> Option<&Expr> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    pub(crate) fn field_names(&self) -> String {
        self.fields
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The record `then` where `cond` holds, else `otherwise`: the same rows, with
    /// each expression a CASE. A field only one side has is NULL on the other side.
    pub(crate) fn merge(cond: &str, then: Record, otherwise: Record) -> Record {
        let pick = |a: Option<&Expr>, b: Option<&Expr>| -> Option<Expr> {
            match (a, b) {
                (Some(a), Some(b)) if a == b => Some(a.clone()),
                (Some(a), Some(b)) => Some(Expr::new(
                    format!("CASE WHEN {cond} THEN {} ELSE {} END", a.sql, b.sql),
                    a.ty.clone(),
                )),
                (Some(a), None) => Some(Expr::new(format!("CASE WHEN {cond} THEN {} END", a.sql), a.ty.clone())),
                (None, Some(b)) => Some(Expr::new(
                    format!("CASE WHEN {cond} THEN NULL ELSE {} END", b.sql),
                    b.ty.clone(),
                )),
                (None, None) => None,
            }
        };
        let mut fields: Vec<(String, Expr)> = Vec::new();
        for (name, e) in &then.fields {
            if let Some(m) = pick(Some(e), otherwise.field(name)) {
                fields.push((name.clone(), m));
            }
        }
        for (name, e) in &otherwise.fields {
            if then.field(name).is_none()
                && let Some(m) = pick(None, Some(e))
            {
                fields.push((name.clone(), m));
            }
        }
        // Filter never runs under merge (the chain adds its condition itself), so
        // both sides keep the same rows.
        debug_assert_eq!(then.keep, otherwise.keep);
        let keep = otherwise.keep.clone();
        Record {
            fields,
            key: pick(then.key.as_ref(), otherwise.key.as_ref()),
            topic: pick(then.topic.as_ref(), otherwise.topic.as_ref()),
            partition: pick(then.partition.as_ref(), otherwise.partition.as_ref()),
            offset: pick(then.offset.as_ref(), otherwise.offset.as_ref()),
            timestamp: pick(then.timestamp.as_ref(), otherwise.timestamp.as_ref()),
            headers: pick(then.headers.as_ref(), otherwise.headers.as_ref()),
            key_fields: then.key_fields.or(otherwise.key_fields),
            keep,
        }
    }
}

/// `expr`, or NULL for a tombstone: what a transform that passes tombstones through
/// unchanged writes into a field it adds.
pub(crate) fn unless_tombstone(ctx: &Context, e: Expr) -> Expr {
    match &ctx.tombstone {
        Some(t) => Expr::new(format!("CASE WHEN {t} THEN NULL ELSE {} END", e.sql), e.ty),
        None => e,
    }
}

/// The SQL type name for a cast to `ty`.
pub(crate) fn sql_type(ty: &DataType) -> Option<&'static str> {
    Some(match ty {
        DataType::Int8 => "TINYINT",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INT",
        DataType::Int64 => "BIGINT",
        DataType::Float32 => "REAL",
        DataType::Float64 => "DOUBLE",
        DataType::Boolean => "BOOLEAN",
        DataType::Utf8 => "TEXT",
        DataType::Binary => "BYTEA",
        DataType::Date32 => "DATE",
        _ => return None,
    })
}
