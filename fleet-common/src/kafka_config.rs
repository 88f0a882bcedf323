//! Kafka's own catalogs of broker and topic configs (generated from the pinned Kafka jar by `make
//! kafka-config-catalog`: each key's type, validator and, for brokers, how a change reaches a
//! running broker) and the checks every layer of broker properties goes through: the key is one
//! Kafka knows (or a listener-scoped form of one), the value fits its type and Kafka's validator,
//! neither holds a control character, and the key is not one the fleet derives per host. Shared
//! by `kafka-bootstrap` (its property layers) and the fleet manager (a cluster's `brokerConfig`,
//! a topic's `configs`).
//!
//! Control characters are refused, not escaped: a key or value that could end a line of
//! `server.properties` could start an entry of its own (`advertised.listeners`, `zookeeper.connect`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// Prefix of environment variables that set broker properties.
pub const ENV_PREFIX: &str = "KAFKA_CFG_";

const CATALOG: &str = include_str!("kafka_config_catalog.tsv");

/// Keys that kafka-bootstrap derives; setting them in any layer is an error.
pub const DERIVED_KEYS: &[&str] = &[
    "broker.id",
    "listeners",
    "advertised.listeners",
    "zookeeper.connect",
    "broker.rack",
    "log.dirs",
    "log.dir",
    // KRaft (Kafka 4.x): the node's identity and its quorum come from the fleet.
    "node.id",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "metadata.log.dir",
];

/// `listener.name.<listener>.<config>`: configs Kafka lets a listener override.
const LISTENER_PREFIX: &str = "listener.name.";
/// The longest key or value accepted (Kafka has none; a properties line this long is a mistake).
pub const MAX_VALUE_CHARS: usize = 8192;

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

/// How a change of a broker config reaches a running broker (Kafka's "dynamic update mode").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpdateMode {
    /// Read at start only: a change needs a restart of each broker.
    ReadOnly,
    /// Changed per broker with the Admin API (`--entity-name <id>`).
    PerBroker,
    /// Changed for every broker at once with the Admin API (`--entity-default`), or per broker.
    ClusterWide,
}

impl UpdateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateMode::ReadOnly => "read-only",
            UpdateMode::PerBroker => "per-broker",
            UpdateMode::ClusterWide => "cluster-wide",
        }
    }
}

