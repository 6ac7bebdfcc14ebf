//! `quiver sql`: create, preview, run and list pipelines; definitions survive a restart.

use std::io::Write;
use std::process::Stdio;

use crate::support::{quiver, text};

/// Runs a console session: `input`, a pause for background pipelines, then `after`.
fn session_with_pause(state: &std::path::Path, input: &str, after: &str) -> String {
    let mut child = quiver()
        .args(["sql", "--state-dir", state.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    if !after.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stdin.write_all(after.as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn session(state: &std::path::Path, input: &str) -> String {
    session_with_pause(state, input, "")
}

#[test]
fn console_previews_runs_and_restores_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out_dir = dir.path().join("out");
    let first = session_with_pause(
        &state,
        &format!(
            "CREATE SOURCE s (id BIGINT NOT NULL, name TEXT) WITH (connector = 'datagen', rows.total = 50,
                 'fields.id.kind' = 'sequence', 'fields.name.values' = 'x');
             SELECT id, upper(name) AS n FROM s
                 WHERE id % 2 = 0 LIMIT 3;
             SELECT nope FROM s;
             CREATE SINK k WITH (connector = 'filesystem', path = '{}', format = 'json') AS SELECT id FROM s;
            ",
            out_dir.display()
        ),
        "SHOW SINKS;\nquit\n",
    );
    assert!(
        first.contains("source 's' created (2 columns, connector datagen)"),
        "{first}"
    );
    // The preview: three even ids through the transform.
    assert!(first.contains("| 0  | X |\n| 2  | X |\n| 4  | X |"), "{first}");
    assert!(first.contains("3 row(s)"), "{first}");
    assert!(
        first.contains("column 21: No field named nope. Did you mean 's.name'?"),
        "{first}"
    );
    assert!(
        first.contains("sink 'k' created and running (s → filesystem)"),
        "{first}"
    );
    assert!(
        first.contains("| k    | s      | filesystem | FINISHED | 50      | 50       | 0            | 1     |"),
        "{first}"
    );
    assert_eq!(crate::support::read_jsonl(&out_dir, ".jsonl").len(), 50);

    // The next session restores both definitions; the sink resumes (nothing new).
    let second = session(&state, "SHOW SOURCES;\nSHOW SINKS;\n");
    assert!(second.contains("restored 2 source(s)/sink(s)"), "{second}");
    assert!(second.contains("| s    | datagen   | id, name |"), "{second}");
    assert!(second.contains("| k    | s      | filesystem |"), "{second}");
    assert_eq!(
        crate::support::read_jsonl(&out_dir, ".jsonl").len(),
        50,
        "no rows written twice"
    );
}
