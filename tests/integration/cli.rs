//! The command line: validate's report, connectors' listing, exit codes.

use crate::support::{run_cli, text};

#[test]
fn validate_lists_every_problem_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.sql");
    std::fs::write(
        &file,
        "-- three problems\nCREATE SOURCE s (id BIGINT) WITH (connector = 'datagen', rows.total = 'ten');\nCREATE SOURCE t (id BIGINT) WITH (connector = 'datagen');\nCREATE SINK a WITH (connector = 'blackhole') AS SELECT id FROM t GROUP BY id;\nCREATE SINK b WITH (connector = 'blackhole', batch.sise = 1) AS SELECT id FROM t;\nCREATE SINK c WITH (connector = 'blackhole') AS SELECT id FROM s;\n",
    )
    .unwrap();
    let res = run_cli(&["validate", file.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1));
    let f = file.display().to_string();
    let lines: Vec<String> = text(&res.stdout).lines().map(String::from).collect();
    assert_eq!(
        lines,
        vec![
            format!("{f}:2:58: option 'rows.total': expected a whole number (got 'ten')"),
            format!(
                "{f}:4:75: GROUP BY is not supported in a pipeline: grouping needs to see every row of a group. A sink's SELECT runs on each batch independently (projections, filters, scalar functions, CASE, casts)"
            ),
            format!(
                "{f}:5:46: unknown option 'batch.sise' for blackhole sink; valid options: connector, errors.deadletterqueue.bootstrap.servers, errors.deadletterqueue.context.headers.enable, errors.deadletterqueue.path, errors.deadletterqueue.topic.name, errors.log.enable, errors.log.include.messages, errors.retry.delay.max.ms, errors.retry.timeout, errors.tolerance, tasks.max"
            ),
        ]
    );

    let good = dir.path().join("good.sql");
    std::fs::write(&good, "CREATE SOURCE s (id BIGINT) WITH (connector = 'datagen');\nCREATE SINK k WITH (connector = 'stdout') AS SELECT id FROM s;").unwrap();
    let res = run_cli(&["validate", good.to_str().unwrap()]);
    assert!(res.status.success());
    assert_eq!(
        text(&res.stdout).trim(),
        format!("{}: ok (2 statements)", good.display())
    );
}

#[test]
fn every_example_validates() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut files: Vec<String> = std::fs::read_dir(examples)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".sql"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "the quickstart and at least three more examples: {files:?}"
    );
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let res = run_cli(&args);
    assert!(res.status.success(), "{}", text(&res.stdout));
}

#[test]
fn connectors_lists_every_option_with_type_default_and_doc() {
    let res = run_cli(&["connectors"]);
    assert!(res.status.success());
    let out = text(&res.stdout);
    for c in quiver_connectors::registry() {
        assert!(out.contains(&format!("== {}", c.name())), "{} missing", c.name());
        for spec in c
            .source_options()
            .unwrap_or(&[])
            .iter()
            .chain(c.sink_options().unwrap_or(&[]))
        {
            assert!(out.contains(spec.key), "{}: option {} missing", c.name(), spec.key);
            assert!(
                out.contains(spec.doc.split_whitespace().next().unwrap()),
                "doc of {}",
                spec.key
            );
        }
    }
    assert!(out.contains("errors.tolerance") && out.contains("none | all"));
    let one = run_cli(&["connectors", "nope"]);
    assert_eq!(one.status.code(), Some(1));
    assert!(text(&one.stderr).contains("unknown connector 'nope'; known connectors: datagen, file, filesystem, kafka, postgres, postgres-cdc, mysql, stdout, blackhole"));
}

#[test]
fn run_reports_a_failed_pipeline_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.sql");
    std::fs::write(
        &file,
        "CREATE SOURCE s (id BIGINT NOT NULL) WITH (connector = 'datagen', rows.total = 10, 'fields.id.kind' = 'sequence');\nCREATE SINK k WITH (connector = 'blackhole') AS SELECT 10 / (id - 3) AS x FROM s;",
    )
    .unwrap();
    let res = run_cli(&[
        "run",
        file.to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]);
    assert_eq!(res.status.code(), Some(1));
    let out = text(&res.stdout);
    assert!(out.contains("sink 'k' (s → blackhole): FAILED"), "{out}");
    assert!(
        out.contains("error: record at rows position 3 of source 's' failed at transform stage: Divide by zero error"),
        "{out}"
    );
}
