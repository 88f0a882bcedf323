//! A Kafka 4.4 (KRaft) cluster declared with `fleetctl apply` and built by the fleet manager
//! (issue 28): 3 controller hosts and 3 broker hosts launched by the local provider, node IDs from
//! the fleet's registry, the cluster ID minted with the cluster resource, topics created through
//! the controller, a killed broker host replaced with its node ID, the quorum leader's host
//! killed and the voter set repaired, `controllers: 3 -> 5 -> 3` in place, and the healthcheck's
//! findings on a KRaft cluster. Judged with Kafka's own tools (`kafka-metadata-quorum`,
//! `kafka-cluster`, `kafka-topics`) and kcat. One fleet, one cluster, shared by the whole file's
//! steps (6 to 8 JVMs is what this machine can hold).

use std::collections::BTreeSet;
use std::time::Duration;

use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions};
use fleet_tests::kafka::{describe_topics_as, kafka4_tool, quorum_status, quorum_voter_directories};
use fleet_tests::{init_logging, kcat, wait_until, workspace_bin, ZkEnsemble};

const CLUSTER: &str = "k4";

fn cluster_yaml(version: &str, extra: &str) -> String {
    format!(
        "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  kafkaVersion: \"{version}\"\n  brokers: 3\n  \
         availabilityZones: [zone-a, zone-b, zone-c]\n  provider: local\n{extra}  brokerConfig:\n    offsets.topic.replication.factor: 3\n    \
         offsets.topic.num.partitions: 4\n    num.network.threads: 2\n    num.io.threads: 2\n    group.initial.rebalance.delay.ms: 0\n"
    )
}

fn topic_yaml() -> String {
    format!(
        "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: orders }}\nspec: {{ cluster: {CLUSTER}, partitions: 6, replicationFactor: 3 }}\n\
         ---\napiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: k4-orders }}\nspec: {{ cluster: {CLUSTER} }}\n"
    )
}

/// The brokers route `k4-orders` gives clients now.
async fn route_servers(fm: &FleetManager) -> Vec<String> {
    let (_, binding) = fm.get("/v1/routes/k4-orders/binding").await;
    binding["bootstrapServers"].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
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

/// The values of controller `id`'s name in the local routes (`controller-<id>.<cluster>.local`).
fn controller_route(fm: &FleetManager, id: i64) -> Vec<String> {
    fleet_common::local::read_record(&fm.dns_root(), &format!("controller-{id}.{CLUSTER}.local")).expect("routes").into_iter().flat_map(|s| s.values).collect()
}

/// `host:port` of the local host holding node `id` in a registry answer.
fn node_endpoint(fm: &FleetManager, registry: &serde_json::Value, id: i64) -> String {
    let instance = registry[id.to_string()].as_str().unwrap_or_default();
    let port = fm.local_hosts().into_iter().find(|h| h.instance_id == instance).and_then(|h| h.port).unwrap_or_default();
    format!("127.0.0.1:{port}")
}

/// `controller.quorum.bootstrap.servers` as a local host's bootstrap wrote it.
fn quorum_bootstrap_servers(fm: &FleetManager, instance: &str) -> String {
    let props = std::fs::read_to_string(fm.hosts_root().join(instance).join("data/server.properties")).unwrap_or_default();
    props.lines().find_map(|l| l.strip_prefix("controller.quorum.bootstrap.servers=")).unwrap_or_default().to_string()
}

/// `kafka-healthcheck check` of the cluster through `bootstrap` (the KRaft path: the Kafka
/// protocol, the fleet's registry in ZooKeeper): its JSON report, healthy or not.
async fn healthcheck(fm: &FleetManager, bootstrap: &str) -> Result<serde_json::Value, String> {
    let out = tokio::process::Command::new(workspace_bin("kafka-healthcheck"))
        .args(["check", "--zookeeper", &fm.options.zookeeper, "--fleet-root", &fm.options.fleet_root, "--cluster", CLUSTER])
        .args(["--bootstrap-server", bootstrap, "--timeout-ms", "10000", "-o", "json"])
        .output()
        .await
        .map_err(|e| format!("kafka-healthcheck: {e}"))?;
    match out.status.code() {
        Some(0 | 1) => serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out))),
        _ => Err(format!("could not tell: {}", text(&out))),
    }
}

/// `(topic, partition)` of a healthcheck report's findings of one kind.
fn finding_partitions(report: &serde_json::Value, kind: &str) -> BTreeSet<(String, i32)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["kind"] == kind)
        .filter_map(|f| Some((f["topic"].as_str()?.to_string(), i32::try_from(f["partition"].as_i64()?).ok()?)))
        .collect()
}

