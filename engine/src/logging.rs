//! Logging: `tracing` to standard error, filtered by `QUIVER_LOG` at start and
//! changeable while running through `/admin/loggers` (Kafka Connect's KIP-495).
//!
//! Design notes:
//! - A logger is a `tracing` target prefix (`quiver_engine`,
//!   `quiver_connectors::kafka`, …), as a Log4j logger is a class-name prefix in
//!   Kafka Connect; `root` is the level of everything else. Log4j's level names
//!   are taken (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL` as error, `OFF`,
//!   `ALL` as trace) and shown upper-case, as Kafka Connect shows them.
//! - The filter is rebuilt from the root level and every logger set so far, and
//!   swapped in through `tracing_subscriber::reload`: tasks already running log at
//!   the new level from their next event on, with no restart.
//! - `QUIVER_LOG` stays the start-up default; its plain `target=level` directives
//!   become loggers a client can list and change. Finer directives (span or
//!   field filters) are kept as they are, ahead of the loggers set at run time.
//! - `--log-format json` writes one JSON object per event for log shippers.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// The name of the logger for everything not set otherwise.
pub const ROOT: &str = "root";

/// A logger's level and when it was last set through the API (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoggerLevel {
    pub level: String,
    pub last_modified: Option<i64>,
}

struct Levels {
    /// Directives of `QUIVER_LOG` kept as they are (span or field filters).
    kept: Vec<String>,
    root: LoggerLevel,
    loggers: BTreeMap<String, LoggerLevel>,
    reload: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
}

static LEVELS: OnceLock<Mutex<Levels>> = OnceLock::new();

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colour on a terminal).
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// Installs the process's subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let spec = std::env::var("QUIVER_LOG").unwrap_or_default();
    let (kept, root, loggers) = parse_spec(&spec);
    let filter = build_filter(&kept, &root, &loggers).unwrap_or_else(|_| EnvFilter::new("warn"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    if installed.is_ok() {
        let root = LoggerLevel {
            level: root,
            last_modified: None,
        };
        let loggers = loggers
            .into_iter()
            .map(|(k, level)| {
                (
                    k,
                    LoggerLevel {
                        level,
                        last_modified: None,
                    },
                )
            })
            .collect();
        let _ = LEVELS.set(Mutex::new(Levels {
            kept,
            root,
            loggers,
            reload: handle,
        }));
    }
}

/// Splits a `QUIVER_LOG` value into kept directives, the root level and
/// `target=level` loggers, levels in Log4j's upper-case spelling.
fn parse_spec(spec: &str) -> (Vec<String>, String, BTreeMap<String, String>) {
    let mut kept = Vec::new();
    let mut root = "WARN".to_string();
    let mut loggers = BTreeMap::new();
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if d.contains(['[', '{']) {
            kept.push(d.to_string());
            continue;
        }
        match d.split_once('=') {
            Some((target, level)) => match log4j_level(level) {
                Some(l) => {
                    loggers.insert(target.trim().to_string(), l.to_string());
                }
                None => kept.push(d.to_string()),
            },
            None => match log4j_level(d) {
                Some(l) => root = l.to_string(),
                // A bare target means every level of it.
                None => {
                    loggers.insert(d.to_string(), "TRACE".to_string());
                }
            },
        }
    }
    (kept, root, loggers)
}

/// A level name as Log4j spells it, or `None` when it is none.
fn log4j_level(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "ALL" => "TRACE",
        "DEBUG" => "DEBUG",
        "INFO" => "INFO",
        "WARN" | "WARNING" => "WARN",
        "ERROR" | "FATAL" => "ERROR",
        "OFF" => "OFF",
        _ => return None,
    })
}

fn build_filter(
    kept: &[String],
    root: &str,
    loggers: &BTreeMap<String, String>,
) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    let mut spec = vec![root.to_ascii_lowercase()];
    spec.extend(kept.iter().cloned());
    spec.extend(loggers.iter().map(|(t, l)| format!("{t}={}", l.to_ascii_lowercase())));
    EnvFilter::try_new(spec.join(","))
}

fn levels() -> Result<std::sync::MutexGuard<'static, Levels>, String> {
    let levels = LEVELS
        .get()
        .ok_or_else(|| "logging is not managed by this process".to_string())?;
    Ok(levels.lock().unwrap_or_else(|p| p.into_inner()))
}

/// `root` and every logger with a level set, by name.
pub fn all_levels() -> Result<BTreeMap<String, LoggerLevel>, String> {
    let l = levels()?;
    let mut out = l.loggers.clone();
    out.insert(ROOT.to_string(), l.root.clone());
    Ok(out)
}

/// The level a logger logs at: its own, the nearest enclosing logger's, or root's.
pub fn level_of(logger: &str) -> Result<LoggerLevel, String> {
    let l = levels()?;
    if logger.eq_ignore_ascii_case(ROOT) {
        return Ok(l.root.clone());
    }
    let mut name = logger;
    loop {
        if let Some(found) = l.loggers.get(name) {
            return Ok(found.clone());
        }
        match name.rfind("::") {
            Some(i) => name = &name[..i],
            None => return Ok(l.root.clone()),
        }
    }
}

/// Why a level could not be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetLevelError {
    /// Not one of Log4j's levels.
    Level(String),
    Other(String),
}

/// Sets a logger's level (and, as Log4j does, that of every logger under it, which
/// is dropped so the new level reaches them); returns the loggers affected.
pub fn set_level(logger: &str, level: &str) -> Result<Vec<String>, SetLevelError> {
    let level = log4j_level(level).ok_or_else(|| SetLevelError::Level(level.to_string()))?;
    let mut l = levels().map_err(SetLevelError::Other)?;
    let now = chrono::Utc::now().timestamp_millis();
    let set = LoggerLevel {
        level: level.to_string(),
        last_modified: Some(now),
    };
    let mut affected = Vec::new();
    if logger.eq_ignore_ascii_case(ROOT) {
        l.root = set;
        affected.push(ROOT.to_string());
    } else {
        let under = format!("{logger}::");
        let children: Vec<String> = l.loggers.keys().filter(|k| k.starts_with(&under)).cloned().collect();
        for c in children {
            l.loggers.remove(&c);
            affected.push(c);
        }
        l.loggers.insert(logger.to_string(), set);
        affected.insert(0, logger.to_string());
    }
    let plain: BTreeMap<String, String> = l.loggers.iter().map(|(k, v)| (k.clone(), v.level.clone())).collect();
    let filter = build_filter(&l.kept, &l.root.level, &plain)
        .map_err(|e| SetLevelError::Other(format!("logger '{logger}': {e}")))?;
    l.reload
        .reload(filter)
        .map_err(|e| SetLevelError::Other(format!("swapping the log filter: {e}")))?;
    tracing::warn!(logger, level, "log level changed");
    Ok(affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiver_log_becomes_root_and_loggers() {
        let (kept, root, loggers) = parse_spec("info, quiver_engine=debug,quiver_connectors::kafka=TRACE,x[span]=info");
        assert_eq!(root, "INFO");
        assert_eq!(loggers["quiver_engine"], "DEBUG");
        assert_eq!(loggers["quiver_connectors::kafka"], "TRACE");
        assert_eq!(kept, vec!["x[span]=info".to_string()]);
        assert_eq!(parse_spec("").1, "WARN");
        assert!(build_filter(&kept, &root, &loggers).is_ok());
        assert_eq!(log4j_level("fatal"), Some("ERROR"));
        assert_eq!(log4j_level("loud"), None);
    }
}
