//! The auditor's configuration file: raw YAML (unknown keys rejected), then validated.
//!
//! ```yaml
//! instanceId: auditor-1        # default: the host name; tells instances apart
//! mode: both                   # producer | consumer | both (default)
//! listen: 127.0.0.1:8091       # default
//! tls:                         # optional: serve the dashboard over HTTPS (files re-read on change)
//!   certFile: /etc/kafka-fleet/tls/auditor.crt
//!   keyFile: /etc/kafka-fleet/tls/auditor.key
//! clusters:
//!   - name: blue
//!     bootstrapServers: 127.0.0.1:9092
//!     monitorTopic: __kafka_auditor     # default
//!     intervalMs: 1000                  # default: one record per partition per second
//!     recordSize: 100                   # default, bytes
//!     replicationFactor: 1              # default: a partition's availability is its broker's
//!     windowIntervals: 10               # default: availability over the last 10 intervals
//!     zookeeper: zk1:2181/kafka-fleet/clusters/blue/kafka   # optional, no longer needed: drifted
//!                                       # monitor leadership is restored through the Kafka protocol
//!                                       # (ElectLeaders), on ZooKeeper-mode and KRaft clusters alike
//! routes:                      # optional: audit routes through the client library
//!   - name: orders
//!     fleetManagers: [http://fleet:8080]
//!     topic: events
//!     intervalMs: 100                   # default
//!     recordSize: 100                   # default, bytes
//!     lostAfterSecs: 30                 # default: acknowledged, not read back for this long = lost
//!     tokenEnv: FLEET_CLIENT_TOKEN      # default: a client-scope token from this variable
//!     cacheDir: /var/cache/kafka-auditor  # optional: the library's binding cache
//! ```
//! At least one of `clusters` and `routes`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::heartbeat::HeartbeatSpec;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub tls: Option<fleet_common::https::RawTls>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    pub fleet_managers: Vec<String>,
    pub topic: String,
    #[serde(default)]
    pub interval_ms: Option<u64>,
    #[serde(default)]
    pub record_size: Option<u64>,
    #[serde(default)]
    pub lost_after_secs: Option<u64>,
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub cache_dir: Option<std::path::PathBuf>,
    /// A CA bundle (PEM) for https fleet managers.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    pub bootstrap_servers: String,
    #[serde(default)]
    pub monitor_topic: Option<String>,
    #[serde(default)]
    pub interval_ms: Option<u64>,
    #[serde(default)]
    pub record_size: Option<u64>,
    #[serde(default)]
    pub replication_factor: Option<i32>,
    #[serde(default)]
    pub window_intervals: Option<usize>,
    #[serde(default)]
    pub zookeeper: Option<String>,
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls: Option<fleet_common::https::TlsFiles>,
    pub clusters: Vec<HeartbeatSpec>,
    pub routes: Vec<crate::routes::RouteSpec>,
}

pub use fleet_common::config_file::ConfigError;
use fleet_common::config_file::{field, in_range};

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    fleet_common::config_file::load_yaml::<RawConfig>(path)?.resolve()
}

