//! Typed contents of znodes: Kafka's own (ZooKeeper mode, 3.x) and the fleet's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `/brokers/ids/<id>`: ephemeral JSON a broker writes when it registers (version 5 in Kafka 3.x).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    #[serde(default)]
    pub version: i32,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
    /// `PLAINTEXT://host:port`, one per listener.
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub listener_security_protocol_map: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub rack: Option<String>,
    #[serde(default)]
    pub jmx_port: Option<i32>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub features: Option<serde_json::Value>,
}

/// `/controller`: which broker is the active controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerZnode {
    pub version: i32,
    pub brokerid: i32,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default, rename = "kraftControllerEpoch")]
    pub kraft_controller_epoch: Option<i32>,
}

/// `/brokers/topics/<topic>`: replica assignment (Kafka's znode version 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    pub version: i32,
    /// Partition id (as a string key) -> replica broker ids, preferred leader first.
    pub partitions: BTreeMap<String, Vec<i32>>,
    #[serde(default)]
    pub adding_replicas: BTreeMap<String, Vec<i32>>,
    #[serde(default)]
    pub removing_replicas: BTreeMap<String, Vec<i32>>,
    /// Must be kept when rewriting the znode, or the topic gets a new identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}

/// `/brokers/topics/<t>/partitions/<p>/state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub controller_epoch: i32,
    /// -1 when the partition is offline.
    pub leader: i32,
    pub version: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
}

/// The fleet's `/<root>/clusters/<cluster>/broker-ids/<id>`: which instance holds broker ID `<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerIdLease {
    pub instance_id: String,
    /// When this instance was given the ID (ms since the epoch).
    pub assigned_at_ms: u64,
    /// The instance that held the ID before, when it was reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_instance_id: Option<String>,
    /// KRaft: what the holder runs (`controller`, `combined`; absent: a broker). An ID is reused
    /// only by a node of the same role: a broker taking a dead controller's ID would leave the
    /// controller's voter entry and the broker's replicas both pointing at the wrong node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("znode {path} does not hold valid {what}: {source}")]
pub struct ZnodeDecodeError {
    pub path: String,
    pub what: &'static str,
    #[source]
    pub source: serde_json::Error,
}

pub fn decode<T: for<'de> Deserialize<'de>>(path: &str, what: &'static str, data: &[u8]) -> Result<T, ZnodeDecodeError> {
    serde_json::from_slice(data).map_err(|source| ZnodeDecodeError { path: path.to_string(), what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_kafka_3_broker_registration() {
        let raw = br#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://127.0.0.1:9092"],"rack":"us-east-1a","jmx_port":-1,"port":9092,"host":"127.0.0.1","version":5,"timestamp":"1700000000000"}"#;
        let r: BrokerRegistration = decode("/brokers/ids/1", "a broker registration", raw).expect("decodes");
        assert_eq!(r.rack.as_deref(), Some("us-east-1a"));
        assert_eq!(r.endpoints, vec!["PLAINTEXT://127.0.0.1:9092"]);
    }

    #[test]
    fn topic_assignment_keeps_topic_id() {
        let raw = br#"{"removing_replicas":{},"partitions":{"0":[1,2]},"topic_id":"abc","adding_replicas":{},"version":3}"#;
        let t: TopicAssignment = decode("/brokers/topics/t", "a topic assignment", raw).expect("decodes");
        let back = serde_json::to_string(&t).expect("encodes");
        assert!(back.contains("\"topic_id\":\"abc\""));
    }
}
