//! Kafka Connect's worker properties (`connect-standalone.properties`) and
//! connector files, read as Kafka Connect reads them, so an existing standalone
//! command line keeps working:
//! `quiver server --worker-config worker.properties connector1.properties …`.
//!
//! Keys Quiver uses: `listeners` (or the older `rest.host.name` / `rest.port`),
//! `auto.restart.enabled` and `auto.restart.max.restarts` (the default for every
//! connector), `config.providers*`,
//! `rest.advertised.host.name`, `rest.advertised.port`, `bootstrap.servers`,
//! `rest.extension.classes` and `quiver.rest.auth.*` (REST authentication, see
//! [`super::auth`]), `access.control.allow.*` (CORS, [`super::cors`]), and the
//! converters (`key.converter`, `value.converter` and their sub-keys such as
//! `value.converter.schemas.enable`), which every connector inherits unless it sets
//! them. Every other key is named in a warning at start and never fatal: real files
//! carry settings (`plugin.path`, `offset.storage.file.filename`, …) that mean
//! nothing to a worker with built-in connectors and a redb state store.

use std::collections::BTreeMap;
use std::path::Path;

use crate::submit::{SQL_CLASS, SQL_KEY, WorkerDefaults};

/// The worker settings read from a properties file.
#[derive(Debug, Clone, Default)]
pub struct WorkerConfig {
    /// `host:port` to listen on, from `listeners` or `rest.host.name`/`rest.port`.
    pub listen: Option<String>,
    /// `host:port` of the `https://` entry of `listeners`, with its TLS settings.
    pub https: Option<(String, super::tls::TlsSettings)>,
    pub advertised_host: Option<String>,
    pub advertised_port: Option<u16>,
    /// `rest.advertised.listener`: `http` or `https`, how other workers reach this one.
    pub advertised_listener: Option<String>,
    pub defaults: WorkerDefaults,
    /// Who may call the REST API (`None`: anyone), see [`super::auth`].
    pub credentials: Option<super::auth::Credentials>,
    /// `access.control.allow.*`, see [`super::cors`].
    pub cors: Option<super::cors::Cors>,
    /// With `group.id`: a distributed worker, its state in Kafka (see [`crate::cluster`]).
    pub distributed: Option<Distributed>,
    /// One line per key Quiver does not use, naming it.
    pub warnings: Vec<String>,
}

/// A distributed worker's settings: Kafka Connect's `connect-distributed.properties` keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Distributed {
    pub group_id: String,
    pub topics: crate::store::kafka::KafkaTopics,
    /// `session.timeout.ms`: how long a silent worker keeps its work.
    pub session_timeout_ms: u32,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u32,
    /// `rebalance.timeout.ms`: how long a worker may take to hand its work over.
    pub rebalance_timeout_ms: u32,
}

/// Defaults a user would call fast (Kafka Connect's are 10 s session, 3 s heartbeat
/// and a 5 minute `scheduled.rebalance.max.delay.ms`): a killed worker's work moves
/// within the session timeout plus a rebalance, a few seconds.
pub const SESSION_TIMEOUT_MS: u32 = 3_000;
pub const HEARTBEAT_INTERVAL_MS: u32 = 500;
pub const REBALANCE_TIMEOUT_MS: u32 = 60_000;

/// Keys of a distributed worker (read by [`distributed`]).
const DISTRIBUTED_KEYS: [&str; 13] = [
    "group.id",
    "config.storage.topic",
    "config.storage.replication.factor",
    "offset.storage.topic",
    "offset.storage.partitions",
    "offset.storage.replication.factor",
    "status.storage.topic",
    "status.storage.partitions",
    "status.storage.replication.factor",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "rebalance.timeout.ms",
    "security.protocol",
];

