//! kafka-bootstrap against a real ZooKeeper ensemble, real Kafka 3.9 brokers and moto.
//! Run serially (`--test-threads=1`): each test starts JVMs.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::Duration;

use fleet_tests::kafka::{ClusterSpec, Dns, HostProvider};
use fleet_tests::{wait_until, LocalCluster, Moto, ZkEnsemble};

async fn run(cmd: std::process::Command) -> Output {
    tokio::process::Command::from(cmd).output().await.expect("spawn kafka-bootstrap")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `assign-id` for every instance at once; returns instance -> ID.
async fn assign_concurrently(cluster: &LocalCluster, instances: &[String]) -> BTreeMap<String, i32> {
    let runs = instances.iter().map(|instance| {
        let cmd = cluster.bootstrap_command(&["assign-id", "--instance-id", instance]);
        async move {
            let out = run(cmd).await;
            assert!(out.status.success(), "assign-id {instance} failed: {}", stderr(&out));
            let id: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("an ID on stdout");
            (instance.clone(), id)
        }
    });
    futures::future::join_all(runs).await.into_iter().collect()
}

#[tokio::test]
async fn fifty_concurrent_bootstraps_get_distinct_sequential_ids_and_restarts_keep_them() {
    let zk = ZkEnsemble::start(3).await;
    let cluster = LocalCluster::new(&zk, ClusterSpec::local(1));
    let instances: Vec<String> = (0..50).map(|i| format!("i-{i:03}")).collect();
    for i in &instances {
        cluster.add_local_instance(i, "local-a");
    }
    let ids = assign_concurrently(&cluster, &instances).await;
    let distinct: BTreeSet<i32> = ids.values().copied().collect();
    assert_eq!(distinct, (1..=50).collect::<BTreeSet<i32>>(), "IDs: {ids:?}");

    // The registry agrees with what each process printed.
    let registry = cluster.registry().await;
    for (instance, id) in &ids {
        assert_eq!(registry.get(id), Some(instance));
    }

    // Restarts (all at once, too) get their own IDs back; nothing new is allocated.
    let again = assign_concurrently(&cluster, &instances[10..20]).await;
    for (instance, id) in &again {
        assert_eq!(ids[instance], *id, "{instance} changed ID on restart");
    }
    assert_eq!(cluster.registry().await.len(), 50);
}

#[tokio::test]
async fn terminated_local_instance_id_is_reused_by_a_new_instance() {
    let zk = ZkEnsemble::start(1).await;
    let cluster = LocalCluster::new(&zk, ClusterSpec::local(1));
    let instances: Vec<String> = (1..=3).map(|i| format!("host-{i}")).collect();
    for i in &instances {
        cluster.add_local_instance(i, "local-a");
    }
    let ids = assign_concurrently(&cluster, &instances).await;
    let victim_id = ids["host-2"];

    cluster.terminate_local_instance("host-2");
    cluster.add_local_instance("host-4", "local-a");
    let out = run(cluster.bootstrap_command(&["assign-id", "--instance-id", "host-4", "-o", "json"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["broker_id"], victim_id);
    assert_eq!(v["how"], "reused");
    assert_eq!(v["previous_instance_id"], "host-2");
    assert_eq!(cluster.registry().await.get(&victim_id).map(String::as_str), Some("host-4"));

    // A host the provider never heard of also frees its ID; a live one keeps it.
    let out = run(cluster.bootstrap_command(&["assign-id", "--instance-id", "host-5"])).await;
    assert!(!out.status.success(), "an unknown instance must not boot");
    assert!(stderr(&out).contains("host-5"), "{}", stderr(&out));
}

#[tokio::test]
async fn terminated_ec2_instance_id_is_reused_through_moto() {
    let zk = ZkEnsemble::start(1).await;
    let moto = Moto::start().await;
    let mut spec = ClusterSpec::local(1);
    spec.provider = HostProvider::Ec2 { endpoint: moto.endpoint() };
    let cluster = LocalCluster::new(&zk, spec);
    let mut instances = Vec::new();
    for az in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        instances.push(moto.run_instance(az, &cluster.name).await);
    }
    let ids = assign_concurrently(&cluster, &instances).await;
    assert_eq!(ids.values().copied().collect::<BTreeSet<_>>(), BTreeSet::from([1, 2, 3]));

    moto.terminate(&instances[0]).await;
    let replacement = moto.run_instance("us-east-1a", &cluster.name).await;
    let out = run(cluster.bootstrap_command(&["assign-id", "--instance-id", &replacement, "-o", "json"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["broker_id"], ids[&instances[0]], "{v}");
    assert_eq!(v["previous_instance_id"], instances[0].as_str());

    // Still-running instances keep theirs: a further instance gets a fresh ID.
    let another = moto.run_instance("us-east-1b", &cluster.name).await;
    let out = run(cluster.bootstrap_command(&["assign-id", "--instance-id", &another])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4", "{}", stderr(&out));

    // Without --instance-id (as the fleet manager's user-data runs it), the bootstrap asks the
    // instance metadata service, IMDSv2 only: a stand-in that refuses requests without a session
    // token, as an instance with `http_tokens = required` does.
    let fifth = moto.run_instance("us-east-1c", &cluster.name).await;
    let (imds, seen) = imds_v2_stand_in(&fifth).await;
    let mut cmd = cluster.bootstrap_command(&["assign-id"]);
    cmd.env_remove("AWS_EC2_METADATA_DISABLED").env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds);
    let out = run(cmd).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5", "{}", stderr(&out));
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(seen.iter().any(|r| r == "PUT /latest/api/token"), "no IMDSv2 session token was asked for: {seen:?}");
    assert!(seen.iter().any(|r| r == "GET /latest/meta-data/instance-id with token"), "{seen:?}");
    assert!(!seen.iter().any(|r| r.ends_with("without token")), "an IMDSv1 request: {seen:?}");
}

/// A stand-in of the EC2 instance metadata service answering `instance_id`, IMDSv2 only
/// (401 without the session token). Returns its URL and the requests it saw.
async fn imds_v2_stand_in(instance_id: &str) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, StatusCode};
    const TOKEN: &str = "imds-session-token";
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (put_seen, get_seen) = (seen.clone(), seen.clone());
    let id = instance_id.to_string();
    let app = axum::Router::new()
        .route(
            "/latest/api/token",
            axum::routing::put(move |headers: HeaderMap| async move {
                put_seen.lock().map(|mut s| s.push("PUT /latest/api/token".into())).ok();
                // The token's TTL comes back as a header, as EC2 sends it.
                match headers.get("x-aws-ec2-metadata-token-ttl-seconds").cloned() {
                    Some(ttl) => (StatusCode::OK, [("x-aws-ec2-metadata-token-ttl-seconds", ttl)], TOKEN.to_string()),
                    None => (StatusCode::BAD_REQUEST, [("x-aws-ec2-metadata-token-ttl-seconds", axum::http::HeaderValue::from_static("0"))], String::new()),
                }
            }),
        )
        .route(
            "/latest/meta-data/instance-id",
            axum::routing::get(move |headers: HeaderMap| async move {
                let with = headers.get("x-aws-ec2-metadata-token").is_some_and(|t| t == TOKEN);
                get_seen.lock().map(|mut s| s.push(format!("GET /latest/meta-data/instance-id {}", if with { "with token" } else { "without token" }))).ok();
                if with {
                    (StatusCode::OK, id.clone())
                } else {
                    (StatusCode::UNAUTHORIZED, String::new())
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn ec2_broker_boots_registers_with_its_rack_and_dns_in_route53() {
    let zk = ZkEnsemble::start(3).await;
    let moto = Moto::start().await;
    let zone = "kafka.fleet.test";
    let zone_id = moto.create_zone(zone).await;
    let mut spec = ClusterSpec::local(1);
    spec.provider = HostProvider::Ec2 { endpoint: moto.endpoint() };
    spec.dns = Dns::Route53 { endpoint: moto.endpoint(), zone: zone.to_string() };
    let mut cluster = LocalCluster::new(&zk, spec);
    let instance = moto.run_instance("us-east-1b", &cluster.name).await;

    let broker = cluster.start_broker(&instance).await;
    let (broker_id, port) = (broker.broker_id, broker.port);
    assert_eq!(broker_id, 1);

    let registration = cluster.registration(broker_id).await.expect("registered in /brokers/ids");
    assert_eq!(registration.rack.as_deref(), Some("us-east-1b"));
    assert_eq!(registration.endpoints, vec![format!("PLAINTEXT://127.0.0.1:{port}")]);

    let records = moto.records(&zone_id).await;
    let broker_name = format!("broker-1.{}.{zone}", cluster.name);
    let bootstrap_name = format!("{}.{zone}", cluster.name);
    for name in [&broker_name, &bootstrap_name] {
        let found = records.iter().find(|r| &r.0 == name).unwrap_or_else(|| panic!("{name} not in {records:?}"));
        assert_eq!(found.1, "A");
        assert_eq!(found.2.as_deref(), Some("broker-1"));
        assert_eq!(found.3, vec!["127.0.0.1".to_string()]);
    }

    // A KRaft controller registers its own name only (clients bootstrap from brokers), and the
    // quorum's bootstrap servers name it, for Kafka to resolve each time it connects.
    let dns = kafka_bootstrap::cluster_file::DnsConfig::Route53 { zone: zone.to_string(), endpoint_url: Some(moto.endpoint()), ttl: 60 };
    // The registry runs in this process here: moto's static credentials, as its hosts get them.
    for (key, value) in fleet_tests::moto::AWS_ENV {
        std::env::set_var(key, value);
    }
    let registry = kafka_bootstrap::dns::from_config(&dns).await;
    let controller = kafka_bootstrap::dns::BrokerEndpoint {
        cluster: cluster.name.clone(),
        broker_id: 7,
        host: "10.0.0.7".into(),
        port: 9093,
        kind: kafka_bootstrap::dns::RecordKind::Controller,
    };
    let controller_name = format!("controller-7.{}.{zone}", cluster.name);
    assert_eq!(registry.register(&controller).await.expect("register"), vec![controller_name.clone()]);
    let records = moto.records(&zone_id).await;
    let found = records.iter().find(|r| r.0 == controller_name).unwrap_or_else(|| panic!("{controller_name} not in {records:?}"));
    assert_eq!((found.1.as_str(), found.2.as_deref(), found.3.clone()), ("A", Some("controller-7"), vec!["10.0.0.7".to_string()]));
    let shares: Vec<Option<&str>> = records.iter().filter(|r| r.0 == bootstrap_name).map(|r| r.2.as_deref()).collect();
    assert_eq!(shares, vec![Some("broker-1")], "the bootstrap name stays the brokers'");
    assert_eq!(registry.controller_address(&cluster.name, 7, 9093).await.expect("address"), Some(format!("{controller_name}:9093")));
}

#[tokio::test]
async fn three_broker_local_cluster_serves_kcat_and_restart_keeps_the_id() {
    let mut zk = ZkEnsemble::start(3).await;
    let mut spec = ClusterSpec::local(3);
    spec.properties.insert("auto.create.topics.enable".into(), "true".into());
    let mut cluster = LocalCluster::new(&zk, spec);
    cluster.extra_env.push(("FLEET_STOP_GRACE_SECS".into(), "5".into()));
    for (i, az) in ["local-a", "local-b", "local-c"].iter().enumerate() {
        cluster.add_local_instance(&format!("host-{}", i + 1), az);
    }
    for i in 1..=3 {
        cluster.start_broker(&format!("host-{i}")).await;
    }
    let mut by_id: Vec<(i32, String)> =
        cluster.brokers.iter().map(|b| (b.broker_id, b.instance_id.clone())).collect();
    by_id.sort();
    assert_eq!(by_id.iter().map(|b| b.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    // Each broker registers with its host's availability zone as rack.
    for (id, instance) in &by_id {
        let want_az = match instance.as_str() {
            "host-1" => "local-a",
            "host-2" => "local-b",
            _ => "local-c",
        };
        let reg = cluster.registration(*id).await.expect("registered");
        assert_eq!(reg.rack.as_deref(), Some(want_az), "broker {id} on {instance}");
    }
    // Local routes: one record per broker, and the bootstrap record holds all three.
    let sets = fleet_common::local::read_record(&cluster.dns_root, &format!("{}.local", cluster.name)).expect("routes");
    assert_eq!(sets.len(), 3, "{sets:?}");

    // An independent client produces and consumes through the new cluster.
    let topic = fleet_tests::unique("kcat").replace('_', "-");
    let message = format!("hello from {}", cluster.name);
    fleet_tests::kcat::produce(&cluster.bootstrap_servers(), &topic, &message).await;
    let got = fleet_tests::kcat::consume_one(&cluster.bootstrap_servers(), &topic).await;
    assert_eq!(got, message);

    // A broker killed and restarted on the same host comes back with the same ID.
    let host2 = cluster.broker("host-2");
    let (old_id, data_dir, port) = (host2.broker_id, host2.data_dir.clone(), host2.port);
    cluster.kill_broker("host-2");
    let zkc = cluster.zk_client().await;
    let path = cluster.paths().kafka().broker(old_id);
    wait_until("the killed broker's registration to expire", Duration::from_secs(60), || {
        let (zkc, path) = (&zkc, path.clone());
        async move { Ok(matches!(zkc.get_data(&path).await, Err(zookeeper_client::Error::NoNode)).then_some(())) }
    })
    .await;
    let restarted = cluster.start_broker_at("host-2", &data_dir, port).await;
    assert_eq!(restarted.broker_id, old_id);

    // With the whole ensemble gone, Kafka's controlled shutdown waits on ZooKeeper and ignores
    // SIGTERM; kafka-bootstrap kills it when its grace period (5 s here) is over, and says so.
    for i in 0..3 {
        zk.stop_node(i);
    }
    let host1 = cluster.brokers.iter_mut().find(|b| b.instance_id == "host-1").expect("host-1");
    let jvm = host1.jvm_pid().expect("kafka.pid");
    let started = std::time::Instant::now();
    fleet_tests::process::signal_pid(host1.process.pid() as i32, libc::SIGTERM);
    wait_until("host-1 to stop after SIGTERM", Duration::from_secs(20), || {
        let running = host1.process.is_running();
        async move { Ok((!running).then_some(())) }
    })
    .await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(12), "stopped after {took:?} (grace 5 s)");
    assert!(!std::path::Path::new(&format!("/proc/{jvm}")).exists(), "the Kafka JVM {jvm} outlived its bootstrap");
    let log = host1.process.log_tail(50);
    assert!(log.contains("did not stop within"), "the bootstrap does not say it killed Kafka: {log}");
}

#[tokio::test]
async fn property_layers_take_precedence_in_order() {
    let zk = ZkEnsemble::start(1).await;
    // The fleet manager's persisted properties endpoint, played by a small server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/v1/clusters/{cluster}/brokers/{id}/properties",
        axum::routing::get(|| async {
            axum::Json(serde_json::json!({"properties": {"log.retention.hours": "48", "num.io.threads": "7"}}))
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut spec = ClusterSpec::local(1);
    spec.fleet_api = Some(api);
    spec.properties.insert("log.retention.hours".into(), "12".into());
    spec.properties.insert("num.io.threads".into(), "3".into());
    spec.properties.insert("log.cleaner.threads".into(), "2".into());
    spec.properties.insert("background.threads".into(), "4".into());
    let cluster = LocalCluster::new(&zk, spec);
    cluster.add_local_instance("host-1", "local-z");
    let dry_run = |env: &[(&str, &str)]| {
        let mut cmd = cluster.bootstrap_command(&["run", "--dry-run", "--instance-id", "host-1", "--data-dir", "/nonexistent"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    };
    let out = run(dry_run(&[("KAFKA_CFG_LOG_CLEANER_THREADS", "5"), ("KAFKA_CFG_NUM_IO_THREADS", "6")])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rendered = String::from_utf8_lossy(&out.stdout).into_owned();
    let props: BTreeMap<String, String> = kafka_bootstrap::properties::parse_properties(&rendered).into_iter().collect();
    assert_eq!(props["auto.create.topics.enable"], "false", "defaults layer");
    assert_eq!(props["background.threads"], "4", "cluster file beats defaults");
    assert_eq!(props["log.cleaner.threads"], "5", "environment beats the cluster file");
    assert_eq!(props["num.io.threads"], "7", "persisted beats the environment");
    assert_eq!(props["log.retention.hours"], "48", "persisted beats the cluster file");
    assert_eq!(props["broker.rack"], "local-z", "derived");
    assert!(props["zookeeper.connect"].ends_with(&format!("{}/kafka", cluster.paths().base())));
    assert!(cluster.registry().await.is_empty(), "a dry run writes no ID");

    // The fleet manager down, `fleetApi.properties: required` (the default): Kafka does not
    // start, and the bootstrap says why (its wait is 3 s here).
    server.abort();
    let _ = server.await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let started = std::time::Instant::now();
    let out = run(cluster.bootstrap_command(&[
        "run",
        "--instance-id",
        "host-1",
        "--data-dir",
        &data_dir.path().display().to_string(),
        "--mode",
        "child",
        "--kafka-libs",
        &fleet_tests::kafka_libs().display().to_string(),
    ])).await;
    assert!(!out.status.success(), "booted without its declared configuration: {}", stderr(&out));
    assert!(stderr(&out).contains("not starting Kafka without its declared configuration") && stderr(&out).contains("fleetApi.properties"), "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_secs(2), "gave up before its wait: {:?}", started.elapsed());
    assert!(!data_dir.path().join("kafka.pid").exists(), "Kafka was started");
    assert!(cluster.zk_client().await.list_children(&cluster.paths().kafka().broker_ids()).await.unwrap_or_default().is_empty(), "a broker registered");

    // `optional`: the absence is logged and the broker boots without that layer.
    let mut optional = ClusterSpec::local(1);
    optional.fleet_api = cluster_api(&cluster);
    optional.fleet_api_properties = Some("optional".into());
    optional.properties.insert("log.retention.hours".into(), "12".into());
    let optional = LocalCluster::new(&zk, optional);
    optional.add_local_instance("host-1", "local-z");
    let out = run(optional.bootstrap_command(&["run", "--dry-run", "--instance-id", "host-1", "--data-dir", "/nonexistent"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
    let rendered = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(rendered.contains("log.retention.hours=12"));

    // A policy that is neither: refused, naming the field.
    let mut bad = ClusterSpec::local(1);
    bad.fleet_api = cluster_api(&cluster);
    bad.fleet_api_properties = Some("sometimes".into());
    let bad = LocalCluster::new(&zk, bad);
    bad.add_local_instance("host-1", "local-z");
    let out = run(bad.bootstrap_command(&["run", "--dry-run", "--instance-id", "host-1", "--data-dir", "/nonexistent"])).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("fleetApi.properties") && stderr(&out).contains("required"), "{}", stderr(&out));
}

/// The fleet manager URL a cluster's file names.
fn cluster_api(cluster: &LocalCluster) -> Option<String> {
    let text = std::fs::read_to_string(&cluster.cluster_file).expect("cluster file");
    text.lines().find_map(|l| l.trim().strip_prefix("url: ").map(|u| u.trim().trim_matches('"').to_string()))
}

#[tokio::test]
async fn losing_one_ensemble_node_does_not_stop_a_bootstrap() {
    let mut zk = ZkEnsemble::start(3).await;
    let cluster = LocalCluster::new(&zk, ClusterSpec::local(1));
    for i in 1..=4 {
        cluster.add_local_instance(&format!("host-{i}"), "local-a");
    }
    // Lose the first node of the connect string, then the leader too would be too many; lose one.
    let leader = zk.leader().await.expect("a leader");
    zk.stop_node(leader);
    let ids = assign_concurrently(&cluster, &["host-1".into(), "host-2".into()]).await;
    assert_eq!(ids.values().copied().collect::<BTreeSet<_>>(), BTreeSet::from([1, 2]));
    // And the first listed node gone (if it was not the leader) still leaves a working ensemble.
    zk.start_node(leader).await;
    zk.stop_node(0);
    let ids = assign_concurrently(&cluster, &["host-3".into(), "host-4".into()]).await;
    assert_eq!(ids.values().copied().collect::<BTreeSet<_>>(), BTreeSet::from([3, 4]));
}

#[tokio::test]
async fn bad_input_exits_non_zero_naming_the_problem_and_leaves_the_registry_unchanged() {
    let zk = ZkEnsemble::start(1).await;
    let cluster = LocalCluster::new(&zk, ClusterSpec::local(1));
    for i in 1..=3 {
        cluster.add_local_instance(&format!("host-{i}"), "local-a");
    }
    assign_concurrently(&cluster, &["host-1".into(), "host-2".into()]).await;
    let before = cluster.registry().await;
    assert_eq!(before.len(), 2);

    let libs = fleet_tests::kafka_libs();
    let data = cluster.run.path.join("bad-input-data");
    let run_args = |file: &std::path::Path| {
        let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-bootstrap"));
        cmd.args(["run", "--instance-id", "host-3", "--zk-timeout-secs", "2", "--mode", "child"])
            .arg("--cluster-file")
            .arg(file)
            .arg("--data-dir")
            .arg(&data)
            .arg("--kafka-libs")
            .arg(&libs);
        cmd
    };
    let good = std::fs::read_to_string(&cluster.cluster_file).expect("cluster file");
    let write = |name: &str, text: &str| {
        let p = cluster.run.path.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let closed_port = fleet_tests::free_port();
    let cases: Vec<(&str, std::process::Command, &str)> = vec![
        ("missing cluster file", run_args(&cluster.run.path.join("nope.yaml")), "nope.yaml"),
        ("malformed cluster file", run_args(&write("bad1.yaml", "cluster: [unclosed\n")), "not valid"),
        ("unknown field", run_args(&write("bad2.yaml", &format!("{good}replicas: 3\n"))), "replicas"),
        ("unknown env key", {
            let mut c = run_args(&cluster.cluster_file);
            c.env("KAFKA_CFG_LOG_RETENTION_HOUR", "5");
            c
        }, "KAFKA_CFG_LOG_RETENTION_HOUR"),
        ("non-numeric override", {
            let mut c = run_args(&cluster.cluster_file);
            c.env("KAFKA_CFG_NUM_PARTITIONS", "three");
            c
        }, "num.partitions"),
        ("derived key override", {
            let mut c = run_args(&cluster.cluster_file);
            c.env("KAFKA_CFG_BROKER_ID", "9");
            c
        }, "broker.id"),
        (
            "unreachable zookeeper",
            run_args(&write("bad3.yaml", &good.replace(&cluster.zookeeper, &format!("127.0.0.1:{closed_port}")))),
            "could not reach ZooKeeper",
        ),
        ("malformed zookeeper address", run_args(&write("bad4.yaml", &good.replace(&cluster.zookeeper, "127.0.0.1:zk"))), "zookeeper"),
    ];
    for (what, cmd, needle) in cases {
        let out = run(cmd).await;
        assert!(!out.status.success(), "{what}: exited 0");
        let err = stderr(&out);
        assert!(err.contains(needle), "{what}: expected `{needle}` in stderr:\n{err}");
        assert_eq!(cluster.registry().await, before, "{what}: registry changed");
    }
    assert!(!data.join("server.properties").exists(), "no properties file written on bad input");
}
