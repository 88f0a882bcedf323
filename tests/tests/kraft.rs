//! Kafka 4.4 in KRaft mode, booted the way hosts boot (issue 28): 3 controllers and 3 brokers,
//! each a `kafka-bootstrap run --role ...` process taking its node ID from the fleet's ZooKeeper
//! registry, the controllers forming a dynamic quorum through the fleet's ZooKeeper, every log
//! directory formatted by Kafka's own storage tool. Judged with Kafka's own tools
//! (`kafka-metadata-quorum`, `kafka-topics`) and kcat.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use fleet_common::cluster_file::RawKraft;
use fleet_tests::kafka::{kafka4_tool, quorum_status, ClusterSpec, LocalCluster};
use fleet_tests::process::ManagedProcess;
use fleet_tests::{free_port, kafka4_libs, wait_until, ZkEnsemble};
use kafka_bootstrap::kraft::StorageTool;

struct Node {
    instance_id: String,
    role: &'static str,
    port: u16,
    data_dir: PathBuf,
    process: ManagedProcess,
}

fn spawn(cluster: &LocalCluster, instance_id: &str, role: &'static str) -> Node {
    let data_dir = cluster.hosts_root.join(instance_id).join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let _ = std::fs::remove_file(data_dir.join("boot-report.json"));
    let port = free_port();
    let mut cmd = cluster.bootstrap_command(&["run"]);
    cmd.args(["--instance-id", instance_id, "--port", &port.to_string(), "--role", role])
        .args(["--bind-host", "127.0.0.1", "--advertised-host", "127.0.0.1", "--mode", "child", "--quorum-timeout-secs", "120"])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--kafka-libs")
        .arg(kafka4_libs());
    let process = ManagedProcess::spawn(instance_id, cmd, &data_dir.join("node.log")).expect("spawn kafka-bootstrap");
    Node { instance_id: instance_id.to_string(), role, port, data_dir, process }
}

