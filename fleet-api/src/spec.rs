//! Declarative specs, parsed in two stages.
//!
//! 1. [`RawDocument`] -> [`Declared`]: exactly what the user wrote (kubectl-like envelope, unknown
//!    fields rejected), checked on its own, no I/O. Every error names the field.
//! 2. [`Declared`] -> effective specs ([`ClusterSpec`], [`TopicSpec`]): defaults from the priority
//!    class filled in, and checks that need other resources (the topic's cluster exists, the
//!    replication factor fits the cluster's broker count), against a snapshot the caller supplies.
//!
//! The store keeps the declared form (what the user said); the effective form is derived on read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "kafka-fleet.io/v1";
/// Release lines a cluster may run: 3.9 in ZooKeeper mode, 4.4 in KRaft mode.
pub const SUPPORTED_KAFKA_VERSIONS: &[&str] = &["3.9", "4.4"];
/// The 4.x line pinned beside 3.9 (`dev/pom-kafka4.xml`).
pub const KRAFT_KAFKA_VERSION: &str = "4.4";
/// A KRaft cluster's controller quorum when `controllers` is not written.
pub const DEFAULT_CONTROLLERS: i64 = 3;
/// Combined mode (each node both broker and controller) runs at most this many nodes.
pub const MAX_COMBINED_NODES: i64 = 3;
pub const MAX_BROKERS: i64 = 200;
pub const MAX_PARTITIONS: i64 = 10_000;
pub const MAX_REPLICATION: i64 = 7;
/// Shown in place of a password-type broker config to tokens without write scope.
pub const HIDDEN_VALUE: &str = "<hidden>";

/// A rejected input: the field (a dotted path from the document's root) and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{field}: {message}", resource.as_deref().map(|r| format!("{r}: ")).unwrap_or_default())]
pub struct FieldError {
    /// `Kind/name` of the document, when known.
    pub resource: Option<String>,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { resource: None, field: field.into(), message: message.into() }
    }
    pub fn on(mut self, resource: impl Into<String>) -> Self {
        if self.resource.is_none() {
            self.resource = Some(resource.into());
        }
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Kind {
    KafkaCluster,
    Topic,
    Route,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::KafkaCluster => "KafkaCluster",
            Kind::Topic => "Topic",
            Kind::Route => "Route",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "KafkaCluster" => Some(Kind::KafkaCluster),
            "Topic" => Some(Kind::Topic),
            "Route" => Some(Kind::Route),
            _ => None,
        }
    }
}

/// Priority classes of the seed design: how many copies and how long data is kept by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriorityClass {
    /// Error logs, traces.
    Low,
    /// Most data.
    Medium,
    /// Streaming activity.
    High,
}