/// Kafka's validator of a config, as far as it can be written down.
#[derive(Clone, Debug, PartialEq)]
pub enum Validator {
    None,
    Range { min: Option<f64>, max: Option<f64> },
    /// A range, or one extra value (compression.gzip.level: 1..=9 or -1).
    RangeOr { min: f64, max: f64, extra: f64 },
    OneOf { values: Vec<&'static str>, case_insensitive: bool },
    ListOf(Vec<&'static str>),
    NonEmpty,
}

/// One catalog entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigKey {
    pub name: &'static str,
    pub ty: ConfigType,
    /// Brokers only (topic configs are all dynamic).
    pub mode: UpdateMode,
    pub validator: Validator,
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
    BadValue { key: String, value: String, expected: String, source_desc: String },
    #[error("{source_desc}: `{key}` is derived by kafka-bootstrap and cannot be set (remove it; {why})")]
    Derived { key: String, source_desc: String, why: &'static str },
    #[error("{source_desc}: the {part} of `{shown}` holds a control character ({what}): remove it; keys and values are single-line text")]
    ControlCharacter { shown: String, part: &'static str, what: String, source_desc: String },
    #[error("{source_desc}: `{shown}` is not a config name: use Kafka's names (letters, digits, `.`, `-`, `_`)")]
    BadKeyCharacters { shown: String, source_desc: String },
    #[error("{source_desc}: the value of `{key}` has {chars} characters, more than {MAX_VALUE_CHARS}")]
    TooLong { key: String, chars: usize, source_desc: String },
    #[error("environment variable {var}: the name after {ENV_PREFIX} is empty or not of the form WORD_WORD (e.g. KAFKA_CFG_LOG_RETENTION_HOURS)")]
    BadEnvName { var: String },
}

struct Catalogs {
    broker: HashMap<&'static str, ConfigKey>,
    topic: HashMap<&'static str, ConfigKey>,
}

fn parse_validator(text: &'static str) -> Validator {
    let number = |s: &str| if s.is_empty() { None } else { s.parse::<f64>().ok() };
    let list = |s: &'static str| s.split('|').filter(|v| !v.is_empty()).collect::<Vec<_>>();
    if let Some(rest) = text.strip_prefix("range:") {
        let (min, max) = rest.split_once(':').unwrap_or((rest, ""));
        Validator::Range { min: number(min), max: number(max) }
    } else if let Some(rest) = text.strip_prefix("range-or:") {
        let parts: Vec<Option<f64>> = rest.split(':').map(number).collect();
        match parts.as_slice() {
            [Some(min), Some(max), Some(extra)] => Validator::RangeOr { min: *min, max: *max, extra: *extra },
            _ => Validator::None,
        }
    } else if let Some(rest) = text.strip_prefix("one-of:") {
        Validator::OneOf { values: list(rest), case_insensitive: false }
    } else if let Some(rest) = text.strip_prefix("one-of-ci:") {
        Validator::OneOf { values: list(rest), case_insensitive: true }
    } else if let Some(rest) = text.strip_prefix("list-of:") {
        Validator::ListOf(list(rest))
    } else if text == "non-empty" {
        Validator::NonEmpty
    } else {
        Validator::None
    }
}

fn parse_type(text: &str) -> ConfigType {
    match text {
        "BOOLEAN" => ConfigType::Boolean,
        "INT" => ConfigType::Int,
        "SHORT" => ConfigType::Short,
        "LONG" => ConfigType::Long,
        "DOUBLE" => ConfigType::Double,
        "LIST" => ConfigType::List,
        "CLASS" => ConfigType::Class,
        "PASSWORD" => ConfigType::Password,
        _ => ConfigType::String,
    }
}

fn catalogs() -> &'static Catalogs {
    static CAT: OnceLock<Catalogs> = OnceLock::new();
    CAT.get_or_init(|| {
        let mut broker = HashMap::new();
        let mut topic = HashMap::new();
        for line in CATALOG.lines() {
            let fields: Vec<&'static str> = line.split('\t').collect();
            let [scope, name, ty, mode, validator] = fields.as_slice() else { continue };
            let mode = match *mode {
                "per-broker" => UpdateMode::PerBroker,
                "cluster-wide" => UpdateMode::ClusterWide,
                _ => UpdateMode::ReadOnly,
            };
            let key = ConfigKey { name, ty: parse_type(ty), mode, validator: parse_validator(validator) };
            match *scope {
                "broker" => broker.insert(*name, key),
                "topic" => topic.insert(*name, key),
                _ => None,
            };
        }
        Catalogs { broker, topic }
    })
}

/// Every broker config Kafka declares (sorted by key).
pub fn broker_catalog() -> Vec<&'static ConfigKey> {
    let mut all: Vec<_> = catalogs().broker.values().collect();
    all.sort_by_key(|k| k.name);
    all
}

/// Every topic config Kafka declares (sorted by key).
pub fn topic_catalog() -> Vec<&'static ConfigKey> {
    let mut all: Vec<_> = catalogs().topic.values().collect();
    all.sort_by_key(|k| k.name);
    all
}

/// Every broker property Kafka declares, with its type (sorted by key).
pub fn catalog_entries() -> Vec<(&'static str, ConfigType)> {
    broker_catalog().into_iter().map(|k| (k.name, k.ty)).collect()
}

pub fn topic_config(key: &str) -> Option<&'static ConfigKey> {
    catalogs().topic.get(key)
}

