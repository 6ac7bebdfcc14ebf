//! `WITH (…)` options: declared once as [`OptionSpec`]s, consumed as they are read.
//!
//! A connector's config parser pulls each option it knows with a typed `pull_*`
//! call naming its spec; [`Options::finish`] then rejects whatever is left, naming
//! the key and the closest valid one. The same specs print `quiver connectors` and
//! the README tables, so the docs and the errors can never disagree.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{ConnectorError, Result};

/// The type of an option's value, for documentation and parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    String,
    Integer,
    Float,
    Bool,
    /// `500ms`, `10s`, `5 minutes`, `1h`.
    Duration,
    /// `1000`, `64KB`, `128MiB`, `1GB`.
    Bytes,
    /// One of a fixed set of values.
    Enum(&'static [&'static str]),
    /// A comma-separated list.
    List,
    /// A value that depends on the column's type.
    Value,
}

impl OptionKind {
    pub fn describe(&self) -> String {
        match self {
            OptionKind::String => "string".into(),
            OptionKind::Integer => "integer".into(),
            OptionKind::Float => "number".into(),
            OptionKind::Bool => "boolean".into(),
            OptionKind::Duration => "duration".into(),
            OptionKind::Bytes => "size".into(),
            OptionKind::Enum(v) => v.join(" | "),
            OptionKind::List => "comma list".into(),
            OptionKind::Value => "column value".into(),
        }
    }
}

/// One option a connector takes. Keys containing `<col>` are per-column templates.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub key: &'static str,
    pub kind: OptionKind,
    pub default: Option<&'static str>,
    pub required: bool,
    pub doc: &'static str,
}

impl OptionSpec {
    pub const fn new(key: &'static str, kind: OptionKind, doc: &'static str) -> Self {
        Self {
            key,
            kind,
            default: None,
            required: false,
            doc,
        }
    }
    pub const fn default(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// The concrete key for a column (`fields.<col>.kind` → `fields.id.kind`).
    pub fn key_for(&self, column: &str) -> String {
        self.key.replace("<col>", column)
    }
}

/// The options of one `WITH (…)` clause, with the statement positions of their keys.
#[derive(Debug, Clone, Default)]
pub struct Options {
    entries: BTreeMap<String, String>,
    /// Keys consumed so far, for nicer suggestions.
    consumed: Vec<String>,
}

impl Options {
    pub fn new(entries: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            entries: entries.into_iter().collect(),
            consumed: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an option was given (without consuming it).
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Takes the raw text of an option, if set.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let v = self.entries.remove(key);
        if v.is_some() {
            self.consumed.push(key.to_string());
        }
        v
    }

    fn raw(&mut self, spec: &OptionSpec, column: Option<&str>) -> Result<Option<(String, String)>> {
        let key = column.map_or_else(|| spec.key.to_string(), |c| spec.key_for(c));
        match self.take(&key) {
            Some(v) => Ok(Some((key, v))),
            None if spec.required => Err(ConnectorError::Missing {
                key,
                doc: spec.doc.to_string(),
            }),
            None => Ok(spec.default.map(|d| (key, d.to_string()))),
        }
    }

