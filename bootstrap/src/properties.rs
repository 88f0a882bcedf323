//! Broker properties, layered lowest to highest:
//!
//! 1. defaults shipped in the repo (`bootstrap/defaults/server.properties`),
//! 2. the cluster file's `properties`,
//! 3. environment variables `KAFKA_CFG_<KEY>` (`.` written as `_`, a literal `_` as `__`),
//! 4. persisted properties fetched from the fleet manager,
//!
//! then the derived keys (`broker.id`, listeners, `zookeeper.connect`, `broker.rack`, `log.dirs`),
//! which no layer may set. Every key is checked against Kafka's own catalog of broker configs
//! (generated from the pinned Kafka jar) and every value against the key's type.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// Prefix of environment variables that set broker properties.
pub const ENV_PREFIX: &str = "KAFKA_CFG_";

const DEFAULTS: &str = include_str!("../defaults/server.properties");
const CATALOG: &str = include_str!("broker_config_keys.tsv");

/// Keys that kafka-bootstrap derives; setting them in any layer is an error.
pub const DERIVED_KEYS: &[&str] =
    &["broker.id", "listeners", "advertised.listeners", "zookeeper.connect", "broker.rack", "log.dirs"];

/// Key families whose names carry a user-chosen part (listener names, mechanisms).
const DYNAMIC_PREFIXES: &[&str] = &["listener.name.", "log.dir."];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    Int,
    Short,
    Long,
    Double,
    String,
    List,
    Class,
    Password,
}

