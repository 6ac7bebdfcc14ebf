//! `key.converter` / `value.converter` → the Kafka connector's `format` options.

use super::{ConnectorConfig, Notes, Result, TranslateError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Converter {
    /// JsonConverter; `schemas` is `schemas.enable` (the `{"schema", "payload"}` envelope).
    Json {
        schemas: bool,
    },
    String,
    Bytes,
    /// AvroConverter with its Schema Registry.
    Avro {
        registry: String,
        auth: Option<String>,
    },
}

const CLASSES: [(&str, &str); 4] = [
    ("org.apache.kafka.connect.json.JsonConverter", "JsonConverter"),
    ("org.apache.kafka.connect.storage.StringConverter", "StringConverter"),
    (
        "org.apache.kafka.connect.converters.ByteArrayConverter",
        "ByteArrayConverter",
    ),
    ("io.confluent.connect.avro.AvroConverter", "AvroConverter"),
];

/// The converter classes, by full name.
pub(crate) fn classes() -> impl Iterator<Item = &'static str> {
    CLASSES.iter().map(|(c, _)| *c)
}

/// Reads `<which>.converter` and its settings (`which` is `key` or `value`).
pub(crate) fn read(cfg: &ConnectorConfig, which: &str, notes: &mut Notes) -> Result<Converter> {
    let key = format!("{which}.converter");
    let setting = |k: &str| format!("{key}.{k}");
    let Some(class) = cfg.get(&key) else {
        notes.note(format!(
            "{key} not set: assuming the worker default, JsonConverter with schemas.enable = true"
        ));
        return Ok(Converter::Json { schemas: true });
    };
    let Some((_, short)) = CLASSES.iter().find(|(full, short)| class == *full || class == *short) else {
        let known: Vec<&str> = CLASSES.iter().map(|(f, _)| *f).collect();
        return Err(TranslateError::new(
            key,
            format!("unsupported converter '{class}'; Quiver reads {}", known.join(", ")),
        ));
    };
    Ok(match *short {
        "JsonConverter" => Converter::Json {
            schemas: cfg.bool(&setting("schemas.enable"), true)?,
        },
        "StringConverter" => Converter::String,
        "ByteArrayConverter" => Converter::Bytes,
        _ => {
            let registry = cfg
                .require(
                    &setting("schema.registry.url"),
                    "AvroConverter needs the Schema Registry's URL",
                )?
                .to_string();
            let _ = cfg.get(&setting("basic.auth.credentials.source"));
            Converter::Avro {
                registry,
                auth: cfg.get(&setting("basic.auth.user.info")).map(str::to_string),
            }
        }
    })
}

impl Converter {
    /// The Kafka connector's options for a value in this converter's format.
    pub(crate) fn value_options(&self) -> Vec<(String, String)> {
        let o = |k: &str, v: &str| (k.to_string(), v.to_string());
        match self {
            Converter::Json { schemas: false } => vec![o("format", "json")],
            Converter::Json { schemas: true } => vec![o("format", "json"), o("json.schemas.enable", "true")],
            Converter::String | Converter::Bytes => vec![o("format", "raw")],
            Converter::Avro { registry, auth } => {
                let mut v = vec![o("format", "avro"), o("schema.registry.url", registry)];
                if let Some(a) = auth {
                    v.push(o("schema.registry.basic.auth.user.info", a));
                }
                v
            }
        }
    }

    /// The value's one column when the converter fixes it (`raw` formats).
    pub(crate) fn fixed_columns(&self) -> Option<&'static str> {
        match self {
            Converter::String => Some("value TEXT"),
            Converter::Bytes => Some("value BYTEA"),
            _ => None,
        }
    }

    /// `key.format` for a key in this converter's format.
    pub(crate) fn key_format(&self, notes: &mut Notes) -> &'static str {
        match self {
            Converter::Json { .. } => "json",
            Converter::String => "string",
            Converter::Bytes => "bytes",
            Converter::Avro { .. } => {
                notes.note("key.converter AvroConverter: keys are carried as their bytes (key.format = 'bytes')");
                "bytes"
            }
        }
    }
}