    /// Takes every option whose key starts with `prefix`, returning (rest of key, value).
    /// Used for pass-through families such as `properties.<librdkafka key>`.
    pub fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix) && k.len() > prefix.len())
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let v = self.take(&k)?;
                Some((k[prefix.len()..].to_string(), v))
            })
            .collect()
    }

    /// A string option (falls back to the spec's default).
    pub fn pull_str(&mut self, spec: &OptionSpec) -> Result<Option<String>> {
        Ok(self.raw(spec, None)?.map(|(_, v)| v))
    }

    pub fn pull_str_col(&mut self, spec: &OptionSpec, column: &str) -> Result<Option<String>> {
        Ok(self.raw(spec, Some(column))?.map(|(_, v)| v))
    }

    pub fn pull_required_str(&mut self, spec: &OptionSpec) -> Result<String> {
        match self.raw(spec, None)? {
            Some((_, v)) => Ok(v),
            None => Err(ConnectorError::Missing {
                key: spec.key.to_string(),
                doc: spec.doc.to_string(),
            }),
        }
    }

    fn parsed<T>(
        &mut self,
        spec: &OptionSpec,
        column: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        match self.raw(spec, column)? {
            None => Ok(None),
            Some((key, v)) => parse(v.trim()).map(Some).map_err(|e| {
                let got = if is_secret(&key) {
                    String::new()
                } else {
                    format!(" (got '{v}')")
                };
                ConnectorError::option(key, format!("{e}{got}"))
            }),
        }
    }

    pub fn pull_u64(&mut self, spec: &OptionSpec) -> Result<Option<u64>> {
        self.parsed(spec, None, parse_u64)
    }

    pub fn pull_f64(&mut self, spec: &OptionSpec) -> Result<Option<f64>> {
        self.parsed(spec, None, parse_f64)
    }

    pub fn pull_f64_col(&mut self, spec: &OptionSpec, column: &str) -> Result<Option<f64>> {
        self.parsed(spec, Some(column), parse_f64)
    }

    pub fn pull_u64_col(&mut self, spec: &OptionSpec, column: &str) -> Result<Option<u64>> {
        self.parsed(spec, Some(column), parse_u64)
    }

    pub fn pull_bool(&mut self, spec: &OptionSpec) -> Result<Option<bool>> {
        self.parsed(spec, None, parse_bool)
    }

    pub fn pull_duration(&mut self, spec: &OptionSpec) -> Result<Option<Duration>> {
        self.parsed(spec, None, parse_duration)
    }

    pub fn pull_bytes(&mut self, spec: &OptionSpec) -> Result<Option<u64>> {
        self.parsed(spec, None, parse_bytes)
    }

    pub fn pull_list(&mut self, spec: &OptionSpec) -> Result<Option<Vec<String>>> {
        self.parsed(spec, None, |v| Ok(parse_list(v)))
    }

    /// An enum option: the value must be one of the spec's choices (case-insensitive).
    pub fn pull_enum(&mut self, spec: &OptionSpec) -> Result<Option<&'static str>> {
        self.pull_enum_inner(spec, None)
    }

    pub fn pull_enum_col(&mut self, spec: &OptionSpec, column: &str) -> Result<Option<&'static str>> {
        self.pull_enum_inner(spec, Some(column))
    }

    fn pull_enum_inner(&mut self, spec: &OptionSpec, column: Option<&str>) -> Result<Option<&'static str>> {
        let OptionKind::Enum(choices) = spec.kind else {
            return Err(ConnectorError::Internal(format!("option {} is not an enum", spec.key)));
        };
        self.parsed(spec, column, |v| {
            choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(v))
                .copied()
                .ok_or_else(|| format!("must be one of {}", choices.join(", ")))
        })
    }

    /// Fails on any option left unconsumed, naming it and the closest valid key.
    /// `valid` lists concrete keys (templates already expanded per column).
    pub fn finish(self, connector: &str, role: &'static str, valid: &[String]) -> Result<()> {
        let Some(key) = self.entries.keys().next().cloned() else {
            return Ok(());
        };
        let suggestion = closest(
            &key,
            valid
                .iter()
                .map(String::as_str)
                .chain(self.consumed.iter().map(String::as_str)),
        )
        .map(|c| format!("; did you mean '{c}'?"))
        .unwrap_or_else(|| {
            let mut list: Vec<&str> = valid.iter().map(String::as_str).collect();
            list.sort_unstable();
            list.dedup();
            format!("; valid options: {}", list.join(", "))
        });
        Err(ConnectorError::UnknownOption {
            key,
            connector: connector.to_string(),
            role,
            suggestion,
        })
    }
}