/// The catalog entry of a broker key: a key Kafka declares, or a listener-scoped override
/// (`listener.name.<listener>.<config>`, SASL ones also `...<mechanism>.sasl.*`) of one a listener
/// may override. `None` for keys Kafka does not know.
pub fn broker_config(key: &str) -> Option<&'static ConfigKey> {
    if let Some(k) = catalogs().broker.get(key) {
        return Some(k);
    }
    let rest = key.strip_prefix(LISTENER_PREFIX)?;
    let (listener, config) = rest.split_once('.')?;
    let listener_ok = !listener.is_empty() && listener.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !listener_ok {
        return None;
    }
    let scoped = |name: &str| -> Option<&'static ConfigKey> {
        let k = catalogs().broker.get(name)?;
        let overridable = name.starts_with("ssl.")
            || name.starts_with("sasl.")
            || matches!(name, "connections.max.reauth.ms" | "max.connections" | "max.connection.creation.rate" | "principal.builder.class" | "connections.max.idle.ms");
        overridable.then_some(k)
    };
    if let Some(k) = scoped(config) {
        return Some(k);
    }
    // `<mechanism>.sasl.jaas.config` and the other per-mechanism SASL settings.
    let (mechanism, sasl) = config.split_once('.')?;
    let mechanism_ok = !mechanism.is_empty() && mechanism.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (mechanism_ok && sasl.starts_with("sasl.")).then(|| scoped(sasl)).flatten()
}

/// The type Kafka declares for `key`, or `None` for keys Kafka does not know.
pub fn key_type(key: &str) -> Option<ConfigType> {
    broker_config(key).map(|k| k.ty)
}

/// How a change of `key` reaches running brokers (`None` for unknown keys).
pub fn update_mode(key: &str) -> Option<UpdateMode> {
    let k = broker_config(key)?;
    // A listener-scoped override is changed per broker, like the listener itself.
    if key.starts_with(LISTENER_PREFIX) && k.mode != UpdateMode::ReadOnly {
        return Some(UpdateMode::PerBroker);
    }
    Some(k.mode)
}

fn closest_known_key(key: &str) -> Option<&'static str> {
    catalogs()
        .broker
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

/// Text with control characters shown escaped (`\n`, `\r`, `\u{1b}`), cut to 80 characters: safe
/// to put into an error message that ends up on a terminal.
pub fn shown(text: &str) -> String {
    shown_within(text, 80)
}

