//! One batch as the relational sinks write it: columns converted once, rows that
//! cannot be converted set aside before anything reaches the database, rows grouped
//! by target table (`${topic}`: the row's `_topic` column if the SELECT routes, else
//! its source topic), per-row key values the sink adds (Kafka
//! coordinates or the record key) and, under `delete.enabled`, which rows delete.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;

use super::sink::{PkMode, TableSinkConfig};
use super::values::{Cell, Column};
use crate::api::{ConnectorError, Result, RowOrigins};

pub(crate) struct BatchRows<'b> {
    /// The written output columns, in `TableSinkConfig::columns` order.
    pub cols: Vec<Column>,
    /// The `_key` column under `pk.mode = record_key`.
    key: Option<Column>,
    /// Per row, its Kafka coordinates (topic, partition, offset) when known.
    coords: Vec<Option<(&'b str, i32, i64)>>,
    /// Target table name → rows, in first-seen order.
    pub by_table: Vec<(String, Vec<usize>)>,
    /// Rows that cannot be written, with the reason.
    pub rejected: Vec<(usize, String)>,
    /// Per row, whether it deletes its key.
    pub deletes: Option<Vec<bool>>,
    kafka_pk: bool,
}

impl<'b> BatchRows<'b> {
    /// `table_name` maps a row's topic (if any) to its target table.
    pub(crate) fn new(
        cfg: &TableSinkConfig,
        batch: &RecordBatch,
        origins: Option<&'b RowOrigins>,
        table_name: impl Fn(Option<&str>) -> String,
    ) -> Result<Self> {
        let schema = batch.schema();
        let convert = |i: usize| {
            Column::new(batch.column(i))
                .map_err(|e| ConnectorError::Config(format!("column {}: {e}", schema.field(i).name())))
        };
        let cols: Vec<Column> = cfg.columns.iter().map(|i| convert(*i)).collect::<Result<_>>()?;
        let key = match &cfg.pk {
            PkMode::RecordKey(_) => Some(convert(
                schema
                    .index_of("_key")
                    .map_err(|e| ConnectorError::Internal(e.to_string()))?,
            )?),
            _ => None,
        };
        let coords: Vec<Option<(&str, i32, i64)>> = (0..batch.num_rows())
            .map(|r| {
                let (p, pos) = origins?.get(r)?;
                let (topic, part) = p.rsplit_once('/')?;
                Some((topic, part.parse().ok()?, pos))
            })
            .collect();
        let kafka_pk = cfg.pk == PkMode::Kafka;
        // A `_topic` column (RegexRouter in SQL) names the table instead of the source topic.
        let routed = schema
            .index_of("_topic")
            .ok()
            .and_then(|i| batch.column(i).as_string_opt::<i32>());
        let mut rejected = Vec::new();
        let mut by_table: Vec<(String, Vec<usize>)> = Vec::new();
        let mut last: Option<(Option<&str>, usize)> = None;
        for (row, coord) in coords.iter().enumerate() {
            if let Some(problem) = cols.iter().chain(key.as_ref()).find_map(|c| c.cell(row).err()) {
                rejected.push((row, problem));
                continue;
            }
            if kafka_pk && coord.is_none() {
                return Err(ConnectorError::option(
                    "pk.mode",
                    "kafka needs a Kafka source (rows have no topic/partition/offset)",
                ));
            }
            // Consecutive rows mostly share a topic: name the table once per run.
            let topic = match routed {
                Some(t) if t.is_valid(row) => Some(t.value(row)),
                _ => coord.map(|c| c.0),
            };
            let slot = match last {
                Some((t, i)) if t == topic => i,
                _ => {
                    let name = table_name(topic);
                    let i = match by_table.iter().position(|(n, _)| *n == name) {
                        Some(i) => i,
                        None => {
                            by_table.push((name, Vec::new()));
                            by_table.len() - 1
                        }
                    };
                    last = Some((topic, i));
                    i
                }
            };
            by_table[slot].1.push(row);
        }
        let deletes = match cfg.deletes {
            None => None,
            Some(d) => {
                let op = match d.op {
                    Some(i) => Some(
                        arrow::compute::cast(batch.column(i), &DataType::Utf8)
                            .map_err(|e| ConnectorError::arrow("reading _op", e))?,
                    ),
                    None => None,
                };
                let op = op.as_ref().map(|a| a.as_string::<i32>().clone());
                let written: Vec<&arrow::array::ArrayRef> = cfg.columns.iter().map(|i| batch.column(*i)).collect();
                Some(
                    (0..batch.num_rows())
                        .map(|r| {
                            let by_op = op.as_ref().is_some_and(|o| o.is_valid(r) && o.value(r) == "d");
                            by_op || (d.tombstones && written.iter().all(|c| c.is_null(r)))
                        })
                        .collect(),
                )
            }
        };
        Ok(Self {
            cols,
            key,
            coords,
            by_table,
            rejected,
            deletes,
            kafka_pk,
        })
    }

