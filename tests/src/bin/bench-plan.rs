//! `bench-plan`: plan computation time and resident memory for a large declared fleet.
//!
//! 1. In process: declares N clusters of B brokers and T topics each in a real store (SQLite in a
//!    temp folder), loads the desired state back as the reconciler does, and plans every cluster
//!    against a synthetic observed state (a mix of converged clusters, clusters missing topics, a
//!    broker down, and clusters not built yet).
//! 2. A real `fleet-manager` process (SQLite, a standalone ZooKeeper, no host provider): the same
//!    fleet applied through its API, then `GET /v1/plan` (observe every cluster in ZooKeeper and
//!    plan it), and the process's resident memory.
//!
//! Prints the figures; `-o json` for automation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use clap::Parser;
use fleet_manager::plan::{self, ClusterIntent, HostState, ObservedCluster, ObservedHost, ObservedTopic, PlanSettings, Seen};
use fleet_manager::controller::desired_state;
use fleet_manager::spec;
use fleet_manager::store::Store;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    #[arg(long, default_value_t = 12)]
    brokers: usize,
    #[arg(long, default_value_t = 50)]
    topics: usize,
    /// Plan rounds; the median is reported.
    #[arg(long, default_value_t = 21)]
    rounds: usize,
    /// Skip the fleet-manager process measurement.
    #[arg(long)]
    no_process: bool,
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rss_start = rss_kib();
    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())).await?;
    let started = Instant::now();
    for docs in desired_docs(&args) {
        let batch: Vec<_> = docs.into_iter().map(spec::validate_value).collect::<Result<_, _>>()?;
        store.apply(&batch, "bench", false).await?;
    }
    let apply_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let desired = desired_state(&store).await?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;

    // Synthetic observations: 70% converged, 10% missing a few topics, 10% one broker down,
    // 10% not built yet.
    let observed: Vec<ObservedCluster> = desired
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let built = i % 10 != 9;
            let hosts: Vec<ObservedHost> = if built {
                (0..d.spec.brokers)
                    .map(|b| ObservedHost {
                        instance_id: format!("{}-{b:04}", d.spec.name),
                        availability_zone: d.spec.availability_zones[b as usize % 3].clone(),
                        state: HostState::Running,
                        launched_ms: 0,
                        launch_token: None,
                        private_ip: None,
                        port: None,
                        role: Default::default(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let registry: BTreeMap<i32, String> = hosts.iter().enumerate().map(|(n, h)| (n as i32 + 1, h.instance_id.clone())).collect();
            let mut live: BTreeSet<i32> = registry.keys().copied().collect();
            if i % 10 == 8 {
                live.remove(&1);
            }
            let topics: BTreeMap<String, ObservedTopic> = if built {
                d.topics
                    .iter()
                    .enumerate()
                    .filter(|(n, _)| !(i % 10 == 7 && n % 10 == 0))
                    .map(|(_, t)| {
                        (t.spec.name.clone(), ObservedTopic {
                            partitions: t.spec.partitions,
                            replication_factor: t.spec.replication_factor,
                            configs: t.spec.configs.clone(),
                            marked_for_deletion: false,
                        })
                    })
                    .collect()
            } else {
                BTreeMap::new()
            };
            ObservedCluster {
                at_ms: 0,
                hosts: Seen::Known(hosts),
                live_brokers: Seen::Known(live),
                registry: Seen::Known(registry),
                topics: Seen::Known(topics),
                dns: Seen::Known(Vec::new()),
                zk_state: Seen::Known(true),
                quorum: Seen::Unknown("ZooKeeper mode".into()),
            }
        })
        .collect();
    let intent = ClusterIntent::default();
    let settings = PlanSettings { now_ms: 1_000_000, replace_grace_ms: 60_000, launch_visibility_ms: 120_000 };
    let mut times = Vec::new();
    let mut steps = 0;
    for _ in 0..args.rounds {
        let started = Instant::now();
        steps = 0;
        for (d, o) in desired.iter().zip(&observed) {
            let (p, _) = plan::plan_cluster(d, o, &intent, settings);
            steps += p.steps.len();
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let rss_end = rss_kib();
    let figures = serde_json::json!({
        "clusters": args.clusters, "brokersPerCluster": args.brokers, "topicsPerCluster": args.topics,
        "resources": args.clusters * (args.topics + 1),
        "applyAllMs": apply_ms, "loadDesiredMs": load_ms,
        "planAllMedianMs": median, "planAllMinMs": times[0], "planAllMaxMs": times[times.len() - 1],
        "planPerClusterUs": median * 1000.0 / args.clusters as f64,
        "stepsPlanned": steps,
        "rssStartMiB": rss_start as f64 / 1024.0, "rssEndMiB": rss_end as f64 / 1024.0,
    });
    let process = if args.no_process {
        serde_json::Value::Null
    } else {
        measure_process(&args, &desired_docs(&args)).await?
    };
    let mut figures = figures;
    figures["process"] = process.clone();
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!("declared: {} clusters x {} brokers x {} topics ({} resources)", args.clusters, args.brokers, args.topics, args.clusters * (args.topics + 1));
        println!("apply all (SQLite):      {apply_ms} ms");
        println!("load desired state:      {load_ms:.1} ms");
        println!("plan all clusters:       median {median:.2} ms (min {:.2}, max {:.2}) over {} rounds", times[0], times[times.len() - 1], args.rounds);
        println!("plan per cluster:        {:.1} us", median * 1000.0 / args.clusters as f64);
        println!("steps planned per round: {steps}");
        println!("resident memory:         {:.1} MiB at start, {:.1} MiB with the fleet loaded and planned", rss_start as f64 / 1024.0, rss_end as f64 / 1024.0);
        if !process.is_null() {
            println!("fleet-manager process:   {:.1} MiB idle, {:.1} MiB with the fleet applied through the API and planned",
                process["rssIdleMiB"].as_f64().unwrap_or(0.0), process["rssLoadedMiB"].as_f64().unwrap_or(0.0));
            println!("GET /v1/plan (observe all clusters in ZooKeeper, then plan): median {:.0} ms over 5 calls", process["planAllHttpMs"].as_f64().unwrap_or(0.0));
        }
    }
    Ok(())
}

/// One batch of documents per cluster: the cluster and its topics.
fn desired_docs(args: &Args) -> Vec<Vec<serde_json::Value>> {
    (0..args.clusters)
        .map(|c| {
            let class = ["low", "medium", "high"][c % 3];
            let mut docs = vec![serde_json::json!({
                "apiVersion": spec::API_VERSION, "kind": "KafkaCluster", "metadata": {"name": format!("c{c:03}")},
                "spec": {"kafkaVersion": "3.9", "brokers": args.brokers, "availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"],
                         "priorityClass": class, "brokerConfig": {"num.io.threads": 16},
                         // No ec2 provider is configured in the measured process: hosts stay
                         // unknown and nothing is launched (a local provider would start JVMs).
                         "provider": "ec2"}
            })];
            for t in 0..args.topics {
                docs.push(serde_json::json!({
                    "apiVersion": spec::API_VERSION, "kind": "Topic", "metadata": {"name": format!("topic-{t:03}")},
                    "spec": {"cluster": format!("c{c:03}"), "partitions": 12 + (t % 4) * 12}
                }));
            }
            docs
        })
        .collect()
}

fn rss_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

/// Starts a real fleet manager (SQLite, a standalone ZooKeeper, no host provider), applies the
/// fleet through its API, asks it for the plan of every cluster, and reads its RSS.
async fn measure_process(_args: &Args, batches: &[Vec<serde_json::Value>]) -> anyhow::Result<serde_json::Value> {
    let zk = fleet_tests::ZkEnsemble::start(1).await;
    let mut options = fleet_tests::fleet_manager::FleetManagerOptions::new(&zk.connect_string());
    options.local_hosts = false;
    let fm = fleet_tests::fleet_manager::FleetManager::start(options).await;
    let pid = fm.process.as_ref().map(|p| p.pid()).unwrap_or(0);
    let http = reqwest::Client::new();
    let base = fm.url();
    let idle = rss_of(pid);
    for docs in batches {
        let r = http
            .post(format!("{base}/v1/apply"))
            .bearer_auth(fleet_tests::fleet_manager::WRITE_TOKEN)
            .json(&serde_json::json!({"resources": docs}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "apply: {}", r.text().await.unwrap_or_default());
    }
    let mut times = Vec::new();
    let mut plans = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let r = http.get(format!("{base}/v1/plan")).bearer_auth(fleet_tests::fleet_manager::READ_TOKEN).send().await?;
        anyhow::ensure!(r.status().is_success(), "plan: {}", r.status());
        let v: serde_json::Value = r.json().await?;
        plans = v.as_array().map(|p| p.len()).unwrap_or(0);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let loaded = rss_of(pid);
    Ok(serde_json::json!({"rssIdleMiB": idle, "rssLoadedMiB": loaded, "planAllHttpMs": times[times.len() / 2], "plans": plans}))
}
