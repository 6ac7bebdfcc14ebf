//! Lakehouse ingestion against a real S3 server (moto): partitioned Parquet from
//! file and Kafka sources, rolling that never stalls, S3 faults and bad
//! credentials, and exactly-once files under repeated SIGKILL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use quiver_engine::{Engine, EngineOptions, State};

use crate::kafka_support::{Rec, broker, create_topic, produce, unique};
use crate::s3_support::{Fault, FaultProxy, endpoint, list, read_parquet, sink_options, unique_bucket};
use crate::support::{quiver, run_bounded, text};

const REGIONS: [&str; 3] = ["eu", "us", "ap/south"];

/// Every `id` in the batches, with how often it appears.
fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name("id").expect("id column").as_primitive::<Int64Type>();
        out.extend(col.iter().map(|v| v.expect("id is never NULL")));
    }
    out
}

fn id_counts(objects: &[(String, Vec<RecordBatch>)]) -> BTreeMap<i64, usize> {
    let mut m = BTreeMap::new();
    for (_, batches) in objects {
        for id in ids(batches) {
            *m.entry(id).or_insert(0) += 1;
        }
    }
    m
}

/// The value of `col=` in an object key's folders, percent-decoded.
fn folder_value(key: &str, col: &str) -> String {
    let seg = key
        .split('/')
        .find_map(|s| s.strip_prefix(&format!("{col}=")))
        .unwrap_or_else(|| panic!("{key} has no {col}= folder"));
    let mut out = Vec::new();
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&seg[i + 1..i + 3], 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8 folder")
}