impl PriorityClass {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }
    pub fn replication_factor(self) -> u16 {
        match self {
            Self::Low | Self::Medium => 2,
            Self::High => 3,
        }
    }
    pub fn retention_hours(self) -> i64 {
        match self {
            Self::Low => 2,
            Self::Medium => 4,
            Self::High => 24,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    Ec2,
}

/// One YAML/JSON document as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: RawMetadata,
    pub spec: serde_json::Value,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawMetadata {
    pub name: String,
    /// The generation the writer last read; a stale one is refused (409).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A YAML scalar; Kafka configs are strings in the end.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    pub fn to_config(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclaredClusterSpec {
    /// Kafka release line, e.g. "3.9".
    pub kafka_version: String,
    pub brokers: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Racks; brokers are spread over them evenly.
    pub availability_zones: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub broker_config: BTreeMap<String, Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Built by a failover: its version, zones, instance type, provider and broker configs never
    /// change (a change means building another cluster); its size may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// KRaft (4.x): the controller quorum's size, 1, 3 (default) or 5, on hosts of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<i64>,
    /// KRaft (4.x): the controllers' instance type (default: `instanceType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_instance_type: Option<String>,
    /// KRaft (4.x): every node is both broker and controller (at most 3 nodes; for small
    /// clusters only: a broker's load then slows the quorum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined: Option<bool>,
}

impl DeclaredClusterSpec {
    pub fn is_immutable(&self) -> bool {
        self.immutable == Some(true)
    }
    /// Runs in KRaft mode (a 4.x line).
    pub fn is_kraft(&self) -> bool {
        is_kraft_version(&self.kafka_version)
    }
    /// What no apply may change on any cluster, immutable or not: the release line (ZooKeeper
    /// mode and KRaft mode are different clusters), combined mode, and (until quorum resizing is
    /// built) the controller count. Returns the field and how to move instead.
    pub fn in_place_difference(&self, other: &DeclaredClusterSpec) -> Option<(&'static str, String)> {
        let line = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
        if line(&self.kafka_version) != line(&other.kafka_version) {
            return Some((
                "spec.kafkaVersion",
                format!(
                    "{} -> {}: a cluster does not change release line in place ({} is {}, {} is {}); declare a new cluster of that version \
                     under another name, move the route to it (apply the route with spec.cluster: NEW), then delete this one",
                    self.kafka_version,
                    other.kafka_version,
                    self.kafka_version,
                    if self.is_kraft() { "KRaft mode" } else { "ZooKeeper mode" },
                    other.kafka_version,
                    if other.is_kraft() { "KRaft mode" } else { "ZooKeeper mode" },
                ),
            ));
        }
        if self.combined.unwrap_or(false) != other.combined.unwrap_or(false) {
            return Some(("spec.combined", "a cluster's nodes keep their roles: declare another cluster with the other layout and move the route to it".into()));
        }
        if self.is_kraft() && self.combined.unwrap_or(false) && self.brokers != other.brokers {
            return Some((
                "spec.brokers",
                format!(
                    "{} -> {}: in combined mode every node is a voter, and resizing a controller quorum in place is not built yet; \
                     declare a cluster of the new size (or with controllers of their own) and move the route to it",
                    self.brokers, other.brokers
                ),
            ));
        }
        if self.is_kraft() && self.broker_config != other.broker_config {
            return Some((
                "spec.brokerConfig",
                "changing a KRaft cluster's broker configs is not supported yet (config rollouts speak ZooKeeper); \
                 declare the configs with the cluster, or declare a new cluster with them and move the route to it"
                    .into(),
            ));
        }
        // Controllers of their own are resized in place: voters added or removed one at a time
        // through Kafka's dynamic quorum (the planner's voter steps).
        None
    }
    /// The fields an immutable cluster keeps for life: the first one that differs.
    pub fn immutable_difference(&self, other: &DeclaredClusterSpec) -> Option<&'static str> {
        if self.kafka_version != other.kafka_version {
            Some("spec.kafkaVersion")
        } else if self.instance_type != other.instance_type {
            Some("spec.instanceType")
        } else if self.availability_zones != other.availability_zones {
            Some("spec.availabilityZones")
        } else if self.priority_class != other.priority_class {
            Some("spec.priorityClass")
        } else if self.broker_config != other.broker_config {
            Some("spec.brokerConfig")
        } else if self.provider != other.provider {
            Some("spec.provider")
        } else if self.immutable != other.immutable {
            Some("spec.immutable")
        } else if self.controller_instance_type != other.controller_instance_type {
            Some("spec.controllerInstanceType")
        } else {
            None
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclaredTopicSpec {
    pub cluster: String,
    pub partitions: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub configs: BTreeMap<String, Scalar>,
    /// Producers pick partitions by key: adding partitions moves keys, so scale-up leaves the
    /// topic alone unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyed: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclaredRouteSpec {
    /// The cluster producers of this route write to.
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What a fallback does with the cluster it leaves: `standby` (default, kept warm) or
    /// `teardown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<String>,
    /// Automatic failover: conditions on the healthcheck's and the auditor's signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<DeclaredFailoverPolicy>,
}

/// A route's failover policy as written.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclaredFailoverPolicy {
    /// `failover` (default) or `recommend` (journal and metrics only: what it would have done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A standby cluster to fail over to (default: a fresh build of the route's cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Any one holding for its duration fires.
    pub conditions: Vec<DeclaredCondition>,
    /// At most one automatic failover per route in this window (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cool_down: Option<String>,
    /// Fall back automatically once the standby has been healthy this long (default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_fallback_after: Option<String>,
    /// The auditor (`http://host:port`) whose `/api/figures` the auditor signals come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclaredCondition {
    pub signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// How long it must hold, e.g. `30s`.
    #[serde(rename = "for")]
    pub for_: String,
}

impl DeclaredFailoverPolicy {
    /// Checks the policy on its own (fields named from `spec.failover`).
    pub fn resolve(&self) -> Result<crate::route::FailoverPolicy, FieldError> {
        use crate::route::{parse_duration_ms, Condition, FailoverPolicy, Signal};
        let recommend = match self.mode.as_deref() {
            None | Some("failover") => false,
            Some("recommend") => true,
            Some(m) => return Err(FieldError::new("spec.failover.mode", format!("`{m}` is not a mode: use failover or recommend"))),
        };
        if let Some(to) = &self.to {
            fleet_common::paths::validate_cluster_name(to).map_err(|m| FieldError::new("spec.failover.to", m))?;
        }
        if self.conditions.is_empty() {
            return Err(FieldError::new("spec.failover.conditions", "list at least one condition, e.g. {signal: offlinePartitions, above: 0, for: 30s}"));
        }
        let mut conditions = Vec::new();
        for (i, c) in self.conditions.iter().enumerate() {
            let field = |f: &str| format!("spec.failover.conditions[{i}].{f}");
            let names: Vec<&str> = Signal::ALL.iter().map(|s| s.as_str()).collect();
            let signal = Signal::parse(&c.signal)
                .ok_or_else(|| FieldError::new(field("signal"), format!("`{}` is not a signal: use one of {}", c.signal, names.join(", "))))?;
            let (above, threshold) = match (c.above, c.below) {
                (Some(v), None) => (true, v),
                (None, Some(v)) => (false, v),
                _ => return Err(FieldError::new(field("above"), "give exactly one of above and below")),
            };
            let (lo, hi) = signal.range();
            if !threshold.is_finite() || threshold < lo || threshold > hi {
                let f = if above { "above" } else { "below" };
                return Err(FieldError::new(field(f), format!("{threshold} is out of range for {}: use {lo} to {hi}", signal.as_str())));
            }
            let for_ms = parse_duration_ms(&c.for_).map_err(|m| FieldError::new(field("for"), m))?;
            if signal.from_auditor() && self.auditor.is_none() {
                return Err(FieldError::new(field("signal"), format!("{} comes from the auditor: set spec.failover.auditor to its address", signal.as_str())));
            }
            conditions.push(Condition { signal, above, threshold, for_ms });
        }
        let cool_down_ms = match &self.cool_down {
            Some(d) => parse_duration_ms(d).map_err(|m| FieldError::new("spec.failover.coolDown", m))?,
            None => 30 * 60_000,
        };
        let auto_fallback_after_ms = match &self.auto_fallback_after {
            Some(d) => Some(parse_duration_ms(d).map_err(|m| FieldError::new("spec.failover.autoFallbackAfter", m))?),
            None => None,
        };
        if let Some(a) = &self.auditor {
            let rest = a.strip_prefix("http://").or_else(|| a.strip_prefix("https://"));
            let ok = rest.is_some_and(|r| r.chars().count() <= 248 && r.chars().all(|c| c.is_ascii_graphic()));
            if !ok {
                return Err(FieldError::new("spec.failover.auditor", format!("`{a}` is not an http(s) address, e.g. http://auditor:8081")));
            }
        }
        Ok(FailoverPolicy { recommend, to: self.to.clone(), conditions, cool_down_ms, auto_fallback_after_ms, auditor: self.auditor.clone() })
    }
}

impl DeclaredRouteSpec {
    pub fn retain(&self) -> crate::route::Retain {
        self.retain.as_deref().and_then(crate::route::Retain::parse).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "spec")]
pub enum DeclaredSpec {
    KafkaCluster(DeclaredClusterSpec),
    Topic(DeclaredTopicSpec),
    Route(DeclaredRouteSpec),
}

/// A document that passed stage 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    pub name: String,
    pub generation: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub spec: DeclaredSpec,
}

impl Declared {
    pub fn kind(&self) -> Kind {
        match self.spec {
            DeclaredSpec::KafkaCluster(_) => Kind::KafkaCluster,
            DeclaredSpec::Topic(_) => Kind::Topic,
            DeclaredSpec::Route(_) => Kind::Route,
        }
    }
    /// The store key: topics are named within their cluster.
    pub fn key(&self) -> String {
        match &self.spec {
            DeclaredSpec::Topic(t) => topic_key(&t.cluster, &self.name),
            _ => self.name.clone(),
        }
    }
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind().as_str(), self.key())
    }
    /// The cluster the resource belongs to (a cluster's is itself; a route's the one it points at).
    pub fn owner_cluster(&self) -> &str {
        match &self.spec {
            DeclaredSpec::KafkaCluster(_) => &self.name,
            DeclaredSpec::Topic(t) => &t.cluster,
            DeclaredSpec::Route(r) => &r.cluster,
        }
    }
    pub fn spec_json(&self) -> serde_json::Value {
        match &self.spec {
            DeclaredSpec::KafkaCluster(s) => serde_json::to_value(s),
            DeclaredSpec::Topic(s) => serde_json::to_value(s),
            DeclaredSpec::Route(s) => serde_json::to_value(s),
        }
        .unwrap_or(serde_json::Value::Null)
    }
    /// The document form (what `fleetctl get -o yaml` prints and `apply` accepts).
    pub fn to_document(&self) -> RawDocument {
        RawDocument {
            api_version: API_VERSION.to_string(),
            kind: self.kind().as_str().to_string(),
            metadata: RawMetadata { name: self.name.clone(), generation: self.generation, labels: self.labels.clone() },
            spec: self.spec_json(),
        }
    }
    /// Rebuilds from what the store holds. The row was validated when it was written, so it is
    /// only parsed here: re-validating would cost every pass, and a check that tightened since
    /// (e.g. a newer Kafka catalog) must not make a stored resource unreadable.
    pub fn from_stored(kind: Kind, name: &str, generation: i64, spec: &str) -> Result<Self, FieldError> {
        let parse_err = |e: serde_json::Error| FieldError::new("spec", format!("stored spec does not parse: {e}"));
        let (name, spec) = match kind {
            Kind::KafkaCluster => (name, DeclaredSpec::KafkaCluster(serde_json::from_str(spec).map_err(parse_err)?)),
            Kind::Topic => {
                (name.split_once('/').map(|(_, t)| t).unwrap_or(name), DeclaredSpec::Topic(serde_json::from_str(spec).map_err(parse_err)?))
            }
            Kind::Route => (name, DeclaredSpec::Route(serde_json::from_str(spec).map_err(parse_err)?)),
        };
        Ok(Declared { name: name.to_string(), generation: Some(generation), labels: BTreeMap::new(), spec })
    }
}

