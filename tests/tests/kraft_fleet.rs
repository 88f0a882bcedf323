//! A Kafka 4.4 (KRaft) cluster declared with `fleetctl apply` and built by the fleet manager
//! (issue 28): 3 controller hosts and 3 broker hosts launched by the local provider, node IDs from
//! the fleet's registry, the cluster ID minted with the cluster resource, topics created through
//! the controller, a killed broker host replaced with its node ID. Judged with Kafka's own tools
//! (`kafka-metadata-quorum`, `kafka-cluster`, `kafka-topics`) and kcat. One fleet, one cluster,
//! shared by the whole file's steps (6 JVMs is what this machine can hold).

use std::collections::BTreeSet;
use std::time::Duration;

use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions};
use fleet_tests::kafka::{describe_topics_as, kafka4_tool, quorum_status, quorum_voter_directories};
use fleet_tests::{init_logging, kcat, wait_until, ZkEnsemble};

const CLUSTER: &str = "k4";

fn cluster_yaml(version: &str, extra: &str) -> String {
    format!(
        "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  kafkaVersion: \"{version}\"\n  brokers: 3\n  \
         availabilityZones: [zone-a, zone-b, zone-c]\n  provider: local\n{extra}  brokerConfig:\n    offsets.topic.replication.factor: 3\n    \
         offsets.topic.num.partitions: 4\n    num.network.threads: 2\n    num.io.threads: 2\n    group.initial.rebalance.delay.ms: 0\n"
    )
}

fn topic_yaml() -> String {
    format!("---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: orders }}\nspec: {{ cluster: {CLUSTER}, partitions: 6, replicationFactor: 3 }}\n")
}