impl RawConfig {
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let listen = self.listen.as_deref().unwrap_or("127.0.0.1:8091");
        let listen: SocketAddr = listen.parse().map_err(|_| field("listen", format!("`{listen}` is not an address:port")))?;
        let tls = self.tls.map(|t| t.resolve()).transpose().map_err(|e| field("tls", e.to_string()))?;
        let instance_id = self
            .instance_id
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "auditor".to_string());
        if instance_id.trim().is_empty() {
            return Err(field("instanceId", "must not be empty"));
        }
        let (produce, consume) = match self.mode.as_deref().unwrap_or("both") {
            "producer" => (true, false),
            "consumer" => (false, true),
            "both" => (true, true),
            other => return Err(field("mode", format!("`{other}`: use producer, consumer or both"))),
        };
        if self.clusters.is_empty() && self.routes.is_empty() {
            return Err(field("clusters", "list at least one cluster (or route, under `routes`)"));
        }
        let mut routes = Vec::new();
        for (i, r) in self.routes.into_iter().enumerate() {
            let at = |f: &str| format!("routes[{i}].{f}");
            if r.name.trim().is_empty() {
                return Err(field(at("name"), "must not be empty"));
            }
            if r.fleet_managers.is_empty() || r.fleet_managers.iter().any(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
                return Err(field(at("fleetManagers"), "list the fleet manager URLs, e.g. [http://fleet:8080]"));
            }
            if r.topic.trim().is_empty() {
                return Err(field(at("topic"), "name the topic the route's producers write"));
            }
            let interval = in_range(&at("intervalMs"), r.interval_ms, 100, 10..=600_000, " milliseconds")?;
            let size = in_range(&at("recordSize"), r.record_size, 100, 40..=1_000_000, " bytes")?;
            let lost_after = in_range(&at("lostAfterSecs"), r.lost_after_secs, 30, 1..=3600, " seconds")?;
            let var = r.token_env.unwrap_or_else(|| "FLEET_CLIENT_TOKEN".to_string());
            routes.push(crate::routes::RouteSpec {
                route: r.name,
                fleet_managers: r.fleet_managers,
                token: std::env::var(&var).ok().filter(|t| !t.is_empty()),
                topic: r.topic,
                interval: Duration::from_millis(interval),
                record_size: size as usize,
                instance_id: instance_id.clone(),
                lost_after: Duration::from_secs(lost_after),
                cache_dir: r.cache_dir,
                ca_file: r.ca_file,
            });
        }
        let mut clusters = Vec::new();
        for (i, c) in self.clusters.into_iter().enumerate() {
            let at = |f: &str| format!("clusters[{i}].{f}");
            if c.name.trim().is_empty() {
                return Err(field(at("name"), "must not be empty"));
            }
            if c.bootstrap_servers.trim().is_empty() {
                return Err(field(at("bootstrapServers"), "give host:port[,host:port]"));
            }
            let interval = in_range(&at("intervalMs"), c.interval_ms, 1000, 50..=600_000, " milliseconds")?;
            let size = in_range(&at("recordSize"), c.record_size, 100, 1..=1_000_000, " bytes")?;
            let rf = in_range(&at("replicationFactor"), c.replication_factor, 1, 1..=5, "")?;
            let window = in_range(&at("windowIntervals"), c.window_intervals, 10, 1..=3600, "")?;
            let zookeeper = match &c.zookeeper {
                None => None,
                Some(z) => {
                    let a = fleet_common::ZkAddress::parse(z).map_err(|e| field(at("zookeeper"), e.to_string()))?;
                    if a.chroot.is_none() {
                        return Err(field(at("zookeeper"), "add the cluster's Kafka chroot, e.g. zk1:2181/kafka-fleet/clusters/blue/kafka"));
                    }
                    tracing::warn!(field = %at("zookeeper"), "no longer used: drifted monitor leadership is restored through the Kafka protocol (ElectLeaders, which needs ALTER on the cluster); the key can go");
                    Some(a)
                }
            };
            clusters.push(HeartbeatSpec {
                cluster: c.name,
                bootstrap_servers: c.bootstrap_servers,
                topic: c.monitor_topic.unwrap_or_else(|| "__kafka_auditor".to_string()),
                interval: Duration::from_millis(interval),
                record_size: size as usize,
                instance_id: instance_id.clone(),
                replication_factor: rf,
                window,
                produce,
                consume,
                zookeeper,
            });
        }
        Ok(Config { listen, tls, clusters, routes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        fleet_common::config_file::parse_yaml::<RawConfig>(text, Path::new("t"))?.resolve()
    }

    #[test]
    fn defaults_and_errors() {
        let c = parse("instanceId: a\nclusters: [{ name: blue, bootstrapServers: \"h:9092\" }]").expect("valid");
        assert_eq!(c.clusters[0].interval, Duration::from_secs(1));
        assert!(c.clusters[0].produce && c.clusters[0].consume);
        for (text, needle) in [
            ("clusters: [{ name: b, bootstrapServers: \"h:1\", colour: red }]", "colour"),
            ("mode: sometimes\nclusters: [{ name: b, bootstrapServers: \"h:1\" }]", "mode"),
            ("clusters: [{ name: b, bootstrapServers: \"h:1\", intervalMs: 0 }]", "clusters[0].intervalMs"),
            ("clusters: []", "clusters"),
        ] {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.contains(needle), "{needle} in {e}");
        }
    }
}
