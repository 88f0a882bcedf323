//! The cluster file a broker host boots from, as written: one typed definition that
//! `kafka-bootstrap` parses (and then resolves), and that the fleet manager and the test harness
//! serialize, so no writer formats YAML by hand.
//!
//! ```yaml
//! cluster: blue
//! zookeeper: zk1:2181,zk2:2181,zk3:2181
//! fleetRoot: /kafka-fleet          # optional
//! brokerIdBase: 1                  # optional: the first broker ID handed out
//! provider: { kind: ec2, region: us-east-1 }          # or { kind: local, root: run/hosts }
//! dns: { kind: route53, zone: kafka.example.internal } # or { kind: local, root: ... } or { kind: none }
//! fleetApi: { url: http://fleet-manager:8080, timeoutMs: 2000 }   # optional
//! zookeeperIdentityFile: /etc/kafka-fleet/zk-identity   # optional: USER:PASSWORD, mode 0600
//! properties:
//!   log.retention.hours: 24
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawClusterFile {
    pub cluster: String,
    pub zookeeper: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_id_base: Option<i64>,
    pub provider: RawProvider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<RawDns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_api: Option<RawFleetApi>,
    /// A file holding the fleet's ZooKeeper identity (`USER:PASSWORD`): the registry and its lock
    /// are then created writable by that identity only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper_identity_file: Option<String>,
    /// Instead of a file: the AWS Secrets Manager secret holding the identity (ec2 provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper_identity_secret: Option<String>,
    /// Boot without a ZooKeeper identity: the registry and its lock are then writable by any
    /// ZooKeeper client. Refused unless said (a trusted test network).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_zookeeper: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, ScalarValue>,
    /// Kafka 4.x in KRaft mode: the cluster's ID and its controller quorum. Absent: Kafka 3.9 in
    /// ZooKeeper mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kraft: Option<RawKraft>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawKraft {
    /// Minted once, when the cluster is declared (22 characters of URL-safe base64).
    pub cluster_id: String,
    /// Voters of the quorum's first formation: 1, 3 or 5.
    pub controllers: i64,
}

/// A YAML scalar; Kafka properties are strings in the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScalarValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl ScalarValue {
    pub fn to_property(&self) -> String {
        match self {
            ScalarValue::Bool(b) => b.to_string(),
            ScalarValue::Int(i) => i.to_string(),
            ScalarValue::Float(f) => f.to_string(),
            ScalarValue::Str(s) => s.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawProvider {
    Local {
        root: PathBuf,
    },
    Ec2 {
        region: String,
        #[serde(default, rename = "endpointUrl", skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawDns {
    None,
    Local {
        root: PathBuf,
    },
    Route53 {
        zone: String,
        #[serde(default, rename = "endpointUrl", skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<i64>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawFleetApi {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Instead of `token`: the AWS Secrets Manager secret holding it (ec2 provider), so that the
    /// token is never in user-data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// `required` (the default): Kafka does not start until the fleet manager has answered with
    /// the broker's persisted properties, or `waitMs` has passed (then the boot fails).
    /// `optional`: one attempt; when it fails the broker boots without that layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<String>,
    /// How long a `required` fetch keeps trying (default 120000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// A CA bundle (PEM) the API's certificate is verified with, for an https URL whose
    /// certificate the system's roots do not cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl RawClusterFile {
    /// The file's text (YAML), as hosts read it.
    pub fn to_yaml(&self) -> Result<String, String> {
        serde_saphyr::to_string(self).map_err(|e| format!("cluster file: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_file_parses_back_to_the_same_definition() {
        let file = RawClusterFile {
            cluster: "blue".into(),
            zookeeper: "zk1:2181,zk2:2181".into(),
            fleet_root: Some("/kafka-fleet".into()),
            broker_id_base: None,
            provider: RawProvider::Ec2 { region: "us-east-1".into(), endpoint_url: None },
            dns: Some(RawDns::Route53 { zone: "kafka.internal".into(), endpoint_url: None, ttl: None }),
            fleet_api: Some(RawFleetApi { url: "http://fm:8080".into(), timeout_ms: Some(2000), token: None, token_secret: None, properties: None, wait_ms: None, ca_file: None }),
            zookeeper_identity_file: None,
            zookeeper_identity_secret: None,
            insecure_zookeeper: false,
            properties: BTreeMap::new(),
            kraft: Some(RawKraft { cluster_id: "eQvrPUjrRymCAlRuff_Z7g".into(), controllers: 3 }),
        };
        let text = file.to_yaml().expect("yaml");
        let back: RawClusterFile = serde_saphyr::from_str(&text).expect("parse");
        assert_eq!(back, file, "{text}");
    }
}