fn text(out: &std::process::Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `host:port` of the cluster's running local hosts of one role.
fn endpoints(fm: &FleetManager, role: &str) -> Vec<String> {
    fm.local_hosts()
        .into_iter()
        .filter(|h| h.cluster.as_deref() == Some(CLUSTER) && h.state == fleet_common::local::LocalInstanceState::Running)
        .filter(|h| h.role.as_deref().unwrap_or("broker") == role)
        .filter_map(|h| h.port.map(|p| format!("127.0.0.1:{p}")))
        .collect()
}

async fn status(fm: &FleetManager) -> serde_json::Value {
    let (code, body) = fm.get(&format!("/v1/clusters/{CLUSTER}")).await;
    assert_eq!(code, 200, "{body}");
    body["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kraft_cluster_is_declared_built_observed_and_healed_by_the_fleet_manager() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.replace_grace_secs = 20;
    options.interval_secs = 3;
    let fm = FleetManager::start(options).await;

    // ---- bad input: refused naming the field, nothing written.
    let refusals = [
        (cluster_yaml("4.4", "  controllers: 4\n"), "spec.controllers", "even"),
        (cluster_yaml("4.4", "  controllers: 7\n"), "spec.controllers", "1, 3 or 5"),
        (cluster_yaml("5.0", ""), "spec.kafkaVersion", "3.9, 4.4"),
        (cluster_yaml("3.9", "  controllers: 3\n"), "spec.controllers", "ZooKeeper mode"),
        (cluster_yaml("4.4", "  combined: true\n").replace("brokers: 3", "brokers: 5"), "spec.combined", "at most 3"),
    ];
    for (doc, field, why) in &refusals {
        let out = fm.apply_yaml("bad.yaml", doc).await;
        let said = text(&out);
        assert!(!out.status.success(), "refused: {field}\n{said}");
        assert!(said.contains(field) && said.contains(why), "the refusal names {field} ({why}):\n{said}");
    }
    let (code, body) = fm.get(&format!("/v1/clusters/{CLUSTER}")).await;
    assert_eq!(code, 404, "nothing was written by the refused documents: {body}");

    // ---- declared, built: 3 controllers form the quorum, 3 brokers register.
    let out = fm.apply_yaml("k4.yaml", &(cluster_yaml("4.4", "") + &topic_yaml())).await;
    assert!(out.status.success(), "{}", text(&out));
    let converged = wait_until("the KRaft cluster converged (hosts, quorum, brokers, topic)", Duration::from_secs(240), || async {
        let st = status(&fm).await;
        if st["converged"] == true {
            Ok(Some(st))
        } else {
            Err(format!("phase {} plan {} quorum {} / {}", st["phase"], st["plan"], st["quorum"], fm.log_tail(5)))
        }
    })
    .await;
    let hosts = fm.local_hosts();
    let roles: Vec<(String, String)> =
        hosts.iter().filter(|h| h.cluster.as_deref() == Some(CLUSTER)).map(|h| (h.instance_id.clone(), h.role.clone().unwrap_or_else(|| "broker".into()))).collect();
    assert_eq!(roles.iter().filter(|(_, r)| r == "controller").count(), 3, "3 controller hosts of their own: {roles:?}");
    assert_eq!(roles.iter().filter(|(_, r)| r == "broker").count(), 3, "{roles:?}");

    let controllers = endpoints(&fm, "controller");
    let brokers = endpoints(&fm, "broker").join(",");
    let registry: std::collections::BTreeMap<i64, String> = converged["brokers"]["registry"]["value"]
        .as_object()
        .expect("registry known")
        .iter()
        .map(|(k, v)| (k.parse().expect("id"), v.as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(registry.keys().copied().collect::<BTreeSet<_>>(), (1..=6).collect(), "node IDs sequential from the registry, shared by both roles: {registry:?}");
    let role_of = |instance: &str| roles.iter().find(|(i, _)| i == instance).map(|(_, r)| r.clone()).unwrap_or_default();
    let controller_ids: BTreeSet<i64> = registry.iter().filter(|(_, i)| role_of(i) == "controller").map(|(id, _)| *id).collect();
    let broker_ids: BTreeSet<i64> = registry.iter().filter(|(_, i)| role_of(i) == "broker").map(|(id, _)| *id).collect();

    // Kafka's own tools: 3 voters (the controller hosts' IDs) and a leader among them.
    let (leader, voters, observers) = wait_until("kafka-metadata-quorum: 3 voters and a leader", Duration::from_secs(60), || {
        let controller = controllers[0].clone();
        let (controller_ids, broker_ids) = (controller_ids.clone(), broker_ids.clone());
        async move {
            let (leader, voters, observers) = quorum_status(&controller).await?;
            Ok((voters == controller_ids && controller_ids.contains(&leader) && broker_ids.is_subset(&observers)).then_some((leader, voters, observers)))
        }
    })
    .await;
    eprintln!("quorum: leader {leader}, voters {voters:?}, observers {observers:?}");
    // The fleet's status shows the same quorum, and the cluster ID Kafka reports.
    let quorum = &converged["quorum"]["value"];
    let status_voters: BTreeSet<i64> = quorum["voters"].as_array().expect("voters").iter().filter_map(|v| v["nodeId"].as_i64()).collect();
    assert_eq!(status_voters, voters, "{quorum}");
    let out = kafka4_tool("org.apache.kafka.tools.ClusterTool", &["cluster-id", "--bootstrap-server", &brokers]).await;
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let kafka_id = said.lines().find_map(|l| l.strip_prefix("Cluster ID:")).map(|s| s.trim().to_string()).unwrap_or_else(|| panic!("kafka-cluster cluster-id: {said}"));
    assert_eq!(converged["kafkaClusterId"].as_str(), Some(kafka_id.as_str()), "the cluster ID minted with the resource is the one Kafka runs with");

    // The declared topic, created through the controller, as kafka-topics (4.4) sees it.
    let topics = describe_topics_as(true, &brokers, Some("orders"), &[]).await.expect("kafka-topics --describe");
    let orders = &topics["orders"];
    assert_eq!(orders.partitions.len(), 6, "{:?}", orders.partitions);
    for (p, (leader, replicas, isr)) in &orders.partitions {
        assert_eq!(replicas.len(), 3, "partition {p}");
        assert!(replicas.iter().all(|r| broker_ids.contains(&i64::from(*r))), "partition {p} on brokers only: {replicas:?}");
        assert!(isr.contains(leader), "partition {p}");
    }
    // A kcat round trip.
    kcat::produce(&brokers, "orders", "hello-kraft").await;
    let read = kcat::read_all(&brokers, "orders").await;
    assert!(read.iter().any(|r| r == "hello-kraft"), "{read:?}");

    // ---- an in-place change of release line is refused, naming the way to move.
    let out = fm.apply_yaml("k4-39.yaml", &cluster_yaml("3.9", "")).await;
    let said = text(&out);
    assert!(!out.status.success() && said.contains("spec.kafkaVersion") && said.contains("move the route"), "{said}");
    assert_eq!(status(&fm).await["converged"], true);

    // ---- kill -9 of a broker host: replaced (same zone), with the same node ID; partitions back in sync.
    let (victim_id, victim) = registry.iter().find(|(_, i)| role_of(i) == "broker").map(|(id, i)| (*id, i.clone())).expect("a broker host");
    fm.kill_host(&victim);
    let replacement = wait_until(&format!("broker {victim_id} on a new host"), Duration::from_secs(180), || async {
        let st = status(&fm).await;
        let holder = st["brokers"]["registry"]["value"][victim_id.to_string()].as_str().unwrap_or_default().to_string();
        let live = st["brokers"]["live"]["value"].as_array().is_some_and(|l| l.iter().any(|v| v.as_i64() == Some(victim_id)));
        if !holder.is_empty() && holder != victim && live {
            Ok(Some(holder))
        } else {
            Err(format!("held by {holder:?}, live {}; plan {}", st["brokers"]["live"], st["plan"]))
        }
    })
    .await;
    eprintln!("broker {victim_id}: {victim} replaced by {replacement}");
    let brokers = endpoints(&fm, "broker").join(",");
    wait_until("no under-replicated partition per kafka-topics (4.4)", Duration::from_secs(120), || {
        let brokers = brokers.clone();
        async move {
            let under = describe_topics_as(true, &brokers, Some("orders"), &["--under-replicated-partitions"]).await?;
            let full = describe_topics_as(true, &brokers, Some("orders"), &[]).await?;
            let whole = under.values().all(|t| t.partitions.is_empty())
                && full.get("orders").is_some_and(|t| t.partitions.values().all(|(_, r, isr)| isr.len() == r.len() && r.contains(&(victim_id as i32))));
            Ok(whole.then_some(()))
        }
    })
    .await;
    let read = kcat::read_all(&brokers, "orders").await;
    assert!(read.iter().any(|r| r == "hello-kraft"), "the record survived the host's loss: {read:?}");

    // ---- kill -9 of the quorum leader's host, its disk gone with it: a new leader is elected
    // (which reports the dead voter with no fetch time at all), the host is replaced with the
    // same node ID and a new directory, and the voter set repaired with no manual step.
    let controllers = endpoints(&fm, "controller");
    let before = quorum_voter_directories(&controllers[0]).await.expect("voters");
    let (leader, _, _) = quorum_status(&controllers[0]).await.expect("quorum");
    let (ctl_id, ctl_instance) = registry.iter().find(|(id, i)| role_of(i) == "controller" && **id == leader).map(|(id, i)| (*id, i.clone())).expect("the leader's host");
    let old_dir = before.get(&ctl_id).cloned().expect("its directory");
    fm.kill_host(&ctl_instance);
    let after = wait_until(&format!("controller {ctl_id} a voter again with a new directory (kafka-metadata-quorum)"), Duration::from_secs(240), || {
        let controllers = endpoints(&fm, "controller");
        let before = before.clone();
        let old_dir = old_dir.clone();
        let fm = &fm;
        async move {
            // The first controller that answers (the killed one's address does not).
            let mut last = String::new();
            for c in &controllers {
                match quorum_voter_directories(c).await {
                    Ok(v) => {
                        let whole = v.len() == 3 && v.keys().copied().collect::<BTreeSet<_>>() == before.keys().copied().collect::<BTreeSet<_>>();
                        if whole && v.get(&ctl_id).is_some_and(|d| !d.is_empty() && *d != old_dir) {
                            return Ok(Some(v));
                        }
                        let st = status(&fm).await;
                        return Err(format!("voters {v:?}; fleet: waiting {} steps {} quorum {}", st["plan"]["waiting"], st["lastSteps"], st["quorum"]));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    })
    .await;
    eprintln!("controller {ctl_id}: directory {old_dir} -> {}", after[&ctl_id]);
    // The fleet manager made the change (Kafka does not auto-join controllers unless told to):
    // its journal has the old directory removed, then the new one added.
    let (_, journal) = fm.get(&format!("/v1/journal?cluster={CLUSTER}&limit=1000")).await;
    let voter_steps: Vec<(String, String)> = journal
        .as_array()
        .expect("journal")
        .iter()
        .filter(|e| (e["action"] == "remove-voter" || e["action"] == "add-voter") && e["outcome"] == "ok" && e["detail"]["nodeId"].as_i64() == Some(ctl_id))
        .map(|e| (e["action"].as_str().unwrap_or_default().to_string(), e["detail"]["directoryId"].as_str().unwrap_or_default().to_string()))
        .collect();
    let (removed, added) = (("remove-voter".to_string(), old_dir.clone()), ("add-voter".to_string(), after[&ctl_id].clone()));
    assert!(voter_steps.contains(&removed) && voter_steps.contains(&added), "journal: {voter_steps:?}");
    // Settled: converged again, and the repaired voter set stays as it is (no second removal,
    // though the leader still lists the old directory among its observers for a while).
    wait_until("the fleet converged after the repair", Duration::from_secs(90), || async {
        let st = status(&fm).await;
        if st["converged"] == true {
            Ok(Some(()))
        } else {
            Err(format!("waiting {}", st["plan"]["waiting"]))
        }
    })
    .await;
    let (_, journal) = fm.get(&format!("/v1/journal?cluster={CLUSTER}&limit=1000")).await;
    let removals = journal.as_array().expect("journal").iter().filter(|e| e["action"] == "remove-voter").count();
    assert_eq!(removals, 1, "one voter removed, once: {journal}");
    assert_eq!(quorum_voter_directories(&endpoints(&fm, "controller")[0]).await.expect("voters"), after, "the voter set stayed as repaired");
    let holder = status(&fm).await["brokers"]["registry"]["value"][ctl_id.to_string()].as_str().unwrap_or_default().to_string();
    assert!(!holder.is_empty() && holder != ctl_instance, "node {ctl_id} is held by the replacement host, not {ctl_instance}: {holder}");
    let brokers = endpoints(&fm, "broker").join(",");
    kcat::produce(&brokers, "orders", "after-the-controller").await;
    let read = kcat::read_all(&brokers, "orders").await;
    assert!(read.iter().any(|r| r == "after-the-controller"), "{read:?}");
    fm.stop_local_hosts();
}
