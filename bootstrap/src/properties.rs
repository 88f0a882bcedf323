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

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use fleet_common::kafka_config::{key_type, validate, ConfigType, PropertyError, Source, DERIVED_KEYS, ENV_PREFIX};

const DEFAULTS: &str = include_str!("../defaults/server.properties");

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

    /// Drops the keys a mode does not have (ZooKeeper's, on a KRaft node).
    pub fn remove_where(&mut self, unused: impl Fn(&str) -> bool) {
        self.values.retain(|k, _| !unused(k));
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

/// See [`fleet_common::kafka_config::escape_properties_value`]: no value can end its line.
fn escape_value(v: &str) -> String {
    fleet_common::kafka_config::escape_properties_value(v)
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
