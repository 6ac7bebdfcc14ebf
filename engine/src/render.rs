//! Text rendering of statement outputs, summaries and connector docs.

/// Writes a line to stdout, ignoring a closed pipe (`quiver run … | head` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
/// Like [`say!`] without the newline.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, $($arg)*);
        let _ = out.flush();
    }};
}
pub(crate) use {say, say_raw};

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use quiver_connectors::api::OptionSpec;
use quiver_sql::Table;

use crate::worker::task::State;
use crate::worker::{Output, PipelineStatus};

pub fn table(t: &Table) -> String {
    if t.rows.is_empty() {
        return "(none)".to_string();
    }
    let schema = Arc::new(Schema::new(
        t.columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = (0..t.columns.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                t.rows.iter().map(|r| r.get(i).cloned().unwrap_or_default()),
            )) as ArrayRef
        })
        .collect();
    match RecordBatch::try_new(schema, columns).and_then(|b| pretty_format_batches(&[b])) {
        Ok(s) => s.to_string(),
        Err(e) => format!("(cannot render table: {e})"),
    }
}

pub fn output(o: &Output) -> String {
    match o {
        Output::Message(m) => m.clone(),
        Output::Table(t) => table(t),
        Output::Rows { batches, notes } => {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let mut s = if rows == 0 {
                "(no rows)".to_string()
            } else {
                pretty_format_batches(batches)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|e| format!("(cannot render rows: {e})"))
            };
            let _ = write!(s, "\n{rows} row(s)");
            for n in notes {
                let _ = write!(s, "\nnote: {n}");
            }
            s
        }
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The end-of-run summary of one pipeline.
pub fn summary(s: &PipelineStatus) -> String {
    let mut out = String::new();
    let secs = s.elapsed_ms as f64 / 1000.0;
    let _ = writeln!(
        out,
        "sink '{}' ({} → {}): {} in {secs:.2}s",
        s.name, s.source, s.connector, s.state
    );
    if let Some(e) = &s.error {
        let _ = writeln!(out, "  error: {e}");
    }
    let rate = if secs > 0.0 { s.rows_in as f64 / secs } else { 0.0 };
    let _ = writeln!(
        out,
        "  rows in {}, rows out {}, filtered {}, dead-lettered {} ({rate:.0} rows/s)",
        s.rows_in,
        s.rows_out,
        s.rows_filtered(),
        s.rows_errored
    );
    if s.tasks.len() > 1 {
        let per_task: Vec<String> = s
            .tasks
            .iter()
            .map(|t| format!("task {} {} {} rows", t.id, t.state, t.rows_out))
            .collect();
        let _ = writeln!(out, "  {} tasks: {}", s.tasks.len(), per_task.join(", "));
    }
    if let (Some(total), "kafka") = (s.progress_total, s.source_connector.as_str()) {
        // Bounded runs: what the partitions' ends at start left to read.
        let _ = writeln!(out, "  lag at start {total} records; read {}", s.progress_done);
    }
    if s.sink.files > 0 || s.connector == "filesystem" {
        let _ = writeln!(
            out,
            "  files written {} ({}) under {}",
            s.sink.files,
            human_bytes(s.sink.bytes),
            s.sink.location
        );
    }
    if let Some(p) = &s.dead_letter_path
        && s.rows_errored > 0
    {
        let _ = writeln!(out, "  dead-letter queue: {p}/{}.jsonl", s.name);
    }
    if let Some(t) = &s.dead_letter_topic
        && s.rows_errored > 0
    {
        let _ = writeln!(out, "  dead-letter topic: {t}");
    }
    if s.resumed_from.is_some() && s.state != State::Failed {
        let _ = writeln!(
            out,
            "  resumed after the committed position in the state store{}",
            if s.rows_in == 0 {
                "; nothing new to read (use --from-beginning to reprocess)"
            } else {
                ""
            }
        );
        if s.reread > 0 {
            let _ = writeln!(
                out,
                "  re-read {} records that were read before the last stop but not committed",
                s.reread
            );
        }
    }
    out
}

fn option_rows(specs: &[OptionSpec]) -> Vec<Vec<String>> {
    specs
        .iter()
        .map(|o| {
            vec![
                o.key.to_string(),
                o.kind.describe(),
                if o.required {
                    "required".to_string()
                } else {
                    o.default.unwrap_or("").to_string()
                },
                o.doc.to_string(),
            ]
        })
        .collect()
}

/// `quiver connectors`: every connector and its options, from the option specs.
pub fn connectors(markdown: bool, only: Option<&str>) -> String {
    let mut out = String::new();
    let header = ["option", "type", "default", "description"].map(String::from).to_vec();
    let section = |out: &mut String, title: &str, rows: Vec<Vec<String>>| {
        if markdown {
            let _ = writeln!(
                out,
                "\n{title}\n\n| option | type | default | description |\n|---|---|---|---|"
            );
            for r in rows {
                let default = match r[2].as_str() {
                    "" => String::new(),
                    "required" => "**required**".to_string(),
                    d => format!("`{d}`"),
                };
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {default} | {} |",
                    r[0],
                    r[1].replace('|', "\\|"),
                    r[3]
                );
            }
        } else {
            let _ = writeln!(
                out,
                "{title}\n{}",
                table(&Table {
                    columns: header.clone(),
                    rows
                })
            );
        }
    };
    for c in quiver_connectors::registry() {
        if only.is_some_and(|n| n != c.name()) {
            continue;
        }
        if markdown {
            let _ = writeln!(out, "\n### `{}`\n\n{}", c.name(), c.description());
        } else {
            let _ = writeln!(out, "\n== {} — {}", c.name(), c.description());
        }
        if let Some(specs) = c.source_options() {
            section(
                &mut out,
                if markdown { "As a source:" } else { "source options:" },
                option_rows(specs),
            );
        }
        if let Some(specs) = c.sink_options() {
            if specs.is_empty() {
                let _ = writeln!(
                    out,
                    "{}",
                    if markdown {
                        "\nAs a sink: no options of its own."
                    } else {
                        "sink options: none of its own"
                    }
                );
            } else {
                section(
                    &mut out,
                    if markdown { "As a sink:" } else { "sink options:" },
                    option_rows(specs),
                );
            }
        }
    }
    if only.is_none() {
        let t = if markdown {
            "\n### Options every source takes"
        } else {
            "\n== every source"
        };
        let _ = writeln!(out, "{t}");
        section(&mut out, "", option_rows(quiver_sql::catalog::COMMON_SOURCE_OPTIONS));
        let t = if markdown {
            "\n### Options every sink takes"
        } else {
            "\n== every sink"
        };
        let _ = writeln!(out, "{t}");
        section(&mut out, "", option_rows(quiver_sql::catalog::COMMON_SINK_OPTIONS));
    }
    out
}