/// A value an operation set in place of the user's (a scale-up's broker count and partitions, a
/// decommission's held or lowered count): the spec stays as the user wrote it, and the fleet
/// works from the override until the user's document says the same (then it is dropped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpecOverride {
    /// The spec field, e.g. `brokers` (a KafkaCluster's), `partitions` (a Topic's).
    pub field: String,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// The operation that set it.
    pub operation: String,
    /// What the user writes to catch up, or why the value is held.
    pub reason: String,
    pub at_ms: i64,
}

/// Overrides by field.
pub type Overrides = BTreeMap<String, SpecOverride>;

/// A stored spec (JSON) with overrides laid over its top-level fields.
pub fn with_overrides(spec: &serde_json::Value, overrides: &Overrides) -> serde_json::Value {
    let mut out = spec.clone();
    if let Some(obj) = out.as_object_mut() {
        for o in overrides.values() {
            obj.insert(o.field.clone(), o.value.clone());
        }
    }
    out
}

/// The family a cluster belongs to: itself, or for a fresh build `<family>-<n>` the cluster it
/// was built from. Builds are named in the family (blue, blue-1, blue-2), and the ec2 provider
/// launches a family's hosts with the family's instance profile.
pub fn cluster_family(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((b, n)) if !b.is_empty() && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => b,
        _ => name,
    }
}

