//! Newline-delimited JSON, CSV and plain text lines into Arrow, isolating bad records.
//!
//! The fast path hands a whole chunk of lines to arrow-json / arrow-csv at once.
//! Only when that fails is the chunk decoded again line by line, so one malformed
//! record costs one slow chunk and never the good records around it.

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use std::sync::Arc;

use super::LineFormat;
use super::flat_json::{FlatBatch, FlatJson};
use crate::api::RowFilter;

/// CSV dialect options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
        }
    }
}

/// The result of decoding a chunk: good rows (in input order), the input index
/// of each good row, and (input index, error) for every bad one.
#[derive(Debug)]
pub struct Decoded {
    pub batch: RecordBatch,
    pub good: Vec<usize>,
    pub bad: Vec<(usize, String)>,
    /// `Some(n)` when the filter given to [`LineDecoder::apply_filter`] was applied
    /// to every line and dropped `n` good records (not in `good`, not in `bad`).
    pub filtered: Option<usize>,
}

/// Decodes chunks of lines. The arrow decoders are kept between chunks so their
/// buffers keep their capacity; one that failed is dropped and built afresh.
pub struct LineDecoder {
    format: LineFormat,
    schema: SchemaRef,
    csv: CsvOptions,
    max_rows: usize,
    json: Option<arrow::json::reader::Decoder>,
    csv_decoder: Option<arrow::csv::reader::Decoder>,
    /// The simd-json fast path for JSON (None when the schema has a column type it
    /// does not decode), tried before arrow-json.
    flat: Option<FlatJson>,
    /// Chunks to hand straight to arrow-json after the fast path declined one, so a
    /// stream it never fits costs a failed attempt only now and then.
    flat_skip: u32,
    flat_backoff: u32,
    /// Chunks the fast path decoded and declined, logged when the decoder is dropped.
    flat_taken: u64,
    flat_declined: u64,
}

impl Drop for LineDecoder {
    fn drop(&mut self) {
        if let Some(flat) = self
            .flat
            .as_ref()
            .filter(|_| self.flat_taken > 0 || self.flat_declined > 0)
        {
            tracing::debug!(
                simd_chunks = self.flat_taken,
                as_one_array = flat.as_array,
                declined_chunks = self.flat_declined,
                "JSON decoding: chunks taken and declined by the simd-json fast path"
            );
        }
    }
}

impl std::fmt::Debug for LineDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineDecoder")
            .field("format", &self.format)
            .field("max_rows", &self.max_rows)
            .finish()
    }
}

impl LineDecoder {
    /// `max_rows` is the most lines one `decode` call will be given.
    pub fn new(format: LineFormat, schema: SchemaRef, csv: CsvOptions, max_rows: usize) -> Self {
        let flat = if format == LineFormat::Json {
            FlatJson::new(Arc::clone(&schema))
        } else {
            None
        };
        Self {
            format,
            schema,
            csv,
            max_rows: max_rows.max(1),
            json: None,
            csv_decoder: None,
            flat,
            flat_skip: 0,
            flat_backoff: 1,
            flat_taken: 0,
            flat_declined: 0,
        }
    }

    /// Columns `used` leaves unmarked (and that may be NULL) need not be built: the
    /// JSON fast path then checks their values but leaves them NULL. Only for a
    /// pipeline that reads nothing else of the row (see `SourceContext::used`).
    pub fn skip_unused(&mut self, used: &[bool]) {
        if let Some(flat) = self.flat.as_mut() {
            flat.skip_unused(used);
        }
    }

    /// Drops the records that fail `filter` while decoding, where the fast path
    /// takes a chunk and can evaluate every term on its columns (see
    /// [`FlatJson::apply_filter`]); other chunks keep every record and report
    /// [`Decoded::filtered`] as `None`.
    pub fn apply_filter(&mut self, filter: &RowFilter) {
        if let Some(flat) = self.flat.as_mut() {
            flat.apply_filter(filter);
        }
    }

    /// The fast path's batch for `lines`, when it takes them (see [`FlatJson`]).
    fn decode_flat(&mut self, lines: &[&[u8]]) -> Option<FlatBatch> {
        let flat = self.flat.as_mut()?;
        if lines.is_empty() || lines.len() > self.max_rows {
            return None;
        }
        if self.flat_skip > 0 {
            self.flat_skip -= 1;
            return None;
        }
        match flat.decode(lines) {
            Some(batch) => {
                self.flat_backoff = 1;
                self.flat_taken += 1;
                Some(batch)
            }
            None => {
                self.flat_declined += 1;
                self.flat_skip = self.flat_backoff;
                self.flat_backoff = (self.flat_backoff * 2).min(64);
                None
            }
        }
    }

