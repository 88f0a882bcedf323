//! Hardening, against real parts. One fixture (a ZooKeeper node, a fleet manager serving HTTPS
//! with a certificate from a CA made by `openssl`), in order:
//! (a) fleetctl works with the CA and is refused without it; plain HTTP on the port gets a 400 that
//!     says to use https;
//! (b) a cluster built by the fleet manager: its host's kafka-bootstrap fetches the broker's
//!     persisted properties over HTTPS (policy `required`, so Kafka would not start otherwise);
//! (c) the client library produces through a route over HTTPS, read back with kcat;
//! (d) the healthcheck and the auditor serve HTTPS, and the auditor follows the route over HTTPS;
//! (e) a certificate from another CA swapped into the files is served without a restart;
//! (f) bad TLS input (a key that is not the certificate's, half a pair, an empty CA file) is
//!     refused naming the file, before anything is written.

use std::process::Command;
use std::time::Duration;

use fleet_client::{ClientConfig, FleetProducer, Record};
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, TlsOptions, CLIENT_TOKEN, WRITE_TOKEN};
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::process::ManagedProcess;
use fleet_tests::tls::{client_trusting, TestCa};
use fleet_tests::{free_port, init_logging, wait_until, workspace_bin, RunDir, ZkEnsemble};

const TOPIC: &str = "secure-events";

fn text(out: &std::process::Output) -> String {
    fleet_tests::output_text(out)
}

/// Waits until `url` answers 2xx to a client trusting `ca`; returns the body.
async fn wait_https(what: &str, ca: &std::path::Path, url: &str) -> String {
    let http = client_trusting(ca);
    wait_until(what, Duration::from_secs(60), || {
        let (http, url) = (http.clone(), url.to_string());
        async move {
            match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => Ok(Some(r.text().await.unwrap_or_default())),
                Ok(r) => Err(format!("status {}", r.status())),
                Err(e) => Err(format!("{e:?}")),
            }
        }
    })
    .await
}