/// Where a value came from; printed with `--dry-run` so operators can see why a value won.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    ClusterFile,
    Environment(String),
    Persisted,
    Derived,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "defaults"),
            Source::ClusterFile => write!(f, "cluster file"),
            Source::Environment(var) => write!(f, "environment {var}"),
            Source::Persisted => write!(f, "fleet manager"),
            Source::Derived => write!(f, "derived"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PropertyError {
    #[error("{source_desc}: `{key}` is not a Kafka broker property{hint}")]
    UnknownKey { key: String, source_desc: String, hint: String },
    #[error("{source_desc}: `{key}` must be {expected}, got `{value}`")]
    BadValue { key: String, value: String, expected: &'static str, source_desc: String },
    #[error("{source_desc}: `{key}` is derived by kafka-bootstrap and cannot be set (remove it; {why})")]
    Derived { key: String, source_desc: String, why: &'static str },
    #[error("environment variable {var}: the name after {ENV_PREFIX} is empty or not of the form WORD_WORD (e.g. KAFKA_CFG_LOG_RETENTION_HOURS)")]
    BadEnvName { var: String },
}

fn catalog() -> &'static HashMap<&'static str, ConfigType> {
    static CAT: OnceLock<HashMap<&'static str, ConfigType>> = OnceLock::new();
    CAT.get_or_init(|| {
        CATALOG
            .lines()
            .filter_map(|line| {
                let (key, ty) = line.split_once('\t')?;
                let ty = match ty.trim() {
                    "BOOLEAN" => ConfigType::Boolean,
                    "INT" => ConfigType::Int,
                    "SHORT" => ConfigType::Short,
                    "LONG" => ConfigType::Long,
                    "DOUBLE" => ConfigType::Double,
                    "LIST" => ConfigType::List,
                    "CLASS" => ConfigType::Class,
                    "PASSWORD" => ConfigType::Password,
                    _ => ConfigType::String,
                };
                Some((key, ty))
            })
            .collect()
    })
}

/// The type Kafka declares for `key`, or `None` for keys Kafka does not know.
pub fn key_type(key: &str) -> Option<ConfigType> {
    if let Some(t) = catalog().get(key) {
        return Some(*t);
    }
    DYNAMIC_PREFIXES.iter().any(|p| key.starts_with(p) && key.len() > p.len()).then_some(ConfigType::String)
}

fn closest_known_key(key: &str) -> Option<&'static str> {
    catalog()
        .keys()
        .map(|k| (strsim_levenshtein(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

// Small edit distance for "did you mean"; not worth a dependency.
fn strsim_levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks one key/value against Kafka's catalog and the derived keys.
pub fn validate(key: &str, value: &str, source: &Source) -> Result<(), PropertyError> {
    let source_desc = source.to_string();
    if DERIVED_KEYS.contains(&key) {
        let why = match key {
            "broker.id" => "IDs come from the fleet's ZooKeeper registry",
            "broker.rack" => "the rack is the host's availability zone",
            "zookeeper.connect" => "it comes from the cluster file's `zookeeper` and the cluster's chroot",
            "log.dirs" => "use --data-dir",
            _ => "use --port / --advertised-host",
        };
        return Err(PropertyError::Derived { key: key.to_string(), source_desc, why });
    }
    let Some(ty) = key_type(key) else {
        let hint = closest_known_key(key).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
        return Err(PropertyError::UnknownKey { key: key.to_string(), source_desc, hint });
    };
    let v = value.trim();
    let (ok, expected) = match ty {
        ConfigType::Boolean => (v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"), "true or false"),
        ConfigType::Int => (v.parse::<i32>().is_ok(), "a 32-bit integer"),
        ConfigType::Short => (v.parse::<i16>().is_ok(), "a 16-bit integer"),
        ConfigType::Long => (v.parse::<i64>().is_ok(), "a 64-bit integer"),
        ConfigType::Double => (v.parse::<f64>().is_ok_and(f64::is_finite), "a number"),
        ConfigType::Class => (!v.is_empty() && !v.contains(char::is_whitespace), "a Java class name"),
        ConfigType::String | ConfigType::List | ConfigType::Password => (true, ""),
    };
    if !ok {
        return Err(PropertyError::BadValue { key: key.to_string(), value: value.to_string(), expected, source_desc });
    }
    Ok(())
}

/// Maps `KAFKA_CFG_LOG_RETENTION_HOURS` to `log.retention.hours` (`__` is a literal `_`).
pub fn env_var_to_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    if rest.is_empty() || rest.starts_with('_') && !rest.starts_with("__") {
        return None;
    }
    let key = rest.to_ascii_lowercase().replace("__", "\u{0}").replace('_', ".").replace('\u{0}', "_");
    if key.split('.').any(str::is_empty) {
        return None;
    }
    Some(key)
}

/// The layered, validated broker properties and where each value came from.
#[derive(Clone, Debug, Default)]
pub struct LayeredProperties {
    values: BTreeMap<String, (String, Source)>,
}

impl LayeredProperties {
    /// Layer 1: the repo's defaults (trusted: a unit test validates them).
    pub fn with_defaults() -> Self {
        let mut p = Self::default();
        for (k, v) in parse_properties(DEFAULTS) {
            p.values.insert(k, (v, Source::Default));
        }
        p
    }

    /// Adds one layer; validates every entry before changing anything, so a bad layer leaves the
    /// properties as they were.
    pub fn apply<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, &'a str, Source)>,
    ) -> Result<(), PropertyError> {
        let entries: Vec<_> = entries.into_iter().collect();
        for (k, v, s) in &entries {
            validate(k, v, s)?;
        }
        for (k, v, s) in entries {
            self.values.insert(k.to_string(), (v.to_string(), s));
        }
        Ok(())
    }

    /// Layer 3, from an environment (passed in so tests need not touch the process's).
    pub fn apply_env(&mut self, env: impl IntoIterator<Item = (String, String)>) -> Result<(), PropertyError> {
        let mut layer = Vec::new();
        for (var, value) in env {
            if !var.starts_with(ENV_PREFIX) {
                continue;
            }
            let key = env_var_to_key(&var).ok_or_else(|| PropertyError::BadEnvName { var: var.clone() })?;
            layer.push((key, value, Source::Environment(var)));
        }
        // Stable order so errors are deterministic.
        layer.sort_by(|a, b| a.0.cmp(&b.0));
        self.apply(layer.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), s.clone())))
    }

    /// The derived keys, last; they bypass validation on purpose.
    pub fn set_derived(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_string(), (value.into(), Source::Derived));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    pub fn source(&self, key: &str) -> Option<&Source> {
        self.values.get(key).map(|(_, s)| s)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Source)> {
        self.values.iter().map(|(k, (v, s))| (k.as_str(), v.as_str(), s))
    }

    /// `server.properties` text, each line annotated with the layer it came from.
    pub fn render(&self) -> String {
        let mut out = String::from("# rendered by kafka-bootstrap; the comment after each value names its layer\n");
        for (k, (v, s)) in &self.values {
            let shown = if key_type(k) == Some(ConfigType::Password) { "<redacted in comment>" } else { "" };
            let _ = writeln!(out, "# {s}{}", if shown.is_empty() { String::new() } else { format!(" {shown}") });
            let _ = writeln!(out, "{k}={}", escape_value(v));
        }
        out
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Minimal Java-properties reader for the shipped defaults: `key=value`, `#` comments.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l[..i].trim().to_string(), l[i + 1..].trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_are_valid_kafka_properties() {
        for (k, v) in parse_properties(DEFAULTS) {
            validate(&k, &v, &Source::Default).unwrap_or_else(|e| panic!("default {k}: {e}"));
        }
    }

    #[test]
    fn env_names_map_to_keys() {
        assert_eq!(env_var_to_key("KAFKA_CFG_LOG_RETENTION_HOURS").as_deref(), Some("log.retention.hours"));
        assert_eq!(
            env_var_to_key("KAFKA_CFG_LISTENER_NAME_INTERNAL__SSL_SSL_KEYSTORE_TYPE").as_deref(),
            Some("listener.name.internal_ssl.ssl.keystore.type")
        );
        assert_eq!(env_var_to_key("KAFKA_CFG_"), None);
        assert_eq!(env_var_to_key("KAFKA_CFG_LOG__"), Some("log_".into()));
        assert_eq!(env_var_to_key("KAFKA_CFG_A__B"), Some("a_b".into()));
        assert_eq!(env_var_to_key("KAFKA_CFG_LOG..X"), None);
    }

    #[test]
    fn precedence_defaults_file_env_persisted() {
        let mut p = LayeredProperties::with_defaults();
        let default_partitions = p.get("num.partitions").map(str::to_string);
        assert!(default_partitions.is_some());
        p.apply([("num.partitions", "2", Source::ClusterFile), ("log.retention.hours", "4", Source::ClusterFile)])
            .expect("file layer");
        p.apply_env([("KAFKA_CFG_LOG_RETENTION_HOURS".to_string(), "6".to_string())]).expect("env layer");
        p.apply([("log.retention.hours", "8", Source::Persisted), ("num.network.threads", "5", Source::Persisted)])
            .expect("persisted layer");
        assert_eq!(p.get("num.partitions"), Some("2"));
        assert_eq!(p.source("num.partitions"), Some(&Source::ClusterFile));
        assert_eq!(p.get("log.retention.hours"), Some("8"));
        assert_eq!(p.get("num.network.threads"), Some("5"));
    }

    #[test]
    fn unknown_key_names_the_variable_and_suggests() {
        let mut p = LayeredProperties::with_defaults();
        let before = p.render();
        let err = p
            .apply_env([
                ("KAFKA_CFG_NUM_PARTITIONS".to_string(), "3".to_string()),
                ("KAFKA_CFG_LOG_RETENTION_HOUR".to_string(), "6".to_string()),
            ])
            .expect_err("typo");
        let msg = err.to_string();
        assert!(msg.contains("KAFKA_CFG_LOG_RETENTION_HOUR"), "{msg}");
        assert!(msg.contains("log.retention.hours"), "{msg}");
        assert_eq!(p.render(), before, "a rejected layer must change nothing");
    }

    #[test]
    fn typed_values_are_checked() {
        let e = validate("log.retention.hours", "four", &Source::ClusterFile).expect_err("not a number");
        assert!(e.to_string().contains("32-bit integer"));
        assert!(validate("auto.create.topics.enable", "yes", &Source::ClusterFile).is_err());
        assert!(validate("log.retention.ms", "99999999999", &Source::ClusterFile).is_ok());
        assert!(validate("broker.id", "3", &Source::ClusterFile).is_err());
        assert!(validate("listener.name.internal.ssl.keystore.type", "JKS", &Source::ClusterFile).is_ok());
    }
}
