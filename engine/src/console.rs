//! `quiver sql`: the interactive console.
//!
//! Statements end with `;` and may span lines. Sinks created here run in the
//! background; `SHOW SINKS;` shows their status and counts. Definitions persist
//! in the state folder, so the next console session restores them.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::render;
use crate::worker::Engine;

const HELP: &str = "Statements end with ';'. Try:
  CREATE SOURCE s (id BIGINT, name TEXT) WITH (connector = 'datagen', rows.per.second = '5');
  SELECT id, upper(name) AS name FROM s WHERE id % 2 = 0 LIMIT 5;
  CREATE SINK out WITH (connector = 'stdout') AS SELECT * FROM s;
  SHOW SOURCES;  SHOW SINKS;  SHOW CONNECTORS;  DESCRIBE s;  EXPLAIN CREATE SINK …;  DROP SINK out;
Console commands: help, quit (or exit, \\q). Pipelines keep running until dropped or the console exits.";

/// Runs the console until EOF or `quit`.
pub async fn run(engine: &Engine) -> anyhow::Result<()> {
    run_with(|text: String| async move {
        let (stmts, errors) = quiver_sql::parse(&text);
        let mut out: Vec<String> = errors.iter().map(|e| format!("error: {e}")).collect();
        for stmt in stmts {
            match engine.execute(&stmt).await {
                Ok(o) => out.push(render::output(&o)),
                Err(e) => out.push(format!("error: {e}")),
            }
        }
        out
    })
    .await
}

/// The console's read loop; `execute` runs one complete input (one or more
/// statements) and gives what to print: the local engine, or a worker over HTTP
/// (`quiver sql --server`).
pub async fn run_with<F, Fut>(mut execute: F) -> anyhow::Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
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
        for line in execute(text).await {
            crate::render::say!("{line}");
        }
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