/// A preview's table printed as its rows arrive: the header and column widths
/// come from the first rows; a later, wider value widens only its own row, so
/// nothing printed has to be redrawn.
#[derive(Debug)]
pub struct LiveTable {
    columns: Vec<String>,
    widths: Vec<usize>,
    rows: usize,
}

impl LiveTable {
    pub fn new(columns: Vec<String>) -> Self {
        Self {
            columns,
            widths: Vec::new(),
            rows: 0,
        }
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    fn border(&self) -> String {
        let mut s = String::from("+");
        for w in &self.widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    }

    fn line(&self, cells: &[String]) -> String {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(s, " {c:<w$} |", w = self.widths.get(i).copied().unwrap_or(0));
        }
        s
    }

    /// The lines to print for the next rows (the header with the first ones).
    pub fn push(&mut self, rows: &[Vec<String>]) -> Vec<String> {
        if rows.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.widths.is_empty() {
            self.widths = self.columns.iter().map(|c| c.chars().count()).collect();
            for r in rows {
                for (w, c) in self.widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            out.push(self.border());
            out.push(self.line(&self.columns));
            out.push(self.border());
        }
        out.extend(rows.iter().map(|r| self.line(r)));
        self.rows += rows.len();
        out
    }

    /// The closing lines: the bottom border, the row count and the notes.
    pub fn finish(&self, notes: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        if self.rows == 0 {
            out.push("(no rows)".to_string());
        } else {
            out.push(self.border());
        }
        out.push(format!("{} row(s)", self.rows));
        out.extend(notes.iter().map(|n| format!("note: {n}")));
        out
    }
}

/// A batch's rows as text, as the console's tables show values (NULL is empty).
pub fn rows_text(batch: &RecordBatch) -> Vec<Vec<String>> {
    let options = arrow::util::display::FormatOptions::default();
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options))
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| match f {
                    Ok(f) => f.value(row).to_string(),
                    Err(e) => format!("(cannot render: {e})"),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::LiveTable;

    #[test]
    fn a_live_table_keeps_the_first_rows_widths() {
        let mut t = LiveTable::new(vec!["id".into(), "name".into()]);
        let first = t.push(&[vec!["1".into(), "ab".into()]]);
        assert_eq!(
            first,
            ["+----+------+", "| id | name |", "+----+------+", "| 1  | ab   |"]
        );
        assert_eq!(t.push(&[vec!["22".into(), "longer".into()]]), ["| 22 | longer |"]);
        assert!(t.push(&[]).is_empty());
        assert_eq!(t.finish(&["late".into()]), ["+----+------+", "2 row(s)", "note: late"]);
        assert_eq!(LiveTable::new(vec!["x".into()]).finish(&[]), ["(no rows)", "0 row(s)"]);
    }
}