#[test]
fn a_build_belongs_to_the_family_of_its_source() {
    assert_eq!(cluster_family("blue"), "blue");
    assert_eq!(cluster_family("blue-2"), "blue");
    assert_eq!(cluster_family("blue-east"), "blue-east");
    assert_eq!(cluster_family("blue-east-12"), "blue-east");
    assert_eq!(cluster_family("-3"), "-3");
}

pub fn topic_key(cluster: &str, topic: &str) -> String {
    format!("{cluster}/{topic}")
}

/// Parses a YAML stream (`---`-separated documents) into raw documents; empty documents are skipped.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<serde_json::Value>, FieldError> {
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| FieldError::new("(document)", format!("not valid YAML: {e}")))?;
    Ok(docs.into_iter().flatten().filter(|v| !v.is_null()).collect())
}

/// Stage 1 for one document given as a JSON value (from YAML or an API body).
pub fn validate_value(value: serde_json::Value) -> Result<Declared, FieldError> {
    let hint = value
        .get("kind")
        .and_then(|k| k.as_str())
        .zip(value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()))
        .map(|(k, n)| format!("{k}/{n}"));
    let doc: RawDocument = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { "(document)".to_string() } else { field };
        let err = FieldError::new(field, e.into_inner().to_string());
        match &hint {
            Some(h) => err.on(h.clone()),
            None => err,
        }
    })?;
    validate_document(doc)
}

pub fn validate_document(doc: RawDocument) -> Result<Declared, FieldError> {
    let kind = Kind::parse(&doc.kind).ok_or_else(|| {
        FieldError::new("kind", format!("`{}` is not a kind: use KafkaCluster, Topic or Route", doc.kind))
    })?;
    let label = format!("{}/{}", kind.as_str(), doc.metadata.name);
    let result = (|| {
        if doc.api_version != API_VERSION {
            return Err(FieldError::new("apiVersion", format!("`{}` is not supported: use {API_VERSION}", doc.api_version)));
        }
        if let Some(g) = doc.metadata.generation {
            if g < 1 {
                return Err(FieldError::new("metadata.generation", format!("{g} is not a generation: generations start at 1")));
            }
        }
        for (k, v) in &doc.metadata.labels {
            if k.is_empty() || k.chars().count() > 63 || v.chars().count() > 253 {
                return Err(FieldError::new(format!("metadata.labels.{k}"), "label keys are 1-63 characters, values up to 253"));
            }
        }
        let spec = match kind {
            Kind::KafkaCluster => {
                fleet_common::paths::validate_cluster_name(&doc.metadata.name).map_err(|m| FieldError::new("metadata.name", m))?;
                let s: DeclaredClusterSpec = spec_from(doc.spec.clone())?;
                check_cluster(&s)?;
                DeclaredSpec::KafkaCluster(s)
            }
            Kind::Topic => {
                validate_topic_name(&doc.metadata.name).map_err(|m| FieldError::new("metadata.name", m))?;
                let s: DeclaredTopicSpec = spec_from(doc.spec.clone())?;
                check_topic(&s)?;
                DeclaredSpec::Topic(s)
            }
            Kind::Route => {
                fleet_common::paths::validate_cluster_name(&doc.metadata.name)
                    .map_err(|m| FieldError::new("metadata.name", m.replace("cluster name", "route name")))?;
                let s: DeclaredRouteSpec = spec_from(doc.spec.clone())?;
                fleet_common::paths::validate_cluster_name(&s.cluster).map_err(|m| FieldError::new("spec.cluster", m))?;
                if s.description.as_ref().is_some_and(|d| d.chars().count() > 1024) {
                    return Err(FieldError::new("spec.description", "is longer than 1024 characters"));
                }
                if let Some(r) = &s.retain {
                    if crate::route::Retain::parse(r).is_none() {
                        return Err(FieldError::new("spec.retain", format!("`{r}` is not a retain setting: use standby or teardown")));
                    }
                }
                if let Some(p) = &s.failover {
                    p.resolve()?;
                }
                DeclaredSpec::Route(s)
            }
        };
        Ok(Declared { name: doc.metadata.name.clone(), generation: doc.metadata.generation, labels: doc.metadata.labels.clone(), spec })
    })();
    result.map_err(|e| e.on(label))
}

fn spec_from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, FieldError> {
    if !value.is_object() {
        return Err(FieldError::new("spec", "must be a mapping of fields"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "spec".to_string() } else { format!("spec.{path}") };
        FieldError::new(field, e.into_inner().to_string())
    })
}