/// The distributed settings, if `group.id` is set: the three topic names are
/// required, as in Kafka Connect; partitions and replication default as there.
fn distributed(props: &BTreeMap<String, String>) -> Result<Option<Distributed>, String> {
    let Some(group_id) = props.get("group.id").map(|g| g.trim().to_string()) else {
        return Ok(None);
    };
    if group_id.is_empty() {
        return Err("group.id: must not be empty".into());
    }
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let topic = |k: &str| {
        get(k)
            .map(str::to_string)
            .ok_or_else(|| format!("{k}: required for a distributed worker (group.id is set)"))
    };
    let number = |k: &str, default: i64, min: i64| -> Result<i64, String> {
        match get(k) {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= min || (min == 1 && n == -1 && k.ends_with("replication.factor")) => Ok(n),
                _ => Err(format!("{k}: '{v}' is not a number of at least {min}")),
            },
        }
    };
    let bootstrap = get("bootstrap.servers")
        .ok_or("bootstrap.servers: required for a distributed worker (group.id is set)")?
        .to_string();
    let mut client = BTreeMap::new();
    for (k, v) in props {
        if k == "sasl.jaas.config" {
            let (user, password) = jaas_credentials(v)?;
            client.insert("sasl.username".to_string(), user);
            client.insert("sasl.password".to_string(), password);
        } else if k == "security.protocol" || k.starts_with("sasl.") {
            client.insert(k.clone(), v.trim().to_string());
        }
    }
    let ms = |k: &str, default: u32| number(k, i64::from(default), 1).map(|n| n.min(i64::from(u32::MAX)) as u32);
    let d = Distributed {
        group_id,
        topics: crate::store::kafka::KafkaTopics {
            bootstrap_servers: bootstrap,
            config_topic: topic("config.storage.topic")?,
            config_replication: number("config.storage.replication.factor", 3, 1)? as i32,
            offsets_topic: topic("offset.storage.topic")?,
            offsets_partitions: number("offset.storage.partitions", 25, 1)? as i32,
            offsets_replication: number("offset.storage.replication.factor", 3, 1)? as i32,
            status_topic: topic("status.storage.topic")?,
            status_partitions: number("status.storage.partitions", 5, 1)? as i32,
            status_replication: number("status.storage.replication.factor", 3, 1)? as i32,
            client,
        },
        session_timeout_ms: ms("session.timeout.ms", SESSION_TIMEOUT_MS)?,
        heartbeat_interval_ms: ms("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS)?,
        rebalance_timeout_ms: ms("rebalance.timeout.ms", REBALANCE_TIMEOUT_MS)?,
    };
    let names = [&d.topics.config_topic, &d.topics.offsets_topic, &d.topics.status_topic];
    if names[0] == names[1] || names[0] == names[2] || names[1] == names[2] {
        return Err(format!(
            "config.storage.topic, offset.storage.topic and status.storage.topic must be three different topics (got {}, {}, {})",
            names[0], names[1], names[2]
        ));
    }
    Ok(Some(d))
}

/// The user and password of a Java client's `sasl.jaas.config` (PLAIN or SCRAM
/// login module), as librdkafka takes them (`sasl.username`, `sasl.password`).
fn jaas_credentials(jaas: &str) -> Result<(String, String), String> {
    let field = |name: &str| {
        let re = regex::Regex::new(&format!(r#"\b{name}\s*=\s*"([^"]*)""#)).ok()?;
        re.captures(jaas).map(|c| c[1].to_string())
    };
    match (field("username"), field("password")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(
            "sasl.jaas.config: only a login module with username=\"…\" password=\"…\" (PLAIN, SCRAM) is understood; or give sasl.username and sasl.password"
                .into(),
        ),
    }
}

/// Why some keys are ignored, for the warning.
const IGNORED_BECAUSE: [(&str, &str); 7] = [
    (
        "scheduled.rebalance.max.delay.ms",
        "a departed worker's work moves once session.timeout.ms has passed",
    ),
    ("plugin.path", "connectors are built into the quiver binary"),
    (
        "offset.storage.file.filename",
        "offsets live in the state folder's store (--state-dir)",
    ),
    (
        "offset.flush.interval.ms",
        "offsets are committed as soon as the sink reports data durable",
    ),
    ("internal.key.converter", "removed in Kafka Connect 3.0"),
    ("internal.value.converter", "removed in Kafka Connect 3.0"),
    ("header.converter", "headers are read as the sources' formats define"),
];

/// Reads Java `.properties` text: `key=value`, `key: value` or `key value`, `#`
/// and `!` comments, lines continued with a trailing `\`, and the usual escapes.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let (k, v) = split_entry(&logical);
        out.insert(unescape(&k), unescape(v.trim_start()));
        logical.clear();
    }
    if !logical.is_empty() {
        let (k, v) = split_entry(&logical);
        out.insert(unescape(&k), unescape(v.trim_start()));
    }
    out
}