/// Asserts each object's rows belong to the region its folder names, and every id
/// in `0..total` is present exactly once.
fn assert_partitioned(objects: &[(String, Vec<RecordBatch>)], total: i64) {
    for (key, batches) in objects {
        let region = folder_value(key, "region");
        for id in ids(batches) {
            assert_eq!(REGIONS[(id % 3) as usize], region, "id {id} is in {key}");
        }
    }
    let counts = id_counts(objects);
    assert_eq!(counts.len() as i64, total, "distinct ids");
    assert!(counts.values().all(|c| *c == 1), "an id appears twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_and_kafka_sources_to_partitioned_parquet_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique_bucket("lake");
    let input = dir.path().join("orders.jsonl");
    let lines: Vec<String> = (0..5000)
        .map(|i| format!(r#"{{"id":{i},"region":"{}","amount":{}.5}}"#, REGIONS[i % 3], i % 100))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let bootstrap = broker();
    let topic = unique("lake");
    create_topic(&bootstrap, &topic, 3).await;
    let records: Vec<Rec> = (0..3000)
        .map(|i| {
            Rec::value(format!(r#"{{"id":{i},"region":"{}","amount":{}}}"#, REGIONS[i % 3], i))
                .key(i.to_string())
                .partition((i % 3) as i32)
        })
        .collect();
    produce(&bootstrap, &topic, &records);

    let sql = format!(
        "CREATE SOURCE orders (id BIGINT NOT NULL, region TEXT, amount DOUBLE) WITH (connector = 'file', path = '{}', format = 'json');
         CREATE SOURCE events (id BIGINT NOT NULL, region TEXT, amount DOUBLE) WITH (connector = 'kafka', 'bootstrap.servers' = '{bootstrap}', topic = '{topic}', 'scan.startup.mode' = 'earliest');
         CREATE SINK files_out WITH (connector = 'filesystem', path = 's3://{bucket}/files', 'partition.by' = 'region', 'rollover.rows' = '1000', {opts}) AS SELECT id, region, amount FROM orders;
         CREATE SINK kafka_out WITH (connector = 'filesystem', path = 's3://{bucket}/kafka/', 'partition.by' = 'region', {opts}) AS SELECT id, region, amount, _partition AS kafka_partition FROM events;",
        input.display(),
        opts = sink_options()
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let files_out = st.iter().find(|s| s.name == "files_out").unwrap();
    assert_eq!(files_out.sink.location, format!("s3://{bucket}/files"));
    assert!(
        files_out
            .sink
            .recent
            .iter()
            .all(|f| f.starts_with(&format!("s3://{bucket}/files/region="))),
        "{:?}",
        files_out.sink.recent
    );

    let objects = read_parquet(&bucket, "files").await;
    assert_partitioned(&objects, 5000);
    // 1667/1667/1666 rows per region in files of at most 1000 rows: two per region.
    assert_eq!(
        objects.len(),
        6,
        "{:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    assert!(
        objects
            .iter()
            .any(|(k, _)| k.starts_with("files/region=ap%2Fsouth/part-")),
        "'/' in a value is escaped, not a folder"
    );
    let schema = objects[0].1[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["id", "amount"],
        "the partition column is in the folder name only"
    );

    let objects = read_parquet(&bucket, "kafka").await;
    assert_partitioned(&objects, 3000);
    for (_, batches) in &objects {
        for b in batches {
            let p = b
                .column_by_name("kafka_partition")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>();
            let id = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                assert_eq!(p.value(r) as i64, id.value(r) % 3, "metadata columns reach the files");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_by_rows_bytes_interval_and_inactivity_on_s3() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique_bucket("roll");
    let input = dir.path().join("in.jsonl");
    let pad = "x".repeat(180);
    let mut lines: Vec<String> = (0..2500)
        .map(|i| format!(r#"{{"id":{i},"p":"busy","pad":"{pad}{i}"}}"#))
        .collect();
    lines.extend((2500..2510).map(|i| format!(r#"{{"id":{i},"p":"idle","pad":"{pad}"}}"#)));
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let engine = Engine::open(&dir.path().join("state"), EngineOptions::default()).unwrap();
    let opts = sink_options();
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, p TEXT, pad TEXT) WITH (connector = 'file', path = '{}', format = 'json', 'scan.interval' = '100ms');
         CREATE SINK by_rows WITH (connector = 'filesystem', path = 's3://{bucket}/rows', 'partition.by' = 'p', 'rollover.rows' = '1000', 'rollover.inactivity' = '1500ms', 'rollover.interval' = '1h', {opts}) AS SELECT * FROM s;
         CREATE SINK by_bytes WITH (connector = 'filesystem', path = 's3://{bucket}/bytes', format = 'csv', 'rollover.bytes' = '100KB', 'rollover.interval' = '1h', {opts}) AS SELECT id, pad FROM s WHERE p = 'busy';
         CREATE SINK by_age WITH (connector = 'filesystem', path = 's3://{bucket}/age', format = 'json', 'rollover.interval' = '1s', {opts}) AS SELECT id FROM s;",
        input.display()
    );
    let (stmts, errors) = quiver_sql::parse(&sql);
    assert!(errors.is_empty(), "{errors:?}");
    for s in &stmts {
        engine.execute(s).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let read_all = Instant::now();
    wait_for(|| engine.status("by_rows").unwrap().rows_out == 2510, "all rows read").await;

    // Rows: the busy partition filled two files of 1000; its last 500 rows and the
    // idle partition's 10 rows are still open, so invisible.
    let keys =
        |l: Vec<(String, u64, chrono::DateTime<chrono::Utc>)>| l.into_iter().map(|(k, _, _)| k).collect::<Vec<_>>();
    let rows_objects = read_parquet(&bucket, "rows").await;
    let sizes: Vec<usize> = rows_objects
        .iter()
        .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum())
        .collect();
    assert_eq!(sizes, vec![1000, 1000], "{:?}", keys(list(&bucket, "rows").await));
    assert!(rows_objects.iter().all(|(k, _)| k.starts_with("rows/p=busy/")));
    assert!(
        read_all.elapsed() < Duration::from_millis(1300),
        "checked before the inactivity timeout"
    );

    // Inactivity: with no new input at all, both open files close after ~1.5 s idle.
    wait_for_async(
        || async { list(&bucket, "rows/p=idle").await.len() == 1 },
        "the idle partition closes by inactivity",
    )
    .await;
    let closed_after = read_all.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1400),
        "closed after the idle time, not before ({closed_after:?})"
    );
    let rows_objects = read_parquet(&bucket, "rows").await;
    let mut sizes: Vec<usize> = rows_objects
        .iter()
        .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum())
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![10, 500, 1000, 1000]);

    // Bytes: ~470 KB of CSV in files of about 100 KB; every file has its header.
    // The last file is still open (rollover.interval is an hour), so every visible one closed by size.
    let by_bytes = list(&bucket, "bytes").await;
    assert!(by_bytes.len() >= 3, "{by_bytes:?}");
    for (k, size, _) in &by_bytes {
        assert!((100_000..160_000).contains(size), "{k} is {size} bytes");
    }
    // Age: the wall clock closed the file about a second after it opened.
    let by_age = list(&bucket, "age").await;
    assert_eq!(by_age.len(), 1, "{by_age:?}");

    // More input for the busy partition only: the idle partition gets no new file,
    // and the busy one stays open while rows keep arriving within the idle time.
    let mut f = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
    for round in 0..5 {
        use std::io::Write;
        writeln!(f, r#"{{"id":{},"p":"busy","pad":"{pad}"}}"#, 3000 + round).unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(list(&bucket, "rows/p=idle").await.len(), 1);
    assert_eq!(
        list(&bucket, "rows/p=busy").await.len(),
        3,
        "rows arriving every 500ms keep the file open"
    );
    wait_for_async(
        || async { list(&bucket, "rows/p=busy").await.len() == 4 },
        "the busy partition closes once input stops",
    )
    .await;
    engine.shutdown().await;
    let total: usize = read_parquet(&bucket, "rows")
        .await
        .iter()
        .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum::<usize>())
        .sum();
    assert_eq!(total, 2515);
    println!("{:?}", keys(list(&bucket, "").await));
}

async fn wait_for(f: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_async<F: std::future::Future<Output = bool>>(f: impl Fn() -> F, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A pipeline from a small file into `path`, with extra sink options; returns its status.
async fn run_to(dir: &std::path::Path, path: &str, opts: &str) -> quiver_engine::PipelineStatus {
    std::fs::create_dir_all(dir).unwrap();
    let input = dir.join("in.jsonl");
    let lines: Vec<String> = (0..3000)
        .map(|i| format!(r#"{{"id":{i},"region":"{}"}}"#, REGIONS[i % 3]))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let sql = format!(
        "CREATE SOURCE s (id BIGINT NOT NULL, region TEXT) WITH (connector = 'file', path = '{}', format = 'json');
         CREATE SINK out WITH (connector = 'filesystem', path = '{path}', 'partition.by' = 'region', 'rollover.rows' = '200', {opts}) AS SELECT * FROM s;",
        input.display()
    );
    let st = run_bounded(&dir.join("state"), &sql).await;
    st.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_500_and_503_responses_are_retried_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique_bucket("faults");
    // Every third request fails, alternating 503 SlowDown and 500 InternalError.
    let proxy = FaultProxy::start(|n, _| match n % 6 {
        2 => Fault::Unavailable,
        5 => Fault::InternalError,
        _ => Fault::Pass,
    })
    .await;
    let opts = format!(
        "'s3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.access.key.id' = 'test', 's3.secret.access.key' = 'test', 's3.allow.http' = 'true'",
        proxy.url
    );
    let st = run_to(dir.path(), &format!("s3://{bucket}/out"), &opts).await;
    assert_eq!(st.state, State::Finished, "{st:?}");
    let faults = proxy.faults.load(std::sync::atomic::Ordering::SeqCst);
    let forwarded = proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        faults >= 5 && forwarded > faults,
        "the proxy failed {faults} requests and forwarded {forwarded}"
    );
    let objects = read_parquet(&bucket, "out").await;
    assert_partitioned(&objects, 3000);
    assert_eq!(objects.len(), 15, "3 regions x 1000 rows in files of 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_as_a_multipart_upload_through_failing_requests() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique_bucket("multipart");
    let parts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&parts);
    // Every fourth request fails with 503; part uploads are counted.
    let proxy = FaultProxy::start(move |n, head| {
        if head.starts_with("PUT") && head.contains("partNumber=") {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if n % 4 == 3 { Fault::Unavailable } else { Fault::Pass }
    })
    .await;
    let opts = format!(
        "'s3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.access.key.id' = 'test', 's3.secret.access.key' = 'test', 's3.allow.http' = 'true'",
        proxy.url
    );
    // ~25 MB of incompressible rows in one file: more than three 8 MiB parts.
    let sql = format!(
        "CREATE SOURCE gen (id BIGINT NOT NULL, pad TEXT) WITH (connector = 'datagen', rows.total = '25000', 'fields.id.kind' = 'sequence', 'fields.pad.length' = '1000');
         CREATE SINK big WITH (connector = 'filesystem', path = 's3://{bucket}/big', 'parquet.compression' = 'none', 'parquet.dictionary' = 'false', {opts}) AS SELECT * FROM gen;"
    );
    let st = run_bounded(&dir.path().join("state"), &sql).await;
    assert!(st.iter().all(|s| s.state == State::Finished), "{st:?}");
    let objects = list(&bucket, "big").await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(objects[0].1 > 24_000_000, "{objects:?}");
    assert!(
        parts.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "uploaded in parts"
    );
    let rows: usize = read_parquet(&bucket, "big")
        .await
        .iter()
        .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum::<usize>())
        .sum();
    assert_eq!(rows, 25_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_a_missing_bucket_and_a_dead_endpoint_fail_fast_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = unique_bucket("denied");
    let proxy = FaultProxy::start(|_, head| {
        if head.contains("Credential=wrong/") {
            Fault::Forbidden
        } else {
            Fault::Pass
        }
    })
    .await;

    let started = Instant::now();
    let opts = format!(
        "'s3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.access.key.id' = 'wrong', 's3.secret.access.key' = 'sup3rs3cret', 's3.allow.http' = 'true'",
        proxy.url
    );
    let st = run_to(&dir.path().join("a"), &format!("s3://{bucket}/out"), &opts).await;
    let err = st.error.clone().unwrap_or_default();
    assert_eq!(st.state, State::Failed, "{st:?}");
    assert!(
        err.contains("InvalidAccessKeyId") && err.contains(&format!("s3://{bucket}/out")),
        "{err}"
    );
    assert!(!err.contains("sup3rs3cret"), "the secret is never printed: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a 403 is not retried for minutes"
    );

    let started = Instant::now();
    let st = run_to(&dir.path().join("b"), "s3://no-such-bucket-here/out", &sink_options()).await;
    let err = st.error.clone().unwrap_or_default();
    assert_eq!(st.state, State::Failed, "{st:?}");
    assert!(
        err.contains("NoSuchBucket") && err.contains("s3://no-such-bucket-here/out"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // Nothing listens there: retried until storage.retry.timeout, then a clear failure.
    let started = Instant::now();
    let dead = "'s3.endpoint' = 'http://127.0.0.1:9', 's3.region' = 'us-east-1', 's3.access.key.id' = 'test', 's3.secret.access.key' = 'test', 's3.allow.http' = 'true', 'storage.retry.timeout' = '2s'";
    let st = run_to(&dir.path().join("c"), &format!("s3://{bucket}/out"), dead).await;
    let err = st.error.clone().unwrap_or_default();
    assert_eq!(st.state, State::Failed, "{st:?}");
    assert!(err.contains("checking access to s3://"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(list(&bucket, "").await.is_empty());
}

/// Reads the peak resident set of a process from /proc (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `quiver run` and samples its peak RSS until it exits.
fn run_measuring_rss(args: &[&str]) -> (std::process::ExitStatus, u64, String) {
    let mut child = quiver()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            use std::io::Read;
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            return (status, peak, out);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn memory_stays_bounded_with_200_open_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, partitions: u32, memory: &str| {
        let out = dir.path().join(name);
        let sql = format!(
            "CREATE SOURCE gen (id BIGINT NOT NULL, k INT, pad TEXT) WITH (connector = 'datagen', rows.total = '400000', 'fields.id.kind' = 'sequence', 'fields.k.min' = '0', 'fields.k.max' = '{}', 'fields.pad.length' = '200');
             CREATE SINK out WITH (connector = 'filesystem', path = '{}', 'partition.by' = 'k', 'parquet.compression' = 'none', 'sink.memory.max' = '{memory}') AS SELECT * FROM gen;",
            partitions - 1,
            out.display()
        );
        let file = dir.path().join(format!("{name}.sql"));
        std::fs::write(&file, sql).unwrap();
        let state = dir.path().join(format!("{name}-state"));
        let (status, peak, stdout) =
            run_measuring_rss(&["run", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]);
        assert!(status.success(), "{stdout}");
        let files = crate::support::files_with(&out, ".parquet");
        let rows: usize = crate::support::read_parquet(&out)
            .iter()
            .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum::<usize>())
            .sum();
        assert_eq!(rows, 400_000, "{name}: every row written");
        println!(
            "{name}: {partitions} partitions, sink.memory.max {memory}: peak RSS {} MiB, {} files",
            peak / 1024,
            files.len()
        );
        (peak / 1024, files.len())
    };
    // ~90 MB of rows over 200 partitions: unbounded, every partition buffers its share.
    let (unbounded, _) = run("unbounded", 200, "4GiB");
    let (one, _) = run("one", 1, "16MiB");
    let (bounded, files) = run("bounded", 200, "16MiB");
    assert!(
        bounded <= one + 16 + 48,
        "200 partitions under a 16 MiB bound peaked at {bounded} MiB (1 partition: {one} MiB)"
    );
    assert!(
        unbounded > bounded + 32,
        "the bound made a difference ({unbounded} vs {bounded} MiB)"
    );
    assert!(files > 200, "the bound rolled files early ({files} files)");
}

#[test]
fn exactly_once_files_survive_ten_sigkills() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = broker();
    let topic = unique("eos");
    let bucket = unique_bucket("eos");
    let total: i64 = 60_000;
    rt.block_on(create_topic(&bootstrap, &topic, 3));
    let records: Vec<Rec> = (0..total)
        .map(|i| {
            Rec::value(format!(
                r#"{{"id":{i},"region":"{}","pad":"{}"}}"#,
                REGIONS[(i % 3) as usize],
                "p".repeat(32)
            ))
            .partition(((i / 3) % 3) as i32)
        })
        .collect();
    produce(&bootstrap, &topic, &records);
    let sql = format!(
        "CREATE SOURCE events (id BIGINT NOT NULL, region TEXT, pad TEXT) WITH (connector = 'kafka', 'bootstrap.servers' = '{bootstrap}', topic = '{topic}', 'scan.startup.mode' = 'earliest');
         CREATE SINK lake WITH (connector = 'filesystem', path = 's3://{bucket}/events', 'partition.by' = 'region', 'rollover.rows' = '100', 'sink.delivery.guarantee' = 'exactly-once', {}) AS SELECT id, region, pad FROM events;",
        sink_options()
    );
    let file = dir.path().join("job.sql");
    std::fs::write(&file, sql).unwrap();
    let state = dir.path().join("state");
    let args = [
        "run",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--until-caught-up",
    ];

    // Kill at pseudo-random moments (a fixed LCG: reruns kill at the same points).
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut killed_mid_run = 0;
    for trial in 0..10 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(150 + (seed >> 33) % 750);
        let mut child = quiver().args(args).stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed_mid_run += 1;
        }
        child.wait().unwrap();
        // After every crash: no partial object, no record in two objects.
        let objects = rt.block_on(read_parquet(&bucket, "events"));
        let counts = id_counts(&objects);
        let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
        assert!(
            dups.is_empty(),
            "trial {trial} (killed after {wait:?}): ids in two objects: {dups:?}"
        );
    }
    assert!(
        killed_mid_run >= 5,
        "most trials were killed mid-run ({killed_mid_run})"
    );

    let done = quiver().args(args).output().unwrap();
    assert!(done.status.success(), "{}\n{}", text(&done.stdout), text(&done.stderr));
    let objects = rt.block_on(read_parquet(&bucket, "events"));
    assert_partitioned(&objects, total);
    for (key, _) in &objects {
        let name = key.rsplit('/').next().unwrap();
        assert!(
            name.starts_with(&format!("{topic}+")) && name.ends_with(".parquet"),
            "deterministic name: {key}"
        );
    }
    // Re-running the finished job writes nothing new.
    let before = rt.block_on(list(&bucket, "events"));
    let again = quiver().args(args).output().unwrap();
    assert!(again.status.success());
    assert_eq!(
        rt.block_on(list(&bucket, "events")),
        before,
        "a re-run after success writes nothing"
    );
    println!(
        "exactly-once: {killed_mid_run} SIGKILLs, {} objects, every id once; endpoint {}",
        objects.len(),
        endpoint()
    );
}

#[test]
fn a_bounded_job_stops_at_the_ends_it_saw_at_start_while_producers_continue() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = broker();
    let topic = unique("bounded");
    rt.block_on(create_topic(&bootstrap, &topic, 2));
    let batch = |from: i64, n: i64| -> Vec<Rec> {
        (from..from + n)
            .map(|i| Rec::value(format!(r#"{{"id":{i}}}"#)).partition((i % 2) as i32))
            .collect()
    };
    produce(&bootstrap, &topic, &batch(0, 20_000));

    // A producer that keeps writing for the whole run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (stop, bootstrap, topic) = (std::sync::Arc::clone(&stop), bootstrap.clone(), topic.clone());
        std::thread::spawn(move || {
            let mut next = 20_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                produce(&bootstrap, &topic, &batch(next, 500));
                next += 500;
                std::thread::sleep(Duration::from_millis(20));
            }
            next
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE SOURCE events (id BIGINT NOT NULL) WITH (connector = 'kafka', 'bootstrap.servers' = '{bootstrap}', topic = '{topic}', 'scan.startup.mode' = 'earliest');
         CREATE SINK lake WITH (connector = 'filesystem', path = '{}') AS SELECT id FROM events;",
        out.display()
    );
    let file = dir.path().join("job.sql");
    std::fs::write(&file, sql).unwrap();
    let state = dir.path().join("state");
    let started = Instant::now();
    let done = quiver()
        .args([
            "run",
            file.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--until-caught-up",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let produced = producer.join().unwrap();
    let stdout = text(&done.stdout);
    assert!(done.status.success(), "{stdout}\n{}", text(&done.stderr));
    let written: usize = crate::support::read_parquet(&out)
        .iter()
        .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum::<usize>())
        .sum();
    // It read at least what was there at start and never chased the producer past it.
    assert!(
        written >= 20_000 && (written as i64) <= produced,
        "read {written} of {produced} produced (took {took:?})"
    );
    let lag: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("lag at start "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lag line: {stdout}"));
    assert!(
        lag >= 20_000 && lag as usize <= written,
        "lag at start {lag}, written {written}"
    );
    println!("bounded job: lag at start {lag}, wrote {written} while {produced} were produced, in {took:?}");
}