    fn decode_all(&mut self, data: &[u8], rows: usize) -> Result<Option<RecordBatch>, ArrowError> {
        if rows > self.max_rows {
            return Err(ArrowError::InvalidArgumentError(format!(
                "{rows} lines in one chunk, at most {} expected",
                self.max_rows
            )));
        }
        match self.format {
            LineFormat::Json => {
                let mut d = match self.json.take() {
                    Some(d) => d,
                    None => arrow::json::ReaderBuilder::new(self.schema.clone())
                        .with_batch_size(self.max_rows)
                        .with_strict_mode(false)
                        .build_decoder()?,
                };
                let result = (|| {
                    let off = feed(data, |chunk| d.decode(chunk))?;
                    if d.has_partial_record() {
                        return Err(ArrowError::JsonError("record is not complete".into()));
                    }
                    if off < data.len() && data[off..].iter().any(|c| !c.is_ascii_whitespace()) {
                        return Err(ArrowError::JsonError("more records than expected in one line".into()));
                    }
                    d.flush()
                })();
                if result.is_ok() {
                    self.json = Some(d);
                }
                result
            }
            // Text lines never fail as a chunk: `decode` takes them line by line.
            LineFormat::Text => Err(ArrowError::InvalidArgumentError(
                "text lines are decoded one by one".into(),
            )),
            LineFormat::Csv => {
                let mut d = match self.csv_decoder.take() {
                    Some(d) => d,
                    None => arrow::csv::ReaderBuilder::new(self.schema.clone())
                        .with_header(false)
                        .with_delimiter(self.csv.delimiter)
                        .with_quote(self.csv.quote)
                        .with_batch_size(self.max_rows)
                        .build_decoder(),
                };
                let result = (|| {
                    feed(data, |chunk| d.decode(chunk))?;
                    // Terminate a final line without newline.
                    d.decode(&[])?;
                    d.flush()
                })();
                if result.is_ok() {
                    self.csv_decoder = Some(d);
                }
                result
            }
        }
    }

    /// Decodes `lines`, each one complete record without its newline.
    /// `joined` must be exactly the lines joined with `\n` (the source already has it).
    pub fn decode(&mut self, joined: &[u8], lines: &[&[u8]]) -> Decoded {
        if self.format == LineFormat::Text {
            return self.decode_text(lines);
        }
        if let Some(FlatBatch { batch, kept }) = self.decode_flat(lines) {
            return match kept {
                Some(good) => Decoded {
                    filtered: Some(lines.len() - good.len()),
                    batch,
                    good,
                    bad: Vec::new(),
                },
                None => Decoded {
                    batch,
                    good: (0..lines.len()).collect(),
                    bad: Vec::new(),
                    filtered: None,
                },
            };
        }
        match self.decode_all(joined, lines.len()) {
            Ok(Some(batch)) if batch.num_rows() == lines.len() => {
                return Decoded {
                    batch,
                    good: (0..lines.len()).collect(),
                    bad: Vec::new(),
                    filtered: None,
                };
            }
            Ok(None) if lines.is_empty() => {
                return Decoded {
                    batch: RecordBatch::new_empty(self.schema.clone()),
                    good: Vec::new(),
                    bad: Vec::new(),
                    filtered: None,
                };
            }
            _ => {}
        }
        // Slow path: find the bad records one by one.
        let mut batches = Vec::new();
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match self.decode_all(line, 1) {
                Ok(Some(b)) if b.num_rows() == 1 => {
                    batches.push(b);
                    good.push(i);
                }
                Ok(Some(b)) => bad.push((i, format!("expected one record, found {}", b.num_rows()))),
                Ok(None) => bad.push((i, "empty record".to_string())),
                Err(e) => bad.push((i, clean_error(&e))),
            }
        }
        let batch =
            concat_batches(&self.schema, &batches).unwrap_or_else(|_| RecordBatch::new_empty(self.schema.clone()));
        Decoded {
            batch,
            good,
            bad,
            filtered: None,
        }
    }
}

impl LineDecoder {
    /// Each line is one value of the one TEXT column; a line that is not UTF-8 is bad.
    fn decode_text(&self, lines: &[&[u8]]) -> Decoded {
        let mut values = arrow::array::StringBuilder::with_capacity(lines.len(), lines.iter().map(|l| l.len()).sum());
        let (mut good, mut bad) = (Vec::with_capacity(lines.len()), Vec::new());
        for (i, line) in lines.iter().enumerate() {
            match std::str::from_utf8(line) {
                Ok(text) => {
                    values.append_value(text);
                    good.push(i);
                }
                Err(e) => bad.push((i, format!("line is not UTF-8: {e}"))),
            }
        }
        match RecordBatch::try_new(self.schema.clone(), vec![std::sync::Arc::new(values.finish())]) {
            Ok(batch) => Decoded {
                batch,
                good,
                bad,
                filtered: None,
            },
            Err(e) => {
                bad.extend(good.into_iter().map(|i| (i, e.to_string())));
                bad.sort_by_key(|b| b.0);
                Decoded {
                    batch: RecordBatch::new_empty(self.schema.clone()),
                    good: Vec::new(),
                    bad,
                    filtered: None,
                }
            }
        }
    }
}

