//! Automatic failover against real parts: a fleet manager evaluating a route's policy every 2 s
//! from a running healthcheck service (`kafka-healthcheck serve`) and a running auditor, a local
//! 3-broker cluster, client-library producers, kcat. One fixture, in order:
//! 1. bad policies refused, naming the field, nothing stored;
//! 2. recommend mode: two brokers paused past the duration -> journalled, nothing done;
//! 3. a flapping pair of brokers (each outage shorter than the duration) -> no failover;
//! 4. the healthcheck stopped past the duration while brokers are out -> unknown, no failover;
//! 5. two of three brokers killed -> an automatic failover (a fresh build) within the duration
//!    plus an evaluation or two, no acknowledged record lost (kcat); the original repaired ->
//!    automatic fallback after the declared healthy time;
//! 6. a second outage inside the cool-down -> suppressed and journalled; a hold shown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_client::{ClientConfig, FleetProducer};
use fleet_tests::clients::SequencedLoad;
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, CLIENT_TOKEN};
use fleet_tests::healthcheck::HealthcheckServer;
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::{init_logging, wait_until, ZkEnsemble};

const ROUTE: &str = "events";
const TOPIC: &str = "clicks";

fn text(out: &std::process::Output) -> String {
    fleet_tests::output_text(out)
}

async fn apply(fm: &FleetManager, name: &str, docs: &str) -> std::process::Output {
    fm.apply_yaml(name, docs).await
}

/// The route with a failover policy (`conditions` as YAML flow items).
fn route(mode: &str, conditions: &[&str], extra: &str) -> String {
    format!(
        "apiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {ROUTE} }}\nspec:\n  cluster: blue\n  failover:\n    mode: {mode}\n    conditions:\n{}{extra}",
        conditions.iter().map(|c| format!("      - {c}\n")).collect::<String>()
    )
}

/// SIGSTOP/SIGCONT of a broker's JVM (a pause past its ZooKeeper session is an outage).
fn signal_broker(fm: &FleetManager, instance: &str, sig: i32) {
    let pid: i32 = std::fs::read_to_string(fm.hosts_root().join(instance).join("data/kafka.pid")).expect("kafka.pid").trim().parse().expect("pid");
    fleet_tests::process::signal_pid(pid, sig);
}

async fn journal(fm: &FleetManager, action: &str) -> Vec<serde_json::Value> {
    let (_, j) = fm.get("/v1/journal?limit=1000").await;
    j.as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["action"] == action).collect()
}

async fn operations(fm: &FleetManager) -> Vec<serde_json::Value> {
    let (_, ops) = fm.get("/v1/operations").await;
    ops.as_array().cloned().unwrap_or_default()
}

