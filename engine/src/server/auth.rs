//! Authentication of the REST API, configured as a Kafka Connect deployment
//! configures `BasicAuthSecurityRestExtension`, so its files work unchanged.
//!
//! Where credentials come from (worker properties):
//! - `rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension`:
//!   the JAAS file named by `-Djava.security.auth.login.config=…` in the
//!   `KAFKA_OPTS` environment variable (read for that setting alone); its
//!   `KafkaConnect { … PropertyFileLoginModule required file="…"; }` entry names a
//!   properties file of `user: password` lines.
//! - `quiver.rest.auth.users.file`: that users file, named directly.
//! - `quiver.rest.auth.tokens.file`: bearer tokens, one per line (`#` comments).
//!
//! Design notes:
//! - Every request but `GET /health` (a readiness probe) needs credentials: HTTP
//!   basic, or `Authorization: Bearer <token>`. A refusal is 401 with Kafka
//!   Connect's error body (its message, "User cannot access the resource.") and a
//!   `WWW-Authenticate` header naming the schemes configured.
//! - Passwords and tokens are compared in constant time (`subtle`), and an unknown
//!   user costs the same comparison as a known one, so timing tells neither.
//! - A refused request is logged at warn with the user name (never the password
//!   or token) and the path.
//! - An empty users file lets every request through, as Kafka Connect's
//!   `PropertyFileLoginModule` does; the server warns about it at start.
//! - The files are read once, at start: changing them takes a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tracing::warn;

use super::ApiError;
use super::properties::parse_properties;

/// Kafka Connect's basic-auth REST extension.
pub const BASIC_AUTH_EXTENSION: &str =
    "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension";
/// The worker key naming a users file directly.
pub const USERS_FILE_KEY: &str = "quiver.rest.auth.users.file";
/// The worker key naming a file of bearer tokens.
pub const TOKENS_FILE_KEY: &str = "quiver.rest.auth.tokens.file";
/// The JVM option Kafka Connect reads the JAAS file from.
const JAAS_OPTION: &str = "-Djava.security.auth.login.config=";
/// The JAAS entry Kafka Connect's extension logs in with.
const JAAS_ENTRY: &str = "KafkaConnect";
/// What Kafka Connect answers a request that fails authentication.
const REFUSED: &str = "User cannot access the resource.";

/// Who may call the API.
#[derive(Clone, Default)]
pub struct Credentials {
    /// User → password (basic auth); `None` when basic auth is not configured.
    users: Option<BTreeMap<String, String>>,
    tokens: Vec<String>,
    /// Where they came from, for the start-up line.
    pub sources: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("users", &self.users.as_ref().map(|u| u.keys().collect::<Vec<_>>()))
            .field("tokens", &self.tokens.len())
            .field("sources", &self.sources)
            .finish()
    }
}

