//! Kafka brokers on loopback, each booted the way a host boots: by `kafka-bootstrap run`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fleet_common::local::{self, LocalInstance, LocalInstanceState};
use fleet_common::znodes::BrokerRegistration;
use fleet_common::FleetPaths;

use crate::process::ManagedProcess;
use crate::{free_port, kafka_libs, wait_until, wire, workspace_bin, RunDir, ZkEnsemble};

/// Broker properties for small local clusters: tiny internal topics, quick group starts.
pub fn local_properties(brokers: usize) -> BTreeMap<String, String> {
    let rf = brokers.clamp(1, 3).to_string();
    [
        ("offsets.topic.replication.factor", rf.as_str()),
        ("offsets.topic.num.partitions", "4"),
        ("transaction.state.log.replication.factor", rf.as_str()),
        ("transaction.state.log.min.isr", "1"),
        ("transaction.state.log.num.partitions", "4"),
        ("default.replication.factor", rf.as_str()),
        ("group.initial.rebalance.delay.ms", "0"),
        ("num.network.threads", "2"),
        ("num.io.threads", "2"),
        ("num.recovery.threads.per.data.dir", "1"),
        ("log.segment.bytes", "16777216"),
        ("controlled.shutdown.max.retries", "1"),
        // Restore preferred leaders within seconds, not the default 5 minutes.
        ("leader.imbalance.check.interval.seconds", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A local `KafkaCluster` document over racks zone-a/b/c with [`local_properties`] and `extra`
/// broker settings; topics are appended by the caller.
pub fn local_cluster_yaml(name: &str, brokers: usize, extra: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata:\n  name: {name}\nspec:\n  kafkaVersion: \"3.9\"\n  brokers: {brokers}\n  \
         availabilityZones: [zone-a, zone-b, zone-c]\n  priorityClass: medium\n  provider: local\n  brokerConfig:\n"
    );
    for (k, v) in local_properties(brokers) {
        text.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    for (k, v) in extra {
        text.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    text
}

/// How a cluster's hosts are provided.
#[derive(Clone, Debug)]
pub enum HostProvider {
    Local,
    /// EC2 through moto; the test plays the booting host.
    Ec2 { endpoint: String },
}

#[derive(Clone, Debug)]
pub enum Dns {
    Local,
    Route53 { endpoint: String, zone: String },
}

/// One cluster's namespace and its cluster file. Dropping it stops its brokers.
pub struct LocalCluster {
    pub name: String,
    pub fleet_root: String,
    pub zookeeper: String,
    pub cluster_file: PathBuf,
    pub hosts_root: PathBuf,
    pub dns_root: PathBuf,
    pub brokers: Vec<LocalBroker>,
    pub extra_env: Vec<(String, String)>,
    pub run: RunDir,
}

pub struct LocalBroker {
    pub instance_id: String,
    pub broker_id: i32,
    pub port: u16,
    pub data_dir: PathBuf,
    pub process: ManagedProcess,
}

impl LocalBroker {
    pub fn bootstrap_server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The JVM's PID, as recorded by kafka-bootstrap.
    pub fn jvm_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.data_dir.join("kafka.pid")).ok()?.trim().parse().ok()
    }
}

/// Options for one cluster.
pub struct ClusterSpec {
    pub name: String,
    pub provider: HostProvider,
    pub dns: Dns,
    pub properties: BTreeMap<String, String>,
    pub fleet_api: Option<String>,
    /// `fleetApi.properties`: required (the default) or optional.
    pub fleet_api_properties: Option<String>,
    /// The fleet's ZooKeeper root; a fresh one when `None`.
    pub fleet_root: Option<String>,
    /// `zookeeperIdentityFile` in the cluster file.
    pub zk_identity_file: Option<PathBuf>,
    /// `fleetApi.tokenSecret`: the host token read from Secrets Manager (moto).
    pub fleet_api_token_secret: Option<String>,
    /// Kafka 4.x (KRaft): the cluster ID and the quorum's size; `None`: 3.9 in ZooKeeper mode.
    pub kraft: Option<fleet_common::cluster_file::RawKraft>,
}

impl ClusterSpec {
    pub fn local(brokers: usize) -> Self {
        Self {
            name: crate::unique("c").replace('_', "-"),
            provider: HostProvider::Local,
            dns: Dns::Local,
            properties: local_properties(brokers),
            fleet_api: None,
            fleet_api_properties: None,
            fleet_root: None,
            zk_identity_file: Some(crate::zk_identity_file()),
            fleet_api_token_secret: None,
            kraft: None,
        }
    }
}

impl LocalCluster {
    /// Writes the cluster file; starts nothing.
    pub fn new(zk: &ZkEnsemble, spec: ClusterSpec) -> Self {
        let run = RunDir::new(&spec.name);
        let fleet_root = spec.fleet_root.clone().unwrap_or_else(|| format!("/{}", crate::unique("fleet")));
        let hosts_root = run.path.join("hosts");
        let dns_root = run.path.join("dns");
        use fleet_common::cluster_file::{RawClusterFile, RawDns, RawFleetApi, RawProvider, ScalarValue};
        let file = RawClusterFile {
            cluster: spec.name.clone(),
            zookeeper: zk.connect_string(),
            fleet_root: Some(fleet_root.clone()),
            broker_id_base: None,
            provider: match &spec.provider {
                HostProvider::Local => RawProvider::Local { root: hosts_root.clone() },
                HostProvider::Ec2 { endpoint } => RawProvider::Ec2 { region: "us-east-1".into(), endpoint_url: Some(endpoint.clone()) },
            },
            dns: Some(match &spec.dns {
                Dns::Local => RawDns::Local { root: dns_root.clone() },
                Dns::Route53 { endpoint, zone } => RawDns::Route53 { zone: zone.clone(), endpoint_url: Some(endpoint.clone()), ttl: Some(30) },
            }),
            fleet_api: spec.fleet_api.as_ref().map(|url| RawFleetApi {
                url: url.clone(),
                timeout_ms: Some(1000),
                token: None,
                token_secret: spec.fleet_api_token_secret.clone(),
                properties: spec.fleet_api_properties.clone(),
                wait_ms: Some(3000),
                ca_file: None,
            }),
            zookeeper_identity_file: spec.zk_identity_file.as_ref().map(|p| p.display().to_string()),
            zookeeper_identity_secret: None,
            insecure_zookeeper: spec.zk_identity_file.is_none(),
            properties: spec.properties.iter().map(|(k, v)| (k.clone(), ScalarValue::Str(v.clone()))).collect(),
            kraft: spec.kraft.clone(),
        };
        let text = file.to_yaml().expect("cluster file yaml");
        let cluster_file = run.path.join("cluster.yaml");
        std::fs::write(&cluster_file, text).expect("cluster file");
        Self {
            name: spec.name,
            fleet_root,
            zookeeper: zk.connect_string(),
            cluster_file,
            hosts_root,
            dns_root,
            brokers: Vec::new(),
            extra_env: Vec::new(),
            run,
        }
    }

    pub fn paths(&self) -> fleet_common::ClusterPaths {
        FleetPaths::new(&self.fleet_root).cluster(&self.name)
    }

    /// Registers a local host with the local provider (what launching an instance does).
    pub fn add_local_instance(&self, instance_id: &str, az: &str) {
        let instance = LocalInstance {
            instance_id: instance_id.to_string(),
            availability_zone: az.to_string(),
            state: LocalInstanceState::Running,
            private_ip: "127.0.0.1".to_string(),
            cluster: Some(self.name.clone()),
            port: None,
            launched_ms: None,
            launch_token: None,
            role: None,
            controller_port: None,
            kraft: false,
        };
        local::write_instance(&self.hosts_root, &instance).expect("local instance");
    }

    pub fn terminate_local_instance(&self, instance_id: &str) {
        let mut instance = local::read_instance(&self.hosts_root, instance_id)
            .expect("read local instance")
            .expect("instance exists");
        instance.state = LocalInstanceState::Terminated;
        local::write_instance(&self.hosts_root, &instance).expect("local instance");
    }

    /// A `kafka-bootstrap` command for this cluster, with the AWS test credentials exported.
    pub fn bootstrap_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(workspace_bin("kafka-bootstrap"));
        cmd.args(args).arg("--cluster-file").arg(&self.cluster_file);
        for (k, v) in crate::moto::AWS_ENV {
            cmd.env(k, v);
        }
        // Small JVMs for local brokers; the cluster's own environment (e.g. a benchmark's bigger
        // heap) wins.
        cmd.env("KAFKA_HEAP_OPTS", "-Xms64m -Xmx320m")
            .env("KAFKA_JVM_OPTS", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -Djava.awt.headless=true");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// One broker at full speed for benchmarks (1 GiB heap, the C2 compiler and G1, as in
    /// production), booted and ready.
    pub async fn bench_broker(zk: &ZkEnsemble) -> Self {
        let mut cluster = Self::new(zk, ClusterSpec::local(1));
        cluster.extra_env.push(("KAFKA_HEAP_OPTS".into(), "-Xms512m -Xmx1g".into()));
        cluster.extra_env.push(("KAFKA_JVM_OPTS".into(), "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true".into()));
        cluster.add_local_instance("host-1", "local-a");
        cluster.start_broker("host-1").await;
        cluster
    }

    /// Boots one broker host through `kafka-bootstrap run` and waits until it is ready: registered
    /// in `/brokers/ids/<id>` and answering Metadata.
    pub async fn start_broker(&mut self, instance_id: &str) -> &LocalBroker {
        let data_dir = self.hosts_root.join(instance_id).join("data");
        self.start_broker_at(instance_id, &data_dir, free_port()).await
    }

    pub async fn start_broker_at(&mut self, instance_id: &str, data_dir: &Path, port: u16) -> &LocalBroker {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let report = data_dir.join("boot-report.json");
        let _ = std::fs::remove_file(&report);
        let mut cmd = self.bootstrap_command(&["run"]);
        cmd.args(["--instance-id", instance_id, "--port", &port.to_string()])
            .args(["--bind-host", "127.0.0.1", "--advertised-host", "127.0.0.1", "--mode", "child"])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--kafka-libs")
            .arg(kafka_libs());
        let log = data_dir.join("broker.log");
        let mut process = ManagedProcess::spawn(instance_id, cmd, &log).expect("spawn kafka-bootstrap");
        let broker_id: i32 = {
            let report = report.clone();
            let proc_ref = &mut process;
            let mut exited = None;
            let id = crate::wait::try_wait_until(Duration::from_secs(60), &mut || {
                let report = report.clone();
                let running = proc_ref.is_running();
                if !running {
                    exited = Some(proc_ref.log_tail(30));
                }
                async move {
                    if !running {
                        return Err("kafka-bootstrap exited".to_string());
                    }
                    let text = match std::fs::read_to_string(&report) {
                        Ok(t) => t,
                        Err(_) => return Ok(None),
                    };
                    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    Ok(v["broker_id"].as_i64().map(|i| i as i32))
                }
            })
            .await;
            match id {
                Ok(id) => id,
                Err(e) => panic!("broker {instance_id} did not boot: {e}\n{}", exited.unwrap_or_else(|| process.log_tail(30))),
            }
        };
        let broker = LocalBroker { instance_id: instance_id.to_string(), broker_id, port, data_dir: data_dir.to_path_buf(), process };
        self.brokers.retain(|b| b.instance_id != instance_id);
        self.brokers.push(broker);
        let zk = self.zk_client().await;
        self.wait_broker_ready(&zk, broker_id, port).await;
        self.brokers.last().expect("just pushed")
    }

    async fn wait_broker_ready(&self, zk: &zookeeper_client::Client, broker_id: i32, port: u16) {
        let path = self.paths().kafka().broker(broker_id);
        let log = self.brokers.last().map(|b| b.process.log.display().to_string()).unwrap_or_default();
        wait_until(&format!("broker {broker_id} registered and serving metadata (log {log})"), Duration::from_secs(90), || {
            let path = path.clone();
            async move {
                match zk.get_data(&path).await {
                    Ok(_) => {}
                    Err(zookeeper_client::Error::NoNode) => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                }
                let brokers = wire::metadata_brokers(&format!("127.0.0.1:{port}")).await?;
                Ok(brokers.iter().any(|b| b.node_id == broker_id).then_some(()))
            }
        })
        .await;
    }

    pub async fn zk_client(&self) -> zookeeper_client::Client {
        let address = fleet_common::ZkAddress::parse(&self.zookeeper).expect("harness connect string");
        fleet_common::ZkConnector::default().connect(&address).await.expect("zookeeper client")
    }

    /// `/brokers/ids/<id>` as Kafka wrote it.
    pub async fn registration(&self, broker_id: i32) -> Option<BrokerRegistration> {
        let zk = self.zk_client().await;
        let (data, _) = zk.get_data(&self.paths().kafka().broker(broker_id)).await.ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// The fleet's broker-ID registry: id -> instance.
    pub async fn registry(&self) -> BTreeMap<i32, String> {
        let zk = self.zk_client().await;
        let registry = kafka_bootstrap::broker_id::read_registry(&zk, &self.paths()).await.expect("registry");
        registry.into_iter().map(|(id, e)| (id, e.lease.instance_id)).collect()
    }

    pub fn bootstrap_servers(&self) -> String {
        self.brokers.iter().map(LocalBroker::bootstrap_server).collect::<Vec<_>>().join(",")
    }

    pub fn broker(&self, instance_id: &str) -> &LocalBroker {
        self.brokers.iter().find(|b| b.instance_id == instance_id).expect("known broker")
    }

    /// Stops a broker cleanly (SIGTERM: controlled shutdown), waiting until it has exited.
    pub fn stop_broker(&mut self, instance_id: &str) {
        if let Some(i) = self.brokers.iter().position(|b| b.instance_id == instance_id) {
            let mut b = self.brokers.remove(i);
            if let Some(pid) = b.jvm_pid() {
                crate::process::signal_pid(pid, libc::SIGTERM);
            }
            if b.process.terminate(Duration::from_secs(90)).is_none() {
                eprintln!("broker {instance_id} did not stop within 90 s; killed");
            }
        }
    }

    /// Creates a topic through Kafka's own tool with an explicit assignment, e.g. `["1:2", "2:3"]`
    /// (partition i on the listed brokers, preferred leader first).
    pub async fn create_topic(&self, topic: &str, assignment: &[&str]) {
        let out = kafka_tool(
            "org.apache.kafka.tools.TopicCommand",
            &["--bootstrap-server", &self.bootstrap_servers(), "--create", "--topic", topic, "--replica-assignment", &assignment.join(",")],
        )
        .await;
        assert!(out.status.success(), "creating {topic} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops a broker host as a crash would (the JVM killed, then its bootstrap).
    pub fn kill_broker(&mut self, instance_id: &str) {
        if let Some(i) = self.brokers.iter().position(|b| b.instance_id == instance_id) {
            let mut b = self.brokers.remove(i);
            if let Some(pid) = b.jvm_pid() {
                crate::process::signal_pid(pid, libc::SIGKILL);
            }
            b.process.kill();
        }
    }
}

/// Runs one of Kafka's own tools (`kafka-topics` is `org.apache.kafka.tools.TopicCommand`).
pub async fn kafka_tool(class: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("java")
        .kill_on_drop(true)
        .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"])
        .arg(format!("-Dlog4j.configuration=file:{}", crate::log4j_config().display()))
        .arg("-cp")
        .arg(format!("{}/*", kafka_libs().display()))
        .arg(class)
        .args(args)
        .output()
        .await
        .expect("java for Kafka's tools")
}

/// One of Kafka 4.4's own tools (`kafka-metadata-quorum` is
/// `org.apache.kafka.tools.MetadataQuorumCommand`), for KRaft clusters.
pub async fn kafka4_tool(class: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("java")
        .kill_on_drop(true)
        .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"])
        .arg(format!("-Dlog4j.configuration=file:{}", crate::log4j_config().display()))
        .arg("-cp")
        .arg(format!("{}/*", crate::kafka4_libs().display()))
        .arg(class)
        .args(args)
        .output()
        .await
        .expect("java for Kafka's tools")
}

/// Kafka's `kafka-producer-perf-test` (`ProducerPerformance`) at full speed with the JIT and G1 of a
/// production client: `records` 100-byte records to `topic`, with `props` (`acks=all`, ...).
/// Returns its records/s, read from its summary line.
pub fn producer_perf_test(bootstrap: &str, topic: &str, records: u64, props: &[&str]) -> Result<f64, String> {
    let out = std::process::Command::new("java")
        .args(["-Xmx512M", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"])
        .arg(format!("-Dlog4j.configuration=file:{}", crate::log4j_config().display()))
        .arg("-cp")
        .arg(format!("{}/*", kafka_libs().display()))
        .args(["org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", &records.to_string()])
        .args(["--record-size", "100", "--throughput", "-1", "--producer-props", &format!("bootstrap.servers={bootstrap}")])
        .args(props)
        .output()
        .map_err(|e| format!("kafka-producer-perf-test: {e}"))?;
    if !out.status.success() {
        return Err(format!("perf test failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // "N records sent, X records/sec (Y MB/sec), ..."
    text.lines()
        .rev()
        .find(|l| l.contains("records sent"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no rate in the perf test's output: {text}"))
}

/// One topic as Kafka's own `kafka-topics --describe` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribedTopic {
    pub topic_id: String,
    /// Partition -> (leader, replicas, isr).
    pub partitions: std::collections::BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)>,
}

/// `kafka-metadata-quorum describe --status`, as (leader, voter IDs, observer IDs).
pub async fn quorum_status(bootstrap_controller: &str) -> Result<(i64, BTreeSet<i64>, BTreeSet<i64>), String> {
    let out = kafka4_tool("org.apache.kafka.tools.MetadataQuorumCommand", &["--bootstrap-controller", bootstrap_controller, "describe", "--status"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!("kafka-metadata-quorum: {}{}", text, String::from_utf8_lossy(&out.stderr)));
    }
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string())).unwrap_or_default();
    let ids = |list: String| -> BTreeSet<i64> {
        let parsed: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
        parsed.as_array().map(|a| a.iter().filter_map(|v| v["id"].as_i64()).collect()).unwrap_or_default()
    };
    let leader = field("LeaderId:").parse().map_err(|_| format!("no LeaderId in: {text}"))?;
    Ok((leader, ids(field("CurrentVoters:")), ids(field("CurrentObservers:"))))
}

/// `kafka-metadata-quorum describe --status`'s current voters: node ID -> directory ID.
pub async fn quorum_voter_directories(bootstrap_controller: &str) -> Result<BTreeMap<i64, String>, String> {
    let out = kafka4_tool("org.apache.kafka.tools.MetadataQuorumCommand", &["--bootstrap-controller", bootstrap_controller, "describe", "--status"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!("kafka-metadata-quorum: {}{}", text, String::from_utf8_lossy(&out.stderr)));
    }
    let list = text.lines().find_map(|l| l.strip_prefix("CurrentVoters:")).ok_or_else(|| format!("no CurrentVoters in: {text}"))?;
    let parsed: serde_json::Value = serde_json::from_str(list.trim()).map_err(|e| format!("CurrentVoters {list}: {e}"))?;
    Ok(parsed
        .as_array()
        .map(|a| a.iter().filter_map(|v| Some((v["id"].as_i64()?, v["directoryId"].as_str().unwrap_or_default().to_string()))).collect())
        .unwrap_or_default())
}

/// `kafka-topics --describe` (every topic, or those matching `topic`), parsed from its text.
pub async fn describe_topics(bootstrap: &str, topic: Option<&str>) -> Result<BTreeMap<String, DescribedTopic>, String> {
    describe_topics_as(false, bootstrap, topic, &[]).await
}

/// `kafka-topics --describe` of Kafka 4.x (`kafka4`) or 3.9, with `extra` options (e.g.
/// `--under-replicated-partitions`).
pub async fn describe_topics_as(kafka4: bool, bootstrap: &str, topic: Option<&str>, extra: &[&str]) -> Result<BTreeMap<String, DescribedTopic>, String> {
    let mut args = vec!["--bootstrap-server", bootstrap, "--describe"];
    if let Some(t) = topic {
        args.extend(["--topic", t]);
    }
    args.extend(extra);
    let class = "org.apache.kafka.tools.TopicCommand";
    let out = if kafka4 { kafka4_tool(class, &args).await } else { kafka_tool(class, &args).await };
    if !out.status.success() {
        return Err(format!("kafka-topics --describe failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(parse_describe(&String::from_utf8_lossy(&out.stdout)))
}

pub fn parse_describe(text: &str) -> BTreeMap<String, DescribedTopic> {
    let ids = |v: &str| -> Vec<i32> { v.split(',').filter_map(|x| x.trim().parse().ok()).collect() };
    let mut out: BTreeMap<String, DescribedTopic> = BTreeMap::new();
    for line in text.lines() {
        let fields: BTreeMap<&str, &str> = line.split('\t').filter_map(|f| f.trim().split_once(": ")).collect();
        let Some(topic) = fields.get("Topic") else { continue };
        let entry = out.entry(topic.to_string()).or_default();
        if let Some(id) = fields.get("TopicId") {
            entry.topic_id = id.to_string();
        }
        if let (Some(p), Some(leader)) = (fields.get("Partition").and_then(|p| p.parse().ok()), fields.get("Leader")) {
            let leader = leader.trim().parse().unwrap_or(-1);
            entry.partitions.insert(p, (leader, ids(fields.get("Replicas").unwrap_or(&"")), ids(fields.get("Isr").unwrap_or(&""))));
        }
    }
    out
}
