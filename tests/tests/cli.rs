//! fleetctl as a kubectl user expects it (issue 27), against a real fleet manager and ZooKeeper
//! with no Kafka at all (no host provider: nothing is launched, the specs stay declared): every
//! command is run as an operator would type it and its output and exit code checked.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, WRITE_TOKEN};
use fleet_tests::{init_logging, wait_until, workspace_bin, ZkEnsemble};

const FLEET: &str = "\
apiVersion: kafka-fleet.io/v1
kind: KafkaCluster
metadata: { name: ux }
spec:
  kafkaVersion: \"3.9\"
  brokers: 3
  availabilityZones: [a, b, c]
  provider: local
  brokerConfig: { num.io.threads: 4 }
---
apiVersion: kafka-fleet.io/v1
kind: Topic
metadata: { name: t }
spec: { cluster: ux, partitions: 3, priorityClass: high }
---
apiVersion: kafka-fleet.io/v1
kind: Topic
metadata: { name: logs }
spec: { cluster: ux, partitions: 2, retentionHours: 6, configs: { compression.type: zstd } }
---
apiVersion: kafka-fleet.io/v1
kind: Route
metadata: { name: orders }
spec: { cluster: ux }
";

/// `2026-12-07T08:31:22Z`.
fn is_rfc3339(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[19] == b'Z'
}

