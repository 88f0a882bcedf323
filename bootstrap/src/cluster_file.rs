//! The cluster file a broker host boots from, parsed in two stages: [`RawClusterFile`] is exactly
//! what the user wrote (unknown fields rejected, no I/O); [`ClusterFile`] is validated and typed.
//!
//! ```yaml
//! cluster: blue
//! zookeeper: zk1:2181,zk2:2181,zk3:2181
//! fleetRoot: /kafka-fleet          # optional
//! brokerIdBase: 1                  # optional: the first broker ID handed out
//! provider: { kind: ec2, region: us-east-1 }          # or { kind: local, root: run/hosts }
//! dns: { kind: route53, zone: kafka.example.internal } # or { kind: local, root: ... } or { kind: none }
//! fleetApi: { url: http://fleet-manager:8080, timeoutMs: 2000 }   # optional
//! properties:
//!   log.retention.hours: 24
//! kraft: { clusterId: eQvrPUjrRymCAlRuff_Z7g, controllers: 3 }   # Kafka 4.x; absent: 3.9 (ZooKeeper mode)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_common::paths::{validate_cluster_name, validate_znode_path, DEFAULT_FLEET_ROOT};
use fleet_common::ZkAddress;

use crate::properties::{self, Source};

pub use fleet_common::cluster_file::{RawClusterFile, RawDns, RawFleetApi, RawKraft, RawProvider, ScalarValue};

/// A validated cluster file.
#[derive(Clone, Debug)]
pub struct ClusterFile {
    pub cluster: String,
    pub zookeeper: ZkAddress,
    pub fleet_root: String,
    pub broker_id_base: i32,
    pub provider: ProviderConfig,
    pub dns: DnsConfig,
    pub fleet_api: Option<FleetApiConfig>,
    /// The fleet's ZooKeeper identity: the file, and the identity once read.
    pub zk_identity_file: Option<PathBuf>,
    /// Or the AWS Secrets Manager secret holding it (ec2 provider).
    pub zk_identity_secret: Option<String>,
    pub zk_identity: Option<fleet_common::ZkIdentity>,
    /// Booting without an identity was asked for (`insecureZookeeper: true`).
    pub insecure_zookeeper: bool,
    /// Layer 2 of the broker properties, already checked against Kafka's catalog.
    pub properties: Vec<(String, String)>,
    /// Kafka 4.x in KRaft mode; `None`: 3.9 in ZooKeeper mode.
    pub kraft: Option<KraftConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KraftConfig {
    pub cluster_id: String,
    /// Voters of the quorum's first formation.
    pub controllers: usize,
}

#[derive(Clone, Debug)]
pub enum ProviderConfig {
    Local { root: PathBuf },
    Ec2 { region: String, endpoint_url: Option<String> },
}

#[derive(Clone, Debug)]
pub enum DnsConfig {
    None,
    Local { root: PathBuf },
    Route53 { zone: String, endpoint_url: Option<String>, ttl: i64 },
}

#[derive(Clone, Debug)]
pub struct FleetApiConfig {
    pub url: String,
    pub timeout: Duration,
    pub token: Option<String>,
    /// The Secrets Manager secret `token` is read from at boot (ec2 provider).
    pub token_secret: Option<String>,
    pub properties: PropertiesPolicy,
    /// How long a `Required` fetch keeps trying before the boot fails.
    pub wait: Duration,
    /// Extra roots for verifying an https API: the file, and its PEM once read.
    pub ca_file: Option<PathBuf>,
    pub ca_pem: Option<Vec<u8>>,
}

/// Whether Kafka may start without the fleet manager's persisted properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertiesPolicy {
    /// Kafka starts only with them (or with the fleet manager's word that there are none).
    Required,
    /// One attempt; without an answer the broker boots without that layer, and says so.
    Optional,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    #[error("cannot read cluster file {path}: {source} (pass an existing file with --cluster-file)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster file {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("cluster file {path}: field `{field}`: {message}")]
    Field { path: PathBuf, field: String, message: String },
}