    /// Appends the key values the sink adds to a row (Kafka coordinates, the record key).
    pub(crate) fn push_extra<'s>(&'s self, row: usize, out: &mut Vec<Cell<'s>>) {
        if self.kafka_pk {
            if let Some((t, p, o)) = self.coords[row] {
                out.extend([Cell::Text(t), Cell::I32(p), Cell::I64(o)]);
            }
        } else if let Some(k) = &self.key {
            out.push(k.cell(row).unwrap_or(Cell::Null));
        }
    }

    /// Appends a row's written values, then the extra key values.
    pub(crate) fn push_row<'s>(&'s self, row: usize, out: &mut Vec<Cell<'s>>) {
        // Rows were checked in `new`: a conversion cannot fail here.
        out.extend(self.cols.iter().map(|c| c.cell(row).unwrap_or(Cell::Null)));
        self.push_extra(row, out);
    }

    pub(crate) fn is_delete(&self, row: usize) -> bool {
        self.deletes.as_ref().is_some_and(|d| d[row])
    }

    /// Rows in the batch (written or not).
    pub(crate) fn batch_rows(&self) -> usize {
        self.coords.len()
    }

    /// Rows that go to the database.
    pub(crate) fn rows(&self) -> usize {
        self.by_table.iter().map(|(_, r)| r.len()).sum()
    }
}

/// The groups of rows a sink still has to try in a batch's transaction. A group the
/// database refuses is split in halves until each refused row stands alone.
pub(crate) struct Bisection {
    todo: Vec<Vec<usize>>,
}

impl Bisection {
    pub(crate) fn new(rows: &[usize]) -> Self {
        Self {
            todo: vec![rows.to_vec()],
        }
    }

    /// The next non-empty group to write.
    pub(crate) fn next_group(&mut self) -> Option<Vec<usize>> {
        while let Some(rows) = self.todo.pop() {
            if !rows.is_empty() {
                return Some(rows);
            }
        }
        None
    }

    /// The database refused `rows`: the row itself when it stood alone, else
    /// both halves are queued (the first half is tried first).
    pub(crate) fn refused(&mut self, rows: &[usize]) -> Option<usize> {
        if let [one] = rows {
            return Some(*one);
        }
        let (a, b) = rows.split_at(rows.len() / 2);
        self.todo.push(b.to_vec());
        self.todo.push(a.to_vec());
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Bisection;

    /// Rows 2 and 5 are refused: every other row is written in as few groups as the
    /// halving allows, and the refused rows come out alone, in order.
    #[test]
    fn bisection_isolates_each_refused_row() {
        let bad = [2, 5];
        let mut groups = Bisection::new(&[0, 1, 2, 3, 4, 5, 6, 7]);
        let (mut written, mut refused) = (Vec::new(), Vec::new());
        while let Some(rows) = groups.next_group() {
            if rows.iter().any(|r| bad.contains(r)) {
                refused.extend(groups.refused(&rows));
            } else {
                written.extend(rows);
            }
        }
        assert_eq!(refused, vec![2, 5]);
        assert_eq!(written, vec![0, 1, 3, 4, 6, 7]);
    }
}