fn check_cluster(s: &DeclaredClusterSpec) -> Result<(), FieldError> {
    if !SUPPORTED_KAFKA_VERSIONS.iter().any(|v| s.kafka_version == *v || s.kafka_version.starts_with(&format!("{v}."))) {
        return Err(FieldError::new(
            "spec.kafkaVersion",
            format!("`{}` is not supported: use one of {}", s.kafka_version, SUPPORTED_KAFKA_VERSIONS.join(", ")),
        ));
    }
    if !(1..=MAX_BROKERS).contains(&s.brokers) {
        return Err(FieldError::new("spec.brokers", format!("{} is out of range: use 1..={MAX_BROKERS}", s.brokers)));
    }
    for (field, t) in [("spec.instanceType", &s.instance_type), ("spec.controllerInstanceType", &s.controller_instance_type)] {
        let Some(t) = t else { continue };
        let ok = t.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        });
        if !ok {
            return Err(FieldError::new(field, format!("`{t}` is not an EC2 instance type, e.g. r5.xlarge")));
        }
    }
    check_kraft_layout(s)?;
    if s.availability_zones.is_empty() {
        return Err(FieldError::new("spec.availabilityZones", "list at least one availability zone (rack)"));
    }
    for (i, az) in s.availability_zones.iter().enumerate() {
        let ok = !az.is_empty() && az.len() <= 32 && az.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(FieldError::new(
                format!("spec.availabilityZones[{i}]"),
                format!("`{az}` is not an availability zone name, e.g. us-east-1a"),
            ));
        }
        if s.availability_zones[..i].contains(az) {
            return Err(FieldError::new(format!("spec.availabilityZones[{i}]"), format!("`{az}` is listed twice")));
        }
    }
    if let Some(p) = &s.priority_class {
        PriorityClass::parse(p).ok_or_else(|| {
            FieldError::new("spec.priorityClass", format!("`{p}` is not a priority class: use low, medium or high"))
        })?;
    }
    if let Some(p) = &s.provider {
        if p != "local" && p != "ec2" {
            return Err(FieldError::new("spec.provider", format!("`{p}` is not a provider: use local or ec2")));
        }
    }
    for (k, v) in &s.broker_config {
        if v.to_config() == HIDDEN_VALUE && fleet_common::kafka_config::key_type(k) == Some(fleet_common::kafka_config::ConfigType::Password) {
            return Err(FieldError::new(
                format!("spec.brokerConfig.{k}"),
                format!("`{HIDDEN_VALUE}` is what a token without write scope is shown in place of a password: give the value itself (read the document with a write token)"),
            ));
        }
        fleet_common::kafka_config::validate(k, &v.to_config(), &fleet_common::kafka_config::Source::Persisted)
            .map_err(|e| FieldError::new(format!("spec.brokerConfig.{}", fleet_common::kafka_config::shown(k)), e.to_string()))?;
    }
    Ok(())
}

/// The controller quorum's fields: only on KRaft lines, an odd size, combined mode small.
fn check_kraft_layout(s: &DeclaredClusterSpec) -> Result<(), FieldError> {
    if !s.is_kraft() {
        let zk_mode = |field: &str| {
            FieldError::new(
                field.to_string(),
                format!(
                    "a {} cluster runs in ZooKeeper mode and has no controller quorum: remove it, or use kafkaVersion \"{KRAFT_KAFKA_VERSION}\" (KRaft mode)",
                    s.kafka_version
                ),
            )
        };
        if s.controllers.is_some() {
            return Err(zk_mode("spec.controllers"));
        }
        if s.controller_instance_type.is_some() {
            return Err(zk_mode("spec.controllerInstanceType"));
        }
        if s.combined.is_some() {
            return Err(zk_mode("spec.combined"));
        }
        return Ok(());
    }
    let combined = s.combined.unwrap_or(false);
    if let Some(c) = s.controllers {
        if c % 2 == 0 && (0..=5).contains(&c) && c > 0 {
            return Err(FieldError::new(
                "spec.controllers",
                format!("{c} is even: a quorum of {c} survives no more failures than one of {}, and splits evenly; use 1, 3 or 5", c - 1),
            ));
        }
        if ![1, 3, 5].contains(&c) {
            return Err(FieldError::new("spec.controllers", format!("{c} is not a quorum size: use 1, 3 or 5")));
        }
    }
    if combined {
        if s.brokers > MAX_COMBINED_NODES {
            return Err(FieldError::new(
                "spec.combined",
                format!(
                    "combined mode runs at most {MAX_COMBINED_NODES} nodes, and {} brokers were declared: drop `combined` (controllers get hosts of their own), or declare at most {MAX_COMBINED_NODES} brokers",
                    s.brokers
                ),
            ));
        }
        if s.brokers % 2 == 0 {
            return Err(FieldError::new(
                "spec.brokers",
                format!("{} combined nodes would be an even quorum: use 1 or 3 brokers in combined mode", s.brokers),
            ));
        }
        if let Some(c) = s.controllers {
            if c != s.brokers {
                return Err(FieldError::new(
                    "spec.controllers",
                    format!("in combined mode every node is a controller: leave it out, or write {} (the brokers)", s.brokers),
                ));
            }
        }
        if s.controller_instance_type.is_some() {
            return Err(FieldError::new("spec.controllerInstanceType", "combined nodes are brokers' hosts (spec.instanceType): remove it"));
        }
    }
    Ok(())
}

/// Whether a release line runs in KRaft mode (4.0 removed ZooKeeper).
pub fn is_kraft_version(version: &str) -> bool {
    version.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= 4)
}