impl ClusterFile {
    pub fn load(path: &Path) -> Result<Self, ClusterFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ClusterFileError::Read { path: path.to_path_buf(), source })?;
        let mut file = Self::parse(&text, path)?;
        file.read_referenced_files(path)?;
        Ok(file)
    }

    /// Reads the secrets the cluster file names from AWS Secrets Manager (the host's role
    /// allows its own cluster's): the host token and the ZooKeeper identity.
    pub async fn read_secrets(&mut self, path: &Path) -> Result<(), ClusterFileError> {
        let field = |field: &str, message: String| ClusterFileError::Field { path: path.to_path_buf(), field: field.to_string(), message };
        let token_secret = self.fleet_api.as_ref().and_then(|a| a.token_secret.clone());
        if token_secret.is_none() && self.zk_identity_secret.is_none() {
            return Ok(());
        }
        let ProviderConfig::Ec2 { region, endpoint_url } = &self.provider else { return Ok(()) };
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region.clone()));
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let client = aws_sdk_secretsmanager::Client::new(&loader.load().await);
        let read = |name: String| {
            let client = client.clone();
            async move {
                let out = client
                    .get_secret_value()
                    .secret_id(&name)
                    .send()
                    .await
                    .map_err(|e| format!("cannot read secret {name}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
                out.secret_string().map(str::to_string).ok_or_else(|| format!("secret {name} has no string value"))
            }
        };
        if let Some(name) = token_secret {
            let token = read(name).await.map_err(|m| field("fleetApi.tokenSecret", m))?;
            if let Some(api) = self.fleet_api.as_mut() {
                api.token = Some(token.trim().to_string());
            }
        }
        if let Some(name) = self.zk_identity_secret.clone() {
            let text = read(name.clone()).await.map_err(|m| field("zookeeperIdentitySecret", m))?;
            let identity = fleet_common::ZkIdentity::parse(&text, &format!("secret {name}")).map_err(|e| field("zookeeperIdentitySecret", e.to_string()))?;
            self.zk_identity = Some(identity);
        }
        Ok(())
    }

    /// Reads the files the cluster file names (a CA bundle, the ZooKeeper identity): a boot
    /// never gets past this with one it cannot use.
    pub fn read_referenced_files(&mut self, path: &Path) -> Result<(), ClusterFileError> {
        let field = |field: &str, message: String| ClusterFileError::Field { path: path.to_path_buf(), field: field.to_string(), message };
        if let Some(api) = self.fleet_api.as_mut() {
            if let Some(ca) = &api.ca_file {
                let pem = std::fs::read(ca).map_err(|e| field("fleetApi.caFile", format!("cannot read {}: {e}", ca.display())))?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| field("fleetApi.caFile", format!("{} holds no PEM certificate", ca.display())))?;
                api.ca_pem = Some(pem);
            }
        }
        if let Some(id) = &self.zk_identity_file {
            self.zk_identity = Some(fleet_common::ZkIdentity::load_file(id).map_err(|e| field("zookeeperIdentityFile", e.to_string()))?);
        }
        if self.insecure_zookeeper {
            tracing::warn!(cluster = %self.cluster, "insecureZookeeper: the broker-ID registry and its lock are created writable by any ZooKeeper client");
        }
        Ok(())
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ClusterFileError> {
        let raw: RawClusterFile = serde_saphyr::from_str(text)
            .map_err(|e| ClusterFileError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
        resolve(raw, path)
    }
}

/// Stage two: validate and type every field of the file as written. No I/O.
pub fn resolve(raw: RawClusterFile, path: &Path) -> Result<ClusterFile, ClusterFileError> {
    let this = raw;
    {
        let field = |field: &str, message: String| ClusterFileError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        validate_cluster_name(&this.cluster).map_err(|m| field("cluster", m))?;
        let zookeeper = ZkAddress::parse(&this.zookeeper).map_err(|e| field("zookeeper", e.to_string()))?;
        if zookeeper.chroot.is_some() {
            return Err(field(
                "zookeeper",
                "give the ensemble without a chroot; the cluster's Kafka chroot is derived from fleetRoot and cluster"
                    .into(),
            ));
        }
        let fleet_root = this.fleet_root.unwrap_or_else(|| DEFAULT_FLEET_ROOT.to_string());
        validate_znode_path(&fleet_root).map_err(|e| field("fleetRoot", e.to_string()))?;
        if fleet_root == "/" {
            return Err(field("fleetRoot", "must not be `/`: use a dedicated root such as /kafka-fleet".into()));
        }
        let broker_id_base = match this.broker_id_base {
            None => 1,
            Some(b) if (0..=1_000_000).contains(&b) => b as i32,
            Some(b) => return Err(field("brokerIdBase", format!("{b} is out of range: use 0..=1000000"))),
        };
        let provider = match this.provider {
            RawProvider::Local { root } => ProviderConfig::Local { root },
            RawProvider::Ec2 { region, endpoint_url } => {
                if region.trim().is_empty() {
                    return Err(field("provider.region", "must name an AWS region, e.g. us-east-1".into()));
                }
                check_url(endpoint_url.as_deref()).map_err(|m| field("provider.endpointUrl", m))?;
                ProviderConfig::Ec2 { region, endpoint_url }
            }
        };
        let dns = match this.dns {
            None | Some(RawDns::None) => DnsConfig::None,
            Some(RawDns::Local { root }) => DnsConfig::Local { root },
            Some(RawDns::Route53 { zone, endpoint_url, ttl }) => {
                let zone = zone.trim_end_matches('.').to_string();
                if zone.is_empty() || !zone.contains('.') {
                    return Err(field("dns.zone", format!("`{zone}` is not a DNS zone name, e.g. kafka.example.internal")));
                }
                check_url(endpoint_url.as_deref()).map_err(|m| field("dns.endpointUrl", m))?;
                let ttl = ttl.unwrap_or(30);
                if !(1..=86_400).contains(&ttl) {
                    return Err(field("dns.ttl", format!("{ttl} is out of range: use 1..=86400 seconds")));
                }
                DnsConfig::Route53 { zone, endpoint_url, ttl }
            }
        };
        let fleet_api = match this.fleet_api {
            None => None,
            Some(api) => {
                check_url(Some(&api.url)).map_err(|m| field("fleetApi.url", m))?;
                let timeout_ms = api.timeout_ms.unwrap_or(2000);
                if !(1..=60_000).contains(&timeout_ms) {
                    return Err(field("fleetApi.timeoutMs", format!("{timeout_ms} is out of range: use 1..=60000")));
                }
                let properties = match api.properties.as_deref() {
                    None | Some("required") => PropertiesPolicy::Required,
                    Some("optional") => PropertiesPolicy::Optional,
                    Some(other) => {
                        return Err(field("fleetApi.properties", format!("`{other}` is not a policy: use required (Kafka waits for the fleet manager's properties) or optional")))
                    }
                };
                let wait_ms = api.wait_ms.unwrap_or(120_000);
                if !(1..=3_600_000).contains(&wait_ms) {
                    return Err(field("fleetApi.waitMs", format!("{wait_ms} is out of range: use 1..=3600000")));
                }
                Some(FleetApiConfig {
                    url: api.url,
                    timeout: Duration::from_millis(timeout_ms),
                    token: api.token,
                    token_secret: api.token_secret,
                    properties,
                    wait: Duration::from_millis(wait_ms),
                    ca_file: api.ca_file.map(PathBuf::from),
                    ca_pem: None,
                })
            }
        };
        let on_ec2 = matches!(provider, ProviderConfig::Ec2 { .. });
        if let Some(api) = &fleet_api {
            if api.token.is_some() && api.token_secret.is_some() {
                return Err(field("fleetApi.tokenSecret", "give token or tokenSecret, not both".into()));
            }
            if api.token_secret.is_some() && !on_ec2 {
                return Err(field("fleetApi.tokenSecret", "secrets are read from AWS Secrets Manager, with provider ec2 only: use token".into()));
            }
        }
        if this.zookeeper_identity_file.is_some() && this.zookeeper_identity_secret.is_some() {
            return Err(field("zookeeperIdentitySecret", "give zookeeperIdentityFile or zookeeperIdentitySecret, not both".into()));
        }
        if this.zookeeper_identity_secret.is_some() && !on_ec2 {
            return Err(field("zookeeperIdentitySecret", "secrets are read from AWS Secrets Manager, with provider ec2 only: use zookeeperIdentityFile".into()));
        }
        let has_identity = this.zookeeper_identity_file.is_some() || this.zookeeper_identity_secret.is_some();
        if !has_identity && !this.insecure_zookeeper {
            return Err(field(
                "zookeeperIdentityFile",
                "no ZooKeeper identity: the fleet's broker-ID registry and its lock would be writable by any ZooKeeper client. \
                 Give zookeeperIdentityFile (one line USER:PASSWORD, mode 0600) or zookeeperIdentitySecret, \
                 or `insecureZookeeper: true` to boot with open znodes (a trusted test network only)"
                    .into(),
            ));
        }
        if has_identity && this.insecure_zookeeper {
            return Err(field("insecureZookeeper", "give an identity or insecureZookeeper, not both".into()));
        }
        let mut properties = Vec::new();
        for (key, value) in &this.properties {
            let value = value.to_property();
            properties::validate(key, &value, &Source::ClusterFile)
                .map_err(|e| field(&format!("properties.{key}"), e.to_string()))?;
            properties.push((key.clone(), value));
        }
        let kraft = match this.kraft {
            None => None,
            Some(k) => {
                if !crate::kraft::is_kafka_uuid(&k.cluster_id) {
                    return Err(field(
                        "kraft.clusterId",
                        format!("`{}` is not a Kafka cluster ID: 22 characters of URL-safe base64, as `kafka-storage random-uuid` prints (the fleet manager mints it)", k.cluster_id),
                    ));
                }
                if ![1, 3, 5].contains(&k.controllers) {
                    return Err(field("kraft.controllers", format!("{} voters cannot form a sound quorum: use 1, 3 or 5", k.controllers)));
                }
                Some(KraftConfig { cluster_id: k.cluster_id, controllers: k.controllers as usize })
            }
        };
        Ok(ClusterFile {
            cluster: this.cluster,
            zookeeper,
            fleet_root,
            broker_id_base,
            provider,
            dns,
            fleet_api,
            zk_identity_file: this.zookeeper_identity_file.map(PathBuf::from),
            zk_identity_secret: this.zookeeper_identity_secret,
            zk_identity: None,
            insecure_zookeeper: this.insecure_zookeeper,
            properties,
            kraft,
        })
    }
}

fn check_url(url: Option<&str>) -> Result<(), String> {
    match url {
        None => Ok(()),
        Some(u) if (u.starts_with("http://") || u.starts_with("https://")) && u.len() > "https://".len() => Ok(()),
        Some(u) => Err(format!("`{u}` is not an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClusterFile, ClusterFileError> {
        ClusterFile::parse(text, Path::new("cluster.yaml"))
    }

    const GOOD: &str = "cluster: blue\nzookeeper: 127.0.0.1:2181\nprovider: { kind: local, root: /tmp/hosts }\nzookeeperIdentityFile: /etc/kafka-fleet/zk-identity\nproperties:\n  log.retention.hours: 24\n  auto.create.topics.enable: false\n";

    #[test]
    fn good_file_resolves() {
        let f = parse(GOOD).expect("valid");
        assert_eq!(f.cluster, "blue");
        assert_eq!(f.fleet_root, "/kafka-fleet");
        assert_eq!(f.broker_id_base, 1);
        assert!(f.properties.contains(&("log.retention.hours".into(), "24".into())));
        assert!(f.properties.contains(&("auto.create.topics.enable".into(), "false".into())));
        let open = parse(&GOOD.replace("zookeeperIdentityFile: /etc/kafka-fleet/zk-identity\n", "insecureZookeeper: true\n")).expect("open znodes, said");
        assert!(open.insecure_zookeeper);
        assert_eq!(f.kraft, None, "no kraft section: ZooKeeper mode");
        let kraft = parse(&format!("{GOOD}kraft: {{ clusterId: eQvrPUjrRymCAlRuff_Z7g, controllers: 3 }}\n")).expect("kraft");
        assert_eq!(kraft.kraft, Some(KraftConfig { cluster_id: "eQvrPUjrRymCAlRuff_Z7g".into(), controllers: 3 }));
    }

    #[test]
    fn bad_files_name_the_field() {
        for (text, needle) in [
            (format!("{GOOD}colour: red\n"), "colour"),
            (GOOD.replace("cluster: blue", "cluster: Blue_1"), "cluster"),
            (GOOD.replace("127.0.0.1:2181", "127.0.0.1:x"), "zookeeper"),
            (GOOD.replace("kind: local", "kind: gcp"), "gcp"),
            (GOOD.replace("24", "a day"), "properties.log.retention.hours"),
            (GOOD.replace("log.retention.hours", "log.retention.hour"), "did you mean"),
            (format!("{GOOD}  broker.id: 4\n"), "derived"),
            (format!("{GOOD}brokerIdBase: -1\n"), "brokerIdBase"),
            ("cluster: [".to_string(), "not valid"),
            (GOOD.replace("cluster: blue\n", ""), "cluster"),
            // Secure by default: no identity is refused unless said.
            (GOOD.replace("zookeeperIdentityFile: /etc/kafka-fleet/zk-identity\n", ""), "insecureZookeeper: true"),
            (format!("{GOOD}insecureZookeeper: true\n"), "not both"),
            (format!("{GOOD}kraft: {{ clusterId: blue, controllers: 3 }}\n"), "kraft.clusterId"),
            (format!("{GOOD}kraft: {{ clusterId: eQvrPUjrRymCAlRuff_Z7g, controllers: 4 }}\n"), "kraft.controllers"),
            (format!("{GOOD}kraft: {{ clusterId: eQvrPUjrRymCAlRuff_Z7g }}\n"), "controllers"),
        ] {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(needle), "expected `{needle}` in: {err}");
        }
    }
}
