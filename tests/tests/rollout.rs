//! Config rollout against real parts: a fleet manager that built a 3-broker local cluster (`roll`,
//! topic `live`: 6 partitions, 3 copies, min ISR 2). Results are checked with Kafka's own
//! `kafka-configs --describe` and `kafka-topics --describe`, ZooKeeper's `/brokers/ids`,
//! `/controller` and partition states, and each host's `kafka.pid`, not with the project's code.
//! One fixture, in order:
//! 1. dynamic keys (`log.retention.ms`, `num.io.threads`) set cluster-wide through the Admin API:
//!    every broker reports them, none restarted (same JVM, same registration);
//! 2. a read-only key (`queued.max.requests`) rolled while an idempotent acks=all producer
//!    writes: never more than one broker out of `/brokers/ids`, the controller last, every JVM
//!    new, no send failed;
//! 3. `POST /v1/operations/roll` with a broker's JVM killed (-9) after the first restart: the
//!    roll pauses (no other broker restarted while it is missing), the fleet manager is killed
//!    (-9) and started again while paused, the host is replaced, and the roll ends with every
//!    broker restarted exactly once and still no send failed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, READ_TOKEN, WRITE_TOKEN};
use fleet_tests::kafka::{describe_topics, kafka_tool, local_cluster_yaml, local_properties};
use fleet_tests::{init_logging, output_text, wait_until, ZkEnsemble};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

const CLUSTER: &str = "roll";
const LIVE: &str = "live";
const BROKERS: usize = 3;
/// Keys Kafka 3.9 updates at run time, cluster-wide (`--entity-default`).
const DYNAMIC: [(&str, &str); 2] = [("log.retention.ms", "7200000"), ("num.io.threads", "6")];
/// A key Kafka 3.9 reads at start only (read-only): a rolling restart.
const STATIC: (&str, &str) = ("queued.max.requests", "600");

