//! The security probe's findings (issue: nobody redirects producers, forges a failover's evidence,
//! or writes the fleet's ZooKeeper by default), each replayed against a real fleet manager started
//! as the README starts it (SQLite, one ZooKeeper node, a token file) and, where Kafka is involved,
//! a real broker it built. One fixture, in order of the findings; each section fails on the code
//! before the fix.

use std::time::{Duration, Instant};

use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, CLIENT_TOKEN, READ_TOKEN, WRITE_TOKEN};
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::{free_port, init_logging, kafka_libs, output_text, repo_root, wait_until, workspace_bin, ZkEnsemble};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client as zk;

const CLUSTER: &str = "probe";
const ROUTE: &str = "events";

fn docs() -> String {
    let mut text = local_cluster_yaml(CLUSTER, 1, &[]);
    text.push_str(&format!(
        "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: orders }}\nspec: {{ cluster: {CLUSTER}, partitions: 2, replicationFactor: 1 }}\n\
         ---\napiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {ROUTE} }}\nspec: {{ cluster: {CLUSTER} }}\n"
    ));
    text
}

async fn json_call(fm: &FleetManager, method: reqwest::Method, path: &str, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    fm.call(method, path, Some(token), Some(("application/json", body.to_string()))).await
}

/// A report through the API with an instance credential header (when given).
async fn report(fm: &FleetManager, token: &str, body: &serde_json::Value, credential: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = fm.http().post(format!("{}/v1/clients/reports", fm.url())).bearer_auth(token).json(body);
    if let Some(c) = credential {
        req = req.header("x-fleet-instance-credential", c);
    }
    let resp = req.send().await.expect("fleet manager reachable");
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or_default())
}

