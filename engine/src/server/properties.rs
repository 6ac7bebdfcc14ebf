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
    pub defaults: WorkerDefaults,
    /// Who may call the REST API (`None`: anyone), see [`super::auth`].
    pub credentials: Option<super::auth::Credentials>,
    /// `access.control.allow.*`, see [`super::cors`].
    pub cors: Option<super::cors::Cors>,
    /// One line per key Quiver does not use, naming it.
    pub warnings: Vec<String>,
}

/// Why some keys are ignored, for the warning.
const IGNORED_BECAUSE: [(&str, &str); 6] = [
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
            }
            "bootstrap.servers" => config.defaults.bootstrap_servers = Some(value.to_string()),
            "rest.extension.classes" | super::auth::USERS_FILE_KEY | super::auth::TOKENS_FILE_KEY => {}
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