/// The cluster (the harness's local properties, a 6 s ZooKeeper session, and `extra`, which may
/// override a harness default such as `num.io.threads`) and the topic `live`.
fn specs(extra: &[(&str, &str)]) -> String {
    let mut config = local_properties(BROKERS);
    config.insert("zookeeper.session.timeout.ms".into(), "6000".into());
    for (k, v) in extra {
        config.insert(k.to_string(), v.to_string());
    }
    // The harness's document with its `brokerConfig` (its last field) written from `config`: an
    // override of a harness default is one key, not a duplicate.
    const HEAD: &str = "  brokerConfig:\n";
    let mut text = local_cluster_yaml(CLUSTER, BROKERS, &[]);
    let end = text.find(HEAD).expect("brokerConfig in the harness's cluster document") + HEAD.len();
    text.truncate(end);
    for (k, v) in &config {
        text.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    // priorityClass high: three copies, min ISR 2.
    text.push_str(&format!(
        "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {LIVE} }}\nspec: {{ cluster: {CLUSTER}, partitions: 6, priorityClass: high }}\n"
    ));
    // One copy: no restart order keeps it writable, and the roll says so.
    text.push_str(&format!("---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: thin }}\nspec: {{ cluster: {CLUSTER}, partitions: 1, replicationFactor: 1 }}\n"));
    text
}

/// `POST /v1/apply` of [`specs`]; the answer (`operations`: what it started).
async fn apply(fm: &FleetManager, extra: &[(&str, &str)]) -> Value {
    let (code, body) = fm.call(reqwest::Method::POST, "/v1/apply", Some(WRITE_TOKEN), Some(("application/yaml", specs(extra)))).await;
    assert_eq!(code, 200, "apply: {body}");
    body
}

async fn operation(fm: &FleetManager, id: &str) -> Value {
    let (code, body) = fm.get(&format!("/v1/operations/{id}")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_op(fm: &FleetManager, id: &str, what: &str, deadline: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let done = &done;
    wait_until(&format!("operation {id}: {what}"), deadline, || async move {
        let op = operation(fm, id).await;
        if done(&op) {
            Ok(Some(op))
        } else if op["status"]["phase"] == "Failed" || op["status"]["phase"] == "Cancelled" {
            panic!("operation ended without {what}: {op}");
        } else {
            Err(format!("{} {} roll {} / {}", op["status"]["phase"], op["status"]["message"], op["status"]["roll"], fm.log_tail(3)))
        }
    })
    .await
}

fn succeeded(op: &Value) -> bool {
    op["status"]["phase"] == "Succeeded"
}

/// The ConfigRollout an apply started: from the apply's answer, else the cluster's one not seen
/// before. Its ID is added to `known`.
async fn rollout_started(fm: &FleetManager, applied: &Value, known: &mut BTreeSet<String>) -> Value {
    let mut found = Vec::new();
    for id in applied["operations"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let op = operation(fm, id).await;
        if op["spec"]["kind"] == "configRollout" {
            found.push(op);
        }
    }
    if found.is_empty() {
        let (code, ops) = fm.get(&format!("/v1/operations?cluster={CLUSTER}")).await;
        assert_eq!(code, 200, "{ops}");
        found = ops
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o["spec"]["kind"] == "configRollout" && o["id"].as_str().is_some_and(|i| !known.contains(i)))
            .collect();
    }
    assert_eq!(found.len(), 1, "the apply started one ConfigRollout: {applied} {found:?}");
    let op = found.remove(0);
    known.insert(op["id"].as_str().expect("operation id").to_string());
    op
}

/// Every operation of the cluster so far.
async fn operation_ids(fm: &FleetManager) -> BTreeSet<String> {
    let (code, ops) = fm.get(&format!("/v1/operations?cluster={CLUSTER}")).await;
    assert_eq!(code, 200, "{ops}");
    ops.as_array().into_iter().flatten().filter_map(|o| o["id"].as_str().map(str::to_string)).collect()
}

/// The rollout's changes by key.
fn changes(op: &Value) -> BTreeMap<String, Value> {
    op["spec"]["changes"].as_array().into_iter().flatten().filter_map(|c| Some((c["key"].as_str()?.to_string(), c.clone()))).collect()
}

fn ids_of(v: &Value) -> Vec<i32> {
    v.as_array().into_iter().flatten().filter_map(Value::as_i64).map(|i| i as i32).collect()
}

/// `status.roll`: (restarted, current).
fn roll_state(op: &Value) -> (Vec<i32>, Option<i32>) {
    let roll = &op["status"]["roll"];
    (ids_of(&roll["restarted"]), roll["current"].as_i64().map(|c| c as i32))
}

/// When the operation first entered `phase` (epoch ms), from its history.
fn entered(op: &Value, phase: &str) -> Option<i64> {
    op["status"]["history"].as_array().into_iter().flatten().find(|h| h["phase"] == phase).and_then(|h| h["atMs"].as_i64())
}

fn history(op: &Value) -> Vec<String> {
    op["status"]["history"].as_array().into_iter().flatten().filter_map(|h| h["phase"].as_str().map(str::to_string)).collect()
}

/// One broker as its host and ZooKeeper have it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Broker {
    instance: String,
    /// The JVM's PID (`<host>/data/kafka.pid`), running.
    pid: i32,
    /// The czxid of its `/brokers/ids/<id>` znode.
    czxid: i64,
}

/// Every broker of the fleet's registry with its JVM and registration; an error while one is
/// missing (no JVM, not registered).
async fn read_brokers(fm: &FleetManager, client: &zookeeper_client::Client, root: &str) -> Result<BTreeMap<i32, Broker>, String> {
    let paths = fleet_common::FleetPaths::new(root).cluster(CLUSTER);
    let registry = fleet_common::registry::read_registry(client, &paths).await.map_err(|e| format!("registry: {e}"))?;
    let mut out = BTreeMap::new();
    for (id, entry) in registry {
        let instance = entry.lease.instance_id.clone();
        let pid_file = fm.hosts_root().join(&instance).join("data/kafka.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| format!("broker {id}: no JVM pid in {}", pid_file.display()))?;
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(format!("broker {id}: JVM {pid} not running"));
        }
        let (_, stat) = client.get_data(&paths.kafka().broker(id)).await.map_err(|e| format!("broker {id} not registered: {e}"))?;
        out.insert(id, Broker { instance, pid, czxid: stat.czxid });
    }
    Ok(out)
}

async fn wait_brokers(fm: &FleetManager, client: &zookeeper_client::Client, root: &str, what: &str) -> BTreeMap<i32, Broker> {
    wait_until(&format!("{what}: {BROKERS} brokers running and registered"), Duration::from_secs(120), || async move {
        read_brokers(fm, client, root).await.map(|b| (b.len() == BROKERS).then_some(b))
    })
    .await
}

/// One broker's JVM PID, from its host's `kafka.pid` (whatever the other brokers are doing).
async fn jvm_pid(fm: &FleetManager, client: &zookeeper_client::Client, root: &str, broker: i32) -> i32 {
    let paths = fleet_common::FleetPaths::new(root).cluster(CLUSTER);
    let registry = fleet_common::registry::read_registry(client, &paths).await.expect("registry");
    let instance = &registry.get(&broker).unwrap_or_else(|| panic!("broker {broker} in the registry")).lease.instance_id;
    let pid_file = fm.hosts_root().join(instance).join("data/kafka.pid");
    let pid = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.trim().parse().ok());
    pid.unwrap_or_else(|| panic!("broker {broker}'s JVM pid in {}", pid_file.display()))
}

