//! `quiver sql`: the interactive console.
//!
//! Statements end with `;` and may span lines. Sinks created here run in the
//! background; `SHOW SINKS;` shows their status and counts. Definitions persist
//! in the state folder, so the next console session restores them.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio::sync::mpsc;

use crate::preview::Live;
use crate::render::{self, LiveTable};
use crate::worker::{Engine, Output};

/// Where a statement's output lines go as they are ready; the console prints
/// them at once, so a preview's rows show while it still waits for more.
pub type Printer = mpsc::UnboundedSender<String>;

const HELP: &str = "Statements end with ';'. Try:
  CREATE SOURCE s (id BIGINT, name TEXT) WITH (connector = 'datagen', rows.per.second = '5');
  SELECT id, upper(name) AS name FROM s WHERE id % 2 = 0 LIMIT 5;
  CREATE SINK out WITH (connector = 'stdout') AS SELECT * FROM s;
  SHOW SOURCES;  SHOW SINKS;  SHOW CONNECTORS;  DESCRIBE s;  EXPLAIN CREATE SINK …;  DROP SINK out;
Console commands: help, quit (or exit, \\q). Pipelines keep running until dropped or the console exits.";

/// Runs the console until EOF or `quit`.
pub async fn run(engine: &Engine) -> anyhow::Result<()> {
    run_with(|text: String, out: Printer| async move {
        let (stmts, errors) = quiver_sql::parse(&text);
        for e in errors {
            let _ = out.send(format!("error: {e}"));
        }
        for stmt in stmts {
            statement(engine, &stmt, &out).await;
        }
    })
    .await
}

/// Runs one statement, printing a preview's rows as they arrive.
async fn statement(engine: &Engine, stmt: &quiver_sql::ParsedStatement, out: &Printer) {
    let (live, mut arriving) = mpsc::unbounded_channel();
    let run = async move {
        let result = engine.execute_live(stmt, Some(&live)).await;
        drop(live);
        result
    };
    let show = async {
        let mut table: Option<LiveTable> = None;
        while let Some(next) = arriving.recv().await {
            match next {
                Live::Columns(schema) => {
                    table = Some(LiveTable::new(
                        schema.fields().iter().map(|f| f.name().clone()).collect(),
                    ));
                }
                Live::Rows(batch) => {
                    for line in table
                        .as_mut()
                        .map(|t| t.push(&render::rows_text(&batch)))
                        .unwrap_or_default()
                    {
                        let _ = out.send(line);
                    }
                }
            }
        }
        table
    };
    let (result, table) = tokio::join!(run, show);
    let lines = match (result, table) {
        (Ok(Output::Rows { notes, .. }), Some(table)) => table.finish(&notes),
        (Ok(o), _) => vec![render::output(&o)],
        (Err(e), _) => vec![format!("error: {e}")],
    };
    for line in lines {
        let _ = out.send(line);
    }
}

/// The console's read loop; `execute` runs one complete input (one or more
/// statements) and sends what to print to its [`Printer`] as it goes: the local
/// engine, or a worker over HTTP (`quiver sql --server`).
pub async fn run_with<F, Fut>(mut execute: F) -> anyhow::Result<()>
where
    F: FnMut(String, Printer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut editor = DefaultEditor::new()?;
    crate::render::say!(
        "Quiver {} console. Type 'help' for help; statements end with ';'.",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "quiver> " } else { "   ...> " };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() {
            match trimmed.to_ascii_lowercase().trim_end_matches(';') {
                "" => continue,
                "quit" | "exit" | "\\q" => break,
                "help" | "\\h" | "?" => {
                    crate::render::say!("{HELP}");
                    continue;
                }
                _ => {}
            }
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !complete(&buffer) {
            continue;
        }
        let _ = editor.add_history_entry(buffer.trim());
        let text = std::mem::take(&mut buffer);
        let (out, mut lines) = mpsc::unbounded_channel();
        let print = async {
            while let Some(line) = lines.recv().await {
                crate::render::say!("{line}");
            }
        };
        // The printer ends when `execute` is done and has dropped its sender.
        tokio::join!(execute(text, out), print);
    }
    Ok(())
}

/// Whether the buffer ends a statement: a `;` outside quotes and comments.
fn complete(buffer: &str) -> bool {
    let mut in_single = false;
    let mut in_double = false;
    let mut in_block = false;
    let mut last_semicolon = false;
    let chars: Vec<char> = buffer.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if in_block {
            if c == '*' && next == Some('/') {
                in_block = false;
                i += 1;
            }
        } else if in_single {
            in_single = c != '\'';
        } else if in_double {
            in_double = c != '"';
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        } else if c == '/' && next == Some('*') {
            in_block = true;
            i += 1;
        } else if c == '\'' {
            in_single = true;
            last_semicolon = false;
        } else if c == '"' {
            in_double = true;
            last_semicolon = false;
        } else if c == ';' {
            last_semicolon = true;
        } else if !c.is_whitespace() {
            last_semicolon = false;
        }
        i += 1;
    }
    last_semicolon && !in_single && !in_double && !in_block
}

#[cfg(test)]
mod tests {
    use super::complete;

    #[test]
    fn statement_ends_at_unquoted_semicolon() {
        assert!(complete("SHOW SINKS;"));
        assert!(!complete("SELECT ';' AS x"));
        assert!(complete("SELECT ';' AS x;\n"));
        assert!(!complete("SELECT 1 -- ;"));
        assert!(complete("SELECT 1; -- done\n"));
    }
}
