//! Where files go: a local folder or an object store bucket, built from `path`
//! and the `s3.*` / `gcs.*` / `azure.*` / `storage.*` options.
//!
//! Each cloud backend starts from its SDK's standard environment variables
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and instance credentials, exactly as
//! `object_store`'s `from_env` builders read them; options given in SQL win.
//! Secret values live only in [`StoreSpec::settings`], whose `Debug` masks them.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::api::{ConnectorError, OptionKind, OptionSpec, Options, Result, is_secret};

/// The kind of store a `path` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Local,
    S3,
    Gcs,
    Azure,
}

impl Scheme {
    fn prefix(self) -> &'static str {
        match self {
            Scheme::Local => "storage",
            Scheme::S3 => "s3",
            Scheme::Gcs => "gcs",
            Scheme::Azure => "azure",
        }
    }
    /// Whether the store is reached over the network (uploads are multipart).
    pub fn is_remote(self) -> bool {
        self != Scheme::Local
    }
}

/// A parsed `path` plus the store settings that go with it.
#[derive(Clone)]
pub struct StoreSpec {
    pub scheme: Scheme,
    /// Local folder, or the URL as written (`s3://bucket/prefix`).
    pub url: String,
    /// Bucket or container (empty for local paths).
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing '/').
    pub prefix: String,
    /// (option key, value) for the scheme's `s3.*` / `gcs.*` / `azure.*` options.
    pub settings: Vec<(&'static str, String)>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry_max: usize,
    pub retry_timeout: Duration,
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| {
                if is_secret(k) {
                    format!("{k}=****")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        f.debug_struct("StoreSpec")
            .field("url", &self.url)
            .field("settings", &settings)
            .finish_non_exhaustive()
    }
}

pub(crate) const REQUEST_TIMEOUT: OptionSpec = OptionSpec::new(
    "storage.request.timeout",
    OptionKind::Duration,
    "Object stores: give up on one HTTP request after this long (it is then retried).",
)
.default("30 seconds");
pub(crate) const CONNECT_TIMEOUT: OptionSpec = OptionSpec::new(
    "storage.connect.timeout",
    OptionKind::Duration,
    "Object stores: time allowed to open a connection.",
)
.default("5 seconds");
pub(crate) const RETRY_MAX: OptionSpec = OptionSpec::new(
    "storage.retry.max",
    OptionKind::Integer,
    "Object stores: retries of a request that failed with a 5xx, a timeout or a dropped connection.",
)
.default("10");
pub(crate) const RETRY_TIMEOUT: OptionSpec = OptionSpec::new(
    "storage.retry.timeout",
    OptionKind::Duration,
    "Object stores: stop retrying one request after this long and fail the write.",
)
.default("3 minutes");

pub(crate) const S3_REGION: OptionSpec = OptionSpec::new(
    "s3.region",
    OptionKind::String,
    "S3: region (else AWS_REGION / AWS_DEFAULT_REGION).",
);
pub(crate) const S3_ENDPOINT: OptionSpec = OptionSpec::new(
    "s3.endpoint",
    OptionKind::String,
    "S3: endpoint URL for S3-compatible stores (MinIO, moto, R2); else AWS_ENDPOINT_URL.",
);
pub(crate) const S3_ACCESS_KEY_ID: OptionSpec = OptionSpec::new(
    "s3.access.key.id",
    OptionKind::String,
    "S3: access key id (else AWS_ACCESS_KEY_ID, then web-identity, ECS or EC2 instance credentials).",
);
pub(crate) const S3_SECRET_ACCESS_KEY: OptionSpec = OptionSpec::new(
    "s3.secret.access.key",
    OptionKind::String,
    "S3: secret access key (secret; else AWS_SECRET_ACCESS_KEY).",
);
pub(crate) const S3_SESSION_TOKEN: OptionSpec = OptionSpec::new(
    "s3.session.token",
    OptionKind::String,
    "S3: session token for temporary credentials (secret; else AWS_SESSION_TOKEN).",
);
pub(crate) const S3_ALLOW_HTTP: OptionSpec =
    OptionSpec::new("s3.allow.http", OptionKind::Bool, "S3: allow a plain http:// endpoint.").default("false");
pub(crate) const S3_VIRTUAL_HOSTED: OptionSpec = OptionSpec::new(
    "s3.virtual.hosted.style",
    OptionKind::Bool,
    "S3: address the bucket as <bucket>.<endpoint> instead of <endpoint>/<bucket>.",
)
.default("false");
pub(crate) const GCS_SERVICE_ACCOUNT_PATH: OptionSpec = OptionSpec::new(
    "gcs.service.account.path",
    OptionKind::String,
    "GCS: path of a service-account JSON key file (else GOOGLE_APPLICATION_CREDENTIALS / instance metadata).",
);
pub(crate) const GCS_SERVICE_ACCOUNT_KEY: OptionSpec = OptionSpec::new(
    "gcs.service.account.key",
    OptionKind::String,
    "GCS: the service-account JSON key itself (secret).",
);
pub(crate) const AZURE_ACCOUNT: OptionSpec = OptionSpec::new(
    "azure.storage.account",
    OptionKind::String,
    "Azure: storage account name (else AZURE_STORAGE_ACCOUNT_NAME).",
);
pub(crate) const AZURE_ACCESS_KEY: OptionSpec = OptionSpec::new(
    "azure.storage.access.key",
    OptionKind::String,
    "Azure: storage account key (secret; else AZURE_STORAGE_ACCOUNT_KEY).",
);
pub(crate) const AZURE_SAS_TOKEN: OptionSpec = OptionSpec::new(
    "azure.storage.sas.token",
    OptionKind::String,
    "Azure: shared access signature query string (secret).",
);
pub(crate) const AZURE_ENDPOINT: OptionSpec = OptionSpec::new(
    "azure.endpoint",
    OptionKind::String,
    "Azure: blob endpoint URL (Azurite, sovereign clouds).",
);
pub(crate) const AZURE_USE_EMULATOR: OptionSpec = OptionSpec::new(
    "azure.use.emulator",
    OptionKind::Bool,
    "Azure: use the Azurite emulator's well-known account and endpoint.",
)
.default("false");

/// Per-cloud options: each belongs to the scheme its prefix names.
const CLOUD_OPTIONS: &[OptionSpec] = &[
    S3_REGION,
    S3_ENDPOINT,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    S3_SESSION_TOKEN,
    S3_ALLOW_HTTP,
    S3_VIRTUAL_HOSTED,
    GCS_SERVICE_ACCOUNT_PATH,
    GCS_SERVICE_ACCOUNT_KEY,
    AZURE_ACCOUNT,
    AZURE_ACCESS_KEY,
    AZURE_SAS_TOKEN,
    AZURE_ENDPOINT,
    AZURE_USE_EMULATOR,
];

/// Every storage option: timeouts and retries, then the per-cloud ones.
pub(crate) static STORE_OPTIONS: std::sync::LazyLock<Vec<OptionSpec>> = std::sync::LazyLock::new(|| {
    [REQUEST_TIMEOUT, CONNECT_TIMEOUT, RETRY_MAX, RETRY_TIMEOUT]
        .into_iter()
        .chain(CLOUD_OPTIONS.iter().copied())
        .collect()
});

/// Splits `path` into scheme, bucket and prefix and pulls the store options.
pub(crate) fn parse(path_key: &'static str, raw: &str, opts: &mut Options) -> Result<StoreSpec> {
    let bad = |msg: String| ConnectorError::option(path_key, msg);
    let (scheme, rest) = match raw.split_once("://") {
        None => (Scheme::Local, raw),
        Some(("file", rest)) => (Scheme::Local, rest),
        Some(("s3" | "s3a", rest)) => (Scheme::S3, rest),
        Some(("gs" | "gcs", rest)) => (Scheme::Gcs, rest),
        Some(("az" | "abfs" | "abfss" | "azure", rest)) => (Scheme::Azure, rest),
        Some((other, _)) => {
            return Err(bad(format!(
                "scheme '{other}://' is not supported; use a local path, file://, s3://, gs://, az:// or abfs(s)://"
            )));
        }
    };
    let (bucket, prefix) = match scheme {
        Scheme::Local => (String::new(), String::new()),
        _ => {
            let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // abfss://container@account.dfs.core.windows.net/prefix names the container before '@'.
            let bucket = authority.split_once('@').map_or(authority, |(c, _)| c);
            if bucket.is_empty() {
                return Err(bad(format!(
                    "'{raw}' names no bucket or container (expected e.g. s3://bucket/prefix)"
                )));
            }
            (bucket.to_string(), prefix.trim_matches('/').to_string())
        }
    };
    if scheme == Scheme::Local && rest.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    if !prefix.is_empty() {
        Path::parse(&prefix).map_err(|e| bad(format!("prefix '{prefix}' is not a valid object path: {e}")))?;
    }
    let mut settings = Vec::new();
    for spec in CLOUD_OPTIONS {
        // Only options actually given (a default must not trip the scheme check).
        if let Some(v) = opts.take(spec.key) {
            let family = spec.key.split('.').next().unwrap_or_default();
            if family != scheme.prefix() {
                return Err(ConnectorError::option(
                    spec.key,
                    format!(
                        "applies only to {family} paths, and path is {}",
                        if scheme == Scheme::Local {
                            "a local folder".to_string()
                        } else {
                            format!("{}://", raw.split("://").next().unwrap_or_default())
                        }
                    ),
                ));
            }
            if spec.kind == OptionKind::Bool {
                crate::api::parse_bool(&v).map_err(|e| ConnectorError::option(spec.key, e))?;
            }
            settings.push((spec.key, v));
        }
    }
    let request_timeout = opts.pull_duration(&REQUEST_TIMEOUT)?.unwrap_or(Duration::from_secs(30));
    let connect_timeout = opts.pull_duration(&CONNECT_TIMEOUT)?.unwrap_or(Duration::from_secs(5));
    let retry_max = opts.pull_u64(&RETRY_MAX)?.unwrap_or(10) as usize;
    let retry_timeout = opts.pull_duration(&RETRY_TIMEOUT)?.unwrap_or(Duration::from_secs(180));
    for (key, d) in [
        (REQUEST_TIMEOUT.key, request_timeout),
        (CONNECT_TIMEOUT.key, connect_timeout),
    ] {
        if d.is_zero() {
            return Err(ConnectorError::option(key, "must be greater than zero"));
        }
    }
    let url = match scheme {
        Scheme::Local => rest.to_string(),
        _ => raw.to_string(),
    };
    Ok(StoreSpec {
        scheme,
        url,
        bucket,
        prefix,
        settings,
        request_timeout,
        connect_timeout,
        retry_max,
        retry_timeout,
    })
}

impl StoreSpec {
    fn setting(&self, key: &str) -> Option<&str> {
        self.settings.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }
    fn flag(&self, key: &str) -> bool {
        self.setting(key)
            .and_then(|v| crate::api::parse_bool(v).ok())
            .unwrap_or(false)
    }

    fn client(&self) -> ClientOptions {
        let mut c = ClientOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.connect_timeout);
        if self.flag(S3_ALLOW_HTTP.key) {
            c = c.with_allow_http(true);
        }
        c
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: self.retry_max,
            retry_timeout: self.retry_timeout,
        }
    }

    /// An error whose text holds a secret value (an Azure SAS token travels in request
    /// URLs, which object_store puts in its errors) comes back with it masked.
    pub fn scrub(&self, e: ConnectorError) -> ConnectorError {
        let text = e.to_string();
        let secrets: Vec<&str> = self
            .settings
            .iter()
            .filter(|(k, v)| is_secret(k) && v.len() >= 4)
            .map(|(_, v)| v.as_str())
            .collect();
        if !secrets.iter().any(|s| text.contains(s)) {
            return e;
        }
        let mut masked = text;
        for s in secrets {
            masked = masked.replace(s, "****");
        }
        ConnectorError::Config(masked)
    }

    /// Where files land, for summaries and logs (never includes a secret).
    pub fn location(&self) -> String {
        self.url.clone()
    }

    /// Builds the store, rooted at the path's prefix. Local folders are created.
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        let built =
            |e: object_store::Error| ConnectorError::store(format!("configuring the store for {}", self.url), e);
        let store: Arc<dyn ObjectStore> = match self.scheme {
            Scheme::Local => {
                std::fs::create_dir_all(&self.url)
                    .map_err(|e| ConnectorError::io(format!("creating output folder {}", self.url), e))?;
                let root = std::fs::canonicalize(&self.url)
                    .map_err(|e| ConnectorError::io(format!("resolving output folder {}", self.url), e))?;
                let fs = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| ConnectorError::store(format!("opening output folder {}", root.display()), e))?
                    .with_automatic_cleanup(true);
                return Ok(Arc::new(fs));
            }
            Scheme::S3 => {
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&self.bucket)
                    .with_client_options(self.client())
                    .with_retry(self.retry());
                for (key, config) in [
                    (S3_REGION.key, AmazonS3ConfigKey::Region),
                    (S3_ENDPOINT.key, AmazonS3ConfigKey::Endpoint),
                    (S3_ACCESS_KEY_ID.key, AmazonS3ConfigKey::AccessKeyId),
                    (S3_SECRET_ACCESS_KEY.key, AmazonS3ConfigKey::SecretAccessKey),
                    (S3_SESSION_TOKEN.key, AmazonS3ConfigKey::Token),
                    (S3_VIRTUAL_HOSTED.key, AmazonS3ConfigKey::VirtualHostedStyleRequest),
                ] {
                    if let Some(v) = self.setting(key) {
                        b = b.with_config(config, v);
                    }
                }
                if self.setting(S3_ALLOW_HTTP.key).is_some() {
                    b = b.with_allow_http(self.flag(S3_ALLOW_HTTP.key));
                }
                Arc::new(b.build().map_err(built)?)
            }
            Scheme::Gcs => {
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&self.bucket)
                    .with_client_options(self.client())
                    .with_retry(self.retry());
                for (key, config) in [
                    (GCS_SERVICE_ACCOUNT_PATH.key, GoogleConfigKey::ServiceAccount),
                    (GCS_SERVICE_ACCOUNT_KEY.key, GoogleConfigKey::ServiceAccountKey),
                ] {
                    if let Some(v) = self.setting(key) {
                        b = b.with_config(config, v);
                    }
                }
                Arc::new(b.build().map_err(built)?)
            }
            Scheme::Azure => {
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_client_options(self.client())
                    .with_retry(self.retry());
                b = if self.url.contains('@') {
                    b.with_url(self.url.as_str())
                } else {
                    b.with_container_name(&self.bucket)
                };
                for (key, config) in [
                    (AZURE_ACCOUNT.key, AzureConfigKey::AccountName),
                    (AZURE_ACCESS_KEY.key, AzureConfigKey::AccessKey),
                    (AZURE_SAS_TOKEN.key, AzureConfigKey::SasKey),
                    (AZURE_ENDPOINT.key, AzureConfigKey::Endpoint),
                    (AZURE_USE_EMULATOR.key, AzureConfigKey::UseEmulator),
                ] {
                    if let Some(v) = self.setting(key) {
                        b = b.with_config(config, v);
                    }
                }
                Arc::new(b.build().map_err(built)?)
            }
        };
        Ok(if self.prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, self.prefix.as_str()))
        })
    }

    /// Proves the bucket exists and the credentials can list it, so a typo or a
    /// revoked key fails the pipeline at start with the store's own reason.
    pub async fn check(&self, store: &Arc<dyn ObjectStore>) -> Result<()> {
        if !self.scheme.is_remote() {
            return Ok(());
        }
        store
            .list_with_delimiter(None)
            .await
            .map(|_| ())
            .map_err(|e| ConnectorError::store(format!("checking access to {}", self.url), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, extra: &[(&str, &str)]) -> Result<StoreSpec> {
        let mut opts = Options::new(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let s = parse("path", path, &mut opts)?;
        assert!(opts.is_empty(), "options left over: {opts:?}");
        Ok(s)
    }

    #[test]
    fn schemes_split_into_bucket_and_prefix() {
        let s = spec("s3://lake/raw/orders/", &[("s3.region", "eu-west-1")]).unwrap();
        assert_eq!(
            (s.scheme, s.bucket.as_str(), s.prefix.as_str()),
            (Scheme::S3, "lake", "raw/orders")
        );
        let g = spec("gs://lake", &[]).unwrap();
        assert_eq!(
            (g.scheme, g.bucket.as_str(), g.prefix.as_str()),
            (Scheme::Gcs, "lake", "")
        );
        let a = spec("abfss://events@acct.dfs.core.windows.net/x/y", &[]).unwrap();
        assert_eq!(
            (a.scheme, a.bucket.as_str(), a.prefix.as_str()),
            (Scheme::Azure, "events", "x/y")
        );
        let l = spec("file:///tmp/out", &[]).unwrap();
        assert_eq!((l.scheme, l.url.as_str()), (Scheme::Local, "/tmp/out"));
    }

    #[test]
    fn options_of_another_cloud_are_refused_by_name() {
        let e = spec("s3://lake/x", &[("gcs.service.account.path", "/k.json")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gcs.service.account.path") && e.contains("applies only to gcs paths"),
            "{e}"
        );
        let e = spec("hdfs://nn/x", &[]).unwrap_err().to_string();
        assert!(e.contains("'hdfs://' is not supported"), "{e}");
        let e = spec("s3:///x", &[]).unwrap_err().to_string();
        assert!(e.contains("names no bucket"), "{e}");
    }

    #[test]
    fn secrets_are_masked_in_debug_output() {
        let s = spec(
            "s3://lake",
            &[
                ("s3.secret.access.key", "hunter2"),
                ("s3.session.token", "tok3n"),
                ("s3.region", "us-east-1"),
            ],
        )
        .unwrap();
        let d = format!("{s:?}");
        assert!(
            !d.contains("hunter2") && !d.contains("tok3n") && d.contains("us-east-1"),
            "{d}"
        );
        let a = spec(
            "az://c/p",
            &[("azure.storage.access.key", "k3y"), ("azure.storage.sas.token", "sv=1")],
        )
        .unwrap();
        let d = format!("{a:?}");
        assert!(!d.contains("k3y") && !d.contains("sv=1"), "{d}");
    }

    #[test]
    fn secret_values_are_scrubbed_from_errors() {
        let s = spec("az://c/p", &[("azure.storage.sas.token", "sv=2024&sig=abcd")]).unwrap();
        let e = s
            .scrub(ConnectorError::Config(
                "GET https://acct.blob.core.windows.net/c/p?sv=2024&sig=abcd failed".into(),
            ))
            .to_string();
        assert!(!e.contains("sig=abcd") && e.contains("****"), "{e}");
        let plain = s.scrub(ConnectorError::Config("nothing secret".into())).to_string();
        assert!(plain.contains("nothing secret"));
    }

    #[test]
    fn every_cloud_builds_from_options_without_network() {
        for (path, extra) in [
            (
                "s3://lake/p",
                vec![
                    ("s3.region", "us-east-1"),
                    ("s3.endpoint", "http://127.0.0.1:1"),
                    ("s3.allow.http", "true"),
                    ("s3.access.key.id", "a"),
                    ("s3.secret.access.key", "b"),
                ],
            ),
            (
                "az://container/p",
                vec![("azure.storage.account", "acct"), ("azure.storage.access.key", "a2V5")],
            ),
            (
                "abfss://container@acct.dfs.core.windows.net/p",
                vec![("azure.storage.access.key", "a2V5")],
            ),
            ("az://container/p", vec![("azure.use.emulator", "true")]),
        ] {
            let s = spec(path, &extra).unwrap();
            s.build().unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        let key = r#"{"type":"service_account","client_email":"q@p.iam.gserviceaccount.com","private_key_id":"1","private_key":"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}"#;
        // A malformed key is reported when building (never echoed).
        let s = spec("gs://lake/p", &[("gcs.service.account.key", key)]).unwrap();
        if let Err(e) = s.build() {
            assert!(!e.to_string().contains("MIIB"), "{e}");
        }
        let e = spec("s3://lake/p", &[("s3.allow.http", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("s3.allow.http"), "{e}");
    }
}