fn finding_nodes(report: &serde_json::Value, kind: &str) -> BTreeSet<i64> {
    report["findings"].as_array().into_iter().flatten().filter(|f| f["kind"] == kind).filter_map(|f| f["broker"].as_i64()).collect()
}

/// The journal's successful voter changes, `(action, node ID)`.
async fn voter_journal(fm: &FleetManager) -> Vec<(String, i64)> {
    let (_, journal) = fm.get(&format!("/v1/journal?cluster={CLUSTER}&limit=1000")).await;
    journal
        .as_array()
        .expect("journal")
        .iter()
        .filter(|e| (e["action"] == "remove-voter" || e["action"] == "add-voter") && e["outcome"] == "ok")
        .map(|e| (e["action"].as_str().unwrap_or_default().to_string(), e["detail"]["nodeId"].as_i64().unwrap_or(-1)))
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
    let mut fm = FleetManager::start(options).await;

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
    // Each controller registered its name (controller-<id>.k4.local; local routes hold the
    // address, names being what Route53 resolves on EC2), and every node lists the quorum by it.
    let registry_json = converged["brokers"]["registry"]["value"].clone();
    let mut by_name = Vec::new();
    for id in &controller_ids {
        let route = controller_route(&fm, *id);
        assert_eq!(route, vec![node_endpoint(&fm, &registry_json, *id)], "controller {id}'s name");
        by_name.extend(route);
    }
    for (instance, _) in roles.iter().filter(|(_, r)| r == "broker") {
        assert_eq!(quorum_bootstrap_servers(&fm, instance), by_name.join(","), "broker host {instance}");
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
    let mut served = route_servers(&fm).await;
    served.sort();
    let mut all_brokers: Vec<String> = endpoints(&fm, "broker");
    all_brokers.sort();
    assert_eq!(served, all_brokers, "route k4-orders serves the cluster's brokers");
    let victim_endpoint = fm.local_hosts().into_iter().find(|h| h.instance_id == victim).and_then(|h| h.port).map(|p| format!("127.0.0.1:{p}")).expect("its port");
    fm.kill_host(&victim);
    // Clients are given unfenced brokers only: once Kafka fences the killed broker the route
    // leaves it out, while its host is still listed as running (not yet replaced).
    let survivors: Vec<String> = all_brokers.iter().filter(|b| **b != victim_endpoint).cloned().collect();
    wait_until("route k4-orders leaves the fenced broker out", Duration::from_secs(60), || async {
        let mut served = route_servers(&fm).await;
        served.sort();
        let running = fm.local_hosts().iter().any(|h| h.instance_id == victim && h.state == fleet_common::local::LocalInstanceState::Running);
        match (served == survivors, running) {
            (true, true) => Ok(Some(())),
            (_, false) => panic!("the killed broker's host was replaced before the route left it out: served {served:?}"),
            (false, true) => Err(format!("served {served:?}, want {survivors:?}")),
        }
    })
    .await;
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
    // The healthcheck reports the missing voter while it lasts (read through a broker).
    let brokers = endpoints(&fm, "broker").join(",");
    let report = wait_until(&format!("the healthcheck reports voter {ctl_id} missing"), Duration::from_secs(90), || async {
        let report = healthcheck(&fm, &brokers).await?;
        if finding_nodes(&report, "missing_voter").contains(&ctl_id) {
            Ok(Some(report))
        } else {
            Err(format!("findings {} quorum {}", report["findings"], report["quorum"]))
        }
    })
    .await;
    assert_eq!(report["status"], "unhealthy", "{report}");
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
                        let st = status(fm).await;
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
    let report = healthcheck(&fm, &brokers).await.expect("healthcheck");
    assert!(finding_nodes(&report, "missing_voter").is_empty() && report["quorum"]["voters"].as_array().map(Vec::len) == Some(3), "{report}");
    // Its name follows it to the new host (a new port here), one value only.
    let repaired_at = node_endpoint(&fm, &status(&fm).await["brokers"]["registry"]["value"], ctl_id);
    assert_eq!(controller_route(&fm, ctl_id), vec![repaired_at.clone()], "controller {ctl_id}'s name after the repair");

    // ---- controllers: 3 -> 5 -> 3 in place, as Kafka's dynamic quorum allows: hosts launched
    // and their nodes added as voters one at a time once caught up; then voters removed one at
    // a time (never the leader), their hosts retired and their node IDs released.
    let voters_now = |fm: &FleetManager| {
        let controllers = endpoints(fm, "controller");
        async move {
            let mut last = String::from("no controller running");
            for c in &controllers {
                match quorum_voter_directories(c).await {
                    Ok(v) => return Ok(v),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    };
    let three: BTreeSet<i64> = voters_now(&fm).await.expect("voters").into_keys().collect();
    let journal_before_resize = voter_journal(&fm).await;
    let out = fm.apply_yaml("k4-5.yaml", &(cluster_yaml("4.4", "  controllers: 5\n") + &topic_yaml())).await;
    assert!(out.status.success(), "controllers 3 -> 5 applied in place: {}", text(&out));
    let five = wait_until("5 voters per kafka-metadata-quorum, the fleet converged", Duration::from_secs(300), || async {
        let v = voters_now(&fm).await?;
        let st = status(&fm).await;
        if v.len() == 5 && st["converged"] == true {
            Ok(Some(v))
        } else {
            Err(format!("voters {v:?}; waiting {} steps {}", st["plan"]["waiting"], st["lastSteps"]))
        }
    })
    .await;
    let five_ids: BTreeSet<i64> = five.keys().copied().collect();
    assert!(three.is_subset(&five_ids), "the three stay voters: {three:?} -> {five_ids:?}");
    // The controllers booted for the resize found the repaired one by its name, at its new
    // address, not where the quorum first recorded it.
    let registry_json = status(&fm).await["brokers"]["registry"]["value"].clone();
    for id in five_ids.difference(&three) {
        let instance = registry_json[id.to_string()].as_str().unwrap_or_default().to_string();
        let servers = quorum_bootstrap_servers(&fm, &instance);
        assert!(servers.split(',').any(|s| s == repaired_at), "controller {id} lists {repaired_at} (controller {ctl_id}): {servers}");
    }
    assert_eq!(endpoints(&fm, "controller").len(), 5, "5 controller hosts");
    let out = fm.apply_yaml("k4-3.yaml", &(cluster_yaml("4.4", "  controllers: 3\n") + &topic_yaml())).await;
    assert!(out.status.success(), "controllers 5 -> 3 applied in place: {}", text(&out));
    let back = wait_until("3 voters per kafka-metadata-quorum, 3 controller hosts, the fleet converged", Duration::from_secs(240), || async {
        let v = voters_now(&fm).await?;
        let st = status(&fm).await;
        let hosts = endpoints(&fm, "controller").len();
        if v.len() == 3 && hosts == 3 && st["converged"] == true {
            Ok(Some((v, st)))
        } else {
            Err(format!("voters {v:?}, {hosts} controller hosts; waiting {} steps {}", st["plan"]["waiting"], st["lastSteps"]))
        }
    })
    .await;
    let (voters_back, st) = back;
    let held: BTreeSet<i64> = st["brokers"]["registry"]["value"].as_object().expect("registry").keys().filter_map(|k| k.parse().ok()).collect();
    let gone: BTreeSet<i64> = five_ids.difference(&voters_back.keys().copied().collect()).copied().collect();
    assert_eq!(gone.len(), 2, "{five_ids:?} -> {voters_back:?}");
    assert!(held.is_disjoint(&gone), "the leaving controllers' node IDs are released: registry {held:?}, gone {gone:?}");
    wait_until("the retired controllers' names removed", Duration::from_secs(60), || async {
        let left: Vec<(i64, Vec<String>)> = gone.iter().map(|id| (*id, controller_route(&fm, *id))).filter(|(_, r)| !r.is_empty()).collect();
        if left.is_empty() {
            Ok(Some(()))
        } else {
            Err(format!("still named: {left:?}"))
        }
    })
    .await;
    let resize_steps: Vec<(String, i64)> = {
        let mut after = voter_journal(&fm).await;
        for e in &journal_before_resize {
            if let Some(i) = after.iter().position(|x| x == e) {
                after.remove(i);
            }
        }
        after
    };
    assert_eq!(resize_steps.iter().filter(|(a, _)| a == "add-voter").map(|(_, id)| *id).collect::<BTreeSet<_>>(), five_ids.difference(&three).copied().collect(), "{resize_steps:?}");
    assert_eq!(resize_steps.iter().filter(|(a, _)| a == "remove-voter").map(|(_, id)| *id).collect::<BTreeSet<_>>(), gone, "{resize_steps:?}");
    assert_eq!(resize_steps.len(), 4, "two voters added, two removed, nothing else: {resize_steps:?}");
    let brokers = endpoints(&fm, "broker").join(",");
    kcat::produce(&brokers, "orders", "after-the-resize").await;
    assert!(kcat::read_all(&brokers, "orders").await.iter().any(|r| r == "after-the-resize"));
    let report = healthcheck(&fm, &brokers).await.expect("healthcheck");
    assert!(finding_nodes(&report, "missing_voter").is_empty(), "no voter missing after the resize: {report}");

    // ---- the healthcheck's partition findings match kafka-topics (4.4) after two of the three
    // broker hosts are killed. An RF-1 topic gives unavailable partitions; the fleet manager is
    // stopped first, so nothing is replaced while the two are compared.
    let out = kafka4_tool("org.apache.kafka.tools.TopicCommand", &["--bootstrap-server", &brokers, "--create", "--topic", "solo", "--partitions", "3", "--replication-factor", "1"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let registry = status(&fm).await["brokers"]["registry"]["value"].clone();
    let broker_hosts: Vec<(i64, String)> =
        broker_ids.iter().filter_map(|id| Some((*id, registry[id.to_string()].as_str()?.to_string()))).collect();
    assert_eq!(broker_hosts.len(), 3, "{registry}");
    fm.kill();
    let (survivor_id, _) = broker_hosts.first().cloned().expect("a broker");
    for (_, instance) in &broker_hosts[1..] {
        fm.kill_host(instance);
    }
    let survivor = fm
        .local_hosts()
        .into_iter()
        .find(|h| h.cluster.as_deref() == Some(CLUSTER) && h.state == fleet_common::local::LocalInstanceState::Running && broker_hosts[0].1 == h.instance_id)
        .and_then(|h| h.port.map(|p| format!("127.0.0.1:{p}")))
        .expect("the surviving broker's address");
    let dead: BTreeSet<i64> = broker_hosts[1..].iter().map(|(id, _)| *id).collect();
    let (report, unavailable, under) = wait_until("healthcheck findings = kafka-topics --unavailable-partitions / --under-replicated-partitions", Duration::from_secs(120), || {
        let survivor = survivor.clone();
        let dead = dead.clone();
        let fm = &fm;
        async move {
            let unavailable: BTreeSet<(String, i32)> = describe_topics_as(true, &survivor, None, &["--unavailable-partitions"])
                .await?
                .into_iter()
                .flat_map(|(t, d)| d.partitions.into_keys().map(move |p| (t.clone(), p)))
                .collect();
            let under: BTreeSet<(String, i32)> = describe_topics_as(true, &survivor, None, &["--under-replicated-partitions"])
                .await?
                .into_iter()
                .flat_map(|(t, d)| d.partitions.into_keys().map(move |p| (t.clone(), p)))
                .collect();
            let report = healthcheck(fm, &survivor).await?;
            let offline = finding_partitions(&report, "offline_partition");
            let behind = finding_partitions(&report, "under_replicated_partition");
            let missing = finding_nodes(&report, "missing_broker");
            // An offline partition is reported as offline, the graver finding, not also as
            // under-replicated.
            let under_online: BTreeSet<(String, i32)> = under.difference(&unavailable).cloned().collect();
            if missing == dead && !unavailable.is_empty() && offline == unavailable && behind == under_online {
                Ok(Some((report, unavailable, under_online)))
            } else {
                Err(format!("kafka-topics: unavailable {unavailable:?} under {under_online:?}; healthcheck: offline {offline:?} under {behind:?} missing {missing:?}"))
            }
        }
    })
    .await;
    eprintln!("healthcheck = kafka-topics: {} unavailable, {} under-replicated; broker {survivor_id} survives", unavailable.len(), under.len());
    assert!(unavailable.iter().all(|(t, _)| t == "solo") && under.iter().filter(|(t, _)| t == "orders").count() == 6, "{unavailable:?} {under:?}");
    assert_eq!(report["status"], "unhealthy");

    // ---- an ID whose node is alive is not handed out again, whatever the provider says of its
    // instance: KRaft nodes write nothing under /brokers/ids, and the quorum's leader sees them
    // fetch. The surviving broker's instance is made to look terminated, and a new host asks.
    let hosts_root = fm.hosts_root();
    let mut lied_about = fleet_common::local::read_instance(&hosts_root, &broker_hosts[0].1).expect("read").expect("the survivor's record");
    let probe = fleet_common::local::LocalInstance { instance_id: "i-probe".into(), ..lied_about.clone() };
    fleet_common::local::write_instance(&hosts_root, &probe).expect("the probe's record");
    lied_about.state = fleet_common::local::LocalInstanceState::Terminated;
    fleet_common::local::write_instance(&hosts_root, &lied_about).expect("the survivor's record");
    let cluster_file = fm.hosts_root().parent().expect("local root").join(format!("clusters/{CLUSTER}.yaml"));
    let out = tokio::process::Command::new(workspace_bin("kafka-bootstrap"))
        .args(["assign-id", "--instance-id", "i-probe", "-o", "json", "--cluster-file"])
        .arg(&cluster_file)
        .output()
        .await
        .expect("kafka-bootstrap assign-id");
    assert!(out.status.success(), "{}", text(&out));
    let assigned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert!(assigned["how"] == "new" && assigned["broker_id"].as_i64() != Some(survivor_id), "broker {survivor_id} still fetches from the quorum: its ID is not reused: {assigned}");
    fm.stop_local_hosts();
}