/// Splits at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (String, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (line[..i].trim_end().to_string(), &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return (line[..i].to_string(), rest);
            }
            _ => {}
        }
    }
    (line.to_string(), "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Reads a worker's properties; an unusable value of a key Quiver uses is an error
/// naming it.
pub fn worker_config(props: &BTreeMap<String, String>) -> Result<WorkerConfig, String> {
    let mut config = WorkerConfig::default();
    let (providers, provider_keys) = crate::providers::ConfigProviders::from_properties(props)?;
    config.defaults.providers = providers;
    let port = |key: &str, v: &str| -> Result<u16, String> {
        v.trim()
            .parse::<u16>()
            .map_err(|_| format!("{key}: '{v}' is not a port number"))
    };
    for (key, value) in props {
        let value = value.trim();
        match key.as_str() {
            "listeners" => {
                let (http, https) = listen_addresses(value)?;
                config.listen = http;
                if let Some(addr) = https {
                    config.https = Some((addr, super::tls::TlsSettings::from_worker(props)?));
                }
            }
            k if super::tls::is_tls_key(k) => {}
            "rest.host.name" | "rest.port" => {}
            "rest.advertised.host.name" => config.advertised_host = Some(value.to_string()),
            "rest.advertised.port" => config.advertised_port = Some(port(key, value)?),
            "rest.advertised.listener" => {
                if !(value.eq_ignore_ascii_case("http") || value.eq_ignore_ascii_case("https")) {
                    return Err(format!("{key}: '{value}' is not http or https"));
                }
                config.advertised_listener = Some(value.to_ascii_lowercase());
            }
            "bootstrap.servers" => config.defaults.bootstrap_servers = Some(value.to_string()),
            "rest.extension.classes" | super::auth::USERS_FILE_KEY | super::auth::TOKENS_FILE_KEY => {}
            k if DISTRIBUTED_KEYS.contains(&k) || k.starts_with("sasl.") => {}
            "access.control.allow.origin" | "access.control.allow.methods" => {}
            crate::submit::RESTART_ENABLED | crate::submit::RESTART_MAX => {}
            k if k.starts_with("key.converter") || k.starts_with("value.converter") => {
                config
                    .defaults
                    .connector_defaults
                    .insert(k.to_string(), value.to_string());
            }
            k if provider_keys.iter().any(|p| p == k) => {}
            k => {
                let why = IGNORED_BECAUSE
                    .iter()
                    .find(|(ik, _)| *ik == k)
                    .map_or("Quiver has no use for it", |(_, why)| why);
                config.warnings.push(format!("worker property '{k}' is ignored: {why}"));
            }
        }
    }
    config.cors = super::cors::Cors::from_worker(props)?;
    config.distributed = distributed(props)?;
    config.credentials = super::auth::Credentials::from_worker(props, std::env::var("KAFKA_OPTS").ok().as_deref())?;
    config.defaults.restart = crate::submit::RestartPolicy::read(props, crate::submit::RestartPolicy::default())
        .map_err(|e| e.to_string())?;
    if config.listen.is_none() && (props.contains_key("rest.host.name") || props.contains_key("rest.port")) {
        let host = props.get("rest.host.name").map_or("127.0.0.1", |h| h.trim());
        let p = match props.get("rest.port") {
            Some(v) => port("rest.port", v)?,
            None => 8083,
        };
        config.listen = Some(format!("{host}:{p}"));
    }
    Ok(config)
}

/// The first `http://host:port` and the first `https://host:port` of a
/// `listeners` list (an empty host means every interface, as in Kafka Connect).
fn listen_addresses(listeners: &str) -> Result<(Option<String>, Option<String>), String> {
    let (mut http, mut https) = (None, None);
    for l in listeners.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        let (scheme, rest) = l
            .split_once("://")
            .ok_or_else(|| format!("listeners: '{l}' is not of the form http://host:port"))?;
        let slot = if scheme.eq_ignore_ascii_case("https") {
            &mut https
        } else if scheme.eq_ignore_ascii_case("http") {
            &mut http
        } else {
            return Err(format!("listeners: '{l}': the scheme must be http or https"));
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("listeners: '{l}' has no port"))?;
        let port: u16 = port
            .trim_end_matches('/')
            .parse()
            .map_err(|_| format!("listeners: '{l}': '{port}' is not a port number"))?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        if slot.is_none() {
            *slot = Some(format!("{host}:{port}"));
        }
    }
    if http.is_none() && https.is_none() {
        return Err("listeners: no listener given".into());
    }
    Ok((http, https))
}