/// Hands `data` to an arrow push decoder until it stops consuming; returns the bytes consumed.
fn feed(data: &[u8], mut decode: impl FnMut(&[u8]) -> Result<usize, ArrowError>) -> Result<usize, ArrowError> {
    let mut off = 0;
    while off < data.len() {
        let n = decode(&data[off..])?;
        if n == 0 {
            break;
        }
        off += n;
    }
    Ok(off)
}

/// Arrow's error text without the "Json error: " style prefixes doubled up.
fn clean_error(e: &ArrowError) -> String {
    match e {
        ArrowError::JsonError(m) => format!("invalid JSON: {m}"),
        ArrowError::CsvError(m) => format!("invalid CSV: {m}"),
        ArrowError::ParseError(m) => format!("parse error: {m}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn json_isolates_bad_lines() {
        let lines: Vec<&[u8]> = vec![
            br#"{"id":1,"name":"a"}"#,
            br#"{"id":"x"}"#,
            b"{broken",
            br#"{"id":4,"extra":true}"#,
        ];
        let joined = lines.join(&b'\n');
        let d = LineDecoder::new(LineFormat::Json, schema(), CsvOptions::default(), 16).decode(&joined, &lines);
        assert_eq!(d.good, vec![0, 3]);
        assert_eq!(d.bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            d.batch.column(0).as_primitive::<Int64Type>(),
            &Int64Array::from(vec![1, 4])
        );
    }

    /// A chunk the fast path declines goes to arrow-json (which isolates its bad
    /// record); after a short back-off the good chunks take the fast path again.
    #[test]
    fn json_fast_path_declines_a_bad_chunk_and_resumes() {
        let mut decoder = LineDecoder::new(LineFormat::Json, schema(), CsvOptions::default(), 16);
        let good: Vec<&[u8]> = vec![br#"{"id":1,"name":"a"}"#, br#"{"name":"b","id":2,"more":[1]}"#];
        let bad: Vec<&[u8]> = vec![br#"{"id":3}"#, br#"{"id":"four"}"#, br#"{"id":5,"name":"\u00e9"}"#];
        let mut chunks = vec![&good, &bad];
        chunks.extend(std::iter::repeat_n(&good, 5));
        for lines in chunks {
            let d = decoder.decode(&lines.join(&b'\n'), lines);
            if lines == &bad {
                assert_eq!(d.good, vec![0, 2]);
                assert_eq!(d.bad.len(), 1);
                assert!(d.bad[0].1.contains("four"), "{}", d.bad[0].1);
                assert_eq!(d.batch.column(1).as_string::<i32>().value(1), "é");
            } else {
                assert_eq!(d.good, vec![0, 1]);
                assert_eq!(
                    d.batch.column(0).as_primitive::<Int64Type>(),
                    &Int64Array::from(vec![1, 2])
                );
            }
        }
        assert_eq!(
            (decoder.flat_taken, decoder.flat_declined),
            (5, 1),
            "one good chunk waits out the back-off"
        );
    }

    #[test]
    fn csv_isolates_bad_lines() {
        let lines: Vec<&[u8]> = vec![b"1,a", b"two,b", b"3,"];
        let joined = lines.join(&b'\n');
        let d = LineDecoder::new(LineFormat::Csv, schema(), CsvOptions::default(), 16).decode(&joined, &lines);
        assert_eq!(d.good, vec![0, 2]);
        assert_eq!(d.bad.len(), 1);
        assert!(d.bad[0].1.contains("two"), "{}", d.bad[0].1);
    }

    #[test]
    fn text_lines_are_values_and_invalid_utf8_is_a_bad_record() {
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        let lines: Vec<&[u8]> = vec![b"plain, with a comma", b"\xff\xfe", br#"{"json": "kept as text"}"#];
        let joined = lines.join(&b'\n');
        let d = LineDecoder::new(LineFormat::Text, schema, CsvOptions::default(), 16).decode(&joined, &lines);
        assert_eq!(d.good, vec![0, 2]);
        assert_eq!(d.bad.len(), 1);
        assert!(d.bad[0].1.contains("not UTF-8"), "{}", d.bad[0].1);
        let values: Vec<&str> = d
            .batch
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(values, ["plain, with a comma", r#"{"json": "kept as text"}"#]);
    }
}
