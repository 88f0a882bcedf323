//! How a client is set up: raw settings checked once, each error naming the field.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A setting that cannot work; nothing was started.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: &'static str,
    pub message: String,
}

/// The largest producer buffer, in records and in bytes.
pub const MAX_BUFFER_RECORDS: usize = 10_000_000;
pub const MAX_BUFFER_BYTES: u64 = 256 << 30;

fn bad(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, message: message.into() }
}

/// What `send` does when the buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullBuffer {
    /// Drop the record and count it (the source design's default).
    Drop,
    /// Hand the record back to the caller in the error.
    Return,
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The route to follow.
    pub route: String,
    /// Fleet manager base URLs, tried in turn (any instance serves bindings, standbys included).
    pub fleet_managers: Vec<String>,
    /// A token with the `client` scope.
    pub token: Option<String>,
    /// Where the last binding is kept (`None`: no cache).
    pub cache_path: Option<PathBuf>,
    /// Records accepted and not yet acknowledged or failed, at most.
    pub buffer_records: usize,
    pub buffer_bytes: usize,
    pub full_buffer: FullBuffer,
    /// Keep order per key across a switch for every topic (topics the binding marks `keyed` get
    /// it anyway): their records wait until the old cluster has delivered what it holds.
    pub ordered_switch: bool,
    /// How long the old cluster gets to deliver what it holds at a switch (then it is purged
    /// and what it held is re-sent to the new one).
    pub drain_timeout: Duration,
    /// How long a record may wait for a cluster's acknowledgement before it fails.
    pub delivery_timeout: Duration,
    /// How often the client reports to the fleet manager.
    pub report_interval: Duration,
    /// How long one long poll for a binding change waits.
    pub watch_wait: Duration,
    /// `acks` for every topic; `None`: from each topic's priority class (high: all, else 1).
    pub acks: Option<String>,
    /// Consumers: the group.
    pub group: Option<String>,
    /// Consumers: topics to read.
    pub topics: Vec<String>,
    /// Consumers: how long to keep reading the cluster a route left, once it is sealed, before
    /// giving up on it (the consumer then says it did not drain it).
    pub consumer_drain_timeout: Duration,
    /// Consumers: commit what was read every second (at-least-once); `false`: only on
    /// [`crate::FleetConsumer::commit`].
    pub auto_commit: bool,
    /// Extra librdkafka settings, applied last. Keys the library sets for its guarantees are
    /// refused (see [`RESERVED_KAFKA_KEYS`]).
    pub kafka: BTreeMap<String, String>,
    /// This instance's name in reports (default: host, pid and a counter).
    pub instance: Option<String>,
    /// A CA bundle (PEM) to verify https fleet managers with, besides the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl ClientConfig {
    pub fn new(route: &str, fleet_managers: &[&str]) -> Self {
        Self {
            route: route.to_string(),
            fleet_managers: fleet_managers.iter().map(|s| s.to_string()).collect(),
            token: None,
            cache_path: None,
            buffer_records: 100_000,
            buffer_bytes: 64 * 1024 * 1024,
            full_buffer: FullBuffer::Drop,
            ordered_switch: false,
            drain_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(120),
            report_interval: Duration::from_secs(2),
            watch_wait: Duration::from_secs(20),
            acks: None,
            group: None,
            topics: Vec::new(),
            consumer_drain_timeout: Duration::from_secs(600),
            auto_commit: true,
            kafka: BTreeMap::new(),
            instance: None,
            ca_file: None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let name_ok = |s: &str| !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok(&self.route) {
            return Err(bad("route", format!("`{}` is not a route name (lowercase letters, digits and -)", self.route)));
        }
        if self.fleet_managers.is_empty() {
            return Err(bad("fleet_managers", "give at least one fleet manager URL, e.g. http://fleet:8080"));
        }
        if let Some(u) = self.fleet_managers.iter().find(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return Err(bad("fleet_managers", format!("`{u}` is not an http:// or https:// URL")));
        }
        if self.buffer_records == 0 {
            return Err(bad("buffer_records", "0 would refuse every record: use at least 1 (default 100000)"));
        }
        if self.buffer_bytes == 0 {
            return Err(bad("buffer_bytes", "0 would refuse every record: use at least 1 (default 64 MiB)"));
        }
        if self.delivery_timeout < Duration::from_secs(1) {
            return Err(bad("delivery_timeout", "use at least 1s"));
        }
        if self.report_interval < Duration::from_millis(100) {
            return Err(bad("report_interval", "use at least 100ms"));
        }
        if self.watch_wait > Duration::from_secs(60) {
            return Err(bad("watch_wait", "the fleet manager waits at most 60s"));
        }
        if let Some(a) = &self.acks {
            if !matches!(a.as_str(), "all" | "-1" | "0" | "1") {
                return Err(bad("acks", format!("`{a}` is not all, 1 or 0")));
            }
        }
        for (key, why) in RESERVED_KAFKA_KEYS {
            if self.kafka.contains_key(*key) {
                return Err(bad("kafka", format!("`{key}` is set by the library ({why}): remove it")));
            }
        }
        self.ca_certificates()?;
        Ok(())
    }

    /// What only a producer needs.
    pub(crate) fn check_producer(&self) -> Result<(), ConfigError> {
        if self.drain_timeout > Duration::from_secs(600) {
            return Err(bad("drain_timeout", "at most 10m (what is left is re-sent to the new cluster then)"));
        }
        // The buffer's count and bytes share one counter word (24 and 40 bits): these bounds
        // keep what is buffered exact with room for senders racing past the limit.
        if self.buffer_records > MAX_BUFFER_RECORDS {
            return Err(bad("buffer_records", format!("at most {MAX_BUFFER_RECORDS} (the buffer's count has 24 bits, with room for senders racing past the limit)")));
        }
        if self.buffer_bytes as u64 > MAX_BUFFER_BYTES {
            return Err(bad("buffer_bytes", format!("at most {MAX_BUFFER_BYTES} (256 GiB)")));
        }
        Ok(())
    }

    /// The roots of `ca_file`, read and parsed (checked when the client is built).
    pub(crate) fn ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, ConfigError> {
        let Some(path) = &self.ca_file else { return Ok(Vec::new()) };
        let pem = std::fs::read(path).map_err(|e| bad("ca_file", format!("cannot read {}: {e}", path.display())))?;
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) if !certs.is_empty() => Ok(certs),
            Ok(_) => Err(bad("ca_file", format!("{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)", path.display()))),
            Err(e) => Err(bad("ca_file", format!("{}: {e}", path.display()))),
        }
    }

    pub(crate) fn instance_name(&self, role: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        self.instance.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into());
            format!("{host}-{}-{role}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
        })
    }
}

