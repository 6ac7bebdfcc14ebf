//! Config providers (KIP-297, KIP-421, KIP-887, KIP-993), configured in the worker
//! properties exactly as Kafka Connect configures them:
//!
//! ```properties
//! config.providers=file,env,dir
//! config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
//! config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
//! config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
//! config.providers.file.param.allowed.paths=/etc/quiver/secrets
//! ```
//!
//! A connector config then says `${file:/etc/quiver/secrets/db.properties:password}`,
//! `${env:DB_PASSWORD}` or `${dir:/run/secrets:db_password}`.
//!
//! Design note: placeholders are resolved only when a config is planned; the store
//! keeps and the API returns the config with its placeholders, and error messages
//! name the placeholder, never the value. A placeholder whose provider is not
//! configured is left as written, as Kafka Connect's `ConfigTransformer` does (so
//! Quiver's own `${NAME}` environment references pass through untouched).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE_CLASS: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const ENV_CLASS: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
const DIRECTORY_CLASS: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

#[derive(Debug, Clone)]
enum Provider {
    /// Keys of a `.properties` file.
    File { allowed: Option<Vec<PathBuf>> },
    /// Environment variables whose names match the allowlist.
    Env { allowlist: Option<regex::Regex> },
    /// Files of a directory, each file's content one value.
    Directory { allowed: Option<Vec<PathBuf>> },
}

/// The providers a worker's properties configure, by the name placeholders use.
#[derive(Debug, Clone, Default)]
pub struct ConfigProviders {
    providers: BTreeMap<String, Provider>,
}

impl ConfigProviders {
    /// Reads `config.providers` and each `config.providers.<name>.class` / `.param.*`.
    /// Returns the providers and the property keys it read.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<(Self, Vec<String>), String> {
        let mut used = Vec::new();
        let mut providers = BTreeMap::new();
        let Some(list) = props.get("config.providers") else {
            return Ok((Self::default(), used));
        };
        used.push("config.providers".to_string());
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let class_key = format!("config.providers.{name}.class");
            let class = props
                .get(&class_key)
                .map(|c| c.trim())
                .ok_or_else(|| format!("{class_key}: missing; config.providers names '{name}'"))?;
            used.push(class_key.clone());
            let param = |p: &str| {
                let key = format!("config.providers.{name}.param.{p}");
                props.get(&key).map(|v| (key, v.trim().to_string()))
            };
            let paths = |used: &mut Vec<String>| {
                param("allowed.paths").map(|(k, v)| {
                    used.push(k);
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(PathBuf::from)
                        .collect::<Vec<_>>()
                })
            };
            let provider = match class {
                FILE_CLASS => Provider::File {
                    allowed: paths(&mut used),
                },
                DIRECTORY_CLASS => Provider::Directory {
                    allowed: paths(&mut used),
                },
                ENV_CLASS => {
                    let allowlist = match param("allowlist.pattern") {
                        None => None,
                        Some((k, v)) => {
                            let re = regex::Regex::new(&format!("^(?:{v})$")).map_err(|e| format!("{k}: {e}"))?;
                            used.push(k);
                            Some(re)
                        }
                    };
                    Provider::Env { allowlist }
                }
                other => {
                    return Err(format!(
                        "{class_key}: '{other}' is not a provider Quiver has; it has {FILE_CLASS}, {ENV_CLASS} and {DIRECTORY_CLASS}"
                    ));
                }
            };
            providers.insert(name.to_string(), provider);
        }
        Ok((Self { providers }, used))
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Replaces every `${provider:[path:]key}` of a configured provider. The error
    /// names the placeholder and why, never a resolved value.
    pub fn resolve(&self, key: &str, value: &str) -> Result<String, String> {
        if self.providers.is_empty() || !value.contains("${") {
            return Ok(value.to_string());
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let placeholder = &rest[start..start + len + 1];
            let inner = &placeholder[2..placeholder.len() - 1];
            match self.lookup(inner) {
                Some(Ok(v)) => out.push_str(&v),
                Some(Err(why)) => return Err(format!("{key}: {placeholder}: {why}")),
                None => out.push_str(placeholder),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `None` when the placeholder is not one of a configured provider.
    fn lookup(&self, inner: &str) -> Option<Result<String, String>> {
        let (name, rest) = inner.split_once(':')?;
        let provider = self.providers.get(name)?;
        let (path, key) = match rest.rsplit_once(':') {
            Some((p, k)) => (Some(p), k),
            None => (None, rest),
        };
        Some(match provider {
            Provider::Env { allowlist } => {
                if path.is_some_and(|p| !p.is_empty()) {
                    Err("an environment variable takes no path: ${env:NAME}".into())
                } else if allowlist.as_ref().is_some_and(|re| !re.is_match(key)) {
                    Err(format!("{key} is not allowed by the provider's allowlist.pattern"))
                } else {
                    std::env::var(key).map_err(|_| format!("the environment variable {key} is not set"))
                }
            }
            Provider::File { allowed } => {
                let Some(path) = path else {
                    return Some(Err("needs a file and a key: ${file:/path/file.properties:key}".into()));
                };
                check_allowed(Path::new(path), allowed.as_deref()).and_then(|()| {
                    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                    crate::server::properties::parse_properties(&text)
                        .remove(key)
                        .ok_or_else(|| format!("{path} has no key '{key}'"))
                })
            }
            Provider::Directory { allowed } => {
                let Some(dir) = path else {
                    return Some(Err("needs a directory and a file: ${dir:/path:file}".into()));
                };
                let file = Path::new(dir).join(key);
                if key.contains('/') || key == ".." {
                    Err(format!("'{key}' must be a file name inside {dir}"))
                } else {
                    check_allowed(&file, allowed.as_deref()).and_then(|()| {
                        std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))
                    })
                }
            }
        })
    }
}