/// The boot report of a node, once its bootstrap has formatted storage and started Kafka.
async fn booted(node: &mut Node) -> serde_json::Value {
    let report = node.data_dir.join("boot-report.json");
    let what = format!("{} ({}) to boot; log {}", node.instance_id, node.role, node.process.log.display());
    let process = &mut node.process;
    let result = fleet_tests::wait::try_wait_until(Duration::from_secs(150), &mut || {
        let report = report.clone();
        let exited = (!process.is_running()).then(|| process.log_tail(30));
        async move {
            if let Some(tail) = exited {
                // Settled: no report can come any more.
                return Ok(Some(serde_json::json!({ "exited": tail })));
            }
            match std::fs::read_to_string(&report) {
                Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| e.to_string()),
                Err(_) => Ok(None),
            }
        }
    })
    .await;
    let report = result.unwrap_or_else(|e| panic!("{what}: {e}\n{}", node.process.log_tail(30)));
    assert!(report.get("exited").is_none(), "{what}: kafka-bootstrap exited:\n{}", report["exited"].as_str().unwrap_or_default());
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kraft_cluster_boots_forms_its_quorum_and_refuses_foreign_storage() {
    let zk = ZkEnsemble::start(1).await;
    let tool = StorageTool { java: "java".into(), libs: kafka4_libs() };
    let cluster_id = tool.random_uuid().expect("a cluster ID from kafka-storage random-uuid");
    let mut spec = ClusterSpec::local(3);
    spec.kraft = Some(RawKraft { cluster_id: cluster_id.clone(), controllers: 3 });
    let cluster = LocalCluster::new(&zk, spec);
    let hosts = [("ctl-1", "zone-a", "controller"), ("ctl-2", "zone-b", "controller"), ("ctl-3", "zone-c", "controller"), ("brk-1", "zone-a", "broker"), ("brk-2", "zone-b", "broker"), ("brk-3", "zone-c", "broker")];
    for (id, zone, _) in hosts {
        cluster.add_local_instance(id, zone);
    }
    // Every host boots at once, as an autoscaling group launches them.
    let mut nodes: Vec<Node> = hosts.iter().map(|(id, _, role)| spawn(&cluster, id, role)).collect();
    let mut reports = Vec::new();
    for node in &mut nodes {
        reports.push(booted(node).await);
    }
    let ids: BTreeSet<i64> = reports.iter().filter_map(|r| r["broker_id"].as_i64()).collect();
    assert_eq!(ids, (1..=6).collect(), "node IDs are sequential from the registry, shared by controllers and brokers: {reports:?}");
    let node_id = |i: usize| reports[i]["broker_id"].as_i64().expect("node id");
    let controller_ids: BTreeSet<i64> = (0..3).map(node_id).collect();
    let broker_ids: BTreeSet<i64> = (3..6).map(node_id).collect();
    for r in &reports[..3] {
        assert_eq!(r["kraft"]["storage"], "initial", "the first controllers format with --initial-controllers: {r}");
        assert_eq!(r["kraft"]["cluster_id"], cluster_id.as_str());
    }
    for r in &reports[3..] {
        assert_eq!(r["kraft"]["storage"], "joined", "{r}");
    }

    // Kafka's own view: 3 voters (the controllers), a leader among them, the brokers observing.
    let controller = format!("127.0.0.1:{}", nodes[0].port);
    let (leader, voters, observers) = wait_until("3 voters, a leader and 3 brokers observing, per kafka-metadata-quorum", Duration::from_secs(120), || {
        let controller = controller.clone();
        let (controller_ids, broker_ids) = (controller_ids.clone(), broker_ids.clone());
        async move {
            let (leader, voters, observers) = quorum_status(&controller).await?;
            let whole = voters == controller_ids && controller_ids.contains(&leader) && broker_ids.is_subset(&observers);
            Ok(whole.then_some((leader, voters, observers)))
        }
    })
    .await;
    eprintln!("quorum: leader {leader}, voters {voters:?}, observers {observers:?}");

    // The fleet's own observation, through the Kafka protocol (DescribeQuorum, DescribeCluster),
    // agrees with Kafka's tool.
    let wire = Duration::from_secs(5);
    let quorum = fleet_common::kafka_wire::describe_quorum(&controller, wire).await.expect("DescribeQuorum to a controller");
    assert_eq!(quorum.voters.iter().map(|v| i64::from(v.node_id)).collect::<BTreeSet<_>>(), voters);
    assert!(broker_ids.is_subset(&quorum.observers.iter().map(|v| i64::from(v.node_id)).collect()), "{quorum:?}");
    assert!(controller_ids.contains(&i64::from(quorum.leader_id)), "{quorum:?}");
    for v in &quorum.voters {
        let dir = v.directory_id.as_deref().expect("a dynamic quorum's voters carry directory IDs");
        assert!(kafka_bootstrap::kraft::is_kafka_uuid(dir), "{dir}");
        let report = reports.iter().find(|r| r["broker_id"].as_i64() == Some(i64::from(v.node_id))).expect("a voter's boot report");
        assert_eq!(report["kraft"]["directory_id"].as_str(), Some(dir), "the voter's directory is the one its boot formatted");
    }
    // Asked of any controller (followers point to the leader), the same voters.
    for n in &nodes[..3] {
        let (address, voters) = (format!("127.0.0.1:{}", n.port), voters.clone());
        wait_until(&format!("DescribeQuorum asked of {}", n.instance_id), Duration::from_secs(30), || {
            let (address, voters) = (address.clone(), voters.clone());
            async move {
                let q = fleet_common::kafka_wire::describe_quorum(&address, wire).await.map_err(|e| e.to_string())?;
                Ok((q.voters.iter().map(|v| i64::from(v.node_id)).collect::<BTreeSet<_>>() == voters).then_some(()))
            }
        })
        .await;
    }
    // A broker observing the metadata log may not serve yet: its listener opens once it has
    // caught up and been unfenced.
    let first_broker = format!("127.0.0.1:{}", nodes[3].port);
    let described = wait_until("the 3 brokers registered and unfenced, per DescribeCluster", Duration::from_secs(90), || {
        let (first_broker, broker_ids) = (first_broker.clone(), broker_ids.clone());
        async move {
            let c = fleet_common::kafka_wire::describe_cluster(&first_broker, true, wire).await.map_err(|e| e.to_string())?;
            let ids: BTreeSet<i64> = c.brokers.iter().filter(|b| !b.fenced).map(|b| i64::from(b.broker_id)).collect();
            Ok((ids == broker_ids).then_some(c))
        }
    })
    .await;
    assert_eq!(described.cluster_id, cluster_id);
    assert!(described.brokers.iter().all(|b| b.rack.is_some()), "{described:?}");
    let via_broker = fleet_common::kafka_wire::describe_quorum(&first_broker, wire).await.expect("DescribeQuorum through a broker");
    assert_eq!(via_broker.voters.len(), 3);

    // A topic over the 3 brokers with Kafka's own kafka-topics, and a kcat round trip.
    let brokers: String = nodes[3..].iter().map(|n| format!("127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",");
    wait_until("kafka-topics --create on the KRaft brokers", Duration::from_secs(90), || {
        let brokers = brokers.clone();
        async move {
            let out = kafka4_tool(
                "org.apache.kafka.tools.TopicCommand",
                &["--bootstrap-server", &brokers, "--create", "--if-not-exists", "--topic", "orders", "--partitions", "3", "--replication-factor", "3"],
            )
            .await;
            if out.status.success() {
                Ok(Some(()))
            } else {
                Err(String::from_utf8_lossy(&out.stderr).to_string())
            }
        }
    })
    .await;
    fleet_tests::kcat::produce(&brokers, "orders", "hello-kraft").await;
    assert_eq!(fleet_tests::kcat::consume_one(&brokers, "orders").await, "hello-kraft");

    // A host whose log directory another cluster formatted: not started, both IDs named, the
    // directory untouched.
    let other_id = tool.random_uuid().expect("another cluster ID");
    let mut other_spec = ClusterSpec::local(3);
    other_spec.kraft = Some(RawKraft { cluster_id: other_id.clone(), controllers: 1 });
    let other = LocalCluster::new(&zk, other_spec);
    other.add_local_instance("brk-3", "zone-c");
    let victim = nodes.pop().expect("brk-3");
    let mut victim = victim;
    victim.process.terminate(Duration::from_secs(30));
    // Stopped, it stays registered, fenced: what DescribeCluster with fenced brokers shows.
    let gone = node_id(5) as i32;
    wait_until("brk-3 fenced per DescribeCluster", Duration::from_secs(60), || {
        let first_broker = first_broker.clone();
        async move {
            let c = fleet_common::kafka_wire::describe_cluster(&first_broker, true, wire).await.map_err(|e| e.to_string())?;
            Ok(c.brokers.iter().any(|b| b.broker_id == gone && b.fenced).then_some(()))
        }
    })
    .await;
    let meta = victim.data_dir.join("kafka-logs/meta.properties");
    let before = std::fs::read_to_string(&meta).expect("brk-3 formatted");
    // Left behind if the stop ended in SIGKILL; its absence below must mean Kafka never started.
    let _ = std::fs::remove_file(victim.data_dir.join("kafka.pid"));
    let mut cmd = other.bootstrap_command(&["run"]);
    cmd.args(["--instance-id", "brk-3", "--port", &victim.port.to_string(), "--role", "broker"])
        .args(["--bind-host", "127.0.0.1", "--advertised-host", "127.0.0.1", "--mode", "child", "--quorum-timeout-secs", "5"])
        .arg("--data-dir")
        .arg(&victim.data_dir)
        .arg("--kafka-libs")
        .arg(kafka4_libs());
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run kafka-bootstrap");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "booted on another cluster's storage: {text}");
    assert!(text.contains(&cluster_id) && text.contains(&other_id) && text.contains("is formatted for cluster"), "{text}");
    assert!(!victim.data_dir.join("kafka.pid").exists(), "Kafka was started: {text}");
    assert_eq!(std::fs::read_to_string(&meta).expect("meta.properties"), before, "the refused boot changed the directory");
    assert!(other.registry().await.is_empty(), "the refused boot took an ID in the other cluster's registry");

    // Booted again as itself: the same node ID, its storage kept, back in the cluster.
    let mut again = spawn(&cluster, "brk-3", "broker");
    let report = booted(&mut again).await;
    assert_eq!(report["broker_id"].as_i64(), Some(node_id(5)), "{report}");
    assert_eq!(report["kraft"]["storage"], "kept", "{report}");
    let observed = broker_ids.clone();
    wait_until("brk-3 observing the quorum again", Duration::from_secs(90), || {
        let controller = controller.clone();
        let observed = observed.clone();
        async move { Ok(quorum_status(&controller).await?.2.is_superset(&observed).then_some(())) }
    })
    .await;
    nodes.push(again);

    // A first voter whose disk is gone: not formatted again under its old directory ID (it
    // would vote with an empty log); it joins with a new directory, an observer until promoted.
    let lost = nodes.remove(0);
    let mut lost = lost;
    let (lost_id, old_dir) = (node_id(0), reports[0]["kraft"]["directory_id"].as_str().unwrap_or_default().to_string());
    lost.process.terminate(Duration::from_secs(30));
    std::fs::remove_dir_all(lost.data_dir.join("kafka-logs")).expect("wipe the controller's disk");
    let mut back = spawn(&cluster, &lost.instance_id, "controller");
    let report = booted(&mut back).await;
    assert_eq!(report["broker_id"].as_i64(), Some(lost_id), "{report}");
    assert_eq!(report["kraft"]["storage"], "joined", "{report}");
    let new_dir = report["kraft"]["directory_id"].as_str().unwrap_or_default().to_string();
    assert!(kafka_bootstrap::kraft::is_kafka_uuid(&new_dir) && new_dir != old_dir, "old {old_dir}, new {new_dir}");
    let other_controller = format!("127.0.0.1:{}", nodes[0].port);
    wait_until("the wiped controller observing with its new directory", Duration::from_secs(90), || {
        let (address, new_dir) = (other_controller.clone(), new_dir.clone());
        async move {
            let q = fleet_common::kafka_wire::describe_quorum(&address, wire).await.map_err(|e| e.to_string())?;
            let observing = q.observers.iter().any(|o| i64::from(o.node_id) == lost_id && o.directory_id.as_deref() == Some(new_dir.as_str()));
            let voter_kept_old = q.voters.iter().all(|v| v.directory_id.as_deref() != Some(new_dir.as_str()));
            Ok((observing && voter_kept_old).then_some(()))
        }
    })
    .await;
    nodes.push(back);
    for n in &mut nodes {
        n.process.terminate(Duration::from_secs(20));
    }
}
