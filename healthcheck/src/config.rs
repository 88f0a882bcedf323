//! The service's configuration file, parsed in two stages (raw YAML, unknown keys rejected; then
//! validated), with documented defaults.
//!
//! ```yaml
//! listen: 127.0.0.1:8090          # default
//! tls:                            # optional: serve HTTPS (the files are re-read when they change)
//!   certFile: /etc/kafka-fleet/tls/healthcheck.crt
//!   keyFile: /etc/kafka-fleet/tls/healthcheck.key
//! scanIntervalMs: 10000           # default: a full re-read every 10 s (watches trigger earlier scans)
//! zookeeperTimeoutMs: 5000        # default: a scan slower than this is a failed scan
//! thresholds:
//!   slowZookeeperMs: 500          # default
//!   leaderImbalanceRatio: 0.1     # default, as Kafka's leader.imbalance.per.broker.percentage
//!   defaultMinIsr: 1              # default, when neither topic nor cluster config sets it
//!   voterFetchTimeoutMs: 15000    # default (KRaft): a voter not fetching this long is missing
//!   quorumCatchUpMs: 30000        # default (KRaft): a replica not caught up this long is lagging
//! clusters:
//!   - name: blue
//!     zookeeper: zk1:2181,zk2:2181,zk3:2181
//!     fleetRoot: /kafka-fleet     # default; Kafka's chroot is <fleetRoot>/clusters/<name>/kafka
//!     kafkaChroot: /kafka/blue    # optional: for clusters not laid out by the fleet
//!     expectedBrokers: [1, 2, 3]  # optional: else the fleet's broker-ID registry, else the assigned replicas
//!     expectedRacks: [us-east-1a, us-east-1b]   # optional
//!   - name: k4                    # a KRaft (Kafka 4.x) cluster: read through the Kafka protocol
//!     zookeeper: zk1:2181         # the fleet's ensemble (its registry says which nodes to expect)
//!     bootstrapServers: b1:9092,b2:9092
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fleet_common::paths::{validate_cluster_name, validate_znode_path, DEFAULT_FLEET_ROOT};
use fleet_common::{FleetPaths, KafkaPaths, ZkAddress};
use serde::Deserialize;

use crate::findings::{Expectations, Thresholds};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub tls: Option<fleet_common::https::RawTls>,
    #[serde(default)]
    pub scan_interval_ms: Option<u64>,
    #[serde(default)]
    pub zookeeper_timeout_ms: Option<u64>,
    #[serde(default)]
    pub thresholds: Option<RawThresholds>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawThresholds {
    #[serde(default)]
    pub slow_zookeeper_ms: Option<u64>,
    #[serde(default)]
    pub leader_imbalance_ratio: Option<f64>,
    #[serde(default)]
    pub default_min_isr: Option<i32>,
    #[serde(default)]
    pub voter_fetch_timeout_ms: Option<u64>,
    #[serde(default)]
    pub quorum_catch_up_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    pub zookeeper: String,
    #[serde(default)]
    pub fleet_root: Option<String>,
    #[serde(default)]
    pub kafka_chroot: Option<String>,
    #[serde(default)]
    pub expected_brokers: Option<Vec<i32>>,
    #[serde(default)]
    pub expected_racks: Vec<String>,
    /// KRaft clusters: brokers to ask (`host:port,...`); absent for ZooKeeper mode.
    #[serde(default)]
    pub bootstrap_servers: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls: Option<fleet_common::https::TlsFiles>,
    pub scan_interval: Duration,
    pub zookeeper_timeout: Duration,
    pub thresholds: Thresholds,
    pub clusters: Vec<ClusterTarget>,
}

/// One cluster to watch.
#[derive(Clone, Debug)]
pub struct ClusterTarget {
    pub name: String,
    pub zookeeper: ZkAddress,
    pub kafka: KafkaPaths,
    /// Set when the cluster is laid out by the fleet (its registry is then read).
    pub fleet: Option<fleet_common::ClusterPaths>,
    pub expectations: Expectations,
    /// KRaft: the brokers the cluster is read through (Kafka protocol, not ZooKeeper).
    pub bootstrap: Option<Vec<String>>,
}

pub use fleet_common::config_file::ConfigError;
use fleet_common::config_file::{field, in_range};

pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
    fleet_common::config_file::load_yaml(path)
}