/// librdkafka settings the library owns, and why: set through the map, each would break a
/// guarantee (or is set from another field).
pub const RESERVED_KAFKA_KEYS: &[(&str, &str)] = &[
    ("bootstrap.servers", "it comes from the route's binding"),
    ("group.id", "use `group`"),
    ("acks", "use `acks`, or each topic's priority class"),
    ("request.required.acks", "use `acks`, or each topic's priority class"),
    ("enable.idempotence", "order per key and no duplicates on one cluster depend on it"),
    ("message.timeout.ms", "use `delivery_timeout`"),
    ("delivery.timeout.ms", "use `delivery_timeout`"),
    ("max.in.flight.requests.per.connection", "order per key depends on it"),
    ("max.in.flight", "order per key depends on it"),
    ("transactional.id", "transactions are not supported"),
    ("enable.auto.offset.store", "offsets are stored only for records handed to the caller (at-least-once)"),
    ("enable.auto.commit", "use `auto_commit`"),
    ("auto.offset.reset", "a group new to a cluster the route moved to must read it from the beginning"),
    ("enable.partition.eof", "the library reads partitions' ends itself"),
    ("queue.buffering.max.messages", "use `buffer_records`: the library bounds what it holds itself"),
    ("queue.buffering.max.kbytes", "use `buffer_bytes`: the library bounds what it holds itself"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_the_field() {
        let mut c = ClientConfig::new("orders", &["http://127.0.0.1:1"]);
        assert_eq!(c.check(), Ok(()));
        c.buffer_records = 0;
        assert_eq!(c.check().err().map(|e| e.field), Some("buffer_records"));
        let mut c = ClientConfig::new("Orders!", &["http://127.0.0.1:1"]);
        assert_eq!(c.check().err().map(|e| e.field), Some("route"));
        c.route = "orders".into();
        c.fleet_managers = vec!["fleet:8080".into()];
        assert_eq!(c.check().err().map(|e| e.field), Some("fleet_managers"));
        let mut c = ClientConfig::new("orders", &["http://a"]);
        c.kafka.insert("bootstrap.servers".into(), "x:1".into());
        assert_eq!(c.check().err().map(|e| e.field), Some("kafka"));
        for key in ["enable.auto.offset.store", "enable.idempotence", "transactional.id", "acks"] {
            let mut c = ClientConfig::new("orders", &["http://a"]);
            c.kafka.insert(key.into(), "true".into());
            let e = c.check().expect_err(key);
            assert!(e.field == "kafka" && e.message.contains(key), "{key}: {e}");
        }
        let mut c = ClientConfig::new("orders", &["http://a"]);
        c.kafka.insert("linger.ms".into(), "5".into());
        assert_eq!(c.check(), Ok(()), "tuning is the caller's");
        let mut c = ClientConfig::new("orders", &["http://a"]);
        c.buffer_records = MAX_BUFFER_RECORDS + 1;
        assert_eq!(c.check_producer().err().map(|e| e.field), Some("buffer_records"));
        c.buffer_records = MAX_BUFFER_RECORDS;
        c.buffer_bytes = MAX_BUFFER_BYTES as usize + 1;
        assert_eq!(c.check_producer().err().map(|e| e.field), Some("buffer_bytes"));
    }
}
