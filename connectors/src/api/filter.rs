//! Row filters a source may apply while it decodes.
//!
//! The engine hands a source the simple part of the sink's `WHERE` clause — a
//! conjunction of comparisons between a column and a constant — as a [`RowFilter`].
//! A source that can evaluate it on records it has not built yet drops the rows that
//! fail it, and says so in [`super::SourceBatch::filtered`]; the engine then counts
//! those rows as read and, when the filter was the whole `WHERE` clause, does not
//! evaluate it again. A source that cannot apply it (or declines to for a batch)
//! leaves `filtered` at `None`, and the transform filters as usual.
//!
//! The semantics are those of the SQL comparison the terms come from: a NULL or
//! missing value fails every term, text compares byte by byte, and floating point
//! values compare by IEEE 754 total order (`f64::total_cmp`), as Arrow's comparison
//! kernels do (so `-0.0 < 0.0` and NaN is above every number).

use std::cmp::Ordering;

/// A comparison operator, as in `column <op> constant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl Comparison {
    /// Whether `value <op> constant` holds, given `value.cmp(constant)`.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Comparison::Eq => ord == Ordering::Equal,
            Comparison::NotEq => ord != Ordering::Equal,
            Comparison::Lt => ord == Ordering::Less,
            Comparison::LtEq => ord != Ordering::Greater,
            Comparison::Gt => ord == Ordering::Greater,
            Comparison::GtEq => ord != Ordering::Less,
        }
    }

    /// The operator with its operands swapped: `c < x` is `x > c`.
    pub fn flipped(self) -> Self {
        match self {
            Comparison::Lt => Comparison::Gt,
            Comparison::LtEq => Comparison::GtEq,
            Comparison::Gt => Comparison::Lt,
            Comparison::GtEq => Comparison::LtEq,
            same => same,
        }
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Comparison::Eq => "=",
            Comparison::NotEq => "<>",
            Comparison::Lt => "<",
            Comparison::LtEq => "<=",
            Comparison::Gt => ">",
            Comparison::GtEq => ">=",
        })
    }
}

/// The constant side of a term, of the column's own type: `Int` for signed integer
/// columns and unsigned ones up to 32 bits, `UInt` for `BIGINT UNSIGNED`, `Float`
/// for `DOUBLE`, `Text` for text, `Bool` for booleans.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(Box<str>),
    Bool(bool),
}

impl std::fmt::Display for Constant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Constant::Int(v) => write!(f, "{v}"),
            Constant::UInt(v) => write!(f, "{v}"),
            Constant::Float(v) => write!(f, "{v:?}"),
            Constant::Text(v) => write!(f, "'{}'", v.replace('\'', "''")),
            Constant::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// `column <op> value`, the column an index into the source's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub column: usize,
    pub op: Comparison,
    pub value: Constant,
}

/// Terms that must all hold for a row to be kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowFilter {
    pub terms: Vec<Term>,
    /// Whether the terms are the whole `WHERE` clause: rows a source kept after
    /// applying them need no filtering downstream.
    pub complete: bool,
    /// Per column of the source's schema: whether the pipeline reads it once the
    /// filter is applied (empty: every column). With a complete filter applied, a
    /// column only the filter reads need not be built.
    pub read_after: Vec<bool>,
}

impl RowFilter {
    /// Whether column `c` is read after the filter (true when unknown).
    pub fn read_after(&self, c: usize) -> bool {
        self.read_after.get(c).copied().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_hold_as_in_sql_and_flip_with_their_operands() {
        let all = [
            Comparison::Eq,
            Comparison::NotEq,
            Comparison::Lt,
            Comparison::LtEq,
            Comparison::Gt,
            Comparison::GtEq,
        ];
        for op in all {
            for (a, b) in [(1, 2), (2, 2), (3, 2)] {
                let expected = match op {
                    Comparison::Eq => a == b,
                    Comparison::NotEq => a != b,
                    Comparison::Lt => a < b,
                    Comparison::LtEq => a <= b,
                    Comparison::Gt => a > b,
                    Comparison::GtEq => a >= b,
                };
                assert_eq!(op.holds(a.cmp(&b)), expected, "{a} {op} {b}");
                assert_eq!(op.flipped().holds(b.cmp(&a)), expected, "{b} {} {a}", op.flipped());
            }
        }
    }
}
