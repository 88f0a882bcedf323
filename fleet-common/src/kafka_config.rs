//! Kafka's own catalog of broker configs (generated from the pinned Kafka jar by `make
//! broker-config-keys`) and the checks every layer of broker properties goes through: the key is
//! one Kafka knows, the value fits its type, and it is not one the fleet derives per host. Shared
//! by `kafka-bootstrap` (its property layers) and the fleet manager (a cluster's `brokerConfig`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// Prefix of environment variables that set broker properties.
pub const ENV_PREFIX: &str = "KAFKA_CFG_";

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

/// Every broker property Kafka 3.9 declares, with its type (sorted by key).
pub fn catalog_entries() -> Vec<(&'static str, ConfigType)> {
    let mut all: Vec<_> = catalog().iter().map(|(k, t)| (*k, *t)).collect();
    all.sort_by_key(|(k, _)| *k);
    all
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

