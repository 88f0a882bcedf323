//! Replay of preconfigured message sets, and verification that exactly that set arrived.
//!
//! A set is a JSON Lines file, one record per line:
//! `{"key": "k1", "value": "v1", "headers": {"h": "x"}, "delayMs": 0}` (all but `value` optional;
//! unknown fields rejected). The whole file is parsed and checked before anything is sent.
//! Verification reads the topic between offsets taken before and after the replay (or from the
//! beginning, for `verify`) and compares the records, as a multiset of key, value and headers,
//! with the set: what the set has and the topic lacks is missing; the reverse is unexpected.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRecord {
    #[serde(default)]
    pub key: Option<String>,
    pub value: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub delay_ms: u64,
}

impl ReplayRecord {
    /// What identifies a record in the comparison: key, value and headers (not the delay).
    fn identity(&self) -> (Option<String>, String, BTreeMap<String, String>) {
        (self.key.clone(), self.value.clone(), self.headers.clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayFileError {
    #[error("cannot read replay file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("replay file {path}, line {line}: {message} (expected {{\"key\": ..., \"value\": ..., \"headers\": {{...}}, \"delayMs\": N}}); nothing was sent")]
    Line { path: String, line: usize, message: String },
    #[error("replay file {path} holds no records; nothing was sent")]
    Empty { path: String },
}

/// Parses the whole set; the first bad line is an error naming it.
pub fn load(path: &Path) -> Result<Vec<ReplayRecord>, ReplayFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReplayFileError::Read { path: shown.clone(), source })?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let record: ReplayRecord = serde_json::from_str(trimmed)
            .map_err(|e| ReplayFileError::Line { path: shown.clone(), line: i + 1, message: e.to_string() })?;
        if record.delay_ms > 3_600_000 {
            return Err(ReplayFileError::Line { path: shown, line: i + 1, message: "delayMs above one hour".into() });
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(ReplayFileError::Empty { path: shown });
    }
    Ok(records)
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub expected: usize,
    pub found: usize,
    pub missing: Vec<ReplayRecord>,
    pub unexpected: Vec<ReplayRecord>,
    pub complete: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    pub sent: usize,
    pub elapsed_s: f64,
    pub msgs_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// Per-partition high watermarks of `topic` now.
pub fn end_offsets(bootstrap: &str, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = config(bootstrap).set("group.id", "kafka-auditor-replay").create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let t = metadata.topics().iter().find(|t| t.name() == topic).ok_or_else(|| anyhow::anyhow!("topic {topic} not found"))?;
    if let Some(e) = t.error() {
        anyhow::bail!("topic {topic}: {e:?} (create it first)");
    }
    let mut out = BTreeMap::new();
    for p in t.partitions() {
        let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
        out.insert(p.id(), high);
    }
    Ok(out)
}

/// Sends the set at `rate` messages per second (`None`: as fast as possible), honouring each
/// record's delay; waits until every record is acknowledged (acks=all).
pub fn send(bootstrap: &str, topic: &str, records: &[ReplayRecord], rate: Option<u64>) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    let started = Instant::now();
    for (n, r) in records.iter().enumerate() {
        if r.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(r.delay_ms));
        }
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header { key: k, value: Some(v.as_str()) });
        }
        let mut record = BaseRecord::<str, str>::to(topic).payload(r.value.as_str()).headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k.as_str());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => anyhow::bail!("sending record {} failed: {e}", n + 1),
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Reads `topic` from `from` up to `to` (exclusive, per partition) and compares with `records`.
pub fn verify(
    bootstrap: &str,
    topic: &str,
    records: &[ReplayRecord],
    from: &BTreeMap<i32, i64>,
    to: &BTreeMap<i32, i64>,
) -> anyhow::Result<Verification> {
    let consumer: BaseConsumer = config(bootstrap)
        .set("group.id", "kafka-auditor-verify")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    for (p, end) in to {
        let start = from.get(p).copied().unwrap_or(0);
        if *end > start {
            tpl.add_partition_offset(topic, *p, Offset::Offset(start))?;
            remaining.insert(*p, *end);
        }
    }
    consumer.assign(&tpl)?;
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !remaining.is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "verification did not reach the end offsets within 120 s");
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else { continue };
        let msg = msg?;
        let p = msg.partition();
        let Some(end) = remaining.get(&p).copied() else { continue };
        if msg.offset() >= end {
            remaining.remove(&p);
            continue;
        }
        let mut headers = BTreeMap::new();
        if let Some(h) = msg.headers() {
            for i in 0..h.count() {
                let header = h.get(i);
                headers.insert(header.key.to_string(), String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned());
            }
        }
        found.push(ReplayRecord {
            key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            value: String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned(),
            headers,
            delay_ms: 0,
        });
        if msg.offset() + 1 >= end {
            remaining.remove(&p);
        }
    }
    Ok(compare(records, &found))
}

/// Multiset difference both ways.
pub fn compare(expected: &[ReplayRecord], found: &[ReplayRecord]) -> Verification {
    let mut counts: HashMap<_, i64> = HashMap::new();
    for r in expected {
        *counts.entry(r.identity()).or_default() += 1;
    }
    let mut unexpected = Vec::new();
    for r in found {
        let c = counts.entry(r.identity()).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            unexpected.push(r.clone());
        }
    }
    let mut missing = Vec::new();
    for r in expected {
        if let Some(c) = counts.get_mut(&r.identity()) {
            if *c > 0 {
                *c -= 1;
                missing.push(ReplayRecord { delay_ms: 0, ..r.clone() });
            }
        }
    }
    Verification { expected: expected.len(), found: found.len(), complete: missing.is_empty() && unexpected.is_empty(), missing, unexpected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &str, v: &str) -> ReplayRecord {
        ReplayRecord { key: Some(k.into()), value: v.into(), headers: BTreeMap::new(), delay_ms: 0 }
    }

    #[test]
    fn compare_finds_missing_and_unexpected_as_multisets() {
        let expected = vec![rec("a", "1"), rec("a", "1"), rec("b", "2")];
        let found = vec![rec("a", "1"), rec("c", "3")];
        let v = compare(&expected, &found);
        assert!(!v.complete);
        assert_eq!(v.missing, vec![rec("a", "1"), rec("b", "2")]);
        assert_eq!(v.unexpected, vec![rec("c", "3")]);
        assert!(compare(&expected, &[rec("b", "2"), rec("a", "1"), rec("a", "1")]).complete);
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("replay-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("set.jsonl");
        std::fs::write(&f, "{\"value\": \"ok\"}\n\n{\"value\": 5}\n").expect("write");
        let e = load(&f).expect_err("bad line").to_string();
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(&f, "{\"value\": \"ok\", \"colour\": \"red\"}\n").expect("write");
        assert!(load(&f).expect_err("unknown field").to_string().contains("colour"));
        std::fs::write(&f, "\n").expect("write");
        assert!(matches!(load(&f), Err(ReplayFileError::Empty { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
