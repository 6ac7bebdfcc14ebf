//! Runs every `tests/slt/*.slt` file against an in-process Quiver engine.
//!
//! `cargo test --test sqllogictests` checks them; `cargo test --test sqllogictests -- --complete`
//! rewrites the expected results (review the diff before committing).
//! An optional filter argument runs only files whose name contains it.

use std::path::PathBuf;

use quiver_tests::slt::QuiverDb;
use sqllogictest::{default_column_validator, default_normalizer, default_validator};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "slt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut passed = 0;
    let mut failed = 0;
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let result = rt.block_on(async {
            let mut runner = sqllogictest::Runner::new(|| async { QuiverDb::new() });
            if complete {
                runner
                    .update_test_file(
                        &file,
                        " ",
                        default_validator,
                        default_normalizer,
                        default_column_validator,
                    )
                    .await
                    .map_err(|e| e.to_string())
            } else {
                runner
                    .run_file_async(&file)
                    .await
                    .map_err(|e| e.display(true).to_string())
            }
        });
        match result {
            Ok(()) => {
                println!("slt {name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("slt {name} ... FAILED\n{e}");
                failed += 1;
            }
        }
    }
    println!("\nsqllogictest: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