/// [`shown`], cut to `max` characters.
pub fn shown_within(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The first control character of `text`, named (`\r`, `U+001B`).
pub fn control_character(text: &str) -> Option<String> {
    text.chars().find(|c| c.is_control()).map(|c| match c {
        '\n' => "\\n (line feed)".to_string(),
        '\r' => "\\r (carriage return)".to_string(),
        '\t' => "\\t (tab)".to_string(),
        c => format!("U+{:04X}", c as u32),
    })
}

/// Checks a key and a value for characters no config may hold: a control character anywhere, or
/// a key outside Kafka's name characters.
fn check_text(key: &str, value: &str, source_desc: &str) -> Result<(), PropertyError> {
    if let Some(what) = control_character(key) {
        return Err(PropertyError::ControlCharacter { shown: shown(key), part: "name", what, source_desc: source_desc.to_string() });
    }
    let key_ok = !key.is_empty() && key.len() <= 255 && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !key_ok {
        return Err(PropertyError::BadKeyCharacters { shown: shown(key), source_desc: source_desc.to_string() });
    }
    if let Some(what) = control_character(value) {
        return Err(PropertyError::ControlCharacter { shown: key.to_string(), part: "value", what, source_desc: source_desc.to_string() });
    }
    let chars = value.chars().count();
    if chars > MAX_VALUE_CHARS {
        return Err(PropertyError::TooLong { key: key.to_string(), chars, source_desc: source_desc.to_string() });
    }
    Ok(())
}

/// Checks `value` against a config's type and validator: `Err(expected)` says what it must be.
pub fn check_value(key: &ConfigKey, value: &str) -> Result<(), String> {
    let v = value.trim();
    let (ok, expected) = match key.ty {
        ConfigType::Boolean => (v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"), "true or false".to_string()),
        ConfigType::Int => (v.parse::<i32>().is_ok(), "a 32-bit integer".to_string()),
        ConfigType::Short => (v.parse::<i16>().is_ok(), "a 16-bit integer".to_string()),
        ConfigType::Long => (v.parse::<i64>().is_ok(), "a 64-bit integer".to_string()),
        ConfigType::Double => (v.parse::<f64>().is_ok_and(f64::is_finite), "a number".to_string()),
        ConfigType::Class => (!v.is_empty() && !v.contains(char::is_whitespace), "a Java class name".to_string()),
        ConfigType::String | ConfigType::List | ConfigType::Password => (true, String::new()),
    };
    if !ok {
        return Err(expected);
    }
    let number = || v.parse::<f64>().ok();
    let fmt = |n: f64| if n.fract() == 0.0 { format!("{}", n as i64) } else { n.to_string() };
    match &key.validator {
        Validator::None => Ok(()),
        Validator::Range { min, max } => {
            let Some(n) = number() else { return Ok(()) };
            let in_range = min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m);
            if in_range {
                Ok(())
            } else {
                Err(match (min, max) {
                    (Some(lo), Some(hi)) => format!("between {} and {}", fmt(*lo), fmt(*hi)),
                    (Some(lo), None) => format!("at least {}", fmt(*lo)),
                    (None, Some(hi)) => format!("at most {}", fmt(*hi)),
                    (None, None) => "a number".to_string(),
                })
            }
        }
        Validator::RangeOr { min, max, extra } => match number() {
            Some(n) if (n >= *min && n <= *max) || n == *extra => Ok(()),
            _ => Err(format!("between {} and {}, or {}", fmt(*min), fmt(*max), fmt(*extra))),
        },
        Validator::OneOf { values, case_insensitive } => {
            let found = values.iter().any(|x| if *case_insensitive { x.eq_ignore_ascii_case(v) } else { *x == v });
            if found {
                Ok(())
            } else {
                Err(format!("one of {}", values.join(", ")))
            }
        }
        Validator::ListOf(values) => {
            let items: Vec<&str> = if v.is_empty() { Vec::new() } else { v.split(',').map(str::trim).collect() };
            match items.iter().find(|i| !values.contains(i)) {
                None => Ok(()),
                Some(_) => Err(format!("a comma-separated list of {}", values.join(", "))),
            }
        }
        Validator::NonEmpty => {
            if v.is_empty() {
                Err("a non-empty string".to_string())
            } else {
                Ok(())
            }
        }
    }
}

/// Checks one key/value against Kafka's catalog, its validators and the derived keys.
pub fn validate(key: &str, value: &str, source: &Source) -> Result<(), PropertyError> {
    let source_desc = source.to_string();
    check_text(key, value, &source_desc)?;
    if DERIVED_KEYS.contains(&key) {
        let why = match key {
            "broker.id" | "node.id" => "IDs come from the fleet's ZooKeeper registry",
            "process.roles" => "a host's role is its launch's (kafka-bootstrap --role)",
            "controller.quorum.voters" | "controller.quorum.bootstrap.servers" | "controller.listener.names" => {
                "the quorum is formed through the fleet's ZooKeeper (a dynamic quorum: no static voter list)"
            }
            "broker.rack" => "the rack is the host's availability zone",
            "zookeeper.connect" => "it comes from the cluster file's `zookeeper` and the cluster's chroot",
            "log.dirs" | "log.dir" | "metadata.log.dir" => "use --data-dir",
            _ => "use --port / --advertised-host",
        };
        return Err(PropertyError::Derived { key: key.to_string(), source_desc, why });
    }
    let Some(entry) = broker_config(key) else {
        let hint = closest_known_key(key).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
        return Err(PropertyError::UnknownKey { key: key.to_string(), source_desc, hint });
    };
    check_value(entry, value).map_err(|expected| PropertyError::BadValue { key: key.to_string(), value: shown(value), expected, source_desc })
}

/// A topic config checked against Kafka's topic catalog: `Err` says what is wrong (the caller
/// names the field).
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    if let Some(what) = control_character(key) {
        return Err(format!("the name holds a control character ({what})"));
    }
    let Some(entry) = topic_config(key) else {
        return Err(format!("`{}` is not a Kafka topic config (see kafka-configs --describe --all)", shown(key)));
    };
    if let Some(what) = control_character(value) {
        return Err(format!("the value holds a control character ({what}): values are single-line text"));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(format!("the value is longer than {MAX_VALUE_CHARS} characters"));
    }
    check_value(entry, value).map_err(|expected| format!("must be {expected}, got `{}`", shown(value)))
}