/// The controller's broker ID (`/controller`).
async fn controller(client: &zookeeper_client::Client, root: &str) -> Option<i32> {
    let path = fleet_common::FleetPaths::new(root).cluster(CLUSTER).kafka().controller();
    let (data, _) = client.get_data(&path).await.ok()?;
    let v: Value = serde_json::from_slice(&data).ok()?;
    v["brokerid"].as_i64().map(|b| b as i32)
}

/// Every partition of `live` with its 3 replicas all in its ISR, as Kafka's controller wrote them.
async fn live_in_sync(client: &zookeeper_client::Client, root: &str) -> Result<Option<()>, String> {
    let kafka = fleet_common::FleetPaths::new(root).cluster(CLUSTER).kafka();
    let (data, _) = client.get_data(&kafka.topic(LIVE)).await.map_err(|e| format!("topic {LIVE}: {e}"))?;
    let topic: Value = serde_json::from_slice(&data).map_err(|e| e.to_string())?;
    let assignment = topic["partitions"].as_object().cloned().unwrap_or_default();
    if assignment.len() != 6 {
        return Err(format!("{} partitions: {topic}", assignment.len()));
    }
    let mut lagging = Vec::new();
    for (p, replicas) in &assignment {
        let replicas: BTreeSet<i32> = ids_of(replicas).into_iter().collect();
        let p: i32 = p.parse().map_err(|_| format!("partition {p}"))?;
        let (state, _) = client.get_data(&kafka.partition_state(LIVE, p)).await.map_err(|e| format!("partition {p} state: {e}"))?;
        let state: Value = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
        let isr: BTreeSet<i32> = ids_of(&state["isr"]).into_iter().collect();
        if replicas.len() != BROKERS || isr != replicas {
            lagging.push(format!("{p}: replicas {replicas:?} isr {isr:?}"));
        }
    }
    if lagging.is_empty() {
        Ok(Some(()))
    } else {
        Err(lagging.join("; "))
    }
}

async fn wait_in_sync(client: &zookeeper_client::Client, root: &str, what: &str) {
    wait_until(&format!("{what}: every partition of {LIVE} fully in sync"), Duration::from_secs(120), || live_in_sync(client, root)).await;
}

