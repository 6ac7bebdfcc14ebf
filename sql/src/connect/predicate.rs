//! Kafka Connect's predicates (`predicates.<alias>.*`) as SQL conditions.
//!
//! A predicate is tested on the record as it is when its transform runs, so the
//! condition is built from the record's current expressions. A condition is never
//! NULL (`COALESCE(…, false)`), so `negate` is a plain NOT.

use super::record::{Context, Record};
use super::{ConnectorConfig, Result, TranslateError, lit};

const PACKAGE: &str = "org.apache.kafka.connect.transforms.predicates.";
pub(crate) const KINDS: [&str; 3] = ["TopicNameMatches", "HasHeaderKey", "RecordIsTombstone"];

/// A configured predicate, ready to be tested against a record.
#[derive(Debug, Clone)]
pub(crate) enum Predicate {
    TopicNameMatches(String),
    HasHeaderKey(String),
    RecordIsTombstone,
}

/// Reads `predicates.<alias>.*`.
pub(crate) fn parse(cfg: &ConnectorConfig, alias: &str) -> Result<Predicate> {
    let p = |k: &str| format!("predicates.{alias}.{k}");
    let type_key = p("type");
    let Some(class) = cfg.get(&type_key) else {
        let declared = cfg.list("predicates");
        return Err(if declared.iter().any(|a| a == alias) {
            TranslateError::new(type_key, "missing: the predicate's class")
        } else {
            TranslateError::new(
                format!("predicates.{alias}"),
                format!("is not declared; predicates lists: {}", declared.join(", ")),
            )
        });
    };
    let short = class.strip_prefix(PACKAGE).unwrap_or(class);
    let (pred, keys): (Predicate, &[&str]) = match short {
        "TopicNameMatches" => {
            let key = p("pattern");
            let pattern = cfg.require(
                &key,
                "TopicNameMatches needs the regular expression topics are matched against",
            )?;
            quiver_udf::connect::check_regex(pattern).map_err(|e| TranslateError::new(&key, e))?;
            (Predicate::TopicNameMatches(pattern.to_string()), &["pattern"])
        }
        "HasHeaderKey" => {
            let key = p("name");
            (
                Predicate::HasHeaderKey(cfg.require(&key, "HasHeaderKey needs the header name")?.to_string()),
                &["name"],
            )
        }
        "RecordIsTombstone" => (Predicate::RecordIsTombstone, &[]),
        other => {
            return Err(TranslateError::new(
                type_key,
                format!(
                    "unknown predicate '{other}'; Kafka Connect's predicates are {}",
                    KINDS.join(", ")
                ),
            ));
        }
    };
    let prefix = format!("predicates.{alias}.");
    for k in cfg.keys_under(&prefix) {
        if k != "type" && !keys.contains(&k) {
            let known: Vec<&str> = std::iter::once("type").chain(keys.iter().copied()).collect();
            return Err(TranslateError::new(
                format!("{prefix}{k}"),
                format!("unknown setting for {short}; it takes {}", known.join(", ")),
            ));
        }
    }
    Ok(pred)
}

impl Predicate {
    /// The SQL condition on `rec`; `key` names the setting for errors.
    pub(crate) fn condition(&self, rec: &Record, ctx: &Context, key: &str) -> Result<String> {
        Ok(match self {
            Predicate::TopicNameMatches(pattern) => {
                let topic = rec.topic.as_ref().ok_or_else(|| {
                    TranslateError::new(
                        key,
                        format!("TopicNameMatches needs a topic, and {} has none", ctx.origin),
                    )
                })?;
                format!("COALESCE(regex_matches({}, {}), false)", topic.sql, lit(pattern))
            }
            Predicate::HasHeaderKey(name) => match &rec.headers {
                Some(h) => format!("COALESCE(has_header({}, {}), false)", h.sql, lit(name)),
                // A record without headers has none of them.
                None => "false".to_string(),
            },
            Predicate::RecordIsTombstone => ctx.tombstone.clone().unwrap_or_else(|| "false".to_string()),
        })
    }
}
