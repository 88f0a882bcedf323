use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use kafka_bootstrap::cluster_file::{ClusterFile, ProviderConfig};
use kafka_bootstrap::launch::KafkaCommand;
use kafka_bootstrap::{dns, early_properties, kraft, prepare, provider, BootOptions, BootReport, NodeRole};

/// Runs on a broker host before Kafka: takes a broker ID, renders the broker's properties,
/// registers DNS, then starts Kafka.
#[derive(Parser)]
#[command(name = "kafka-bootstrap", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Take an ID, render properties, register DNS and start Kafka (`--dry-run`: print the
    /// properties that would be used; write nothing).
    Run(RunArgs),
    /// Take (or get back) this host's broker ID and print it; start nothing.
    AssignId(CommonArgs),
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// The cluster file (YAML).
    #[arg(long, env = "FLEET_CLUSTER_FILE")]
    cluster_file: PathBuf,
    /// This host's instance ID; on EC2 it defaults to the instance metadata's.
    #[arg(long, env = "FLEET_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Seconds to keep trying to reach ZooKeeper.
    #[arg(long, default_value_t = 30)]
    zk_timeout_secs: u64,
    /// Seconds to wait for the broker-ID lock.
    #[arg(long, default_value_t = 60)]
    lock_timeout_secs: u64,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The host's data folder: properties, Kafka's log dirs, the pid file.
    #[arg(long, env = "FLEET_DATA_DIR", default_value = "/var/lib/kafka")]
    data_dir: PathBuf,
    #[arg(long, env = "FLEET_BROKER_PORT", default_value_t = 9092)]
    port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    bind_host: String,
    /// The address clients use; defaults to the host's private IP.
    #[arg(long, env = "FLEET_ADVERTISED_HOST")]
    advertised_host: Option<String>,
    /// Folder holding Kafka's jars.
    #[arg(long, env = "KAFKA_LIBS", default_value = "/opt/kafka/libs")]
    kafka_libs: PathBuf,
    /// `exec`: Kafka replaces this process (hosts). `child`: run it as a child and forward
    /// signals (local hosts). Default: exec on EC2, child on local.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Child mode: how long Kafka gets to stop after SIGTERM (or SIGINT, SIGHUP) before it is
    /// killed. Its controlled shutdown needs ZooKeeper; without it Kafka would wait for minutes.
    #[arg(long, env = "FLEET_STOP_GRACE_SECS", default_value_t = 30)]
    stop_grace_secs: u64,
    #[arg(long)]
    dry_run: bool,
    /// What this host runs. ZooKeeper-mode clusters (3.9) have brokers only; a KRaft cluster
    /// (4.x, `kraft` in the cluster file) has controllers too, or nodes that are both.
    #[arg(long, env = "FLEET_NODE_ROLE", value_enum, default_value_t = Role::Broker)]
    role: Role,
    /// A combined node's controller listener (`--port` is its broker listener; a controller's
    /// only listener is `--port`).
    #[arg(long, env = "FLEET_CONTROLLER_PORT")]
    controller_port: Option<u16>,
    /// KRaft: how long to wait for the cluster's first controllers to form the quorum.
    #[arg(long, default_value_t = 600)]
    quorum_timeout_secs: u64,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Role {
    Broker,
    Controller,
    Combined,
}

impl From<Role> for NodeRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Broker => NodeRole::Broker,
            Role::Controller => NodeRole::Controller,
            Role::Combined => NodeRole::Combined,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Mode {
    Exec,
    Child,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // One thread: the Kafka child is forked from it, and PR_SET_PDEATHSIG is tied to the thread.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws=warn,zookeeper_client=warn"));
    // Colours only for a person: a host's log file or journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::AssignId(common) => {
            let (file, instance_id) = load(&common).await?;
            let provider = provider::from_config(&file.provider).await;
            // A host the provider does not know (or knows as terminated) must not take an ID.
            provider.whoami(&instance_id).await?;
            let paths = fleet_common::FleetPaths::new(&file.fleet_root).cluster(&file.cluster);
            let connector = fleet_common::ZkConnector::default()
                .with_deadline(Duration::from_secs(common.zk_timeout_secs))
                .with_identity(file.zk_identity.clone());
            let zk = connector.connect(&file.zookeeper).await?;
            let kafka_live = match &file.kraft {
                Some(_) => kafka_bootstrap::kraft_live_node_ids(&zk, &paths, &file.cluster, dns::from_config(&file.dns).await.as_ref()).await?,
                None => Some(Default::default()),
            };
            let assignment = kafka_bootstrap::broker_id::assign(
                &zk,
                &paths,
                &instance_id,
                provider.as_ref(),
                file.broker_id_base,
                Duration::from_secs(common.lock_timeout_secs),
                connector.fleet_acl(),
                kafka_bootstrap::broker_id::ROLE_BROKER,
                kafka_live.as_ref(),
            )
            .await?;
            match common.output {
                Output::Json => println!("{}", serde_json::to_string(&assignment)?),
                Output::Text => println!("{}", assignment.broker_id),
            }
            Ok(0)
        }
        Command::Run(args) => run_broker(args).await,
    }
}