/// Whether an option's value is a secret that must never be printed (errors, DESCRIBE, logs).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credentials",
        "sasl.jaas.config",
        "private.key",
        "user.info",
        "storage.access.key",
        "service.account.key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Expands a spec list into concrete keys for the given columns.
pub fn expand_keys(specs: &[OptionSpec], columns: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for s in specs {
        if s.key.contains("<col>") {
            out.extend(columns.iter().map(|c| s.key_for(c)));
        } else {
            out.push(s.key.to_string());
        }
    }
    out
}

/// The candidate nearest to `key` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.collect();
    let typo = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(key, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    // Else a key with a word left out (`s3.secret.key` for `s3.secret.access.key`):
    // the only candidate holding every dot-separated word of the key, in order.
    typo.or_else(|| {
        let words: Vec<&str> = key.split('.').collect();
        let mut matches = candidates.iter().filter(|c| {
            let mut rest = c.split('.');
            words.len() > 1 && words.iter().all(|w| rest.any(|r| r == *w))
        });
        match (matches.next(), matches.next()) {
            (Some(one), None) => Some(*one),
            _ => None,
        }
    })
}

pub fn parse_u64(v: &str) -> Result<u64, String> {
    v.replace('_', "")
        .parse::<u64>()
        .map_err(|_| "expected a whole number".to_string())
}

pub fn parse_f64(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| "expected a number".to_string())
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("expected true or false".to_string()),
    }
}

pub fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Parses `250ms`, `10s`, `5 minutes`, `1 h`, `2d`; a bare number is milliseconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| "expected a duration such as '500ms', '10s' or '5 minutes'".to_string())?;
    let secs = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => n / 1000.0,
        "s" | "sec" | "secs" | "second" | "seconds" => n,
        "m" | "min" | "mins" | "minute" | "minutes" => n * 60.0,
        "h" | "hr" | "hour" | "hours" => n * 3600.0,
        "d" | "day" | "days" => n * 86400.0,
        other => return Err(format!("unknown duration unit '{other}' (use ms, s, minutes, h or d)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `1000`, `64KB`, `64KiB`, `128MB`, `1GB` (KB = 1000, KiB = 1024).
pub fn parse_bytes(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| "expected a size such as '64MB' or '1GiB'".to_string())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "kib" => 1024.0,
        "mb" | "m" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" | "g" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use B, KB, KiB, MB, MiB, GB or GiB)"
            ));
        }
    };
    Ok((n * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: OptionSpec = OptionSpec::new("rows.total", OptionKind::Integer, "rows");
    const B: OptionSpec = OptionSpec::new("mode", OptionKind::Enum(&["fast", "slow"]), "m").default("fast");

    #[test]
    fn pulls_and_rejects_leftovers() {
        let mut o = Options::new([
            ("rows.total".to_string(), "ten".to_string()),
            ("rows.totl".to_string(), "1".to_string()),
        ]);
        let err = o.pull_u64(&A).unwrap_err().to_string();
        assert_eq!(err, "option 'rows.total': expected a whole number (got 'ten')");
        assert_eq!(o.pull_enum(&B).unwrap(), Some("fast"));
        let err = o
            .finish("datagen", "source", &["rows.total".into(), "mode".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown option 'rows.totl' for datagen source; did you mean 'rows.total'?"
        );
    }

    #[test]
    fn secret_values_are_not_echoed() {
        const PW: OptionSpec = OptionSpec::new("connection.password", OptionKind::Bool, "pw");
        let mut o = Options::new([("connection.password".to_string(), "hunter2".to_string())]);
        let err = o.pull_bool(&PW).unwrap_err().to_string();
        assert_eq!(err, "option 'connection.password': expected true or false");
        assert!(is_secret("s3.secret.access.key") && !is_secret("key.format"));
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("5 minutes").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1500").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5 fortnights").is_err());
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 * 1024 * 1024);
        assert_eq!(parse_bytes("1GB").unwrap(), 1_000_000_000);
        assert!(parse_bytes("lots").is_err());
    }
}
