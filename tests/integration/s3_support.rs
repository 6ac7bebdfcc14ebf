//! S3 helpers for the tests: the moto server started by `tests/run`, buckets,
//! listing and reading objects back, and a fault-injecting HTTP proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The moto S3 endpoint (`tests/run` starts it and sets QUIVER_TEST_S3).
pub(crate) fn endpoint() -> String {
    std::env::var("QUIVER_TEST_S3")
        .expect("QUIVER_TEST_S3 is not set: run the suite with tests/run, which starts the moto S3 server")
}

/// Creates a fresh bucket (object_store cannot create buckets; moto takes a plain PUT).
pub(crate) fn create_bucket(name: &str) {
    let url = format!("{}/{name}", endpoint());
    let status = ureq::put(&url)
        .send_empty()
        .unwrap_or_else(|e| panic!("creating bucket {name} at {url}: {e}"))
        .status();
    assert!(status.is_success(), "creating bucket {name}: {status}");
}

/// A bucket name no other test uses (S3 names: lowercase, digits, dashes).
pub(crate) fn unique_bucket(name: &str) -> String {
    let b = crate::kafka_support::unique(name)
        .to_ascii_lowercase()
        .replace('_', "-");
    create_bucket(&b);
    b
}

/// The WITH options that point a filesystem sink at the test server.
pub(crate) fn sink_options() -> String {
    format!(
        "'s3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.access.key.id' = 'test', 's3.secret.access.key' = 'test', 's3.allow.http' = 'true'",
        endpoint()
    )
}

pub(crate) fn store(bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .expect("S3 client"),
    )
}

/// Every object under `prefix`: (key, size, last modified), sorted by key.
pub(crate) async fn list(bucket: &str, prefix: &str) -> Vec<(String, u64, chrono::DateTime<chrono::Utc>)> {
    let s = store(bucket);
    let p = Path::from(prefix);
    let mut out: Vec<_> = s
        .list(Some(&p))
        .map_ok(|m| (m.location.to_string(), m.size, m.last_modified))
        .try_collect()
        .await
        .expect("listing the bucket");
    out.sort();
    out
}

pub(crate) async fn get(bucket: &str, key: &str) -> Bytes {
    store(bucket)
        .get(&Path::parse(key).expect("object key"))
        .await
        .expect("get object")
        .bytes()
        .await
        .expect("object body")
}

/// Reads every `.parquet` object under `prefix`: (key, batches). Each must be a
/// complete Parquet file (a partial object would fail here).
pub(crate) async fn read_parquet(bucket: &str, prefix: &str) -> Vec<(String, Vec<RecordBatch>)> {
    let mut out = Vec::new();
    for (key, _, _) in list(bucket, prefix).await {
        if !key.ends_with(".parquet") {
            continue;
        }
        let body = get(bucket, &key).await;
        let reader = ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap_or_else(|e| panic!("{key} is not a complete Parquet file: {e}"))
            .build()
            .expect("reader");
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        out.push((key, batches));
    }
    out
}

/// What the fault proxy does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Forward it to the real server.
    Pass,
    /// Answer 503 SlowDown without forwarding.
    Unavailable,
    /// Answer 500 InternalError without forwarding.
    InternalError,
    /// Answer 403 InvalidAccessKeyId.
    Forbidden,
}

/// A one-request-per-connection HTTP proxy in front of the S3 server that lets a
/// test decide, per request (its number, method, path and headers), to forward it
/// or fail it the way S3 does.
pub(crate) struct FaultProxy {
    pub url: String,
    pub faults: Arc<AtomicUsize>,
    pub forwarded: Arc<AtomicUsize>,
}

impl FaultProxy {
    pub(crate) async fn start(decide: impl Fn(usize, &str) -> Fault + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = endpoint().trim_start_matches("http://").to_string();
        let faults = Arc::new(AtomicUsize::new(0));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let count = Arc::new(AtomicUsize::new(0));
        let decide = Arc::new(decide);
        let (f, fw) = (Arc::clone(&faults), Arc::clone(&forwarded));
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (decide, upstream, count, f, fw) = (
                    Arc::clone(&decide),
                    upstream.clone(),
                    Arc::clone(&count),
                    Arc::clone(&f),
                    Arc::clone(&fw),
                );
                tokio::spawn(async move {
                    let _ = serve(conn, &upstream, move |head| {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let d = decide(n, head);
                        if d == Fault::Pass {
                            fw.fetch_add(1, Ordering::SeqCst)
                        } else {
                            f.fetch_add(1, Ordering::SeqCst)
                        };
                        d
                    })
                    .await;
                });
            }
        });
        Self { url, faults, forwarded }
    }
}

/// Serves one request on a client connection, then closes it.
async fn serve(mut client: TcpStream, upstream: &str, decide: impl Fn(&str) -> Fault) -> std::io::Result<()> {
    let Some((head, body)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let response = match decide(&head) {
        Fault::Pass => {
            let mut server = TcpStream::connect(upstream).await?;
            // One request per upstream connection: ask the server to close after it.
            server.write_all(force_close(&head).as_bytes()).await?;
            server.write_all(&body).await?;
            let mut resp = Vec::new();
            server.read_to_end(&mut resp).await?;
            resp
        }
        fault => {
            let (status, code) = match fault {
                Fault::Unavailable => ("503 Slow Down", "SlowDown"),
                Fault::InternalError => ("500 Internal Server Error", "InternalError"),
                _ => ("403 Forbidden", "InvalidAccessKeyId"),
            };
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
            );
            format!("HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}", xml.len()).into_bytes()
        }
    };
    client.write_all(&response).await?;
    client.shutdown().await
}

fn force_close(head: &str) -> String {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// Reads one request: its head (through the blank line) and a Content-Length body.
async fn read_request(c: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = c.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = c.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, body)))
}