/// A file's text with its display name and stem (a connector's default name).
pub(crate) fn read_named(path: &Path) -> Result<(String, String, String), String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((file, text, stem))
}

/// A connector file named on `quiver server`'s command line: a Kafka Connect
/// `.properties` or JSON file (read as `quiver translate` reads it), or a Quiver
/// `.sql` file; a file without a `name` is named after itself.
pub fn connector_file(path: &Path) -> Result<(String, BTreeMap<String, String>), String> {
    let (file, text, stem) = read_named(path)?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "sql" => Ok((
            stem,
            BTreeMap::from([
                ("connector.class".to_string(), SQL_CLASS.to_string()),
                (SQL_KEY.to_string(), text),
            ]),
        )),
        "json" => {
            let config =
                quiver_sql::connect::ConnectorConfig::from_json(&text, &stem).map_err(|e| format!("{file}: {e}"))?;
            Ok((config.name.clone(), config.values().clone()))
        }
        _ => {
            let props = parse_properties(&text);
            let name = props.get("name").cloned().unwrap_or(stem);
            Ok((name, props))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_read_as_java_reads_them() {
        let p = parse_properties(
            "# comment\n! also\nbootstrap.servers=localhost:9092\nkey.converter : org.Json\nplugin.path /usr/share/java\nlong=a,\\\n    b\nesc=tab\\there\\u0041\n",
        );
        assert_eq!(p["bootstrap.servers"], "localhost:9092");
        assert_eq!(p["key.converter"], "org.Json");
        assert_eq!(p["plugin.path"], "/usr/share/java");
        assert_eq!(p["long"], "a,b");
        assert_eq!(p["esc"], "tab\thereA");
    }

    #[test]
    fn a_distributed_worker_reads_kafka_connects_keys() {
        let text = "bootstrap.servers=k:9092\ngroup.id=quiver-cluster\nconfig.storage.topic=cfg\n\
                    offset.storage.topic=off\nstatus.storage.topic=st\noffset.storage.partitions=7\n\
                    config.storage.replication.factor=1\nsession.timeout.ms=6000\n\
                    security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nscheduled.rebalance.max.delay.ms=300000\n\
                    sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"quiver\" password=\"s3cret\";\n";
        let c = worker_config(&parse_properties(text)).unwrap();
        let d = c.distributed.unwrap();
        assert_eq!(d.group_id, "quiver-cluster");
        assert_eq!(
            (
                d.topics.config_topic.as_str(),
                d.topics.offsets_topic.as_str(),
                d.topics.status_topic.as_str()
            ),
            ("cfg", "off", "st")
        );
        assert_eq!((d.topics.offsets_partitions, d.topics.status_partitions), (7, 5));
        assert_eq!((d.topics.config_replication, d.topics.offsets_replication), (1, 3));
        assert_eq!(
            (d.session_timeout_ms, d.heartbeat_interval_ms),
            (6000, HEARTBEAT_INTERVAL_MS)
        );
        assert_eq!(d.topics.client["sasl.mechanism"], "PLAIN");
        assert_eq!(
            (
                d.topics.client["sasl.username"].as_str(),
                d.topics.client["sasl.password"].as_str()
            ),
            ("quiver", "s3cret"),
            "a Java client's JAAS line becomes librdkafka's keys"
        );
        assert!(!d.topics.client.contains_key("sasl.jaas.config"));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("scheduled.rebalance.max.delay.ms"));

        let missing = worker_config(&parse_properties("bootstrap.servers=k:9092\ngroup.id=g\n")).unwrap_err();
        assert!(missing.contains("config.storage.topic: required"), "{missing}");
        let same = text.replace("status.storage.topic=st", "status.storage.topic=cfg");
        assert!(
            worker_config(&parse_properties(&same))
                .unwrap_err()
                .contains("three different topics")
        );
        let bad = text.replace("offset.storage.partitions=7", "offset.storage.partitions=0");
        assert!(
            worker_config(&parse_properties(&bad))
                .unwrap_err()
                .contains("offset.storage.partitions")
        );
        assert!(
            worker_config(&parse_properties("group.id=g\n"))
                .unwrap_err()
                .contains("bootstrap.servers")
        );
        assert!(
            worker_config(&parse_properties("plugin.path=/x\n"))
                .unwrap()
                .distributed
                .is_none()
        );
    }

    #[test]
    fn the_worker_reads_what_it_uses_and_names_the_rest() {
        let p = parse_properties(
            "listeners=http://:8084\nrest.advertised.host.name=w1\nrest.advertised.port=9000\nbootstrap.servers=k:9092\nvalue.converter.schemas.enable=false\nplugin.path=/x\ncolour=red\n",
        );
        let c = worker_config(&p).unwrap();
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:8084"));
        assert_eq!(c.advertised_host.as_deref(), Some("w1"));
        assert_eq!(c.advertised_port, Some(9000));
        assert_eq!(c.defaults.bootstrap_servers.as_deref(), Some("k:9092"));
        assert_eq!(c.defaults.connector_defaults["value.converter.schemas.enable"], "false");
        assert_eq!(c.warnings.len(), 2);
        assert!(c.warnings.iter().any(|w| w.contains("'colour'")));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("'plugin.path'") && w.contains("built into"))
        );

        let old = worker_config(&parse_properties("rest.port=8090\n")).unwrap();
        assert_eq!(old.listen.as_deref(), Some("127.0.0.1:8090"));
        assert!(
            worker_config(&parse_properties("rest.advertised.port=x\n"))
                .unwrap_err()
                .contains("rest.advertised.port")
        );
        assert!(
            worker_config(&parse_properties("listeners=https://:8443\n"))
                .unwrap_err()
                .contains("https")
        );
    }

    #[test]
    fn the_example_worker_properties_read_with_one_warning() {
        let text = include_str!("../../../examples/connect-standalone.properties");
        let c = worker_config(&parse_properties(text)).unwrap();
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:8083"));
        assert_eq!(c.defaults.bootstrap_servers.as_deref(), Some("localhost:9092"));
        assert_eq!(c.defaults.connector_defaults.len(), 3);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }
}