impl Credentials {
    /// Reads the credentials the worker properties configure; `Ok(None)` when they
    /// configure none (the API is open, as Kafka Connect's is by default).
    /// `kafka_opts` is the `KAFKA_OPTS` environment variable.
    pub fn from_worker(props: &BTreeMap<String, String>, kafka_opts: Option<&str>) -> Result<Option<Self>, String> {
        let mut creds = Credentials::default();
        if let Some(classes) = props.get("rest.extension.classes") {
            for class in classes.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if class != BASIC_AUTH_EXTENSION {
                    return Err(format!(
                        "rest.extension.classes: '{class}' is not built into Quiver; the one REST extension it has is {BASIC_AUTH_EXTENSION}"
                    ));
                }
                let jaas = jaas_path(kafka_opts)?;
                let users = users_file_of_jaas(&jaas)?;
                creds.add_users(&users)?;
                creds
                    .sources
                    .push(format!("users of {} (JAAS {})", users.display(), jaas.display()));
            }
        }
        if let Some(file) = props.get(USERS_FILE_KEY).map(|f| f.trim()).filter(|f| !f.is_empty()) {
            creds.add_users(Path::new(file))?;
            creds.sources.push(format!("users of {file}"));
        }
        if let Some(file) = props.get(TOKENS_FILE_KEY).map(|f| f.trim()).filter(|f| !f.is_empty()) {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{TOKENS_FILE_KEY}: cannot read {file}: {e}"))?;
            let before = creds.tokens.len();
            creds.tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
            if creds.tokens.len() == before {
                return Err(format!("{TOKENS_FILE_KEY}: {file} holds no token"));
            }
            creds.sources.push(format!("bearer tokens of {file}"));
        }
        Ok((!creds.sources.is_empty()).then_some(creds))
    }

    fn add_users(&mut self, file: &Path) -> Result<(), String> {
        let text =
            std::fs::read_to_string(file).map_err(|e| format!("cannot read the users file {}: {e}", file.display()))?;
        self.users
            .get_or_insert_with(BTreeMap::new)
            .extend(parse_properties(&text));
        Ok(())
    }

    /// Whether every request passes: basic auth configured with no user at all and
    /// no tokens (Kafka Connect lets everything through then).
    pub fn lets_everyone_in(&self) -> bool {
        self.users.as_ref().is_some_and(BTreeMap::is_empty) && self.tokens.is_empty()
    }

    /// Checks an `Authorization` header: `Ok(user)` (the token's holder is
    /// "token"), or `Err(who)` naming the user that failed, for the log.
    fn check(&self, authorization: Option<&str>) -> Result<String, String> {
        if self.lets_everyone_in() {
            return Ok(String::new());
        }
        let Some(value) = authorization.map(str::trim) else {
            return Err("no credentials".into());
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(users) = &self.users else {
                return Err("basic credentials, which this worker does not take".into());
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| "malformed basic credentials".to_string())?;
            let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
            // An unknown user is compared against a stand-in, so it takes as long.
            let (known, expected) = match users.get(user) {
                Some(p) => (true, p.as_str()),
                None => (false, "\u{0}not a password"),
            };
            if known & bool::from(password.as_bytes().ct_eq(expected.as_bytes())) {
                Ok(user.to_string())
            } else {
                Err(format!("user '{user}'"))
            }
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim().as_bytes();
            let mut ok = subtle::Choice::from(0);
            for t in &self.tokens {
                ok |= token.ct_eq(t.as_bytes());
            }
            if bool::from(ok) && !self.tokens.is_empty() {
                Ok("token".into())
            } else {
                Err("a bearer token that is not valid".into())
            }
        } else {
            Err(format!("the unsupported scheme '{scheme}'"))
        }
    }

    /// The `WWW-Authenticate` challenge for the schemes configured.
    fn challenge(&self) -> String {
        let mut schemes = Vec::new();
        if self.users.is_some() {
            schemes.push("Basic realm=\"quiver\", charset=\"UTF-8\"");
        }
        if !self.tokens.is_empty() {
            schemes.push("Bearer realm=\"quiver\"");
        }
        schemes.join(", ")
    }
}

/// The JAAS file `KAFKA_OPTS` names.
fn jaas_path(kafka_opts: Option<&str>) -> Result<PathBuf, String> {
    let opts = kafka_opts.unwrap_or("");
    let Some(at) = opts.find(JAAS_OPTION) else {
        return Err(format!(
            "rest.extension.classes names {BASIC_AUTH_EXTENSION}, which reads the JAAS file named by {JAAS_OPTION}<path> in the KAFKA_OPTS environment variable, and KAFKA_OPTS has none"
        ));
    };
    let rest = &opts[at + JAAS_OPTION.len()..];
    let path = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or(""),
        None => rest.split_whitespace().next().unwrap_or(""),
    };
    if path.is_empty() {
        return Err(format!("KAFKA_OPTS: {JAAS_OPTION} names no file"));
    }
    Ok(PathBuf::from(path))
}

/// The users file of the `KafkaConnect` entry of a JAAS file: its
/// `PropertyFileLoginModule`'s `file` option.
fn users_file_of_jaas(jaas: &Path) -> Result<PathBuf, String> {
    let text =
        std::fs::read_to_string(jaas).map_err(|e| format!("cannot read the JAAS file {}: {e}", jaas.display()))?;
    let text = strip_comments(&text);
    let entry = find_entry(&text, JAAS_ENTRY).ok_or_else(|| {
        format!(
            "the JAAS file {} has no '{JAAS_ENTRY} {{ … }};' entry, which Kafka Connect's basic auth logs in with",
            jaas.display()
        )
    })?;
    if !entry.contains("PropertyFileLoginModule") {
        return Err(format!(
            "the {JAAS_ENTRY} entry of {} does not use org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule, the one login module Quiver reads",
            jaas.display()
        ));
    }
    let file = option_value(entry, "file").ok_or_else(|| {
        format!(
            "the {JAAS_ENTRY} entry of {} names no users file (file=\"/path/users.properties\")",
            jaas.display()
        )
    })?;
    Ok(PathBuf::from(file))
}