fn text(out: &std::process::Output) -> String {
    format!("rc {:?}\nstdout: {}\nstderr: {}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Applies `yaml` and returns each result's outcome.
async fn apply_outcomes(fm: &FleetManager, name: &str, yaml: &[u8]) -> Vec<String> {
    let path = fm.run.path.join(name);
    std::fs::write(&path, yaml).expect("write");
    let out = fm.fleetctl(&["apply", "-f", &path.display().to_string(), "-o", "json"]).await;
    assert!(out.status.success(), "apply {name}: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["results"].as_array().expect("results").iter().map(|r| r["outcome"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetctl_behaves_as_kubectl_users_expect() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.local_hosts = false;
    let fm = FleetManager::start(options).await;
    let out = fm.apply_yaml("fleet.yaml", FLEET).await;
    assert!(out.status.success(), "{}", text(&out));

    // ---- `-o yaml` applies again unchanged, for every kind, listed or named, get or describe.
    for args in [
        vec!["get", "clusters"],
        vec!["get", "cluster", "ux"],
        vec!["get", "topics", "--cluster", "ux"],
        vec!["get", "topics"],
        vec!["get", "topic", "ux/t"],
        vec!["get", "topic", "logs", "--cluster", "ux"],
        vec!["get", "routes"],
        vec!["get", "route", "orders"],
        vec!["describe", "cluster", "ux"],
        vec!["describe", "topic", "ux/logs"],
        vec!["describe", "route", "orders"],
    ] {
        let mut with_yaml = args.clone();
        with_yaml.extend(["-o", "yaml"]);
        let out = fm.fleetctl(&with_yaml).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        let outcomes = apply_outcomes(&fm, "again.yaml", &out.stdout).await;
        assert!(!outcomes.is_empty() && outcomes.iter().all(|o| o == "unchanged"), "{args:?} -o yaml applied again: {outcomes:?}\n{}", String::from_utf8_lossy(&out.stdout));
    }

    // ---- Names: singular and plural kinds, both topic forms, in every verb.
    for args in [
        vec!["get", "cluster"],
        vec!["get", "clusters", "ux"],
        vec!["describe", "clusters", "ux"],
        vec!["describe", "topic", "ux/t"],
        vec!["describe", "topic", "t", "--cluster", "ux"],
        vec!["get", "op"],
        vec!["get", "operations", "--active"],
    ] {
        let out = fm.fleetctl(&args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let out = fm.fleetctl(&["describe", "topic", "ux/t", "--cluster", "other"]).await;
    assert_eq!(out.status.code(), Some(2), "two clusters named: {}", text(&out));
    let out = fm.fleetctl(&["delete", "operation", "x"]).await;
    assert_eq!(out.status.code(), Some(2), "delete offers no operation: {}", text(&out));
    // Unknown things exit 3, whatever the verb.
    for args in [
        vec!["get", "cluster", "nosuch"],
        vec!["describe", "topic", "ux/nosuch"],
        vec!["get", "topics", "--cluster", "nosuch"],
        vec!["journal", "--cluster", "nosuch"],
        vec!["get", "operation", "nosuch-1"],
        vec!["roll", "nosuch"],
        vec!["roll", "nosuch", "--dry-run"],
    ] {
        let out = fm.fleetctl(&args).await;
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
    }

    // ---- produce and consume: an unknown route or topic is refused at once with exit 3.
    for args in [
        vec!["produce", "nosuchroute", "--topic", "t"],
        vec!["consume", "nosuchroute", "--topic", "t", "--group", "g", "--idle", "5s"],
        vec!["produce", "orders", "--topic", "nosuch"],
        vec!["consume", "orders", "--topic", "nosuch", "--group", "g", "--idle", "5s"],
    ] {
        let started = Instant::now();
        let out = Command::new(workspace_bin("fleetctl"))
            .args(&args)
            .env("FLEET_API", fm.url())
            .env("FLEET_TOKEN", WRITE_TOKEN)
            .stdin(Stdio::null())
            .output()
            .expect("fleetctl");
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(took < Duration::from_secs(1), "{args:?} answered in {took:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"), "{args:?} names it: {}", text(&out));
    }

    // ---- Tables: dates and ages, retention as the specs write it, min ISR, the route's generation.
    let out = fm.fleetctl(&["get", "topics", "--cluster", "ux"]).await;
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.lines().next().is_some_and(|h| h.contains("MIN.ISR") && h.contains("RETENTION") && h.contains("AGE") && !h.contains("RETENTION.MS")), "{shown}");
    assert!(shown.lines().any(|l| l.contains("logs") && l.contains(" 6h ")), "retentionHours 6 shown as 6h: {shown}");
    let out = fm.fleetctl(&["get", "routes"]).await;
    let routes = String::from_utf8_lossy(&out.stdout).to_string();
    let out = fm.fleetctl(&["get", "route", "orders", "-o", "json"]).await;
    let route: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let generation = route[0]["generation"].as_i64().expect("generation");
    assert!(routes.lines().nth(1).is_some_and(|l| l.split_whitespace().any(|c| c == generation.to_string())), "get routes shows the route's generation {generation}: {routes}");
    let out = fm.fleetctl(&["journal", "--limit", "3"]).await;
    let journal = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(journal.lines().nth(1).is_some_and(|l| l.split_whitespace().any(is_rfc3339)), "dates in the journal: {journal}");
    assert!(!journal.contains("apply Topic Topic"), "{journal}");
    // JSON carries RFC 3339 times beside the epoch milliseconds.
    let out = fm.fleetctl(&["get", "cluster", "ux", "-o", "json"]).await;
    let cluster: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(cluster[0]["createdMs"].is_i64() && cluster[0]["created"].as_str().is_some_and(is_rfc3339), "{cluster}");
    // Empty lists say so (on stderr; stdout stays empty for scripts).
    let out = fm.fleetctl(&["get", "operations"]).await;
    assert!(out.status.success() && out.stdout.is_empty() && String::from_utf8_lossy(&out.stderr).contains("No resources found"), "{}", text(&out));

    // ---- status: what is not at rest (nothing converges here: no host provider).
    let out = fm.fleetctl(&["status"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Clusters not converged"), "{}", text(&out));
    let out = fm.fleetctl(&["status", "-o", "json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["clustersNotConverged"][0]["name"], "ux", "{status}");

    // ---- A second hold does not silently replace the first; release answers an object.
    let out = fm.fleetctl(&["hold", "orders", "--reason", "first"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = fm.fleetctl(&["hold", "orders", "--reason", "second"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("first"), "names the hold in place: {}", text(&out));
    let out = fm.fleetctl(&["hold", "orders", "--reason", "second", "--overwrite"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = fm.fleetctl(&["release", "orders", "-o", "json"]).await;
    let released: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((released["route"].as_str(), released["wasHeld"].as_bool()), (Some("orders"), Some(true)), "{released}");

    // ---- journal --since and --follow: a change made while following shows up.
    let out = fm.fleetctl(&["journal", "--since", "10m"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("hold route"), "{}", text(&out));
    let mut follow = Command::new(workspace_bin("fleetctl"))
        .args(["journal", "--follow", "--cluster", "ux"])
        .env("FLEET_API", fm.url())
        .env("FLEET_TOKEN", WRITE_TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .expect("follow");
    let out = fm.apply_yaml("more.yaml", "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: followed }\nspec: { cluster: ux, partitions: 1 }\n").await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = follow.stdout.take().expect("stdout");
    let seen = tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.contains("followed")));
    let seen = tokio::time::timeout(Duration::from_secs(20), seen).await.expect("followed within 20 s").expect("reader");
    assert!(seen.is_some(), "journal --follow printed the new entry");
    let _ = follow.kill();

    // ---- get --watch prints again when something changes.
    let mut watch = Command::new(workspace_bin("fleetctl"))
        .args(["get", "topics", "--cluster", "ux", "--watch"])
        .env("FLEET_API", fm.url())
        .env("FLEET_TOKEN", WRITE_TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("first listing");
    assert!(first.contains("CLUSTER"), "{first}");
    let out = fm.apply_yaml("watched.yaml", "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: watched }\nspec: { cluster: ux, partitions: 1 }\n").await;
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the watch to show the new topic", Duration::from_secs(20), || {
        let got: Vec<String> = rx.try_iter().collect();
        async move { if got.iter().any(|l| l.contains("watched")) { Ok(Some(())) } else { Err(format!("{got:?}")) } }
    })
    .await;
    let _ = watch.kill();

    // ---- A closed pipe ends fleetctl quietly; a server that is not a fleet manager is named.
    let out = Command::new("bash")
        // `true` reads nothing and is gone before fleetctl has its answer: every write fails
        // with EPIPE (Rust's println! would panic on it).
        .args(["-c", &format!("set -o pipefail; for i in $(seq 1 5); do {} journal -o json --limit 200 | true || exit 1; done", workspace_bin("fleetctl").display())])
        .env("FLEET_API", fm.url())
        .env("FLEET_TOKEN", WRITE_TOKEN)
        .output()
        .expect("bash");
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", text(&out));
    let out = Command::new(workspace_bin("fleetctl")).args(["get", "clusters"]).env("FLEET_API", format!("{}/elsewhere", fm.url())).env("FLEET_TOKEN", WRITE_TOKEN).output().expect("fleetctl");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is it a fleet manager?"), "{}", text(&out));

    // ---- Completion scripts and help with examples.
    for shell in ["bash", "zsh", "fish"] {
        let out = fm.fleetctl(&["completion", shell]).await;
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("fleetctl"), "{shell}: {}", text(&out));
    }
    for verb in [
        "apply", "plan", "get", "describe", "delete", "scale-up", "decommission", "rebalance", "roll", "failover", "fallback", "hold", "release",
        "release-standby", "approve", "cancel", "produce", "consume", "journal", "status", "completion",
    ] {
        let out = fm.fleetctl(&[verb, "--help"]).await;
        assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"), "{verb} --help has examples: {}", text(&out));
    }
    let out = fm.fleetctl(&["failover", "--help"]).await;
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Seconds producers"), "--deadline takes a duration: {}", text(&out));

    // ---- The fleet manager's Grafana dashboard: well formed, and every series and label it
    // queries is one the fleet manager serves (its /metrics, every family registered).
    let text_json = std::fs::read_to_string(fleet_tests::repo_root().join("fleet-manager/grafana/fleet-manager.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text_json).expect("dashboard json");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string() && dashboard["schemaVersion"].as_i64().is_some_and(|v| v >= 30), "dashboard header");
    let metrics = reqwest::get(format!("{}/metrics", fm.url())).await.expect("metrics").text().await.expect("text");
    let families: std::collections::BTreeSet<&str> = metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut queried = std::collections::BTreeSet::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        assert!(ids.insert(p["id"].as_i64().expect("panel id")), "panel ids unique: {p}");
        assert!(p["title"].is_string() && p["type"].is_string() && p["gridPos"]["w"].is_i64() && p["datasource"]["type"] == "prometheus", "panel shape: {p}");
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            assert_eq!(expr.matches('(').count(), expr.matches(')').count(), "balanced: {expr}");
            for part in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("fleet_manager_")) {
                let family = ["_total", "_bucket", "_count", "_sum"].iter().fold(part, |f, suffix| f.strip_suffix(suffix).unwrap_or(f));
                queried.insert(family.to_string());
            }
        }
    }
    assert!(queried.len() >= 12, "{queried:?}");
    for family in &queried {
        assert!(families.contains(family.as_str()), "the dashboard queries {family}, which /metrics does not serve: {families:?}");
    }

    // ---- delete --dry-run makes every check and writes nothing.
    let out = fm.fleetctl(&["delete", "cluster", "ux", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(4), "route orders is on it: {}", text(&out));
    let out = fm.fleetctl(&["delete", "topic", "ux/t", "--dry-run"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("dry run"), "{}", text(&out));
    let out = fm.fleetctl(&["get", "topic", "ux/t", "-o", "json"]).await;
    let still: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(still[0]["deleting"], false, "a dry run deletes nothing: {still}");

    // ---- delete takes both topic forms.
    let out = fm.fleetctl(&["delete", "topic", "ux/watched"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = fm.fleetctl(&["delete", "topics", "followed", "--cluster", "ux"]).await;
    assert!(out.status.success(), "{}", text(&out));
}
