//! The README's quickstart, run as a user runs it, with its Parquet read back.

use std::collections::HashMap;

use arrow::array::{AsArray, Int64Array};
use arrow::datatypes::Int64Type;

use crate::support::{read_jsonl, read_parquet, run_cli, text};

#[test]
fn quickstart_writes_the_generated_rows_to_partitioned_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("orders");
    let raw = dir.path().join("raw");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart.sql")).unwrap();
    assert!(example.contains("/tmp/quiver-quickstart/orders"));
    // The same pipeline into a temp folder, plus an untransformed copy of the
    // generated rows to check every value against.
    let sql = example.replace("/tmp/quiver-quickstart/orders", out.to_str().unwrap())
        + &format!(
            "\nCREATE SINK raw_copy FROM orders WITH (connector = 'filesystem', path = '{}', format = 'json');\n",
            raw.display()
        );
    let file = dir.path().join("quickstart.sql");
    std::fs::write(&file, sql).unwrap();
    let state = dir.path().join("state");

    let res = run_cli(&["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]);
    let stdout = text(&res.stdout);
    assert!(
        res.status.success(),
        "exit {:?}\n{stdout}\n{}",
        res.status,
        text(&res.stderr)
    );
    assert!(
        stdout.contains("sink 'orders_lake' (orders → filesystem): FINISHED"),
        "{stdout}"
    );
    assert!(stdout.contains("rows in 100000"), "{stdout}");

    // Expected output, computed from the generator's own rows.
    let generated = read_jsonl(&raw, ".jsonl");
    assert_eq!(generated.len(), 100_000);
    let mut expected: HashMap<i64, (i64, String)> = HashMap::new();
    for r in &generated {
        let amount = r["amount"].as_f64().expect("amount is never NULL");
        if amount > 0.0 {
            let day = r["ts"].as_str().expect("ts")[..10].to_string();
            expected.insert(r["id"].as_i64().unwrap(), ((amount * 100.0).round() as i64, day));
        }
    }
    assert!(
        expected.len() > 90_000 && expected.len() < 100_000,
        "the WHERE keeps most rows: {}",
        expected.len()
    );

    let files = read_parquet(&out);
    assert!(!files.is_empty());
    let mut seen = 0;
    for (path, batches) in &files {
        let day = path
            .split('/')
            .next()
            .and_then(|d| d.strip_prefix("day="))
            .unwrap_or_else(|| panic!("not a day folder: {path}"));
        for b in batches {
            assert!(
                b.schema().column_with_name("day").is_none(),
                "partition column stays in the path"
            );
            let ids = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
            let cents: &Int64Array = b.column_by_name("cents").unwrap().as_primitive::<Int64Type>();
            let customer = b.column_by_name("customer").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                let (want_cents, want_day) = expected
                    .get(&ids.value(i))
                    .unwrap_or_else(|| panic!("id {} should have been filtered", ids.value(i)));
                assert_eq!(cents.value(i), *want_cents, "cents of id {}", ids.value(i));
                assert_eq!(day, want_day, "partition of id {}", ids.value(i));
                let c = customer.value(i);
                assert!(
                    c == "ANONYMOUS" || (c.len() == 8 && c.chars().all(|ch| !ch.is_lowercase())),
                    "customer {c}"
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, expected.len(), "every kept row is written exactly once");
    // rollover.rows = 50000: no file holds more.
    for (path, batches) in &files {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert!(rows <= 50_000, "{path} has {rows} rows");
    }

    // A second run resumes after the committed position: nothing new is written.
    let again = run_cli(&["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]);
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{stdout}");
    assert!(stdout.contains("nothing new to read"), "{stdout}");
    assert_eq!(read_parquet(&out).len(), files.len());
}
