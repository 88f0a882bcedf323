use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use kafka_healthcheck::config::{self, RawCluster, RawConfig};
use kafka_healthcheck::http::{router, AppState};
use kafka_healthcheck::metrics::Metrics;
use kafka_healthcheck::scanner::{self, Report, Status};
use tokio::sync::RwLock;

/// Reads ZooKeeper (KRaft clusters: the Kafka protocol) for signs of unhealthiness in Kafka clusters.
#[derive(Parser)]
#[command(name = "kafka-healthcheck", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan continuously and serve /health, /health/{cluster} and /metrics.
    Serve {
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
    /// Scan once and print the findings. Exit 0 healthy, 1 unhealthy, 2 could not tell.
    Check {
        /// ZooKeeper ensemble, e.g. zk1:2181,zk2:2181.
        #[arg(long)]
        zookeeper: String,
        #[arg(long)]
        cluster: String,
        /// Fleet root the cluster lives under (its Kafka chroot is <root>/clusters/<cluster>/kafka).
        #[arg(long)]
        fleet_root: Option<String>,
        /// Kafka chroot, for clusters not laid out by the fleet (e.g. /kafka, or /).
        #[arg(long)]
        kafka_chroot: Option<String>,
        /// Expected broker IDs, e.g. 1,2,3.
        #[arg(long, value_delimiter = ',')]
        expected_brokers: Option<Vec<i32>>,
        /// A KRaft (Kafka 4.x) cluster: brokers to read it through, e.g. b1:9092,b2:9092.
        #[arg(long)]
        bootstrap_server: Option<String>,
        /// Thresholds from a config file (its clusters are ignored).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

const EXIT_UNHEALTHY: u8 = 1;
const EXIT_UNKNOWN: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,zookeeper_client=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_UNKNOWN);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => serve(config).await.map(|()| 0),
            Command::Check { zookeeper, cluster, fleet_root, kafka_chroot, expected_brokers, bootstrap_server, config, timeout_ms, output } => {
                let raw = RawCluster { name: cluster, zookeeper, fleet_root, kafka_chroot, expected_brokers, expected_racks: Vec::new(), bootstrap_servers: bootstrap_server };
                check(raw, config, timeout_ms, output).await
            }
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_UNKNOWN)
        }
    }
}

async fn serve(path: PathBuf) -> Result<()> {
    let config = config::load(&path)?.resolve()?;
    let reports: scanner::Reports =
        Arc::new(RwLock::new(config.clusters.iter().map(|c| (c.name.clone(), Report::not_scanned(&c.name))).collect::<BTreeMap<_, _>>()));
    let metrics = Arc::new(Metrics::new());
    for target in config.clusters.clone() {
        tokio::spawn(scanner::run_cluster(
            target,
            config.thresholds.clone(),
            config.scan_interval,
            config.zookeeper_timeout,
            reports.clone(),
            metrics.clone(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (field `listen`)", config.listen))?;
    let tls = config.tls.as_ref().map(fleet_common::https::server_config).transpose().context("tls")?;
    tracing::info!(listen = %config.listen, tls = tls.is_some(), clusters = config.clusters.len(), "serving health");
    fleet_common::https::serve(listener, router(AppState { reports, metrics }), tls, fleet_common::serve::ServeLimits::default(), async {
        let signal = fleet_common::signals::stop_requested().await;
        tracing::info!(signal, "stopping");
    })
    .await?;
    Ok(())
}

async fn check(raw: RawCluster, config_path: Option<PathBuf>, timeout_ms: u64, output: Output) -> Result<u8> {
    let thresholds = match &config_path {
        Some(p) => config::load(p)?.thresholds.unwrap_or_default().resolve()?,
        None => RawConfig::default().thresholds.unwrap_or_default().resolve()?,
    };
    let target = raw.resolve("--cluster").map_err(|e| anyhow::anyhow!(e.to_string().replace("config: field `--cluster.", "option `--")))?;
    let timeout = Duration::from_millis(timeout_ms);
    let client = fleet_common::ZkConnector::default()
        .with_deadline(timeout)
        .connect(&target.zookeeper)
        .await
        .context("could not tell: ZooKeeper unreachable")?;
    let report = match tokio::time::timeout(timeout, scanner::scan(&client, &target, &thresholds)).await {
        Ok(r) => r?,
        Err(_) => anyhow::bail!("could not tell: the scan took longer than {timeout_ms} ms"),
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => print_table(&report),
    }
    Ok(match report.status {
        Status::Healthy => 0,
        Status::Unhealthy => EXIT_UNHEALTHY,
        Status::Unknown => EXIT_UNKNOWN,
    })
}

fn print_table(report: &Report) {
    let status = match report.status {
        Status::Healthy => "HEALTHY",
        Status::Unhealthy => "UNHEALTHY",
        Status::Unknown => "COULD NOT TELL",
    };
    println!(
        "cluster {}: {status} ({} partitions, {} live of {} expected brokers, {} {}, scan {} ms)",
        report.cluster,
        report.partitions,
        report.brokers.values().filter(|b| b.up).count(),
        report.expected_brokers.len(),
        if report.quorum.is_some() { "quorum leader" } else { "controller" },
        report.controller.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
        report.last_scan_duration_ms.unwrap_or(0),
    );
    if report.findings.is_empty() {
        return;
    }
    println!("{:<9} {:<28} DETAIL", "SEVERITY", "FINDING");
    for f in &report.findings {
        let sev = match f.severity {
            kafka_healthcheck::findings::Severity::Critical => "critical",
            kafka_healthcheck::findings::Severity::Info => "info",
            kafka_healthcheck::findings::Severity::Warning => "warning",
        };
        println!("{sev:<9} {:<28} {}", f.kind.as_str(), f.message);
    }
}
