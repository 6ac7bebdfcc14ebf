//! One batch as the relational sinks write it: columns converted once, rows that
//! cannot be converted set aside before anything reaches the database, rows grouped
//! by target table (`${topic}`), per-row key values the sink adds (Kafka
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
    pub(crate) fn new(cfg: &TableSinkConfig, batch: &RecordBatch, origins: Option<&'b RowOrigins>, table_name: impl Fn(Option<&str>) -> String) -> Result<Self> {
        let schema = batch.schema();
        let convert = |i: usize| Column::new(batch.column(i)).map_err(|e| ConnectorError::Config(format!("column {}: {e}", schema.field(i).name())));
        let cols: Vec<Column> = cfg.columns.iter().map(|i| convert(*i)).collect::<Result<_>>()?;
        let key = match &cfg.pk {
            PkMode::RecordKey(_) => Some(convert(schema.index_of("_key").map_err(|e| ConnectorError::Internal(e.to_string()))?)?),
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
        let mut rejected = Vec::new();
        let mut by_table: Vec<(String, Vec<usize>)> = Vec::new();
        for (row, coord) in coords.iter().enumerate() {
            if let Some(problem) = cols.iter().chain(key.as_ref()).find_map(|c| c.cell(row).err()) {
                rejected.push((row, problem));
                continue;
            }
            if kafka_pk && coord.is_none() {
                return Err(ConnectorError::option("pk.mode", "kafka needs a Kafka source (rows have no topic/partition/offset)"));
            }
            let name = table_name(coord.map(|c| c.0));
            match by_table.iter_mut().find(|(n, _)| *n == name) {
                Some((_, rows)) => rows.push(row),
                None => by_table.push((name, vec![row])),
            }
        }
        let deletes = match cfg.deletes {
            None => None,
            Some(d) => {
                let op = match d.op {
                    Some(i) => Some(arrow::compute::cast(batch.column(i), &DataType::Utf8).map_err(|e| ConnectorError::arrow("reading _op", e))?),
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
        Ok(Self { cols, key, coords, by_table, rejected, deletes, kafka_pk })
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
