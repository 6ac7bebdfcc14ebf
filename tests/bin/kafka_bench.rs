//! Benchmark helper: loads a topic from a JSON-lines file, and drains a topic with
//! a bare rdkafka consumer (the read ceiling the Kafka benchmark compares against).
//!
//!   kafka-bench produce <bootstrap> <topic> <file.jsonl>
//!   kafka-bench drain <bootstrap> <topic> <records> [librdkafka key=value …]

use std::io::BufRead;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("produce") if args.len() == 5 => produce(&args[2], &args[3], &args[4]),
        Some("drain") if args.len() >= 5 => drain(&args[2], &args[3], args[4].parse()?, &args[5..]),
        _ => Err("usage: kafka-bench produce <bootstrap> <topic> <file> | drain <bootstrap> <topic> <records>".into()),
    }
}

fn produce(bootstrap: &str, topic: &str, file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let reader = std::io::BufReader::new(std::fs::File::open(file)?);
    let mut n = 0u64;
    for line in reader.lines() {
        let line = line?;
        let mut record: BaseRecord<'_, [u8], str> = BaseRecord::to(topic).payload(line.as_str());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        n += 1;
        if n.is_multiple_of(10_000) {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    eprintln!("produced {n} records to {topic}");
    Ok(())
}

fn drain(bootstrap: &str, topic: &str, records: u64, extra: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-bench-drain")
        .set("enable.auto.commit", "false");
    for kv in extra {
        let (k, v) = kv.split_once('=').ok_or("extra settings are key=value")?;
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < records {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                n += 1;
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(format!("no record for 10 s after {n}").into()),
        }
    }
    eprintln!(
        "drained {n} records ({bytes} bytes) in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