/// A value as a line of a Java properties file holds it: `\` doubled, a leading space escaped
/// (Java strips it), every character outside printable ASCII as `\uXXXX` (Kafka reads the file
/// as ISO-8859-1). Values never hold control characters (validated); any that reach here are
/// escaped the same way, so no value can end its line.
pub fn escape_properties_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if i == 0 => out.push_str("\\ "),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_loaded_with_validators_and_modes() {
        let io = broker_config("num.io.threads").expect("known");
        assert_eq!(io.ty, ConfigType::Int);
        assert_eq!(io.mode, UpdateMode::ClusterWide);
        assert_eq!(io.validator, Validator::Range { min: Some(1.0), max: None });
        assert_eq!(broker_config("zookeeper.session.timeout.ms").map(|k| k.mode), Some(UpdateMode::ReadOnly));
        assert!(topic_config("cleanup.policy").is_some());
        assert!(broker_catalog().len() > 300);
    }

    #[test]
    fn control_characters_are_refused_in_keys_and_values() {
        let src = Source::Persisted;
        let injected = validate("log.cleanup.policy", "delete\radvertised.listeners=PLAINTEXT://127.0.0.1:19999", &src).expect_err("CR");
        assert!(matches!(injected, PropertyError::ControlCharacter { part: "value", .. }), "{injected}");
        assert!(injected.to_string().contains("carriage return"), "{injected}");
        let key = validate("listener.name.zz\nbroker.rack", "injected-rack", &src).expect_err("LF in key");
        assert!(matches!(key, PropertyError::ControlCharacter { part: "name", .. }), "{key}");
        assert!(!key.to_string().contains('\n'), "the message itself is single-line: {key}");
        for bad in ["a\u{b}", "\u{1b}[31m", "x\u{85}y", "x\u{7f}"] {
            assert!(validate("log.cleanup.policy", bad, &src).is_err(), "{bad:?}");
        }
        assert!(validate("listener.name.zz broker.rack", "x", &src).is_err());
        assert!(validate("listener.name.zz=broker.rack", "x", &src).is_err());
    }

    #[test]
    fn listener_scoped_keys_must_name_an_overridable_config() {
        let src = Source::Persisted;
        assert!(validate("listener.name.internal.ssl.keystore.type", "JKS", &src).is_ok());
        assert!(validate("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config", "x required;", &src).is_ok());
        for key in ["listener.name.zz.broker.rack", "listener.name.x.advertised.listeners", "listener.name.x.zookeeper.connect", "listener.name..ssl.keystore.type", "listener.name.X.ssl.keystore.type", "listener.name.a.b.ssl.keystore.type"] {
            assert!(validate(key, "v", &src).is_err(), "{key}");
        }
        assert!(validate("log.dir", "/tmp/x", &src).is_err(), "log.dir is derived too");
    }

    #[test]
    fn kafka_validators_are_applied() {
        let src = Source::ClusterFile;
        let e = validate("num.io.threads", "-5", &src).expect_err("range");
        assert!(e.to_string().contains("at least 1"), "{e}");
        assert!(validate("num.io.threads", "8", &src).is_ok());
        assert!(validate("compression.type", "brotli", &src).is_err());
        assert!(validate("compression.gzip.level", "-1", &src).is_ok());
        assert!(validate("compression.gzip.level", "0", &src).is_err());
        assert!(validate("log.cleanup.policy", "compact,delete", &src).is_ok());
        assert!(validate("log.cleanup.policy", "compact,archive", &src).is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("segment.bytes", "10").is_err());
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
    }

    #[test]
    fn values_are_escaped_for_a_latin1_properties_reader() {
        assert_eq!(escape_properties_value("a\\b"), "a\\\\b");
        assert_eq!(escape_properties_value(" x"), "\\ x");
        assert_eq!(escape_properties_value("é"), "\\u00e9");
        assert_eq!(escape_properties_value("\u{1F600}"), "\\ud83d\\ude00");
        assert_eq!(escape_properties_value("a\nb\rc"), "a\\u000ab\\u000dc");
    }
}