async fn route_view(fm: &FleetManager) -> serde_json::Value {
    fm.get(&format!("/v1/routes/{ROUTE}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_fail_over_by_themselves_and_not_on_noise() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let work = tempfile::tempdir().expect("tempdir");
    let hc_port = fleet_tests::free_port();
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.replace_grace_secs = 30;
    options.extra_args = vec!["--healthcheck-url".into(), format!("http://127.0.0.1:{hc_port}"), "--trigger-interval-secs".into(), "2".into()];
    let fm = FleetManager::start(options.clone()).await;
    let hc_config = format!(
        "scanIntervalMs: 1000\nclusters:\n  - {{ name: blue, zookeeper: \"{zk}\", fleetRoot: \"{root}\" }}\n  - {{ name: blue-1, zookeeper: \"{zk}\", fleetRoot: \"{root}\" }}\n",
        zk = zk.connect_string(),
        root = options.fleet_root
    );
    let mut healthcheck = HealthcheckServer::start_on(&hc_config, hc_port).await;
    // Brokers leave /brokers/ids 6 s after they stop; followers out of touch 5 s leave the ISR.
    let blue = local_cluster_yaml("blue", 3, &[("zookeeper.session.timeout.ms", "6000"), ("replica.lag.time.max.ms", "5000")]);
    let topic = format!("apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {TOPIC} }}\nspec: {{ cluster: blue, partitions: 6, replicationFactor: 3, priorityClass: high }}\n");
    let out = apply(&fm, "blue.yaml", &format!("{blue}---\n{topic}---\napiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {ROUTE} }}\nspec: {{ cluster: blue }}\n")).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = fm.fleetctl(&["apply", "-f", &fm.run.path.join("blue.yaml").display().to_string(), "--wait", "--timeout", "180s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let blue_servers = fm.cluster_servers(Some("blue"));
    // The auditor heartbeats blue's brokers; its figures are one of the policy's signals.
    let auditor_port = fleet_tests::free_port();
    let auditor_config = fm.run.path.join("auditor.yaml");
    std::fs::write(
        &auditor_config,
        format!("instanceId: trigger-auditor\nlisten: 127.0.0.1:{auditor_port}\nclusters:\n  - name: blue\n    bootstrapServers: \"{blue_servers}\"\n    intervalMs: 500\n    windowIntervals: 4\n"),
    )
    .expect("auditor config");
    let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&auditor_config);
    let _auditor = fleet_tests::process::ManagedProcess::spawn("auditor", cmd, &fm.run.path.join("auditor.log")).expect("auditor");
    let auditor = format!("    auditor: http://127.0.0.1:{auditor_port}\n");
    let under_min_isr = |secs: u32| format!("{{ signal: underMinIsrPartitions, above: 0, for: {secs}s }}");
    // A long one: the auditor's view, read but not meant to fire in these scenarios.
    let availability = "{ signal: produceAvailability, below: 0.01, for: 10m }";

    // 1. Bad policies: refused, naming the field; nothing stored.
    let (_, before) = fm.get(&format!("/v1/routes/{ROUTE}")).await;
    for (conditions, extra, field) in [
        (vec!["{ signal: cpu, above: 0, for: 10s }".to_string()], String::new(), "spec.failover.conditions[0].signal"),
        (vec!["{ signal: offlinePartitions, above: 0, for: 0s }".to_string()], String::new(), "spec.failover.conditions[0].for"),
        (vec!["{ signal: offlinePartitions, above: 0, for: -5s }".to_string()], String::new(), "spec.failover.conditions[0].for"),
        (vec!["{ signal: produceAvailability, below: 1.5, for: 10s }".to_string()], auditor.clone(), "spec.failover.conditions[0].below"),
        (vec![under_min_isr(10)], "    to: nosuch\n".to_string(), "standby `nosuch` is not declared"),
    ] {
        let out = apply(&fm, "bad-route.yaml", &route("failover", &conditions.iter().map(String::as_str).collect::<Vec<_>>(), &extra)).await;
        assert!(!out.status.success() && text(&out).contains(field), "{field}: {}", text(&out));
    }
    assert_eq!(fm.get(&format!("/v1/routes/{ROUTE}")).await.1["generation"], before["generation"], "nothing stored");

    // Producers on the route, sequence-numbered, acks=all.
    let producers: Vec<Arc<FleetProducer>> = (0..2)
        .map(|i| {
            let mut c = ClientConfig::new(ROUTE, &[fm.url().as_str()]);
            c.token = Some(CLIENT_TOKEN.into());
            c.cache_path = Some(work.path().join(format!("p{i}.json")));
            c.report_interval = Duration::from_millis(500);
            c.kafka.insert("linger.ms".into(), "5".into());
            Arc::new(FleetProducer::new(c).expect("producer"))
        })
        .collect();
    let load = SequencedLoad::start(producers.clone(), TOPIC, "p", 5, Duration::from_millis(50));
    let hosts: Vec<String> = fm.local_hosts().iter().filter(|h| h.cluster.as_deref() == Some("blue")).map(|h| h.instance_id.clone()).collect();
    assert_eq!(hosts.len(), 3);
    let pause = |secs: u64| {
        let (a, b) = (hosts[1].clone(), hosts[2].clone());
        let fm = &fm;
        async move {
            signal_broker(fm, &a, libc::SIGSTOP);
            signal_broker(fm, &b, libc::SIGSTOP);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            signal_broker(fm, &a, libc::SIGCONT);
            signal_broker(fm, &b, libc::SIGCONT);
        }
    };
    let blue_health = format!("http://127.0.0.1:{hc_port}/health/blue");
    let healthy_again = || async {
        wait_until("blue healthy again", Duration::from_secs(120), || async {
            let answer = reqwest::get(&blue_health).await.map_err(|e| e.to_string())?;
            let code = answer.status().as_u16();
            let v: serde_json::Value = answer.json().await.map_err(|e| e.to_string())?;
            if code == 200 && v["status"] == "healthy" {
                Ok(Some(()))
            } else {
                Err(v["findings"].to_string())
            }
        })
        .await
    };

    // 2. Recommend mode: two brokers out for 20 s (the condition needs 6) -> journalled only.
    let out = apply(&fm, "route.yaml", &route("recommend", &[&under_min_isr(6), availability], &auditor)).await;
    assert!(out.status.success(), "{}", text(&out));
    pause(20).await;
    let recommended = journal(&fm, "trigger-recommended").await;
    assert_eq!(recommended.len(), 1, "{recommended:?}");
    assert!(recommended[0]["message"].as_str().unwrap_or_default().contains("would fail over"), "{recommended:?}");
    assert!(operations(&fm).await.is_empty(), "recommend mode changes nothing");
    healthy_again().await;

    // 3. Flapping: out 9 s, back, three times; the condition needs 30 s -> no failover.
    let out = apply(&fm, "route.yaml", &route("failover", &[&under_min_isr(30), availability], &format!("{auditor}    coolDown: 10m\n    autoFallbackAfter: 10s\n"))).await;
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..3 {
        pause(9).await;
        healthy_again().await;
    }
    assert!(operations(&fm).await.is_empty(), "no failover on a flapping pair");
    assert!(!journal(&fm, "trigger-condition-cleared").await.is_empty());

    // 4. The healthcheck stopped while brokers are out longer than the duration: unknown.
    let out = apply(&fm, "route.yaml", &route("failover", &[&under_min_isr(10), availability], &format!("{auditor}    coolDown: 10m\n    autoFallbackAfter: 10s\n"))).await;
    assert!(out.status.success(), "{}", text(&out));
    healthcheck.process.kill();
    pause(25).await;
    assert!(operations(&fm).await.is_empty(), "unknown never fires");
    let unknown = journal(&fm, "trigger-signal-unknown").await;
    assert!(unknown.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains("underMinIsrPartitions"))), "{unknown:?}");
    healthcheck = HealthcheckServer::start_on(&hc_config, hc_port).await;
    healthy_again().await;

    // 5. Two of three brokers killed: an automatic failover to a fresh build, then back.
    let killed = Instant::now();
    fm.kill_host(&hosts[1]);
    fm.kill_host(&hosts[2]);
    let op = wait_until("an automatic failover", Duration::from_secs(60), || async {
        let ops = operations(&fm).await;
        match ops.iter().find(|o| o["spec"]["kind"] == "failover") {
            Some(o) => Ok(Some(o.clone())),
            None => Err(format!("{ops:?}")),
        }
    })
    .await;
    let detected = killed.elapsed();
    eprintln!("automatic failover started {detected:?} after two brokers were killed");
    // Brokers leave 6 s after the kill, then the condition holds 10 s, evaluated every 2 s.
    assert!(detected <= Duration::from_secs(6 + 10 + 2 * 2 + 4), "started after {detected:?}");
    assert!(op["createdBy"].as_str().is_some_and(|c| c.starts_with("trigger@")), "{op}");
    let id = op["id"].as_str().expect("id").to_string();
    let done = wait_until("the automatic failover to end", Duration::from_secs(300), || async {
        let (_, o) = fm.get(&format!("/v1/operations/{id}")).await;
        match o["status"]["phase"].as_str() {
            Some("Succeeded") => Ok(Some(o)),
            Some("Failed" | "Cancelled") => panic!("{o}"),
            _ => Err(o["status"]["message"].to_string()),
        }
    })
    .await;
    eprintln!("producers moved {:?} after the kill", killed.elapsed());
    assert_eq!(done["status"]["target"], "blue-1");
    assert!(!journal(&fm, "trigger-fired").await.is_empty());
    // The original repaired by the reconciler (the failover is over): automatic fallback after 10 s.
    let fallback = wait_until("an automatic fallback to succeed", Duration::from_secs(300), || async {
        let ops = operations(&fm).await;
        match ops.iter().find(|o| o["spec"]["kind"] == "fallback") {
            Some(o) if o["status"]["phase"] == "Succeeded" => Ok(Some(o.clone())),
            Some(o) => Err(o["status"]["message"].to_string()),
            None => Err(route_view(&fm).await["triggers"].to_string()),
        }
    })
    .await;
    assert!(fallback["createdBy"].as_str().is_some_and(|c| c.starts_with("trigger@")), "{fallback}");
    assert_eq!(route_view(&fm).await["routeStatus"]["cluster"], "blue");

    // No acknowledged record lost: every one is on blue or blue-1, read with kcat.
    let (sent, acked) = load.stop().await;
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for c in ["blue", "blue-1"] {
        for line in fleet_tests::kcat::read_all(&fm.cluster_servers(Some(c)), TOPIC).await {
            *found.entry(line).or_default() += 1;
        }
    }
    let lost: Vec<&String> = acked.keys().filter(|k| !found.contains_key(*k)).collect();
    eprintln!("sent {sent}, acknowledged {}, lost {}", acked.len(), lost.len());
    assert!(lost.is_empty(), "{:?}", &lost[..lost.len().min(20)]);
    // 6. A second qualifying outage inside the cool-down: suppressed, journalled.
    let hosts: Vec<String> = fm.local_hosts().iter().filter(|h| h.cluster.as_deref() == Some("blue") && h.state == fleet_common::local::LocalInstanceState::Running).map(|h| h.instance_id.clone()).collect();
    fm.kill_host(&hosts[1]);
    fm.kill_host(&hosts[2]);
    wait_until("the second outage to be suppressed by the cool-down", Duration::from_secs(60), || async {
        let s = journal(&fm, "trigger-suppressed").await;
        if s.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains("cool-down"))) {
            Ok(Some(()))
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    assert_eq!(operations(&fm).await.len(), 2, "no third operation");
    // A hold is shown where the route is.
    let out = fm.fleetctl(&["hold", ROUTE, "--reason", "broker maintenance"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = fm.fleetctl(&["get", "routes"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("held: broker maintenance"), "{}", text(&out));
    let out = fm.fleetctl(&["describe", "route", ROUTE]).await;
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.contains("HELD") && shown.contains("underMinIsrPartitions > 0 for 10s"), "{shown}");
    let out = fm.fleetctl(&["release", ROUTE]).await;
    assert!(out.status.success(), "{}", text(&out));
    let metrics = reqwest::get(format!("{}/metrics", fm.url())).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("fleet_manager_trigger_decisions_total{route=\"events\",decision=\"failover\"} 1"), "{metrics}");

    drop(healthcheck);
}