fn millis(name: &str, value: Option<u64>, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<Duration, ConfigError> {
    in_range(name, value, default, range, " milliseconds").map(Duration::from_millis)
}

impl RawThresholds {
    pub fn resolve(&self) -> Result<Thresholds, ConfigError> {
        let d = Thresholds::default();
        let ratio = in_range("thresholds.leaderImbalanceRatio", self.leader_imbalance_ratio, d.leader_imbalance_ratio, 0.0..=1.0, "")?;
        let min_isr = in_range("thresholds.defaultMinIsr", self.default_min_isr, d.default_min_isr, 1..=16, "")?;
        Ok(Thresholds {
            default_min_isr: min_isr,
            leader_imbalance_ratio: ratio,
            slow_zookeeper: millis("thresholds.slowZookeeperMs", self.slow_zookeeper_ms, 500, 1..=600_000)?,
            voter_fetch_timeout: millis("thresholds.voterFetchTimeoutMs", self.voter_fetch_timeout_ms, 15_000, 1_000..=3_600_000)?,
            quorum_catch_up: millis("thresholds.quorumCatchUpMs", self.quorum_catch_up_ms, 30_000, 1_000..=3_600_000)?,
        })
    }
}

impl RawCluster {
    pub fn resolve(self, at: &str) -> Result<ClusterTarget, ConfigError> {
        validate_cluster_name(&self.name).map_err(|m| field(format!("{at}.name"), m))?;
        let zookeeper = ZkAddress::parse(&self.zookeeper).map_err(|e| field(format!("{at}.zookeeper"), e.to_string()))?;
        let fleet_root = self.fleet_root.unwrap_or_else(|| DEFAULT_FLEET_ROOT.to_string());
        validate_znode_path(&fleet_root).map_err(|e| field(format!("{at}.fleetRoot"), e.to_string()))?;
        let (kafka, fleet) = match self.kafka_chroot {
            Some(chroot) => {
                validate_znode_path(&chroot).map_err(|e| field(format!("{at}.kafkaChroot"), e.to_string()))?;
                (KafkaPaths::new(if chroot == "/" { String::new() } else { chroot }), None)
            }
            None => {
                let paths = FleetPaths::new(fleet_root).cluster(&self.name);
                (paths.kafka(), Some(paths))
            }
        };
        let bootstrap = match &self.bootstrap_servers {
            None => None,
            Some(_) if fleet.is_none() => {
                return Err(field(format!("{at}.kafkaChroot"), "is for ZooKeeper-mode clusters; a KRaft cluster (bootstrapServers) is found by its name under fleetRoot"));
            }
            Some(list) => {
                let servers: Vec<String> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
                if let Some(bad) = servers.iter().find(|s| s.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())) {
                    return Err(field(format!("{at}.bootstrapServers"), format!("`{bad}` is not host:port (list brokers as host:port,host:port)")));
                }
                if servers.is_empty() {
                    return Err(field(format!("{at}.bootstrapServers"), "list at least one broker as host:port"));
                }
                Some(servers)
            }
        };
        if let Some(ids) = &self.expected_brokers {
            if let Some(bad) = ids.iter().find(|id| **id < 0) {
                return Err(field(format!("{at}.expectedBrokers"), format!("{bad} is not a broker ID (0 or more)")));
            }
        }
        Ok(ClusterTarget {
            name: self.name,
            zookeeper,
            kafka,
            fleet,
            expectations: Expectations {
                brokers: self.expected_brokers.map(|v| v.into_iter().collect::<BTreeSet<_>>()),
                racks: self.expected_racks.into_iter().collect(),
            },
            bootstrap,
        })
    }
}

impl RawConfig {
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let listen = self.listen.as_deref().unwrap_or("127.0.0.1:8090");
        let listen: SocketAddr =
            listen.parse().map_err(|_| field("listen", format!("`{listen}` is not an address:port such as 127.0.0.1:8090")))?;
        let tls = self.tls.map(|t| t.resolve()).transpose().map_err(|e| field("tls", e.to_string()))?;
        let thresholds = self.thresholds.unwrap_or_default().resolve()?;
        if self.clusters.is_empty() {
            return Err(field("clusters", "list at least one cluster to watch"));
        }
        let mut clusters = Vec::new();
        let mut names = BTreeSet::new();
        for (i, c) in self.clusters.into_iter().enumerate() {
            let target = c.resolve(&format!("clusters[{i}]"))?;
            if !names.insert(target.name.clone()) {
                return Err(field(format!("clusters[{i}].name"), format!("`{}` is listed twice", target.name)));
            }
            clusters.push(target);
        }
        Ok(Config {
            listen,
            tls,
            scan_interval: millis("scanIntervalMs", self.scan_interval_ms, 10_000, 100..=3_600_000)?,
            zookeeper_timeout: millis("zookeeperTimeoutMs", self.zookeeper_timeout_ms, 5_000, 100..=600_000)?,
            thresholds,
            clusters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        fleet_common::config_file::parse_yaml::<RawConfig>(text, Path::new("t"))?.resolve()
    }

    #[test]
    fn defaults_apply() {
        let c = parse("clusters:\n  - { name: blue, zookeeper: \"127.0.0.1:2181\" }\n").expect("valid");
        assert_eq!(c.scan_interval, Duration::from_secs(10));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8090");
        assert_eq!(c.clusters[0].kafka.chroot(), "/kafka-fleet/clusters/blue/kafka");
    }

    #[test]
    fn bad_configs_name_the_field() {
        for (text, needle) in [
            ("scanIntervalMs: 5\nclusters: [{ name: a, zookeeper: \"h:1\" }]", "scanIntervalMs"),
            ("colour: red\nclusters: []", "colour"),
            ("clusters: [{ name: a, zookeeper: \"h:1\", replicas: 3 }]", "replicas"),
            ("clusters: [{ name: a, zookeeper: \"h:x\" }]", "clusters[0].zookeeper"),
            ("clusters: []", "clusters"),
            ("thresholds: { leaderImbalanceRatio: 2 }\nclusters: [{ name: a, zookeeper: \"h:1\" }]", "leaderImbalanceRatio"),
            ("listen: nowhere\nclusters: [{ name: a, zookeeper: \"h:1\" }]", "listen"),
            ("clusters: [{ name: a, zookeeper: \"h:1\", bootstrapServers: \"b1\" }]", "clusters[0].bootstrapServers"),
            ("clusters: [{ name: a, zookeeper: \"h:1\", bootstrapServers: \"b:1\", kafkaChroot: /k }]", "clusters[0].kafkaChroot"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "expected `{needle}` in {err}");
        }
    }
}