/// JAAS files take `//` and `/* */` comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
            out.push('\n');
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix('"') {
            // A quoted value is copied whole, so `//` inside a path survives.
            let end = r.find('"').map_or(r.len(), |i| i + 1);
            out.push('"');
            out.push_str(&r[..end]);
            rest = &r[end..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The body of `name { … };` in a JAAS file.
fn find_entry<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = text[from..].find(name) {
        let at = from + i;
        let before_ok = at == 0 || text[..at].ends_with(|c: char| c.is_whitespace() || c == ';' || c == '}');
        let after = text[at + name.len()..].trim_start();
        if before_ok && let Some(body) = after.strip_prefix('{') {
            return body.split_once('}').map(|(b, _)| b);
        }
        from = at + name.len();
    }
    None
}

/// A login module option's value: `key="value"` or `key=value`.
fn option_value(entry: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = entry[from..].find(key) {
        let at = from + i;
        let before_ok = at == 0 || entry[..at].ends_with(char::is_whitespace);
        let after = entry[at + key.len()..].trim_start();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let value = match v.strip_prefix('"') {
                Some(q) => q.split('"').next().unwrap_or(""),
                None => v.split(|c: char| c.is_whitespace() || c == ';').next().unwrap_or(""),
            };
            return (!value.is_empty()).then(|| value.to_string());
        }
        from = at + key.len();
    }
    None
}

/// The middleware: lets `/health` and authenticated requests through.
pub async fn require(State(creds): State<Arc<Credentials>>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match creds.check(authorization) {
        Ok(_) => next.run(request).await,
        Err(who) => {
            warn!(path = %request.uri().path(), method = %request.method(), credentials = %who, "REST request refused: authentication failed");
            let mut response = ApiError::new(StatusCode::UNAUTHORIZED, REFUSED).into_response();
            if let Ok(v) = HeaderValue::from_str(&creds.challenge()) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn reads_kafka_connects_jaas_file_and_checks_users_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.properties");
        std::fs::write(&users, "# who may call\nadmin: s3cret\nci=p:w\n").unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            format!(
                "// the worker's login\nKafkaConnect {{\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n  file=\"{}\";\n}};\n",
                users.display()
            ),
        )
        .unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "# ci\ntok-123\n").unwrap();
        let props = BTreeMap::from([
            ("rest.extension.classes".to_string(), BASIC_AUTH_EXTENSION.to_string()),
            (TOKENS_FILE_KEY.to_string(), tokens.display().to_string()),
        ]);
        let opts = format!("-Xmx1G -Djava.security.auth.login.config={} -Dx=y", jaas.display());
        let creds = Credentials::from_worker(&props, Some(&opts)).unwrap().unwrap();
        assert_eq!(creds.check(Some(&basic("admin", "s3cret"))), Ok("admin".into()));
        assert_eq!(
            creds.check(Some(&basic("ci", "p:w"))),
            Ok("ci".into()),
            "a colon in the password"
        );
        assert_eq!(creds.check(Some(&basic("admin", "wrong"))), Err("user 'admin'".into()));
        assert_eq!(
            creds.check(Some(&basic("nobody", "s3cret"))),
            Err("user 'nobody'".into())
        );
        assert_eq!(creds.check(Some("Bearer tok-123")), Ok("token".into()));
        assert!(creds.check(Some("Bearer tok-12")).is_err());
        assert!(creds.check(None).is_err());
        assert!(creds.check(Some("Basic !!!")).is_err());
        assert!(creds.challenge().starts_with("Basic realm"));
        assert!(!format!("{creds:?}").contains("s3cret"), "Debug never shows a password");

        // What is missing is named.
        let e = Credentials::from_worker(&props, None).unwrap_err();
        assert!(e.contains("KAFKA_OPTS"), "{e}");
        let other = BTreeMap::from([("rest.extension.classes".to_string(), "com.acme.Auth".to_string())]);
        assert!(
            Credentials::from_worker(&other, None)
                .unwrap_err()
                .contains("com.acme.Auth")
        );
        std::fs::write(&jaas, "Other { x required; };").unwrap();
        let e = Credentials::from_worker(&props, Some(&opts)).unwrap_err();
        assert!(e.contains("no 'KafkaConnect"), "{e}");
        assert!(Credentials::from_worker(&BTreeMap::new(), None).unwrap().is_none());
    }

    #[test]
    fn an_empty_users_file_lets_everyone_in_as_kafka_connect_does() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.properties");
        std::fs::write(&users, "# nobody yet\n").unwrap();
        let props = BTreeMap::from([(USERS_FILE_KEY.to_string(), users.display().to_string())]);
        let creds = Credentials::from_worker(&props, None).unwrap().unwrap();
        assert!(creds.lets_everyone_in());
        assert!(creds.check(None).is_ok());
    }
}