/// A KRaft cluster's ID, minted with the cluster resource: its UID (a UUID the store mints at
/// declaration and never reuses) as Kafka writes cluster IDs (base64url, 22 characters). The top
/// bit is cleared so the ID never starts with `-` or `_` (which Kafka's own tools refuse as an
/// option value). `None` for a UID that is not a UUID.
pub fn kafka_cluster_id(uid: &str) -> Option<String> {
    use base64::Engine;
    let mut bytes = *uuid::Uuid::parse_str(uid).ok()?.as_bytes();
    bytes[0] &= 0x7f;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn check_topic(s: &DeclaredTopicSpec) -> Result<(), FieldError> {
    fleet_common::paths::validate_cluster_name(&s.cluster).map_err(|m| FieldError::new("spec.cluster", m))?;
    if !(1..=MAX_PARTITIONS).contains(&s.partitions) {
        return Err(FieldError::new("spec.partitions", format!("{} is out of range: use 1..={MAX_PARTITIONS}", s.partitions)));
    }
    if let Some(rf) = s.replication_factor {
        if !(1..=MAX_REPLICATION).contains(&rf) {
            return Err(FieldError::new(
                "spec.replicationFactor",
                format!("{rf} is out of range: use 1..={MAX_REPLICATION} (and no more than the cluster's brokers)"),
            ));
        }
    }
    if let Some(h) = s.retention_hours {
        if !(h.is_finite() && h > 0.0 && h <= 24.0 * 365.0 * 10.0) {
            return Err(FieldError::new("spec.retentionHours", format!("{h} is out of range: use more than 0, at most 87600")));
        }
    }
    if let Some(p) = &s.priority_class {
        PriorityClass::parse(p).ok_or_else(|| {
            FieldError::new("spec.priorityClass", format!("`{p}` is not a priority class: use low, medium or high"))
        })?;
    }
    for (k, v) in &s.configs {
        let field = format!("spec.configs.{}", fleet_common::kafka_config::shown(k));
        if k == "retention.ms" && s.retention_hours.is_some() {
            return Err(FieldError::new(field, "set either spec.retentionHours or configs.retention.ms, not both"));
        }
        if k.ends_with(".replication.throttled.replicas") {
            return Err(FieldError::new(field, "is set and cleared by decommission and rebalance operations while replicas move: leave it out (use --throttle)"));
        }
        fleet_common::kafka_config::validate_topic_config(k, &v.to_config()).map_err(|m| FieldError::new(field, m))?;
    }
    Ok(())
}

/// Kafka's topic-name rules (legal characters, length, not `.`/`..`).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "`{name}` is not a valid topic name: use 1-249 of a-z A-Z 0-9 . _ - (and not `.` or `..`)"
        ));
    }
    if name.starts_with("__") {
        return Err(format!("`{name}` is reserved: names starting with `__` are Kafka's internal topics"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Stage 2: effective specs.

/// A cluster with its defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    pub name: String,
    pub kafka_version: String,
    pub brokers: u32,
    pub instance_type: String,
    pub availability_zones: Vec<String>,
    pub priority_class: PriorityClass,
    pub broker_config: BTreeMap<String, String>,
    pub provider: ProviderKind,
    /// KRaft: controller hosts (0: ZooKeeper mode, or combined nodes).
    #[serde(default)]
    pub controllers: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub controller_instance_type: String,
    /// KRaft: every broker host is also a controller.
    #[serde(default)]
    pub combined: bool,
}

impl ClusterSpec {
    /// Runs in KRaft mode (a 4.x line).
    pub fn is_kraft(&self) -> bool {
        is_kraft_version(&self.kafka_version)
    }
    /// The size of the controller quorum (0 in ZooKeeper mode).
    pub fn quorum_size(&self) -> u32 {
        if self.combined {
            self.brokers
        } else {
            self.controllers
        }
    }
}

/// A topic with its defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    pub cluster: String,
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u16,
    pub priority_class: PriorityClass,
    /// Every config the topic should carry (`retention.ms` and `min.insync.replicas` included).
    pub configs: BTreeMap<String, String>,
    /// Records are partitioned by key (scale-up skips it unless allowed).
    #[serde(default)]
    pub keyed: bool,
}

pub const DEFAULT_INSTANCE_TYPE: &str = "r5.xlarge";

pub fn effective_cluster(name: &str, s: &DeclaredClusterSpec) -> ClusterSpec {
    ClusterSpec {
        name: name.to_string(),
        kafka_version: s.kafka_version.clone(),
        brokers: u32::try_from(s.brokers).unwrap_or(1),
        instance_type: s.instance_type.clone().unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_string()),
        availability_zones: s.availability_zones.clone(),
        priority_class: s.priority_class.as_deref().and_then(PriorityClass::parse).unwrap_or(PriorityClass::Medium),
        broker_config: s.broker_config.iter().map(|(k, v)| (k.clone(), v.to_config())).collect(),
        provider: match s.provider.as_deref() {
            Some("ec2") => ProviderKind::Ec2,
            _ => ProviderKind::Local,
        },
        controllers: match (s.is_kraft(), s.combined.unwrap_or(false)) {
            (true, false) => u32::try_from(s.controllers.unwrap_or(DEFAULT_CONTROLLERS)).unwrap_or(3),
            _ => 0,
        },
        controller_instance_type: match (s.is_kraft(), s.combined.unwrap_or(false)) {
            (true, false) => s.controller_instance_type.clone().or_else(|| s.instance_type.clone()).unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_string()),
            _ => String::new(),
        },
        combined: s.is_kraft() && s.combined.unwrap_or(false),
    }
}

