//! Avro in Confluent's wire format: a `0x00` magic byte, a 4-byte big-endian schema
//! id, then the Avro body. Decoding and encoding are arrow-avro's; this module
//! fetches writer schemas from a Schema Registry by id (cached), resolves them
//! against the declared columns as the reader schema (Avro's resolution rules:
//! extra writer fields skipped, missing reader fields take their defaults, types
//! promoted), and registers the sink's schema under its subject.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_avro::reader::{Decoder as AvroStreamDecoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, FingerprintStrategy, SchemaStore};
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroSoeFormat;

use super::decode::Decoded;
use crate::api::{ConnectorError, Result};

/// How long one registry request may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// A Confluent-compatible Schema Registry, over its REST API.
pub struct SchemaRegistry {
    url: String,
    agent: ureq::Agent,
    auth: Option<String>,
    by_id: Mutex<HashMap<u32, String>>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry").field("url", &self.url).finish()
    }
}

/// The result of looking a schema id up.
#[derive(Debug)]
pub enum Lookup {
    Found(String),
    /// The registry answered that it does not know the id.
    Unknown,
}

impl SchemaRegistry {
    /// `basic_auth` is `user:password` (Confluent Cloud's API key and secret).
    pub fn new(url: &str, basic_auth: Option<&str>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(REGISTRY_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let auth = basic_auth.map(|a| {
            use base64::Engine as _;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(a))
        });
        Self {
            url: url.trim_end_matches('/').to_string(),
            agent,
            auth,
            by_id: Mutex::new(HashMap::new()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> std::result::Result<(u16, serde_json::Value), String> {
        let url = format!("{}{path}", self.url);
        let accept = "application/vnd.schemaregistry.v1+json, application/json";
        let response = match body {
            None => {
                let mut r = self.agent.get(&url).header("Accept", accept);
                if let Some(a) = &self.auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            Some(b) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("Accept", accept)
                    .header("Content-Type", "application/vnd.schemaregistry.v1+json");
                if let Some(a) = &self.auth {
                    r = r.header("Authorization", a);
                }
                r.send_json(b)
            }
        };
        let mut response = response.map_err(|e| format!("schema registry {method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("schema registry {method} {url}: reading the answer: {e}"))?;
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok((status, json))
    }

    /// The writer schema with this id (cached after the first look-up).
    pub fn schema(&self, id: u32) -> std::result::Result<Lookup, String> {
        if let Some(s) = self.by_id.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(Lookup::Found(s.clone()));
        }
        let (status, body) = self.request("GET", &format!("/schemas/ids/{id}"), None)?;
        match status {
            200 => {
                let schema = body["schema"]
                    .as_str()
                    .ok_or_else(|| format!("schema registry answered without a schema for id {id}: {body}"))?
                    .to_string();
                self.by_id
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, schema.clone());
                Ok(Lookup::Found(schema))
            }
            404 => Ok(Lookup::Unknown),
            other => Err(format!(
                "schema registry {}: GET /schemas/ids/{id} answered {other}: {body}",
                self.url
            )),
        }
    }

    /// The latest schema registered under `subject`, or `None` when the subject has
    /// none yet.
    pub fn latest(&self, subject: &str) -> std::result::Result<Option<String>, String> {
        let (status, body) = self.request("GET", &format!("/subjects/{subject}/versions/latest"), None)?;
        match status {
            200 => body["schema"].as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                format!(
                    "schema registry {} answered without a schema for subject '{subject}': {body}",
                    self.url
                )
            }),
            404 => Ok(None),
            other => Err(format!(
                "schema registry {}: GET /subjects/{subject}/versions/latest answered {other}: {body}",
                self.url
            )),
        }
    }

    /// Registers (or finds) `schema` under `subject` and returns its id.
    pub fn register(&self, subject: &str, schema: &str) -> std::result::Result<u32, String> {
        let (status, body) = self.request(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(serde_json::json!({ "schema": schema })),
        )?;
        match (status, body["id"].as_u64()) {
            (200, Some(id)) => {
                self.by_id
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id as u32, schema.to_string());
                Ok(id as u32)
            }
            _ => Err(format!(
                "schema registry {} refused the schema for subject '{subject}' ({status}): {body}",
                self.url
            )),
        }
    }
}

/// The Arrow columns an Avro record schema (JSON) reads as, by arrow-avro's own
/// mapping: what a stock AvroConverter connector's columns are.
pub fn arrow_schema(avro_json: &str) -> Result<Schema> {
    let avro = AvroSchema::new(avro_json.to_string());
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    store
        .set(Fingerprint::Id(0), avro.clone())
        .map_err(|e| ConnectorError::Config(format!("the registry's Avro schema does not parse: {e}")))?;
    let decoder = ReaderBuilder::new()
        .with_reader_schema(avro)
        .with_writer_schema_store(store)
        .build_decoder()
        .map_err(|e| ConnectorError::Config(format!("the registry's Avro schema has no Arrow columns: {e}")))?;
    Ok(decoder.schema().as_ref().clone())
}