/// A plain-HTTP GET of `url` (an https server's port) answers 400 and names https.
async fn assert_plain_http_refused(url: &str) {
    let r = reqwest::get(url).await.expect("an answer to plain HTTP");
    assert_eq!(r.status().as_u16(), 400, "{url}");
    let body = r.text().await.unwrap_or_default();
    assert!(body.contains("HTTPS only"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_serve_https_and_fleetctl_hosts_and_clients_verify_it() {
    init_logging();
    let work = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(&work.path().join("ca"), "fleet-ca");
    let issued = ca.issue("fleet-manager");
    // The fleet manager serves copies, so (e) can replace them.
    let tls_dir = work.path().join("serving");
    std::fs::create_dir_all(&tls_dir).expect("dir");
    let (cert, key) = (tls_dir.join("api.crt"), tls_dir.join("api.key"));
    std::fs::copy(&issued.cert, &cert).expect("copy cert");
    std::fs::copy(&issued.key, &key).expect("copy key");

    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.tls = Some(TlsOptions { cert: cert.clone(), key: key.clone(), ca: ca.cert.clone() });
    let fm = FleetManager::start(options.clone()).await;
    assert!(fm.url().starts_with("https://"));
    let serving_pid = fm.process.as_ref().map(|p| p.pid()).expect("running");

    // (a) fleetctl with the CA (FLEET_CA_FILE, set by the harness), then without it.
    let out = fm.fleetctl(&["get", "clusters", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = Command::new(workspace_bin("fleetctl"))
        .args(["get", "clusters"])
        .env("FLEET_API", fm.url())
        .env("FLEET_TOKEN", WRITE_TOKEN)
        .env_remove("FLEET_CA_FILE")
        .output()
        .expect("fleetctl");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate") && err.contains("FLEET_CA_FILE"), "names the certificate problem and the fix: {err}");
    assert_plain_http_refused(&format!("http://127.0.0.1:{}/healthz", fm.port)).await;
    let out = Command::new(workspace_bin("fleetctl"))
        .args(["get", "clusters"])
        .env("FLEET_API", format!("http://127.0.0.1:{}", fm.port))
        .env("FLEET_TOKEN", WRITE_TOKEN)
        .output()
        .expect("fleetctl");
    assert!(!out.status.success(), "plain HTTP gets no data: {}", text(&out));

    // (b) A cluster whose host boots through kafka-bootstrap with `fleetApi.caFile`.
    let mut docs = local_cluster_yaml("sealed", 1, &[]);
    docs.push_str(&format!(
        "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {TOPIC} }}\nspec: {{ cluster: sealed, partitions: 2, replicationFactor: 1, priorityClass: high }}\n"
    ));
    docs.push_str("---\napiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: { name: sealed-route }\nspec: { cluster: sealed }\n");
    let out = fm.apply_yaml("sealed.yaml", &docs).await;
    assert!(out.status.success(), "{}", text(&out));
    let servers = wait_until("the sealed cluster's broker and topic", Duration::from_secs(180), || {
        let servers = fm.cluster_servers(Some("sealed"));
        async move {
            if servers.is_empty() {
                return Err("no running host yet".to_string());
            }
            let md = fleet_tests::kcat::metadata(&servers).await?;
            Ok(fleet_tests::kcat::topic_shape(&md, TOPIC).map(|_| servers))
        }
    })
    .await;
    let host = fm.local_hosts().into_iter().find(|h| h.cluster.as_deref() == Some("sealed")).expect("host");
    let host_dir = fm.hosts_root().join(&host.instance_id);
    let cluster_file = std::fs::read_to_string(fm.data_dir.join("local/clusters/sealed.yaml")).expect("the hosts' cluster file");
    assert!(cluster_file.contains(&format!("url: https://127.0.0.1:{}", fm.port)) && cluster_file.contains("caFile:"), "{cluster_file}");
    // Its only credential is the cluster's host token, whatever tokens the fleet manager has.
    assert!(cluster_file.contains("token: fh2.sealed."), "{cluster_file}");
    for configured in [WRITE_TOKEN, fleet_tests::fleet_manager::READ_TOKEN, CLIENT_TOKEN] {
        assert!(!cluster_file.contains(configured), "a configured token handed to hosts: {cluster_file}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(fm.data_dir.join("local/clusters/sealed.yaml")).expect("stat").permissions());
    assert_eq!(mode & 0o077, 0, "the hosts' cluster file is readable by its owner only: {mode:o}");
    let host_log = std::fs::read_to_string(host_dir.join("host.log")).unwrap_or_default();
    assert!(!host_log.contains("booting without persisted properties"), "{host_log}");

    // (c) The client library over HTTPS (its CA from `ca_file`), checked with kcat.
    let mut config = ClientConfig::new("sealed-route", &[&fm.url()]);
    config.token = Some(CLIENT_TOKEN.into());
    config.ca_file = Some(ca.cert.clone());
    config.acks = Some("all".into());
    let producer = FleetProducer::new(config).expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..50 {
        deliveries.push(producer.send_tracked(Record::new(TOPIC, format!("tls-{i}").as_bytes())).expect("accepted"));
    }
    for d in deliveries {
        let delivered = tokio::time::timeout(Duration::from_secs(60), d).await.expect("delivered in time").expect("delivered");
        assert_eq!(delivered.cluster, "sealed");
    }
    let read = fleet_tests::kcat::read_all(&servers, TOPIC).await;
    assert_eq!(read.iter().filter(|v| v.starts_with("tls-")).count(), 50, "{read:?}");
    // Without the CA the library gets no binding: its records wait (it never blocks).
    let mut untrusting = ClientConfig::new("sealed-route", &[&fm.url()]);
    untrusting.token = Some(CLIENT_TOKEN.into());
    let untrusting = FleetProducer::new(untrusting).expect("producer");
    untrusting.send(Record::new(TOPIC, b"never")).expect("accepted, not blocked");
    wait_until("the untrusting client to report a certificate error", Duration::from_secs(30), || {
        let e = untrusting.last_error().unwrap_or_default();
        async move { if e.to_lowercase().contains("certificate") { Ok(Some(())) } else { Err(e) } }
    })
    .await;
    assert_eq!(untrusting.counters().buffered, 1, "still waiting for a binding");
    drop(untrusting);

    // (d) The healthcheck and the auditor over HTTPS.
    let hc_cert = ca.issue("healthcheck");
    let hc_run = RunDir::new("healthcheck-tls");
    let hc_port = free_port();
    let hc_config = hc_run.path.join("healthcheck.yaml");
    std::fs::write(
        &hc_config,
        format!(
            "listen: 127.0.0.1:{hc_port}\ntls:\n  certFile: {}\n  keyFile: {}\nclusters:\n  - name: sealed\n    zookeeper: \"{}\"\n    fleetRoot: {}\n",
            hc_cert.cert.display(),
            hc_cert.key.display(),
            zk.connect_string(),
            fm.options.fleet_root
        ),
    )
    .expect("config");
    let mut cmd = Command::new(workspace_bin("kafka-healthcheck"));
    cmd.arg("serve").arg("--config").arg(&hc_config);
    let _healthcheck = ManagedProcess::spawn("healthcheck", cmd, &hc_run.path.join("healthcheck.log")).expect("healthcheck");
    let health = wait_https("the healthcheck over HTTPS", &ca.cert, &format!("https://127.0.0.1:{hc_port}/health/sealed")).await;
    assert!(health.contains("sealed"), "{health}");
    assert_plain_http_refused(&format!("http://127.0.0.1:{hc_port}/health")).await;

    let au_cert = ca.issue("auditor");
    let au_run = RunDir::new("auditor-tls");
    let au_port = free_port();
    let au_config = au_run.path.join("auditor.yaml");
    std::fs::write(
        &au_config,
        format!(
            "instanceId: tls-auditor\nlisten: 127.0.0.1:{au_port}\ntls:\n  certFile: {}\n  keyFile: {}\nclusters:\n  - name: sealed\n    bootstrapServers: \"{servers}\"\n\
             routes:\n  - name: sealed-route\n    fleetManagers: [\"{}\"]\n    topic: {TOPIC}\n    intervalMs: 200\n    caFile: {}\n",
            au_cert.cert.display(),
            au_cert.key.display(),
            fm.url(),
            ca.cert.display()
        ),
    )
    .expect("config");
    let mut cmd = Command::new(workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&au_config).env("FLEET_CLIENT_TOKEN", CLIENT_TOKEN);
    let _auditor = ManagedProcess::spawn("auditor", cmd, &au_run.path.join("auditor.log")).expect("auditor");
    let routes_url = format!("https://127.0.0.1:{au_port}/api/routes");
    let http = client_trusting(&ca.cert);
    wait_until("the auditor to read back route records it sent over the HTTPS-bound route", Duration::from_secs(90), || {
        let (http, url) = (http.clone(), routes_url.clone());
        async move {
            let v: serde_json::Value = http.get(&url).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
            let consumed = v.as_array().and_then(|a| a.first()).and_then(|r| r["consumed"].as_u64()).unwrap_or(0);
            Ok((consumed > 0).then_some(()))
        }
    })
    .await;
    assert_plain_http_refused(&format!("http://127.0.0.1:{au_port}/")).await;

    // (e) A renewal from another CA, swapped in by rename as a certificate manager does: served
    // without a restart.
    let other_ca = TestCa::new(&work.path().join("other-ca"), "other-ca");
    let renewed = other_ca.issue("renewed");
    std::fs::copy(&renewed.key, tls_dir.join("next.key")).expect("copy");
    std::fs::copy(&renewed.cert, tls_dir.join("next.crt")).expect("copy");
    std::fs::rename(tls_dir.join("next.key"), &key).expect("rename key");
    std::fs::rename(tls_dir.join("next.crt"), &cert).expect("rename cert");
    wait_https("the renewed certificate to be served", &other_ca.cert, &format!("{}/healthz", fm.url())).await;
    assert!(client_trusting(&ca.cert).get(format!("{}/healthz", fm.url())).send().await.is_err(), "the old certificate is no longer served");
    assert_eq!(fm.process.as_ref().map(|p| p.pid()), Some(serving_pid), "renewed without a restart");

    // (f) Bad TLS input: refused naming the file, and nothing written (no store created).
    let wrong = ca.issue("wrong");
    let bad_dir = work.path().join("bad-fm");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--tls-cert".into(), issued.cert.display().to_string(), "--tls-key".into(), wrong.key.display().to_string()],
            "does not match the certificate",
        ),
        (vec!["--tls-cert".into(), issued.cert.display().to_string()], "--tls-key"),
        (
            vec!["--tls-cert".into(), issued.key.display().to_string(), "--tls-key".into(), issued.key.display().to_string()],
            "no certificate in it",
        ),
        (
            vec!["--tls-cert".into(), issued.cert.display().to_string(), "--tls-key".into(), work.path().join("missing.key").display().to_string()],
            "cannot read key file",
        ),
    ];
    for (args, expected) in cases {
        let tokens = bad_dir.join("tokens");
        std::fs::create_dir_all(&bad_dir).expect("dir");
        std::fs::write(&tokens, "ops:write:a-secret-of-some-length\n").expect("tokens");
        std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        let out = Command::new(workspace_bin("fleet-manager"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port()), "--zookeeper", &zk.connect_string()])
            .arg("--data-dir")
            .arg(bad_dir.join("data"))
            .arg("--token-file")
            .arg(&tokens)
            .args(&args)
            .output()
            .expect("fleet-manager");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expected), "{args:?}: expected `{expected}` in: {err}");
        assert!(!bad_dir.join("data/fleet.db").exists(), "{args:?}: no store created");
    }
    let mismatch = format!("tls:\n  certFile: {}\n  keyFile: {}\nclusters: [{{ name: a, zookeeper: \"h:1\" }}]\n", issued.cert.display(), wrong.key.display());
    let path = work.path().join("bad-healthcheck.yaml");
    std::fs::write(&path, mismatch).expect("config");
    let out = Command::new(workspace_bin("kafka-healthcheck")).arg("serve").arg("--config").arg(&path).output().expect("healthcheck");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("tls") && err.contains(&wrong.key.display().to_string()), "{err}");
    let empty_ca = work.path().join("empty-ca.pem");
    std::fs::write(&empty_ca, "not a certificate\n").expect("write");
    let out = Command::new(workspace_bin("fleetctl"))
        .args(["get", "clusters", "--ca-file", &empty_ca.display().to_string()])
        .env("FLEET_API", fm.url())
        .output()
        .expect("fleetctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains("--ca-file") && err.contains("empty-ca.pem"), "{}", text(&out));
}

/// `zkCli` as an operator runs it (ZooKeeper's own client, from Kafka's jars), no identity.
fn zk_cli(server: &str, command: &[&str]) -> String {
    let out = Command::new("java")
        .args(["-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp"])
        .arg(format!("{}/*", fleet_tests::kafka_libs().display()))
        .arg(format!("-Dlog4j.configuration=file:{}", fleet_tests::log4j_config().display()))
        .args(["org.apache.zookeeper.ZooKeeperMain", "-server", server])
        .args(command)
        .output()
        .expect("java ZooKeeperMain");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The fleet's znodes (broker-ID registry, its lock, the fleet manager's election) with a digest
/// identity: readable by all, writable by the identity only; Kafka's chroot stays Kafka's (open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_znodes_are_written_only_with_the_fleet_identity() {
    use zookeeper_client as zk;
    init_logging();
    let work = tempfile::tempdir().expect("tempdir");
    let identity_file = work.path().join("zk-identity");
    std::fs::write(&identity_file, "# the fleet's ZooKeeper identity\nfleet:correct-horse-battery-staple\n").expect("identity");
    std::fs::set_permissions(&identity_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let zk = ZkEnsemble::start(1).await;

    // A broker booted through kafka-bootstrap with the identity; Kafka works in its chroot.
    let mut spec = fleet_tests::kafka::ClusterSpec::local(1);
    spec.zk_identity_file = Some(identity_file.clone());
    let mut cluster = fleet_tests::LocalCluster::new(&zk, spec);
    cluster.add_local_instance("i-acl-1", "zone-a");
    cluster.start_broker("i-acl-1").await;
    let md = fleet_tests::kcat::metadata(&cluster.bootstrap_servers()).await.expect("kcat");
    assert_eq!(md["brokers"].as_array().map(Vec::len), Some(1), "{md}");
    let paths = cluster.paths();

    // The fleet manager with the identity, on the same fleet root: it leads, through a
    // candidate znode created with the identity.
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.fleet_root = cluster.fleet_root.clone();
    options.local_hosts = false;
    options.zk_identity_file = Some(identity_file.clone());
    let fm = FleetManager::start(options).await;
    wait_until("the fleet manager to lead", Duration::from_secs(30), || async {
        let h = fm.health().await.unwrap_or_default();
        Ok((h["leader"] == true).then_some(()))
    })
    .await;
    let election = format!("{}/fleet-manager/leader", cluster.fleet_root);

    let anonymous = zk.client().await;
    let registry_node = paths.broker_id(1);
    let (data, _) = anonymous.get_data(&registry_node).await.expect("the registry is readable by all");
    let refused = [
        ("set the registry entry", anonymous.set_data(&registry_node, b"{}", None).await.map(|_| ())),
        ("delete the registry entry", anonymous.delete(&registry_node, None).await),
        (
            "create a registry entry",
            anonymous.create(&paths.broker_id(2), b"{}", &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await.map(|_| ()),
        ),
        (
            "take the registry lock",
            anonymous
                .create(&format!("{}/lock-x", paths.broker_id_lock()), b"x", &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all()))
                .await
                .map(|_| ()),
        ),
        (
            "stand for election",
            anonymous.create(&format!("{election}/leader-x"), b"x", &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())).await.map(|_| ()),
        ),
    ];
    for (what, result) in refused {
        assert_eq!(result.err(), Some(zk::Error::NoAuth), "{what} without the identity");
    }
    for node in [registry_node.clone(), paths.broker_id_lock(), election.clone()] {
        let (acl, _) = anonymous.get_acl(&node).await.expect("acl");
        assert!(acl.iter().any(|a| a.scheme() == "digest" && a.id().starts_with("fleet:") && a.permission() == zk::Permission::ALL), "{node}: {acl:?}");
        assert!(acl.iter().any(|a| a.scheme() == "world" && a.permission() == zk::Permission::READ), "{node}: {acl:?}");
        assert!(!acl.iter().any(|a| a.scheme() == "world" && a.permission() == zk::Permission::ALL), "{node}: {acl:?}");
    }
    let (acl, _) = anonymous.get_acl(&paths.kafka_chroot()).await.expect("acl");
    assert!(acl.iter().any(|a| a.scheme() == "world" && a.permission() == zk::Permission::ALL), "Kafka's chroot is Kafka's: {acl:?}");

    // ZooKeeper's own CLI, without the identity, is refused too.
    let cli = zk_cli(&zk.connect_string(), &["set", &registry_node, "{}"]);
    assert!(cli.contains("Insufficient permission"), "{cli}");

    // With the identity, writes go through; a second broker takes the next ID.
    let identity = fleet_common::ZkIdentity::load_file(&identity_file).expect("identity");
    let address = fleet_common::ZkAddress::parse(&zk.connect_string()).expect("address");
    let authed = fleet_common::ZkConnector::default().with_identity(Some(identity)).connect(&address).await.expect("connect");
    authed.set_data(&registry_node, &data, None).await.expect("the identity may write");
    cluster.add_local_instance("i-acl-2", "zone-b");
    cluster.start_broker("i-acl-2").await;
    assert_eq!(cluster.brokers.iter().map(|b| b.broker_id).collect::<Vec<_>>(), vec![1, 2]);

    // Bad input: an identity without a password stops the boot, naming the file and line.
    std::fs::write(&identity_file, "fleet\n").expect("identity");
    cluster.add_local_instance("i-acl-3", "zone-c");
    let out = cluster.bootstrap_command(&["assign-id", "--instance-id", "i-acl-3"]).output().expect("kafka-bootstrap");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("{}:1", identity_file.display())) && err.contains("has no password"), "{err}");
    let out = Command::new(workspace_bin("fleet-manager"))
        .args(["--zookeeper", &zk.connect_string(), "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--zk-identity-file")
        .arg(&identity_file)
        .arg("--data-dir")
        .arg(work.path().join("bad-fm"))
        .env("FLEET_MANAGER_TOKENS", "ops:write:a-secret-of-some-length")
        .output()
        .expect("fleet-manager");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--zk-identity-file") && err.contains("has no password"), "{err}");
    assert!(!work.path().join("bad-fm/fleet.db").exists(), "no store created");
}