/// `kafka-configs --describe --entity-type brokers` of one broker (`--all`) or of the
/// cluster-wide defaults (`--entity-default`).
async fn broker_configs(servers: &str, broker: Option<i32>) -> String {
    let name = broker.map(|b| b.to_string());
    let mut args = vec!["--bootstrap-server", servers, "--describe", "--entity-type", "brokers"];
    match &name {
        Some(n) => args.extend(["--entity-name", n.as_str(), "--all"]),
        None => args.push("--entity-default"),
    }
    let out = kafka_tool("kafka.admin.ConfigCommand", &args).await;
    assert!(out.status.success(), "kafka-configs {args:?}: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line `  key=value sensitive=... synonyms={...}` of a kafka-configs description.
fn config_line<'a>(described: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    described.lines().map(str::trim_start).find(|l| l.starts_with(&prefix))
}

fn config_value(described: &str, key: &str) -> Option<String> {
    config_line(described, key).and_then(|l| l[key.len() + 1..].split_whitespace().next()).map(str::to_string)
}

/// An idempotent acks=all producer writing to `live` until stopped, ten records in flight at a
/// time, counting deliveries.
struct Producing {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    first_error: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Producing {
    fn start(servers: &str) -> Self {
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", servers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "120000")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(Mutex::new(None));
        let (s, o, f, e) = (stop.clone(), ok.clone(), failed.clone(), first_error.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let records: Vec<(String, String)> = (n..n + 10).map(|i| ((i % 64).to_string(), i.to_string())).collect();
                n += 10;
                let sends = records.iter().map(|(key, payload)| producer.send(FutureRecord::to(LIVE).key(key).payload(payload), Duration::from_secs(120)));
                for result in futures::future::join_all(sends).await {
                    match result {
                        Ok(_) => {
                            o.fetch_add(1, Ordering::Relaxed);
                        }
                        Err((err, _)) => {
                            f.fetch_add(1, Ordering::Relaxed);
                            e.lock().expect("lock").get_or_insert(err.to_string());
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { stop, ok, failed, first_error, task }
    }

    /// (delivered, failed) so far.
    fn counts(&self) -> (u64, u64) {
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("lock").clone()
    }

    /// Stops sending and waits for the records in flight; (delivered, failed, first error).
    async fn stop(self) -> (u64, u64, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let Self { ok, failed, first_error, task, .. } = self;
        let _ = task.await;
        let e = first_error.lock().expect("lock").clone();
        (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), e)
    }
}

/// What a watcher saw at one instant.
struct Sample {
    at: Instant,
    /// `/brokers/ids`.
    live: BTreeSet<i32>,
    /// `/controller`'s broker.
    controller: Option<i32>,
    /// The watched operation's (restarted, current), when the fleet manager answered.
    roll: Option<(Vec<i32>, Option<i32>)>,
}

/// Every 200 ms: the operation (if one is given) and then ZooKeeper's `/brokers/ids` and
/// `/controller`. The operation is read first, so a broker missing from the ZooKeeper read that
/// follows was missing when the operation was read too (brokers killed stay gone until back).
struct Watch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Watch {
    fn start(client: zookeeper_client::Client, root: &str, operation: Option<(reqwest::Client, String)>) -> Self {
        let kafka = fleet_common::FleetPaths::new(root).cluster(CLUSTER).kafka();
        let (ids_path, controller_path) = (kafka.broker_ids(), kafka.controller());
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let roll = match &operation {
                    Some((http, url)) => read_roll(http, url).await,
                    None => None,
                };
                let at = Instant::now();
                if let Ok(children) = client.list_children(&ids_path).await {
                    let live = children.iter().filter_map(|c| c.parse().ok()).collect();
                    let controller = match client.get_data(&controller_path).await {
                        Ok((data, _)) => serde_json::from_slice::<Value>(&data).ok().and_then(|v| v["brokerid"].as_i64()).map(|b| b as i32),
                        Err(_) => None,
                    };
                    samples.push(Sample { at, live, controller, roll });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            samples
        });
        Self { stop, task }
    }

    async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("watch task")
    }
}

/// The operation's roll from the API; `None` while the fleet manager does not answer.
async fn read_roll(http: &reqwest::Client, url: &str) -> Option<(Vec<i32>, Option<i32>)> {
    let resp = http.get(url).bearer_auth(READ_TOKEN).timeout(Duration::from_secs(2)).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let op: Value = resp.json().await.ok()?;
    Some(roll_state(&op))
}

/// The spans a broker was missing from `/brokers/ids`: (first sample without it, first sample
/// with it again, or the last sample).
fn absences(samples: &[Sample], id: i32) -> Vec<(Instant, Instant)> {
    let mut out = Vec::new();
    let mut since = None;
    for s in samples {
        match (s.live.contains(&id), since) {
            (false, None) => since = Some(s.at),
            (true, Some(t)) => {
                out.push((t, s.at));
                since = None;
            }
            _ => {}
        }
    }
    if let (Some(t), Some(last)) = (since, samples.last()) {
        out.push((t, last.at));
    }
    out
}

/// Restarted brokers and the one restarting: what a roll has begun.
fn begun(restarted: &[i32], current: Option<i32>) -> BTreeSet<i32> {
    restarted.iter().copied().chain(current).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_rollout_sets_dynamic_keys_and_rolls_static_ones_one_broker_at_a_time() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    // A broker gone this long has its host replaced (section 3 counts on it): long enough that
    // the broker killed there is still missing when the restart under way finishes.
    options.replace_grace_secs = 60;
    let mut fm = FleetManager::start(options).await;
    let root = fm.options.fleet_root.clone();
    let client = zk.client().await;
    let spec_path = fm.run.path.join("roll.yaml");
    std::fs::write(&spec_path, specs(&[])).expect("specs");
    let out = fm.fleetctl(&["apply", "-f", &spec_path.display().to_string(), "--wait", "--timeout", "240s"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    wait_in_sync(&client, &root, "the cluster built").await;
    let mut known = operation_ids(&fm).await;
    let before = wait_brokers(&fm, &client, &root, "the cluster built").await;
    let ids: Vec<i32> = before.keys().copied().collect();

    // ---- 0. A value Kafka itself refuses (log.local.retention.ms above log.retention.ms: its
    // dynamic check, which the property catalog cannot make) is refused at apply,
    // naming the key, and nothing is written: no operation, the generation unchanged.
    let (code, before_doc) = fm.get(&format!("/v1/clusters/{CLUSTER}")).await;
    assert_eq!(code, 200, "{before_doc}");
    let (code, body) = fm.call(reqwest::Method::POST, "/v1/apply", Some(WRITE_TOKEN), Some(("application/yaml", specs(&[("log.local.retention.ms", "999999999999")])))).await;
    assert_eq!(code, 422, "Kafka refuses log.local.retention.ms above log.retention.ms: {body}");
    assert_eq!(body["field"], "spec.brokerConfig.log.local.retention.ms", "{body}");
    let (_, after_doc) = fm.get(&format!("/v1/clusters/{CLUSTER}")).await;
    assert_eq!(after_doc["generation"], before_doc["generation"], "nothing written: {after_doc}");
    assert_eq!(operation_ids(&fm).await, known, "no operation started");
    // The same with the brokers changed in one apply: refused, two operations at once cannot run.
    let both = specs(&[("log.retention.ms", "7200000")]).replace(&format!("brokers: {BROKERS}"), "brokers: 4");
    let (code, body) = fm.call(reqwest::Method::POST, "/v1/apply", Some(WRITE_TOKEN), Some(("application/yaml", both))).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("spec.brokerConfig")), "{body}");

    // ---- 1. Dynamic keys: set through the Admin API as cluster-wide defaults, read back from
    // every broker; no broker restarted.
    let started = Instant::now();
    let applied = apply(&fm, &DYNAMIC).await;
    let op = rollout_started(&fm, &applied, &mut known).await;
    let id = op["id"].as_str().expect("id").to_string();
    let ch = changes(&op);
    assert_eq!(ch.keys().map(String::as_str).collect::<Vec<_>>(), ["log.retention.ms", "num.io.threads"], "{op}");
    for (k, v) in DYNAMIC {
        assert_eq!(ch[k]["effect"], "clusterWide", "{k}: {op}");
        assert_eq!(ch[k]["to"], v, "{k}: {op}");
    }
    assert_eq!(ch["num.io.threads"]["from"], "2", "the harness's value before: {op}");
    assert!(ch["log.retention.ms"]["from"].is_null(), "not set before: {op}");
    assert_eq!(op["spec"]["restart"], false, "{op}");
    let done = wait_op(&fm, &id, "succeeded", Duration::from_secs(60), succeeded).await;
    let phases = history(&done);
    assert!(!phases.iter().any(|p| p == "Rolling"), "no restart: {phases:?}");
    eprintln!("dynamic keys: {:.1} s from apply to Succeeded ({phases:?})", started.elapsed().as_secs_f64());
    let servers = fm.cluster_servers(Some(CLUSTER));
    for b in &ids {
        let described = broker_configs(&servers, Some(*b)).await;
        for (k, v) in DYNAMIC {
            assert_eq!(config_value(&described, k).as_deref(), Some(v), "kafka-configs of broker {b}, {k}: {described}");
        }
    }
    let defaults = broker_configs(&servers, None).await;
    for (k, v) in DYNAMIC {
        let line = config_line(&defaults, k).unwrap_or_else(|| panic!("{k} a cluster-wide default: {defaults}"));
        assert_eq!(config_value(&defaults, k).as_deref(), Some(v), "{line}");
        assert!(line.contains("DYNAMIC_DEFAULT_BROKER_CONFIG"), "{k} a dynamic default: {line}");
    }
    let after = wait_brokers(&fm, &client, &root, "after the dynamic keys").await;
    for b in &ids {
        assert_eq!((after[b].pid, after[b].czxid), (before[b].pid, before[b].czxid), "broker {b} not restarted: before {:?}, after {:?}", before[b], after[b]);
    }

    // ---- 2. A read-only key: a rolling restart under an idempotent acks=all producer, one
    // broker down at a time, the controller last.
    let before = after;
    let controller_before = controller(&client, &root).await.expect("a controller");
    let producer = Producing::start(&servers);
    wait_until("the producer's first acknowledgement", Duration::from_secs(60), || {
        let (ok, failed) = producer.counts();
        let first = producer.first_error();
        async move {
            if failed > 0 {
                panic!("a send failed before the roll: {first:?}");
            }
            Ok((ok > 0).then_some(()))
        }
    })
    .await;
    let watch = Watch::start(client.clone(), &root, None);
    let (ok_before, _) = producer.counts();
    let started = Instant::now();
    let applied = apply(&fm, &[DYNAMIC[0], DYNAMIC[1], STATIC]).await;
    let op = rollout_started(&fm, &applied, &mut known).await;
    let id = op["id"].as_str().expect("id").to_string();
    let ch = changes(&op);
    assert_eq!(ch.keys().map(String::as_str).collect::<Vec<_>>(), [STATIC.0], "only the new key changed: {op}");
    assert_eq!(ch[STATIC.0]["effect"], "restart", "{op}");
    assert_eq!(ch[STATIC.0]["to"], STATIC.1, "{op}");
    assert_eq!(op["spec"]["restart"], true, "{op}");
    let done = wait_op(&fm, &id, "succeeded", Duration::from_secs(300), succeeded).await;
    // `live` (3 copies, min ISR 2) stays writable; `thin` (1 copy) cannot, and is named.
    assert_eq!(done["status"]["roll"]["unprotectedCount"], 1, "{done}");
    assert_eq!(done["status"]["roll"]["unprotected"][0], "thin-0 (RF 1, min ISR 1)", "{done}");
    let roll_secs = started.elapsed().as_secs_f64();
    let samples = watch.stop().await;
    let (ok_after, failed) = producer.counts();
    assert_eq!(failed, 0, "sends failed during the roll: {:?}", producer.first_error());
    assert!(ok_after > ok_before, "the producer delivered during the roll ({ok_before} -> {ok_after})");
    assert!(samples.len() > 10, "the watcher ran: {} samples", samples.len());
    let min_live = samples.iter().map(|s| s.live.len()).min().unwrap_or(0);
    assert!(min_live >= BROKERS - 1, "never more than one broker out of /brokers/ids: {min_live} seen");
    let missing: BTreeMap<i32, Vec<(Instant, Instant)>> = ids.iter().map(|b| (*b, absences(&samples, *b))).collect();
    assert!(missing.values().any(|a| !a.is_empty()), "the watcher saw restarts: {} samples", samples.len());
    let roll = &done["status"]["roll"];
    let restarted = ids_of(&roll["restarted"]);
    let mut sorted = restarted.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "every broker restarted once: {roll}");
    let after = wait_brokers(&fm, &client, &root, "after the roll").await;
    for b in &ids {
        assert_ne!(after[b].pid, before[b].pid, "broker {b} runs a new JVM");
        assert_ne!(after[b].czxid, before[b].czxid, "broker {b} registered again");
        assert_eq!(roll["registrations"][b.to_string()].as_i64(), Some(before[b].czxid), "the roll recorded broker {b}'s registration: {roll}");
        let down: Vec<String> = missing[b].iter().map(|(from, to)| format!("{:.1}", to.duration_since(*from).as_secs_f64())).collect();
        eprintln!(
            "roll: broker {b} restarted in {:.1} s (status.roll.millis), out of /brokers/ids {down:?} s",
            roll["millis"][b.to_string()].as_f64().unwrap_or(f64::NAN) / 1000.0
        );
    }
    // The controller last; unless it moved before the last restart began (then logged, not asserted).
    let last = *restarted.last().expect("restarted");
    if last != controller_before {
        let last_down = missing[&last].first().map(|(from, _)| *from);
        let seen: BTreeSet<i32> = samples.iter().filter(|s| last_down.is_none_or(|t| s.at < t)).filter_map(|s| s.controller).collect();
        assert!(seen.iter().any(|c| *c != controller_before), "the controller ({controller_before}) restarted last, not {last}: {restarted:?}, controllers seen {seen:?}");
        eprintln!("roll: the controller moved during the roll ({controller_before} -> {seen:?}); controller-last not checked");
    }
    let rolling_secs = match (entered(&done, "Rolling"), entered(&done, "Succeeded")) {
        (Some(a), Some(b)) => (b - a) as f64 / 1000.0,
        _ => f64::NAN,
    };
    eprintln!(
        "roll: {roll_secs:.1} s from apply to Succeeded ({rolling_secs:.1} s Rolling), order {restarted:?} (controller {controller_before}), {} sends ok during it, min registered {min_live}",
        ok_after - ok_before
    );
    for b in &ids {
        let described = broker_configs(&servers, Some(*b)).await;
        assert_eq!(config_value(&described, STATIC.0).as_deref(), Some(STATIC.1), "kafka-configs of broker {b}: {described}");
        for (k, v) in DYNAMIC {
            assert_eq!(config_value(&described, k).as_deref(), Some(v), "broker {b} keeps {k} after its restart: {described}");
        }
    }
    wait_in_sync(&client, &root, "after the roll").await;

    // ---- 3. A restart alone, a broker's JVM killed (-9) after the first restart: the roll
    // pauses while it is missing; the fleet manager is killed (-9) while paused; the host is
    // replaced and the roll ends.
    let before = after;
    let (ok_before, _) = producer.counts();
    let started = Instant::now();
    let body = serde_json::json!({"cluster": CLUSTER, "reason": "rollout test: a restart alone"}).to_string();
    let (code, answer) = fm.call(reqwest::Method::POST, "/v1/operations/roll", Some(WRITE_TOKEN), Some(("application/json", body))).await;
    assert_eq!(code, 200, "{answer}");
    let id = answer["operation"]["id"].as_str().or_else(|| answer["operation"].as_str()).unwrap_or_else(|| panic!("an operation: {answer}")).to_string();
    let op = operation(&fm, &id).await;
    assert_eq!(op["spec"]["kind"], "configRollout", "{op}");
    assert_eq!(op["spec"]["restart"], true, "{op}");
    assert!(changes(&op).is_empty(), "a restart alone changes nothing: {op}");
    // A second roll while this one runs: refused, naming it (409: exit 4).
    let out = fm.fleetctl(&["roll", CLUSTER, "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&id), "names the running roll: {}", output_text(&out));
    let first = wait_op(&fm, &id, "the first broker restarted", Duration::from_secs(180), |o| !roll_state(o).0.is_empty()).await;
    let (restarted, current) = roll_state(&first);
    assert_eq!(restarted.len(), 1, "caught after the first restart: {}", first["status"]);
    // Neither restarted nor restarting; the controller if it is one (the roll takes it last).
    let candidates: Vec<i32> = ids.iter().copied().filter(|b| !restarted.contains(b) && Some(*b) != current).collect();
    let ctl = controller(&client, &root).await;
    let victim = ctl.filter(|c| candidates.contains(c)).or_else(|| candidates.first().copied()).unwrap_or_else(|| panic!("a broker not yet restarted: {}", first["status"]));
    let pid = jvm_pid(&fm, &client, &root, victim).await;
    let watch = Watch::start(client.clone(), &root, Some((fm.http(), format!("{}/v1/operations/{id}", fm.url()))));
    assert!(fleet_tests::process::signal_pid(pid, libc::SIGKILL), "kill -9 of broker {victim}'s JVM {pid}");
    let killed = Instant::now();
    eprintln!("roll: broker {victim}'s JVM ({pid}) killed -9; restarted {restarted:?}, current {current:?}, controller {ctl:?}");
    // Its registration goes with its ZooKeeper session (6 s); a restart under way when it was
    // killed has to end before the roll looks at the next one.
    let deadline = Duration::from_secs(if current.is_some() { 90 } else { 30 });
    let paused = wait_op(&fm, &id, "paused by the missing broker", deadline, |o| {
        o["status"]["roll"]["pausedBy"].is_string() && o["status"]["message"].as_str().is_some_and(|m| m.starts_with("paused:"))
    })
    .await;
    eprintln!("roll: paused {:.1} s after the kill: {} / {}", killed.elapsed().as_secs_f64(), paused["status"]["roll"]["pausedBy"], paused["status"]["message"]);
    fm.kill();
    let stored = {
        let store = fleet_manager::store::Store::open(&fm.database_url()).await.expect("store");
        store.operation(&id).await.expect("stored")
    };
    assert_eq!(stored.status.phase.as_str(), "Rolling", "killed mid-roll");
    assert!(stored.status.roll.as_ref().is_some_and(|r| !r.restarted.contains(&victim)), "killed before broker {victim} was done: {:?}", stored.status.roll);
    fm.spawn().await;
    let done = wait_op(&fm, &id, "succeeded", Duration::from_secs(300), succeeded).await;
    let roll_secs = started.elapsed().as_secs_f64();
    let samples = watch.stop().await;

    // While the victim was missing from /brokers/ids, no other broker's restart began.
    let absent: Vec<&Sample> = samples.iter().skip_while(|s| s.live.contains(&victim)).take_while(|s| !s.live.contains(&victim)).collect();
    assert!(!absent.is_empty(), "the watcher saw broker {victim} missing ({} samples)", samples.len());
    assert!(samples.last().is_some_and(|s| s.live.contains(&victim)), "broker {victim} back in /brokers/ids");
    let (base_restarted, base_current) =
        absent.iter().find_map(|s| s.roll.clone()).unwrap_or_else(|| panic!("the operation read while broker {victim} was missing"));
    let base = begun(&base_restarted, base_current);
    let mut reads = 0;
    for s in &absent {
        if let Some((r, c)) = &s.roll {
            reads += 1;
            let now = begun(r, *c);
            assert!(now.is_subset(&base), "a restart began while broker {victim} was missing: {r:?} current {c:?}, when it went missing {base_restarted:?} current {base_current:?}");
            if base_current.is_none() {
                assert_eq!(r.len(), base_restarted.len(), "restarted unchanged while broker {victim} was missing: {r:?}");
            }
        }
    }
    let missing_secs = absent.last().zip(absent.first()).map_or(0.0, |(l, f)| l.at.duration_since(f.at).as_secs_f64());
    eprintln!("roll: broker {victim} missing {missing_secs:.1} s ({reads} operation reads meanwhile, none began a restart)");

    let roll = &done["status"]["roll"];
    let restarted = ids_of(&roll["restarted"]);
    let mut sorted = restarted.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "every broker restarted exactly once: {roll}");
    let after = wait_brokers(&fm, &client, &root, "after the roll with a kill").await;
    assert_ne!(after[&victim].instance, before[&victim].instance, "broker {victim}'s host was replaced");
    for b in &ids {
        assert_ne!(after[b].czxid, before[b].czxid, "broker {b} registered again");
        assert_ne!(after[b].pid, before[b].pid, "broker {b} runs a new JVM");
        match roll["millis"][b.to_string()].as_f64() {
            Some(ms) => eprintln!("roll with a kill: broker {b} back in {:.1} s (status.roll.millis)", ms / 1000.0),
            None => eprintln!("roll with a kill: broker {b} came back on a replacement host (booted with the new properties; not restarted by the roll)"),
        }
    }
    eprintln!("roll with a kill: {roll_secs:.1} s from the request to Succeeded, order {restarted:?}, history {:?}", history(&done));

    // Kafka's own view: every partition of live on 3 brokers, fully in sync, led.
    wait_in_sync(&client, &root, "after the roll with a kill").await;
    let servers = fm.cluster_servers(Some(CLUSTER));
    let described = describe_topics(&servers, Some(LIVE)).await.expect("describe");
    let live = described.get(LIVE).unwrap_or_else(|| panic!("{LIVE} described: {described:?}"));
    assert_eq!(live.partitions.len(), 6);
    for (p, (leader, replicas, isr)) in &live.partitions {
        let (r, i): (BTreeSet<&i32>, BTreeSet<&i32>) = (replicas.iter().collect(), isr.iter().collect());
        assert_eq!(replicas.len(), BROKERS, "{LIVE}-{p}: {replicas:?}");
        assert_eq!(r, i, "{LIVE}-{p} fully in sync");
        assert!(replicas.contains(leader), "{LIVE}-{p} led: {leader} {replicas:?}");
    }

    // The producer, through both rolls and the kill: nothing failed.
    let (ok_total, failed, first_error) = producer.stop().await;
    assert_eq!(failed, 0, "sends failed: {first_error:?}");
    assert!(ok_total > ok_before, "the producer delivered during the roll with a kill ({ok_before} -> {ok_total})");
    eprintln!("producer: {ok_total} sends ok in all, {} during the roll with a kill, 0 failed", ok_total - ok_before);
    fm.stop_local_hosts();
}