/// The reader schema for the declared columns.
pub fn reader_schema(declared: &Schema) -> Result<AvroSchema> {
    AvroSchema::try_from(declared)
        .map_err(|e| ConnectorError::arrow("turning the declared columns into an Avro reader schema", e))
}

/// Decodes Confluent-framed Avro payloads into the declared columns.
///
/// One arrow-avro decoder per writer schema id, each resolving that writer schema
/// against the declared columns (the reader schema takes the writer's record name,
/// since Avro resolution matches records by name).
pub struct AvroDecoder {
    registry: Arc<SchemaRegistry>,
    declared: SchemaRef,
    reader: serde_json::Value,
    decoders: HashMap<u32, AvroStreamDecoder>,
    /// Ids the registry does not know (asked once).
    unknown: HashSet<u32>,
    writers: HashMap<u32, AvroSchema>,
    max_rows: usize,
}

impl std::fmt::Debug for AvroDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroDecoder")
            .field("registry", &self.registry.url)
            .field("ids", &self.writers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AvroDecoder {
    pub fn new(registry: Arc<SchemaRegistry>, declared: SchemaRef, max_rows: usize) -> Result<Self> {
        let reader = reader_schema(&declared)?;
        let reader = serde_json::from_str(&reader.json_string)
            .map_err(|e| ConnectorError::Internal(format!("Avro reader schema is not JSON: {e}")))?;
        Ok(Self {
            registry,
            declared,
            reader,
            decoders: HashMap::new(),
            unknown: HashSet::new(),
            writers: HashMap::new(),
            max_rows: max_rows.max(1),
        })
    }

    /// A decoder for writer schema `id`, resolving it against the declared columns.
    fn build(&self, id: u32) -> std::result::Result<AvroStreamDecoder, String> {
        let writer = self
            .writers
            .get(&id)
            .ok_or_else(|| format!("schema id {id} was not fetched"))?;
        let mut reader = self.reader.clone();
        if let Ok(w) = serde_json::from_str::<serde_json::Value>(&writer.json_string) {
            for key in ["name", "namespace"] {
                match w.get(key) {
                    Some(v) => reader[key] = v.clone(),
                    None => {
                        if let Some(o) = reader.as_object_mut() {
                            o.remove(key);
                        }
                    }
                }
            }
        }
        let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
        store
            .set(Fingerprint::Id(id), writer.clone())
            .map_err(|e| e.to_string())?;
        ReaderBuilder::new()
            .with_batch_size(self.max_rows)
            .with_reader_schema(AvroSchema::new(reader.to_string()))
            .with_writer_schema_store(store)
            .build_decoder()
            .map_err(|e| format!("schema id {id} cannot be read as the declared columns: {e}"))
    }

    /// The decoder for writer schema `id`, built on first use.
    fn ensure_decoder(&mut self, id: u32) -> std::result::Result<&mut AvroStreamDecoder, String> {
        if !self.decoders.contains_key(&id) {
            let d = self.build(id)?;
            self.decoders.insert(id, d);
        }
        self.decoders
            .get_mut(&id)
            .ok_or_else(|| format!("no decoder for schema id {id}"))
    }

    /// Decodes a batch of payloads. Fails only when the registry cannot be reached
    /// (nothing about the records is known then); bad records are reported in `bad`.
    pub fn decode(&mut self, payloads: &[Option<&[u8]>]) -> Result<Decoded> {
        let mut bad: Vec<(usize, String)> = Vec::new();
        // (payload index, schema id) of the records that look like Confluent Avro.
        let mut candidates: Vec<(usize, u32)> = Vec::with_capacity(payloads.len());
        for (i, p) in payloads.iter().enumerate() {
            let Some(p) = p else {
                bad.push((
                    i,
                    "null value (tombstone): there is no Avro record to decode".to_string(),
                ));
                continue;
            };
            if p.len() < 5 {
                bad.push((
                    i,
                    format!(
                        "{} bytes is too short for Confluent's Avro wire format (magic byte + 4-byte schema id + body)",
                        p.len()
                    ),
                ));
                continue;
            }
            if p[0] != 0 {
                bad.push((
                    i,
                    format!(
                        "wrong magic byte 0x{:02x}: Confluent's Avro wire format starts with 0x00",
                        p[0]
                    ),
                ));
                continue;
            }
            let id = u32::from_be_bytes([p[1], p[2], p[3], p[4]]);
            if !self.writers.contains_key(&id) && !self.unknown.contains(&id) {
                match self.registry.schema(id) {
                    Ok(Lookup::Found(schema)) => {
                        self.writers.insert(id, AvroSchema::new(schema));
                    }
                    Ok(Lookup::Unknown) => {
                        self.unknown.insert(id);
                    }
                    Err(e) => return Err(ConnectorError::Config(e)),
                }
            }
            if self.unknown.contains(&id) {
                bad.push((
                    i,
                    format!(
                        "unknown schema id {id}: the registry at {} does not have it",
                        self.registry.url
                    ),
                ));
                continue;
            }
            if let Err(e) = self.ensure_decoder(id) {
                bad.push((i, e));
                continue;
            }
            candidates.push((i, id));
        }
        let mut batches = Vec::new();
        let mut good = Vec::with_capacity(candidates.len());
        // Runs of records with the same writer schema, in input order.
        let mut start = 0;
        while start < candidates.len() {
            let id = candidates[start].1;
            let end = candidates[start..]
                .iter()
                .position(|c| c.1 != id)
                .map_or(candidates.len(), |n| start + n);
            let run: Vec<usize> = candidates[start..end].iter().map(|c| c.0).collect();
            start = end;
            let Some(d) = self.decoders.get_mut(&id) else { continue };
            if let Ok(b) = decode_many(d, payloads, &run) {
                batches.extend(b);
                good.extend(run);
                continue;
            }
            // Slow path: one record at a time, with a fresh decoder after each failure.
            self.decoders.remove(&id);
            for i in run {
                let d = match self.ensure_decoder(id) {
                    Ok(d) => d,
                    Err(e) => {
                        bad.push((i, e));
                        continue;
                    }
                };
                match decode_many(d, payloads, &[i]) {
                    Ok(b) => {
                        batches.extend(b);
                        good.push(i);
                    }
                    Err(e) => {
                        bad.push((i, format!("invalid Avro for schema id {id}: {e}")));
                        self.decoders.remove(&id);
                    }
                }
            }
        }
        bad.sort_by_key(|b| b.0);
        let batch = concat_batches(&self.declared, &batches)
            .unwrap_or_else(|_| RecordBatch::new_empty(Arc::clone(&self.declared)));
        Ok(Decoded {
            batch,
            good,
            bad,
            filtered: None,
        })
    }
}

/// Feeds whole records to the decoder, flushing at schema changes and full batches.
fn decode_many(
    d: &mut AvroStreamDecoder,
    payloads: &[Option<&[u8]>],
    which: &[usize],
) -> std::result::Result<Vec<RecordBatch>, String> {
    let mut out = Vec::new();
    for &i in which {
        let data = payloads[i].unwrap_or_default();
        let mut off = 0;
        while off < data.len() {
            let n = d.decode(&data[off..]).map_err(|e| e.to_string())?;
            off += n;
            if n == 0 || d.batch_is_full() {
                if let Some(b) = d.flush().map_err(|e| e.to_string())? {
                    out.push(b);
                } else if n == 0 {
                    return Err("the record is incomplete".to_string());
                }
            }
        }
    }
    if let Some(b) = d.flush().map_err(|e| e.to_string())? {
        out.push(b);
    }
    let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
    if rows != which.len() {
        return Err(format!("{} records decoded from {} messages", rows, which.len()));
    }
    Ok(out)
}

/// Encodes rows as Confluent-framed Avro under a registered schema id.
pub struct AvroEncoder {
    encoder: arrow_avro::writer::Encoder,
    pub schema_id: u32,
}

impl std::fmt::Debug for AvroEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroEncoder")
            .field("schema_id", &self.schema_id)
            .finish()
    }
}

impl AvroEncoder {
    /// Registers the payload schema under `subject` and prepares the encoder.
    pub fn new(registry: &SchemaRegistry, subject: &str, payload: &Schema) -> Result<Self> {
        let schema = reader_schema(payload)?;
        let id = registry
            .register(subject, &schema.json_string)
            .map_err(ConnectorError::Config)?;
        let encoder = WriterBuilder::new(payload.clone())
            .with_fingerprint_strategy(FingerprintStrategy::Id(id))
            .build_encoder::<AvroSoeFormat>()
            .map_err(|e| ConnectorError::Config(format!("Avro encoder: {e}")))?;
        Ok(Self { encoder, schema_id: id })
    }

    /// One framed record per row.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<bytes::Bytes>> {
        self.encoder
            .encode(batch)
            .map_err(|e| ConnectorError::Config(format!("encoding Avro: {e}")))?;
        let rows = self.encoder.flush();
        Ok(rows.iter().collect())
    }
}