/// Stage 2 for a topic: `cluster` is the effective spec of the cluster it names, if that exists.
pub fn effective_topic(name: &str, s: &DeclaredTopicSpec, cluster: Option<&ClusterSpec>) -> Result<TopicSpec, FieldError> {
    let cluster = cluster.ok_or_else(|| {
        FieldError::new("spec.cluster", format!("cluster `{}` is not declared: apply its KafkaCluster first (or in the same file)", s.cluster))
    })?;
    let class = s.priority_class.as_deref().and_then(PriorityClass::parse).unwrap_or(cluster.priority_class);
    let rf = s.replication_factor.map(|r| r as u16).unwrap_or(class.replication_factor());
    if u32::from(rf) > cluster.brokers {
        let field = if s.replication_factor.is_some() { "spec.replicationFactor" } else { "spec.priorityClass" };
        return Err(FieldError::new(
            field,
            format!(
                "replication factor {rf} is more than cluster `{}`'s {} brokers: lower it, or raise the cluster's brokers",
                cluster.name, cluster.brokers
            ),
        ));
    }
    let mut configs: BTreeMap<String, String> = BTreeMap::new();
    let retention_ms = match s.retention_hours {
        Some(h) => (h * 3_600_000.0).round() as i64,
        None => class.retention_hours() * 3_600_000,
    };
    configs.insert("retention.ms".into(), retention_ms.to_string());
    if rf >= 3 {
        // Acks=all producers of a 3-copy topic keep writing through one broker's loss.
        configs.insert("min.insync.replicas".into(), "2".into());
    }
    for (k, v) in &s.configs {
        configs.insert(k.clone(), v.to_config());
    }
    if let Some(min_isr) = configs.get("min.insync.replicas").and_then(|v| v.parse::<i64>().ok()) {
        if min_isr < 1 || min_isr > i64::from(rf) {
            return Err(FieldError::new(
                "spec.configs.min.insync.replicas",
                format!("{min_isr} must be between 1 and the replication factor {rf}"),
            ));
        }
    }
    Ok(TopicSpec {
        cluster: cluster.name.clone(),
        name: name.to_string(),
        partitions: s.partitions as u32,
        replication_factor: rf,
        priority_class: class,
        configs,
        keyed: s.keyed.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Result<Declared, FieldError> {
        let docs = parse_yaml_documents(yaml)?;
        validate_value(docs.into_iter().next().expect("one document"))
    }

    const CLUSTER: &str = "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata: { name: blue }\nspec:\n  kafkaVersion: \"3.9\"\n  brokers: 3\n  availabilityZones: [a, b, c]\n";

    #[test]
    fn cluster_defaults_come_from_the_priority_class() {
        let d = doc(CLUSTER).expect("valid");
        let DeclaredSpec::KafkaCluster(s) = &d.spec else { panic!("cluster") };
        let c = effective_cluster(&d.name, s);
        assert_eq!(c.priority_class, PriorityClass::Medium);
        assert_eq!(c.instance_type, DEFAULT_INSTANCE_TYPE);
        let t = DeclaredTopicSpec {
            cluster: "blue".into(),
            partitions: 6,
            replication_factor: None,
            retention_hours: None,
            priority_class: Some("high".into()),
            configs: BTreeMap::new(),
            keyed: None,
        };
        let e = effective_topic("orders", &t, Some(&c)).expect("fits");
        assert_eq!(e.replication_factor, 3);
        assert_eq!(e.configs["retention.ms"], (24 * 3_600_000).to_string());
        assert_eq!(e.configs["min.insync.replicas"], "2");
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            ("apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata: { name: blue }\nspec: { kafkaVersion: \"3.9\", brokers: three, availabilityZones: [a] }", "spec.brokers"),
            ("apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata: { name: blue }\nspec: { kafkaVersion: \"3.9\", brokers: 3, availabilityZones: [a], colour: red }", "spec.colour"),
            ("apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: t }\nspec: { cluster: blue, partitions: -3 }", "spec.partitions"),
            ("apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: \"bad name\" }\nspec: { cluster: blue, partitions: 3 }", "metadata.name"),
            ("apiVersion: v2\nkind: Topic\nmetadata: { name: t }\nspec: { cluster: blue, partitions: 3 }", "apiVersion"),
        ];
        for (yaml, field) in cases {
            let e = doc(yaml).expect_err(yaml);
            assert_eq!(e.field, *field, "{yaml}: {e}");
        }
    }

    #[test]
    fn replication_above_broker_count_is_refused() {
        let d = doc(CLUSTER).expect("valid");
        let DeclaredSpec::KafkaCluster(s) = &d.spec else { panic!("cluster") };
        let c = effective_cluster(&d.name, s);
        let t = DeclaredTopicSpec {
            cluster: "blue".into(),
            partitions: 1,
            replication_factor: Some(4),
            retention_hours: None,
            priority_class: None,
            configs: BTreeMap::new(),
            keyed: None,
        };
        assert_eq!(effective_topic("t", &t, Some(&c)).expect_err("too many").field, "spec.replicationFactor");
        assert_eq!(effective_topic("t", &t, None).expect_err("no cluster").field, "spec.cluster");
    }
    fn kraft(extra: &str) -> String {
        format!("apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata: {{ name: k }}\nspec: {{ kafkaVersion: \"4.4\", brokers: 3, availabilityZones: [a, b, c]{extra} }}")
    }

    #[test]
    fn kraft_layouts_are_checked_naming_the_field() {
        let d = doc(&kraft("")).expect("a 4.4 cluster");
        let DeclaredSpec::KafkaCluster(s) = &d.spec else { panic!("cluster") };
        let c = effective_cluster("k", s);
        assert!(c.is_kraft());
        assert_eq!((c.controllers, c.quorum_size(), c.combined), (3, 3, false), "3 controllers of their own by default");
        assert_eq!(c.controller_instance_type, DEFAULT_INSTANCE_TYPE);
        let combined = doc(&kraft(", combined: true")).expect("combined, 3 nodes");
        let DeclaredSpec::KafkaCluster(s) = &combined.spec else { panic!("cluster") };
        let c = effective_cluster("k", s);
        assert_eq!((c.controllers, c.quorum_size(), c.combined), (0, 3, true));
        let cases = [
            (kraft(", controllers: 2"), "spec.controllers", "even"),
            (kraft(", controllers: 4"), "spec.controllers", "even"),
            (kraft(", controllers: 0"), "spec.controllers", "1, 3 or 5"),
            (kraft(", controllers: 7"), "spec.controllers", "1, 3 or 5"),
            (kraft(", combined: true, controllers: 1"), "spec.controllers", "every node"),
            (kraft(", controllerInstanceType: huge"), "spec.controllerInstanceType", "instance type"),
            (kraft(", combined: true").replace("brokers: 3", "brokers: 5"), "spec.combined", "at most 3"),
            (kraft(", combined: true").replace("brokers: 3", "brokers: 2"), "spec.brokers", "even"),
            (kraft("").replace("4.4", "4.0"), "spec.kafkaVersion", "3.9, 4.4"),
            (kraft(", controllers: 3").replace("4.4", "3.9"), "spec.controllers", "ZooKeeper mode"),
            (kraft(", combined: false").replace("4.4", "3.9"), "spec.combined", "ZooKeeper mode"),
        ];
        for (yaml, field, why) in &cases {
            let e = doc(yaml).expect_err(yaml);
            assert_eq!(e.field, *field, "{yaml}: {e}");
            assert!(e.message.contains(why), "{yaml}: {e}");
        }
    }

    #[test]
    fn a_cluster_keeps_its_release_line_and_layout() {
        let spec = |yaml: &str| match doc(yaml).expect("valid").spec {
            DeclaredSpec::KafkaCluster(s) => s,
            _ => panic!("cluster"),
        };
        let zk = spec(CLUSTER);
        let k = spec(&kraft(""));
        let (field, message) = zk.in_place_difference(&k).expect("3.9 -> 4.4 refused");
        assert_eq!(field, "spec.kafkaVersion");
        assert!(message.contains("move the route") && message.contains("KRaft mode") && message.contains("ZooKeeper mode"), "{message}");
        assert!(k.in_place_difference(&zk).is_some(), "4.4 -> 3.9 refused");
        assert_eq!(k.in_place_difference(&spec(&kraft("").replace("4.4", "4.4.0"))), None, "a patch release of the line is the same line");
        assert_eq!(k.in_place_difference(&spec(&kraft(", controllers: 5"))), None, "controllers of their own are resized in place");
        assert_eq!(k.in_place_difference(&spec(&kraft(", controllers: 3"))), None, "the default written out is no change");
        assert_eq!(k.in_place_difference(&spec(&kraft(", combined: true"))).map(|d| d.0), Some("spec.combined"));
        let combined = spec(&kraft(", combined: true"));
        assert_eq!(combined.in_place_difference(&spec(&kraft(", combined: true").replace("brokers: 3", "brokers: 1"))).map(|d| d.0), Some("spec.brokers"));
        assert_eq!(k.in_place_difference(&spec(&kraft("").replace("brokers: 3", "brokers: 5"))), None, "brokers of their own may grow");
        assert_eq!(k.in_place_difference(&spec(&kraft(", brokerConfig: { num.io.threads: 4 }"))).map(|d| d.0), Some("spec.brokerConfig"));
        assert_eq!(zk.in_place_difference(&spec(&CLUSTER.replace("brokers: 3", "brokers: 5"))), None, "size is not layout");
    }

    #[test]
    fn the_kafka_cluster_id_is_the_uid_in_kafkas_form() {
        let uid = "f3c1e0a2-9b7d-4c55-8e21-0d4b6a9f7e13";
        let id = kafka_cluster_id(uid).expect("a UUID");
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{id}");
        assert!(!id.starts_with('-') && !id.starts_with('_'), "{id}");
        assert_eq!(kafka_cluster_id(uid), Some(id.clone()), "the same resource, the same ID");
        assert_ne!(kafka_cluster_id("f3c1e0a2-9b7d-4c55-8e21-0d4b6a9f7e14"), Some(id));
        assert_eq!(kafka_cluster_id("not-a-uuid"), None);
        // A UID whose first byte has its top bit set still gives an ID Kafka's tools take.
        assert!(kafka_cluster_id("ffffffff-ffff-4fff-bfff-ffffffffffff").is_some_and(|id| !id.starts_with('_') && !id.starts_with('-')));
    }
}