async fn binding_servers(fm: &FleetManager) -> Vec<String> {
    let (code, b) = fm.call(reqwest::Method::GET, &format!("/v1/routes/{ROUTE}/binding"), Some(CLIENT_TOKEN), None).await;
    assert_eq!(code, 200, "{b}");
    b["bootstrapServers"].as_array().map(|l| l.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Every endpoint and rack registered under the cluster's `/brokers/ids`.
async fn registrations(zk: &zk::Client, fleet_root: &str) -> Vec<String> {
    let kafka = fleet_common::FleetPaths::new(fleet_root).cluster(CLUSTER).kafka();
    let mut out = Vec::new();
    for id in zk.list_children(&kafka.broker_ids()).await.unwrap_or_default() {
        if let Ok((data, _)) = zk.get_data(&format!("{}/{id}", kafka.broker_ids())).await {
            out.push(String::from_utf8_lossy(&data).into_owned());
        }
    }
    out
}

/// Sends `bytes` on a fresh connection and reports how long until the server closed it (or `None`
/// if it was still open after `limit`).
async fn closed_after(port: u16, bytes: &[u8], limit: Duration) -> Option<Duration> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

async fn metrics_text(fm: &FleetManager) -> String {
    fm.http().get(format!("{}/metrics", fm.url())).send().await.expect("metrics").text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_findings_are_closed() {
    init_logging();
    let zk_nodes = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk_nodes.connect_string());
    options.local_max_hosts = 3;
    options.extra_args = ["--http-header-timeout-secs", "2", "--http-idle-timeout-secs", "3", "--http-max-connections", "40", "--max-client-instances", "20"]
        .into_iter()
        .map(String::from)
        .collect();
    let fm = FleetManager::start(options).await;
    let anonymous = zk_nodes.client().await;
    let specs = fm.run.path.join("probe.yaml");
    std::fs::write(&specs, docs()).expect("specs");
    // Declared now, built while the sections that need no broker run.
    let out = fm.fleetctl(&["apply", "-f", &specs.display().to_string()]).await;
    assert!(out.status.success(), "{}", output_text(&out));

    // 3. ZooKeeper is not open by default: a fleet manager or a host without an identity refuses
    // to start, saying why; with --insecure-zookeeper it starts (and says so).
    let bare = fm.run.path.join("bare");
    std::fs::create_dir_all(&bare).expect("dir");
    let tokens = bare.join("tokens");
    std::fs::write(&tokens, "ops:write:a-secret-of-some-length\n").expect("tokens");
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let start_bare = |extra: &[&str]| {
        std::process::Command::new(workspace_bin("fleet-manager"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port()), "--zookeeper", &zk_nodes.connect_string(), "--fleet-root", "/bare"])
            .arg("--data-dir")
            .arg(bare.join("data"))
            .arg("--token-file")
            .arg(&tokens)
            .args(extra)
            .env_remove("FLEET_MANAGER_TOKENS")
            .output()
            .expect("fleet-manager")
    };
    let out = start_bare(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--zk-identity-file") && err.contains("--insecure-zookeeper"), "{}", output_text(&out));
    assert!(!bare.join("data/fleet.db").exists(), "nothing written before refusing");
    let cluster_file = bare.join("cluster.yaml");
    std::fs::write(&cluster_file, format!("cluster: bare\nzookeeper: {}\nprovider: {{ kind: local, root: {} }}\n", zk_nodes.connect_string(), bare.join("hosts").display()))
        .expect("cluster file");
    let out = std::process::Command::new(workspace_bin("kafka-bootstrap"))
        .args(["assign-id", "--instance-id", "i-bare"])
        .arg("--cluster-file")
        .arg(&cluster_file)
        .output()
        .expect("kafka-bootstrap");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("zookeeperIdentityFile") && err.contains("insecureZookeeper"), "{}", output_text(&out));
    assert!(anonymous.check_stat("/kafka-fleet/clusters/bare").await.expect("stat").is_none(), "no registry entry written");

    // 6. Secrets on disk: a token file others may read stops the start; the store is owner-only.
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let out = start_bare(&["--insecure-zookeeper"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("mode 0644") && err.contains("chmod 600"), "{}", output_text(&out));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(fm.data_dir.join("fleet.db")).expect("fleet.db").permissions()) & 0o777;
    assert_eq!(mode, 0o600, "fleet.db holds the host-token key: mode {mode:o}");

    // 8. Validation gaps, each refused naming its field, nothing written.
    let doc = |kind: &str, name: &str, spec: serde_json::Value| serde_json::json!({"apiVersion": "kafka-fleet.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec});
    let topic = |name: &str| doc("Topic", name, serde_json::json!({"cluster": CLUSTER, "partitions": 1, "replicationFactor": 1}));
    let (code, body) = json_call(&fm, reqwest::Method::POST, "/v1/apply", WRITE_TOKEN, topic("sec.x")).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = json_call(&fm, reqwest::Method::POST, "/v1/apply", WRITE_TOKEN, topic("sec_x")).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("metadata.name")), "Kafka refuses colliding names: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("sec.x"), "{body}");
    let spec = |config: serde_json::Value| serde_json::json!({"kafkaVersion": "3.9", "brokers": 1, "availabilityZones": ["zone-a"], "provider": "ec2", "brokerConfig": config});
    let (code, body) = json_call(&fm, reqwest::Method::POST, "/v1/apply", WRITE_TOKEN, doc("KafkaCluster", "vault", spec(serde_json::json!({"num.io.threads": -5})))).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("spec.brokerConfig.num.io.threads")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("at least 1"), "{body}");
    let duplicated = r#"{"apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": {"name": "vault"}, "spec": {"kafkaVersion": "3.9", "brokers": 1, "brokers": 150, "availabilityZones": ["zone-a"], "provider": "ec2"}}"#;
    let (code, body) = fm.call(reqwest::Method::POST, "/v1/apply", Some(WRITE_TOKEN), Some(("application/json", duplicated.to_string()))).await;
    assert_eq!(code, 400, "a key given twice: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("`brokers` is given twice"), "{body}");
    for (path, field) in [("/v1/journal?cluster=Bad!", "cluster"), ("/v1/clients?route=Bad!", "route"), ("/v1/operations?cluster=Bad!", "cluster")] {
        let (code, body) = fm.get(path).await;
        assert_eq!((code, body["field"].as_str()), (422, Some(field)), "{path}: {body}");
    }
    let (code, body) = json_call(&fm, reqwest::Method::POST, "/v1/apply", WRITE_TOKEN, doc("KafkaCluster", "vault", spec(serde_json::json!({"sasl.jaas.config": "org.example.Login required password=\"hunter2\";"})))).await;
    assert_eq!(code, 200, "{body}");
    let (_, as_reader) = fm.get("/v1/clusters/vault").await;
    assert_eq!(as_reader["document"]["spec"]["brokerConfig"]["sasl.jaas.config"], "<hidden>", "{as_reader}");
    assert!(!as_reader.to_string().contains("hunter2"), "a read token sees no password: {as_reader}");
    let (_, props) = fm.get("/v1/clusters/vault/brokers/1/properties").await;
    assert!(!props.to_string().contains("hunter2"), "{props}");
    let (_, as_writer) = fm.call(reqwest::Method::GET, "/v1/clusters/vault", Some(WRITE_TOKEN), None).await;
    assert!(as_writer.to_string().contains("hunter2"), "a write token sees it (to apply it back): {as_writer}");
    let (code, body) = json_call(&fm, reqwest::Method::POST, "/v1/apply", WRITE_TOKEN, doc("KafkaCluster", "vault", spec(serde_json::json!({"sasl.jaas.config": "<hidden>"})))).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("spec.brokerConfig.sasl.jaas.config")), "the placeholder is never applied: {body}");
    assert!(fm.fleetctl(&["delete", "cluster", "vault"]).await.status.success());
    assert!(fm.fleetctl(&["delete", "topic", "sec.x", "--cluster", CLUSTER]).await.status.success());

    // 5. /metrics cannot be grown from outside: a request with a 100 KB method is counted as OTHER.
    let before = metrics_text(&fm).await.len();
    let method = "X".repeat(100_000);
    let _ = closed_after(fm.port, format!("{method} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(5)).await;
    let _ = closed_after(fm.port, b"PROPFIND /v1/no/such/route/at/all HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Duration::from_secs(5)).await;
    let after = metrics_text(&fm).await;
    assert!(after.len() < before + 2_000, "/metrics grew from {before} to {} bytes", after.len());
    assert!(!after.contains("XXXXXXXX") && !after.contains("/v1/no/such"), "labels come from closed sets only");

    // 7. Slow and idle clients do not hold connections: a head not finished within the header
    // timeout (2 s) and a keep-alive connection idle past the idle timeout (3 s) are closed, and
    // past the connection limit (40) a client waits instead of being served.
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(tokio::spawn(closed_after(fm.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", Duration::from_secs(15))));
    }
    for s in slow {
        let closed = s.await.expect("task").expect("a slowloris connection is closed");
        assert!(closed < Duration::from_secs(6), "closed after {closed:?}");
    }
    let idle = closed_after(fm.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", Duration::from_secs(15)).await.expect("an idle keep-alive connection is closed");
    assert!(idle >= Duration::from_secs(2) && idle < Duration::from_secs(7), "closed after {idle:?}");
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(tokio::net::TcpStream::connect(("127.0.0.1", fm.port)).await.expect("connect"));
    }
    let waited = Instant::now();
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(1500)).build().expect("client");
    assert!(quick.get(format!("{}/healthz", fm.url())).send().await.is_err(), "served past the connection limit");
    let served = wait_until("a request served once idle connections are closed", Duration::from_secs(15), || async {
        Ok(reqwest::get(format!("{}/healthz", fm.url())).await.ok().filter(|r| r.status().is_success()).map(|_| waited.elapsed()))
    })
    .await;
    eprintln!("past the connection limit: served after {served:?} (the idle ones closed at the idle timeout)");
    drop(held);

    // The cluster, its topic and route, built by the fleet manager.
    let out = fm.fleetctl(&["apply", "-f", &specs.display().to_string(), "--wait", "--timeout", "4m"]).await;
    assert!(out.status.success(), "{}", output_text(&out));

    // 1. Broker-config injection: CR in a value and LF in a key are refused naming the field;
    // nothing reaches the broker or a binding.
    let servers_before = binding_servers(&fm).await;
    assert_eq!(servers_before.len(), 1, "{servers_before:?}");
    let (_, cluster_before) = fm.get(&format!("/v1/clusters/{CLUSTER}")).await;
    let base: serde_json::Value = serde_json::to_value(fleet_api::spec::parse_yaml_documents(&local_cluster_yaml(CLUSTER, 1, &[])).expect("yaml").remove(0)).expect("doc");
    for (key, value) in [
        ("log.cleanup.policy", "delete\radvertised.listeners=PLAINTEXT://127.0.0.1:19999"),
        ("listener.name.zz\nbroker.rack", "injected-rack"),
        ("log.cleanup.policy", "delete\rzookeeper.connect=127.0.0.1:1/elsewhere"),
        ("log.cleanup.policy", "delete\u{85}advertised.listeners=PLAINTEXT://127.0.0.1:19999"),
        ("listener.name.zz.broker.rack", "injected-rack"),
    ] {
        let mut injected = base.clone();
        injected["spec"]["brokerConfig"][key] = serde_json::Value::String(value.to_string());
        let (code, body) = json_call(&fm, reqwest::Method::POST, "/v1/apply", WRITE_TOKEN, injected).await;
        assert_eq!(code, 422, "{key:?}: {body}");
        assert!(body["field"].as_str().unwrap_or_default().starts_with("spec.brokerConfig."), "{body}");
        assert!(!body["message"].as_str().unwrap_or_default().contains('\n'), "the message is one line: {body}");
    }
    let (_, cluster_after) = fm.get(&format!("/v1/clusters/{CLUSTER}")).await;
    assert_eq!(cluster_before["generation"], cluster_after["generation"], "nothing was written");
    let regs = registrations(&anonymous, &fm.options.fleet_root).await;
    assert!(regs.iter().all(|r| !r.contains("19999") && !r.contains("injected-rack")), "{regs:?}");

    // 3 (cont.). An unauthenticated client registers a broker of its own in the cluster's open
    // Kafka chroot: the binding does not serve it, since the fleet's registry does not vouch for it.
    let kafka = fleet_common::FleetPaths::new(&fm.options.fleet_root).cluster(CLUSTER).kafka();
    let forged = serde_json::json!({"version": 5, "host": "127.0.0.1", "port": 19999, "endpoints": ["PLAINTEXT://127.0.0.1:19999"],
        "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"}, "rack": "injected-rack", "jmx_port": -1, "timestamp": "1"});
    anonymous
        .create(&kafka.broker(99), forged.to_string().as_bytes(), &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()))
        .await
        .expect("Kafka's chroot is open to anyone in ZooKeeper mode");
    let registry_write = anonymous.create(&fleet_common::FleetPaths::new(&fm.options.fleet_root).cluster(CLUSTER).broker_id(99), b"{}", &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await;
    assert_eq!(registry_write.err(), Some(zk::Error::NoAuth), "the fleet's registry is not");
    assert!(registrations(&anonymous, &fm.options.fleet_root).await.iter().any(|r| r.contains("19999")), "the forged registration is there");
    let servers = binding_servers(&fm).await;
    assert_eq!(servers, servers_before, "the binding serves only vouched brokers");
    assert!(servers.iter().all(|s| !s.contains("19999")), "{servers:?}");
    anonymous.delete(&kafka.broker(99), None).await.expect("the forger leaves");

    // 2. Client reports are bound to an identity: a real producer's instance cannot be spoken
    // for, nor a cluster claimed that the route was never bound to; invented instances stop at
    // the token's limit and never push a real one out of the listing.
    let real = serde_json::json!({"instance": "real-producer", "route": ROUTE, "role": "producer", "generation": 1, "cluster": CLUSTER, "counters": {"sent": 7}});
    let (code, body) = report(&fm, CLIENT_TOKEN, &real, None).await;
    assert_eq!(code, 200, "{body}");
    let credential = body["credential"].as_str().expect("a credential with the first report").to_string();
    let forged_report = serde_json::json!({"instance": "real-producer", "route": ROUTE, "role": "producer", "generation": 9, "cluster": CLUSTER, "counters": {"sent": 999}});
    for (token, cred) in [(CLIENT_TOKEN, None), (CLIENT_TOKEN, Some("guessed")), (WRITE_TOKEN, Some(credential.as_str()))] {
        let (code, body) = report(&fm, token, &forged_report, cred).await;
        assert_eq!(code, 403, "{body}");
    }
    let elsewhere = serde_json::json!({"instance": "other-producer", "route": ROUTE, "role": "producer", "generation": 9, "cluster": "elsewhere"});
    let (code, body) = report(&fm, CLIENT_TOKEN, &elsewhere, None).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("cluster")), "{body}");
    let mut refused_at = None;
    for i in 0..30 {
        let invented = serde_json::json!({"instance": format!("invented-{i}"), "route": ROUTE, "role": "producer", "generation": 1, "cluster": CLUSTER});
        let (code, _) = report(&fm, CLIENT_TOKEN, &invented, None).await;
        if code == 429 {
            refused_at = Some(i);
            break;
        }
        assert_eq!(code, 200);
    }
    assert_eq!(refused_at, Some(19), "20 live instances per token, the real one included");
    let (_, listed) = fm.get(&format!("/v1/clients?route={ROUTE}")).await;
    let real_listed = listed.as_array().and_then(|l| l.iter().find(|c| c["report"]["instance"] == "real-producer")).cloned().expect("the real producer is listed");
    assert_eq!((real_listed["report"]["generation"].as_i64(), real_listed["report"]["counters"]["sent"].as_i64()), (Some(1), Some(7)), "as it reported: {real_listed}");

    // 4. The operator's terminal: a report from before these checks, with escape sequences and a
    // 100,000-character cluster, is printed escaped and cut, without a panic.
    let store = fleet_manager::store::Store::open(&fm.database_url()).await.expect("store");
    let hostile = fleet_api::client::ClientReport {
        instance: "evil\u{1b}[2J\u{1b}[31mred\r\nforged line".into(),
        route: ROUTE.into(),
        role: fleet_api::client::ClientRole::Consumer,
        generation: 1,
        cluster: "c".repeat(100_000),
        counters: Default::default(),
        consumer: Some(fleet_api::client::ConsumerState { group: "g\u{7}\u{1b}]0;title\u{7}".into(), ..Default::default() }),
        producer: None,
    };
    let stored = store.put_client_report(&hostile, 60_000, "legacy", None, 1_000_000).await.expect("stored behind the API's back");
    assert!(matches!(stored, fleet_manager::store::ReportOutcome::Stored(_)));
    let started = Instant::now();
    let out = fm.fleetctl(&["get", "clients", "--route", ROUTE]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains('\u{1b}') && !printed.contains('\r') && !printed.contains('\u{7}'), "raw control characters printed: {printed:?}");
    assert!(printed.contains("evil\\u{1b}[2J") && !printed.contains("forged line\n"), "{printed}");
    assert!(printed.lines().all(|l| l.chars().count() < 2_000), "cells are cut");

    // 6 (cont.). Host tokens follow the cluster's identity: the token in the hosts' cluster file
    // reads its properties; once the cluster is deleted and declared again, it does not.
    let cluster_yaml = std::fs::read_to_string(fm.data_dir.join(format!("local/clusters/{CLUSTER}.yaml"))).expect("hosts' cluster file");
    let host_token = cluster_yaml.lines().find_map(|l| l.trim().strip_prefix("token: ")).expect("a host token").trim().to_string();
    let props = format!("/v1/clusters/{CLUSTER}/brokers/1/properties");
    let (code, body) = fm.call(reqwest::Method::GET, &props, Some(&host_token), None).await;
    assert_eq!(code, 200, "{body}");
    for args in [vec!["delete", "route", ROUTE], vec!["delete", "topic", "orders", "--cluster", CLUSTER], vec!["delete", "cluster", CLUSTER, "--wait", "--timeout", "3m"]] {
        let out = fm.fleetctl(&args).await;
        assert!(out.status.success(), "{args:?}: {}", output_text(&out));
    }
    let (code, _) = fm.call(reqwest::Method::GET, &props, Some(&host_token), None).await;
    assert_eq!(code, 401, "a deleted cluster's token");
    let again = fm.run.path.join("again.yaml");
    std::fs::write(&again, local_cluster_yaml(CLUSTER, 1, &[])).expect("specs");
    let out = fm.fleetctl(&["apply", "-f", &again.display().to_string()]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let (code, body) = fm.call(reqwest::Method::GET, &props, Some(&host_token), None).await;
    assert_eq!(code, 401, "the old token does not open the new cluster of the same name: {body}");
    let (code, _) = fm.call(reqwest::Method::GET, &props, Some(READ_TOKEN), None).await;
    assert_eq!(code, 200);
    fm.stop_local_hosts();
}

/// What kafka-bootstrap renders is what Kafka reads: adversarial values (backslashes, a leading
/// space, `=`, `:`, `#`, non-ASCII, escapes that Java would decode) go through Kafka's own
/// properties reader unchanged, and no value can start an entry of its own.
#[test]
fn rendered_properties_read_back_unchanged_by_kafkas_own_reader() {
    use kafka_bootstrap::properties::{LayeredProperties, Source};
    let values = [
        ("log.cleanup.policy", "compact,delete"),
        ("ssl.keystore.location", " /leading/space and = : # ! \\ backslash \\n literal \\u000a literal"),
        ("sasl.kerberos.service.name", "kafka\u{e9}\u{4e16}\u{1F600}"),
        ("listener.name.internal.ssl.keystore.type", "PKCS12"),
        ("ssl.endpoint.identification.algorithm", "\\"),
        ("principal.builder.class", "org.example.Builder\\\\"),
    ];
    let mut props = LayeredProperties::with_defaults();
    props.apply(values.iter().map(|(k, v)| (*k, *v, Source::Persisted))).expect("valid layer");
    props.set_derived("advertised.listeners", "PLAINTEXT://127.0.0.1:9092");
    props.set_derived("broker.rack", "zone-a");
    // Control characters are refused before rendering, naming the key.
    for (k, v) in [("log.cleanup.policy", "delete\radvertised.listeners=PLAINTEXT://x:1"), ("listener.name.zz\nbroker.rack", "r"), ("log.cleanup.policy", "a\u{85}b")] {
        let mut p = LayeredProperties::with_defaults();
        assert!(p.apply([(k, v, Source::Persisted)]).is_err(), "{k:?}={v:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("server.properties");
    std::fs::write(&file, props.render()).expect("write");
    let out = std::process::Command::new("java")
        .args(["-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp"])
        .arg(format!("{}/*", kafka_libs().display()))
        .arg(repo_root().join("dev/tools/ReadKafkaProperties.java"))
        .arg(&file)
        .output()
        .expect("java");
    assert!(out.status.success(), "{}", output_text(&out));
    let read: std::collections::BTreeMap<String, String> = serde_json::from_slice(&out.stdout).expect("json");
    let expected: std::collections::BTreeMap<String, String> = props.iter().map(|(k, v, _)| (k.to_string(), v.to_string())).collect();
    assert_eq!(read, expected, "Kafka reads exactly the entries rendered");
}