async fn load(common: &CommonArgs) -> Result<(ClusterFile, String)> {
    let mut file = ClusterFile::load(&common.cluster_file)?;
    file.read_secrets(&common.cluster_file).await?;
    let instance_id = match (&common.instance_id, &file.provider) {
        (Some(id), _) if !id.trim().is_empty() => id.trim().to_string(),
        (Some(_), _) => anyhow::bail!("--instance-id is empty: give this host's instance ID"),
        (None, ProviderConfig::Ec2 { .. }) => provider::instance_id_from_imds()
            .await
            .context("no --instance-id given and the EC2 instance metadata did not tell")?,
        (None, ProviderConfig::Local { .. }) => {
            anyhow::bail!("--instance-id (or FLEET_INSTANCE_ID) is required with the local provider")
        }
    };
    Ok((file, instance_id))
}

async fn run_broker(args: RunArgs) -> Result<u8> {
    let (file, instance_id) = load(&args.common).await?;
    // Everything the user wrote is checked before anything is written anywhere.
    let props = early_properties(&file, std::env::vars())?;
    let kafka = KafkaCommand::from_env(
        args.kafka_libs.clone(),
        args.data_dir.join("server.properties"),
        args.data_dir.join("log4j.properties"),
    );
    if !args.dry_run {
        kafka.check()?;
        // The jars must be of the cluster's line: 4.x for KRaft, 3.x for ZooKeeper mode.
        kafka.check_line(file.kraft.is_some())?;
    }
    let storage = file.kraft.as_ref().map(|_| kraft::StorageTool { java: kafka.java.clone(), libs: args.kafka_libs.clone() });
    let opts = BootOptions {
        instance_id,
        data_dir: args.data_dir.clone(),
        port: args.port,
        bind_host: args.bind_host.clone(),
        advertised_host: args.advertised_host.clone(),
        zk_timeout: Duration::from_secs(args.common.zk_timeout_secs),
        lock_timeout: Duration::from_secs(args.common.lock_timeout_secs),
        dry_run: args.dry_run,
        role: args.role.into(),
        controller_port: args.controller_port,
        storage,
        quorum_timeout: Duration::from_secs(args.quorum_timeout_secs),
    };
    let provider = provider::from_config(&file.provider).await;
    let registry = dns::from_config(&file.dns).await;
    let (report, props) = prepare(&file, props, &opts, provider.as_ref(), registry.as_ref()).await?;
    print_report(&report, args.common.output)?;
    if !args.dry_run {
        // For supervisors and tests: what this boot decided, next to the properties it rendered.
        let report_file = args.data_dir.join("boot-report.json");
        fleet_common::local::write_atomically(&report_file, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("writing {}", report_file.display()))?;
    }
    if args.dry_run {
        if args.common.output == Output::Text {
            print!("{}", props.render());
        }
        return Ok(0);
    }
    let mode = args.mode.unwrap_or(match file.provider {
        ProviderConfig::Ec2 { .. } => Mode::Exec,
        ProviderConfig::Local { .. } => Mode::Child,
    });
    match mode {
        Mode::Exec => Err(kafka.exec().into()),
        Mode::Child => {
            let code = kafka.run_as_child(&args.data_dir.join("kafka.pid"), Duration::from_secs(args.stop_grace_secs)).await?;
            Ok(u8::try_from(code).unwrap_or(1))
        }
    }
}

fn print_report(report: &BootReport, output: Output) -> Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(report)?),
        Output::Text => {
            let previous = report
                .previous_instance_id
                .as_deref()
                .map(|p| format!(" (was {p})"))
                .unwrap_or_default();
            eprintln!(
                "cluster {} instance {} ({}): broker {} [{}{}] at {}{}",
                report.cluster,
                report.instance_id,
                report.availability_zone,
                report.broker_id,
                report.how,
                previous,
                report.advertised_listener,
                if report.dry_run { " (dry run: nothing written)" } else { "" }
            );
            if !report.dns_names.is_empty() {
                eprintln!("dns: {}", report.dns_names.join(", "));
            }
        }
    }
    Ok(())
}