/// KIP-993: a provider limited to `allowed.paths` reads nothing outside them.
fn check_allowed(path: &Path, allowed: Option<&[PathBuf]>) -> Result<(), String> {
    let Some(allowed) = allowed else { return Ok(()) };
    let normal: PathBuf = path.components().collect();
    if normal
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("{} may not contain '..'", path.display()));
    }
    if allowed.iter().any(|a| normal.starts_with(a)) {
        Ok(())
    } else {
        Err(format!("{} is outside the provider's allowed.paths", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn placeholders_resolve_from_files_directories_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds.properties");
        std::fs::write(&creds, "password=s3cret\nuser: app\n").unwrap();
        std::fs::write(dir.path().join("token"), "t0ken").unwrap();
        let d = dir.path().display().to_string();
        let (p, used) = ConfigProviders::from_properties(&props(&[
            ("config.providers", "file, env,dir"),
            ("config.providers.file.class", FILE_CLASS),
            ("config.providers.file.param.allowed.paths", &d),
            ("config.providers.env.class", ENV_CLASS),
            ("config.providers.env.param.allowlist.pattern", "QUIVER_TEST_.*|PATH"),
            ("config.providers.dir.class", DIRECTORY_CLASS),
        ]))
        .unwrap();
        assert_eq!(used.len(), 6);
        let c = creds.display();
        assert_eq!(
            p.resolve("k", &format!("u=${{file:{c}:user}} p=${{file:{c}:password}}"))
                .unwrap(),
            "u=app p=s3cret"
        );
        assert_eq!(p.resolve("k", &format!("${{dir:{d}:token}}")).unwrap(), "t0ken");
        assert!(!p.resolve("k", "${env:PATH}").unwrap().is_empty());
        // Unconfigured providers and Quiver's own references are left as written.
        assert_eq!(
            p.resolve("k", "${vault:a:b} ${KAFKA_BOOTSTRAP:-localhost:9092}")
                .unwrap(),
            "${vault:a:b} ${KAFKA_BOOTSTRAP:-localhost:9092}"
        );
        // Errors name the placeholder, never a value.
        let e = p
            .resolve("connection.password", &format!("${{file:{c}:nope}}"))
            .unwrap_err();
        assert!(
            e.starts_with("connection.password: ${file:") && e.contains("has no key 'nope'"),
            "{e}"
        );
        assert!(p.resolve("k", "${env:HOME}").unwrap_err().contains("allowlist"));
        assert!(
            p.resolve("k", "${file:/etc/passwd:root}")
                .unwrap_err()
                .contains("allowed.paths")
        );
        assert!(
            p.resolve("k", &format!("${{file:{d}/../x:k}}"))
                .unwrap_err()
                .contains("..")
        );
        assert!(ConfigProviders::from_properties(&props(&[("config.providers", "x")])).is_err());
    }
}
