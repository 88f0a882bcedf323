//! `fleet-manager`: serves the API and, when elected, reconciles the fleet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use fleet_common::{FleetPaths, ZkAddress, ZkConnector};
use fleet_manager::api::{self, ApiToken, AppState};
use fleet_manager::metrics::Metrics;
use fleet_manager::providers::{self as provider, DnsZone, FleetCoordinates, HostProvider};
use fleet_manager::controller::{ReconcileSettings, Reconciler};
use fleet_manager::store::Store;

#[derive(Parser, Debug)]
#[command(name = "fleet-manager", version, about = "The kafka-fleet control plane: source of truth, reconciler, HTTP API")]
struct Args {
    /// Address the HTTP API listens on.
    #[arg(long, env = "FLEET_MANAGER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The URL broker hosts reach this API at (for their persisted properties).
    #[arg(long, env = "FLEET_MANAGER_PUBLIC_URL")]
    public_url: Option<String>,
    /// Folder for the embedded database and local hosts.
    #[arg(long, env = "FLEET_MANAGER_DATA_DIR", default_value = "run/fleet-manager")]
    data_dir: PathBuf,
    /// sqlite://PATH (default: <data-dir>/fleet.db) or postgres://USER@HOST/DB.
    #[arg(long, env = "FLEET_DATABASE_URL")]
    database: Option<String>,
    /// ZooKeeper connect string (the fleet's ensemble).
    #[arg(long, env = "FLEET_ZOOKEEPER")]
    zookeeper: String,
    #[arg(long, env = "FLEET_ROOT", default_value = fleet_common::paths::DEFAULT_FLEET_ROOT)]
    fleet_root: String,
    /// A file holding the fleet's ZooKeeper identity, one line USER:PASSWORD (digest scheme): the
    /// fleet's znodes (election, broker-ID registry and its lock) are created writable by it
    /// only, readable by all. Local hosts are given the same file.
    #[arg(long, env = "FLEET_ZK_IDENTITY_FILE")]
    zk_identity_file: Option<PathBuf>,
    /// Run without a ZooKeeper identity: the fleet's znodes (election, broker-ID registry and
    /// its lock) are then writable by any ZooKeeper client, and hosts are told the same. For a
    /// trusted test network only; refused by default.
    #[arg(long, env = "FLEET_INSECURE_ZOOKEEPER", conflicts_with = "zk_identity_file")]
    insecure_zookeeper: bool,
    /// ZooKeeper session timeout: how fast a standby takes over from a dead leader.
    #[arg(long, default_value_t = 10_000)]
    zk_session_timeout_ms: u64,
    /// A file of API tokens (or FLEET_MANAGER_TOKENS in the environment), one `NAME:SCOPE:SECRET` or `NAME:SCOPE:sha256:HEX` per line (SCOPE
    /// read, write or client). Kept out of flags: a process's arguments are visible to every user.
    #[arg(long, env = "FLEET_MANAGER_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Serve the API over HTTPS with this certificate chain (PEM); reloaded when the file changes.
    #[arg(long, env = "FLEET_MANAGER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "FLEET_MANAGER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The CA that broker hosts verify this API's certificate with (passed to them in their
    /// cluster file); without it, hosts use the system's roots.
    #[arg(long, env = "FLEET_MANAGER_HOSTS_CA_FILE")]
    hosts_ca_file: Option<PathBuf>,

    /// This instance's name in the election and the journal (default: hostname:pid).
    #[arg(long)]
    identity: Option<String>,
    #[arg(long, default_value_t = 30)]
    interval_secs: u64,
    /// How long a broker may be missing while its host is alive before the host is replaced.
    #[arg(long, default_value_t = 90)]
    replace_grace_secs: u64,
    #[arg(long, default_value_t = 60)]
    step_timeout_secs: u64,
    /// Local hosts: Kafka 3.9's jars (ZooKeeper-mode clusters).
    #[arg(long, env = "KAFKA_LIBS")]
    kafka_libs: Option<PathBuf>,
    /// Local hosts: Kafka 4.x's jars (KRaft clusters; `make jars` fills dev/.cache/lib-4.4).
    #[arg(long, env = "KAFKA4_LIBS")]
    kafka4_libs: Option<PathBuf>,
    /// Local hosts: the kafka-bootstrap binary (default: next to this one).
    #[arg(long)]
    bootstrap_bin: Option<PathBuf>,
    #[arg(long, default_value = "-Xms64m -Xmx320m")]
    local_heap_opts: String,
    /// Local hosts: at most this many running at once (each is a JVM).
    #[arg(long, default_value_t = 16)]
    local_max_hosts: usize,
    #[arg(long, default_value = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -Djava.awt.headless=true")]
    local_jvm_opts: String,
    /// EC2 hosts: region (enables the ec2 provider).
    #[arg(long, env = "AWS_REGION")]
    ec2_region: Option<String>,
    #[arg(long, env = "FLEET_EC2_ENDPOINT_URL")]
    ec2_endpoint_url: Option<String>,
    /// EC2 hosts: the image to launch (without a launch template).
    #[arg(long, env = "FLEET_EC2_IMAGE_ID")]
    ec2_image_id: Option<String>,
    /// EC2 hosts: the launch template (lt-... or its name) to launch from; terraform's
    /// `launch_template_id` output. Takes precedence over --ec2-image-id.
    #[arg(long, env = "FLEET_EC2_LAUNCH_TEMPLATE")]
    ec2_launch_template: Option<String>,
    /// EC2 hosts: the launch template KRaft controller hosts are launched from; terraform's
    /// `controller_launch_template_id` output. Without it, controllers launch like brokers.
    #[arg(long, env = "FLEET_EC2_CONTROLLER_LAUNCH_TEMPLATE")]
    ec2_controller_launch_template: Option<String>,
    /// EC2 hosts: where the image holds Kafka 4.x's jars (e.g. /opt/kafka4/libs). Without it,
    /// hosts of KRaft clusters are not launched on EC2.
    #[arg(long, env = "FLEET_EC2_KAFKA4_LIBS")]
    ec2_kafka4_libs: Option<String>,
    /// EC2 hosts: the subnet of each zone, ZONE=SUBNET_ID (repeat, or comma-separated).
    #[arg(long = "ec2-subnet", env = "FLEET_EC2_SUBNETS", value_delimiter = ',')]
    ec2_subnets: Vec<String>,
    /// EC2 hosts: broker hosts get the instance profile <prefix><cluster family>.
    #[arg(long, env = "FLEET_EC2_INSTANCE_PROFILE_PREFIX")]
    ec2_instance_profile_prefix: Option<String>,
    /// EC2 hosts: each cluster's host token is kept in Secrets Manager as
    /// <prefix>/hosts/<cluster>/fleet-api-token (user-data only names it).
    #[arg(long, env = "FLEET_EC2_SECRET_PREFIX", default_value = "kafka-fleet")]
    ec2_secret_prefix: String,
    /// EC2 hosts: the Secrets Manager secret holding the fleet's ZooKeeper identity (USER:PASSWORD).
    #[arg(long, env = "FLEET_EC2_ZK_IDENTITY_SECRET")]
    ec2_zk_identity_secret: Option<String>,
    #[arg(long = "ec2-security-group")]
    ec2_security_groups: Vec<String>,
    /// DNS the brokers register in: local (files under the data dir), route53 or none.
    #[arg(long, env = "FLEET_DNS", default_value = "local")]
    dns: String,
    #[arg(long, env = "FLEET_DNS_ZONE")]
    dns_zone: Option<String>,
    #[arg(long, env = "FLEET_ROUTE53_ENDPOINT_URL")]
    route53_endpoint_url: Option<String>,
    /// Journal entries kept at most (the oldest are pruned by the leader).
    #[arg(long, default_value_t = 100_000)]
    journal_max_rows: i64,
    /// Journal entries older than this many days are pruned.
    #[arg(long, default_value_t = 30)]
    journal_max_age_days: i64,
    /// Clusters reconciled at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The largest ZooKeeper request a scale-up commit may make: keep it under the ensemble's
    /// `jute.maxbuffer` (1 MiB by default), or the commit is refused (or split with --allow-split).
    #[arg(long, default_value_t = 1_000_000)]
    zk_max_commit_bytes: usize,
    /// A running healthcheck service (`kafka-healthcheck serve`) to ask for verdicts on clusters;
    /// without it, `--healthcheck-bin check` is run against ZooKeeper for each verdict.
    #[arg(long, env = "FLEET_HEALTHCHECK_URL")]
    healthcheck_url: Option<String>,
    /// The kafka-healthcheck binary (default: next to this one).
    #[arg(long)]
    healthcheck_bin: Option<PathBuf>,
    /// How often routes' automatic failover policies are evaluated.
    #[arg(long, default_value_t = 5)]
    trigger_interval_secs: u64,
    /// HTTP: a request's head (and a TLS handshake) must arrive within this many seconds of its first byte.
    #[arg(long, env = "FLEET_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    http_header_timeout_secs: u64,
    /// HTTP: a keep-alive connection with no request for this many seconds is closed.
    #[arg(long, env = "FLEET_HTTP_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    http_idle_timeout_secs: u64,
    /// HTTP: a request (body included) not answered within this many seconds gets a 408 (long polls
    /// wait at most 60).
    #[arg(long, env = "FLEET_HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 90)]
    http_request_timeout_secs: u64,
    /// HTTP: at most this many connections at once; more wait to be accepted.
    #[arg(long, env = "FLEET_HTTP_MAX_CONNECTIONS", default_value_t = 1024)]
    http_max_connections: usize,
    /// The replication throttle of a decommission that lowering `brokers` in an apply starts
    /// (per broker, e.g. 50MiB/s; `none` for unthrottled).
    #[arg(long, env = "FLEET_APPLY_DECOMMISSION_THROTTLE", default_value = "50MiB/s")]
    apply_decommission_throttle: String,
    /// How long a failover's fresh build may take to converge before the failover fails (and the
    /// build is torn down).
    #[arg(long, env = "FLEET_FAILOVER_BUILD_TIMEOUT_SECS", default_value_t = 900)]
    failover_build_timeout_secs: u64,
    /// How long a failover waits for the cluster it leaves to refuse the route's writes on every
    /// partition (the seal) before consumers drain it anyway (a dead cluster cannot be probed).
    #[arg(long, env = "FLEET_FAILOVER_SEAL_TIMEOUT_SECS", default_value_t = 60)]
    failover_seal_timeout_secs: u64,
    /// How long a client's report counts: a client that has not reported for this long has gone
    /// (failovers stop waiting for it; a standby it used can be released).
    #[arg(long, env = "FLEET_CLIENT_REPORT_TTL_SECS", default_value_t = 30)]
    client_report_ttl_secs: u64,
    /// Live client instances (producers and consumers reporting) one token may have at once.
    #[arg(long, env = "FLEET_MAX_CLIENT_INSTANCES", default_value_t = 5000)]
    max_client_instances: i64,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,rdkafka=warn"));
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_env_filter(filter).init();
    }
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("fleet-manager: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut tokens: Vec<ApiToken> = match &args.token_file {
        Some(path) => ApiToken::load_file(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    // Or the environment, comma-separated, in the same forms as the file.
    let env_tokens = std::env::var("FLEET_MANAGER_TOKENS").unwrap_or_default();
    for (i, t) in env_tokens.split(',').map(str::trim).filter(|t| !t.is_empty()).enumerate() {
        tokens.push(ApiToken::parse(t).map_err(|e| anyhow::anyhow!("FLEET_MANAGER_TOKENS, entry {}: {e}", i + 1))?);
    }
    if tokens.is_empty() {
        bail!("no API token: give --token-file FILE (lines NAME:SCOPE:SECRET) or FLEET_MANAGER_TOKENS");
    }
    let tls_files = fleet_common::https::TlsFiles::from_pair(args.tls_cert.clone(), args.tls_key.clone(), "--tls-cert and --tls-key")?;
    // Checked before anything starts: a certificate that does not match its key stops the boot here.
    let tls = match &tls_files {
        Some(files) => Some(fleet_common::https::server_config(files)?),
        None => None,
    };
    let hosts_ca = match &args.hosts_ca_file {
        Some(path) => {
            fleet_common::https::read_ca_bundle(path).context("--hosts-ca-file")?;
            Some(std::fs::canonicalize(path)?.display().to_string())
        }
        None => None,
    };
    let zk_address = ZkAddress::parse(&args.zookeeper).context("--zookeeper")?;
    let zk_identity = match &args.zk_identity_file {
        Some(path) => Some(fleet_common::ZkIdentity::load_file(path).context("--zk-identity-file")?),
        None if args.insecure_zookeeper => {
            tracing::warn!("--insecure-zookeeper: the fleet's znodes (election, broker-ID registry, its lock) are writable by any ZooKeeper client");
            None
        }
        None => bail!(
            "no ZooKeeper identity: the fleet's znodes (election, broker-ID registry and its lock) would be writable by any \
             ZooKeeper client, which could take broker IDs or stand for election. Give --zk-identity-file FILE (one line \
             USER:PASSWORD, mode 0600), or --insecure-zookeeper to run with open znodes (a trusted test network only)"
        ),
    };
    let zk_identity_file = match &args.zk_identity_file {
        Some(path) => Some(std::fs::canonicalize(path)?.display().to_string()),
        None => None,
    };
    fleet_common::paths::validate_znode_path(&args.fleet_root).context("--fleet-root")?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    let database = args.database.clone().unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("fleet.db").display()));
    let store = Store::open(&database).await.with_context(|| format!("opening the store at {database}"))?;
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
        format!("{host}:{}", std::process::id())
    });
    // One key for every instance (kept in the store): a host's token stays valid whichever
    // instance answers, and across restarts.
    let host_token_key = fleet_manager::credentials::random_key().context("reading /dev/urandom for the host-token key")?;
    let host_token_key = store.secret_or_insert("host-token-key", &host_token_key).await.context("reading the host-token key from the store")?;
    let host_tokens = Arc::new(fleet_manager::credentials::HostTokens::new(host_token_key.as_bytes()));
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("{}://{}", fleet_common::https::scheme(tls.is_some()), args.listen));
    let fleet = FleetCoordinates {
        zookeeper: args.zookeeper.clone(),
        fleet_root: args.fleet_root.clone(),
        fleet_api_url: public_url,
        fleet_api_ca_file: hosts_ca,
        zk_identity_file,
        insecure_zookeeper: args.insecure_zookeeper,
        host_tokens: Some(host_tokens.clone()),
    };
    let local_root = data_dir.join("local");
    let local: Option<Arc<dyn HostProvider>> = match &args.kafka_libs {
        Some(libs) => {
            let bootstrap_bin = match &args.bootstrap_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe()?.with_file_name("kafka-bootstrap"),
            };
            if !bootstrap_bin.exists() {
                bail!("--bootstrap-bin: {} does not exist (build it with cargo build --bins)", bootstrap_bin.display());
            }
            Some(Arc::new(provider::LocalHosts {
                config: provider::LocalHostsConfig {
                    root: local_root.clone(),
                    bootstrap_bin,
                    kafka_libs: libs.clone(),
                    kafka4_libs: args.kafka4_libs.clone(),
                    heap_opts: args.local_heap_opts.clone(),
                    jvm_opts: args.local_jvm_opts.clone(),
                    max_hosts: args.local_max_hosts,
                },
                fleet: fleet.clone(),
            }))
        }
        None => None,
    };
    let ec2_subnets = provider::ec2::parse_subnets(&args.ec2_subnets).map_err(anyhow::Error::msg)?;
    let ec2_source = match (&args.ec2_launch_template, &args.ec2_image_id) {
        (Some(template), _) => Some(provider::ec2::LaunchSource::Template(template.clone())),
        (None, Some(image)) => Some(provider::ec2::LaunchSource::Image(image.clone())),
        (None, None) => None,
    };
    let ec2: Option<Arc<dyn HostProvider>> = match (&args.ec2_region, ec2_source) {
        (Some(region), Some(source)) => Some(Arc::new(
            provider::Ec2Hosts::new(
                provider::Ec2Config {
                    region: region.clone(),
                    endpoint_url: args.ec2_endpoint_url.clone(),
                    source,
                    controller_source: args.ec2_controller_launch_template.clone().map(provider::ec2::LaunchSource::Template),
                    kafka4_libs: args.ec2_kafka4_libs.clone(),
                    subnet_ids: ec2_subnets,
                    security_group_ids: args.ec2_security_groups.clone(),
                    instance_profile_prefix: args.ec2_instance_profile_prefix.clone(),
                    dns_zone: args.dns_zone.clone(),
                    secret_prefix: args.ec2_secret_prefix.clone(),
                    zk_identity_secret: args.ec2_zk_identity_secret.clone(),
                },
                fleet.clone(),
            )
            .await,
        )),
        _ => None,
    };
    let dns: Arc<dyn DnsZone> = match args.dns.as_str() {
        "local" => Arc::new(provider::LocalDns { root: local_root.join("dns") }),
        "none" => Arc::new(provider::NoDns),
        "route53" => {
            let zone = args.dns_zone.clone().context("--dns route53 needs --dns-zone")?;
            Arc::new(provider::Route53Dns::new(&zone, args.route53_endpoint_url.as_deref()).await)
        }
        other => bail!("--dns: `{other}` is not local, route53 or none"),
    };
    let metrics = Arc::new(Metrics::default());
    let health: Arc<dyn fleet_manager::observe::health::HealthJudge> = match &args.healthcheck_url {
        Some(url) => Arc::new(fleet_manager::observe::health::HealthcheckService { url: url.clone(), http: reqwest::Client::new() }),
        None => Arc::new(fleet_manager::observe::health::HealthcheckCommand {
            bin: match &args.healthcheck_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe().context("cannot locate this binary")?.with_file_name("kafka-healthcheck"),
            },
            zookeeper: args.zookeeper.clone(),
            fleet_root: args.fleet_root.clone(),
            timeout: Duration::from_secs(10),
        }),
    };
    let reconciler = Arc::new(Reconciler {
        store: store.clone(),
        zk_address,
        zk_connector: ZkConnector::default()
            .with_session_timeout(Duration::from_millis(args.zk_session_timeout_ms))
            .with_deadline(Duration::from_secs(20))
            .with_identity(zk_identity),
        paths: FleetPaths::new(&args.fleet_root),
        hosts: provider::HostProviders { local, ec2 },
        dns,
        settings: ReconcileSettings {
            interval: Duration::from_secs(args.interval_secs.max(1)),
            replace_grace: Duration::from_secs(args.replace_grace_secs),
            step_timeout: Duration::from_secs(args.step_timeout_secs.max(1)),
            concurrency: args.concurrency.max(1),
            trigger_interval: Duration::from_secs(args.trigger_interval_secs.max(1)),
            journal: fleet_manager::store::JournalRetention {
                max_rows: args.journal_max_rows.max(100),
                max_age_ms: args.journal_max_age_days.max(1) * 24 * 3_600_000,
            },
            scale_up: fleet_manager::operations::scale_up::ScaleUpSettings {
                max_commit_bytes: args.zk_max_commit_bytes.max(4096),
                ..Default::default()
            },
            failover: fleet_manager::operations::failover::FailoverSettings {
                build_timeout_ms: (args.failover_build_timeout_secs.max(10) * 1000) as i64,
                seal_timeout_ms: (args.failover_seal_timeout_secs.max(1) * 1000) as i64,
                ..Default::default()
            },
            ..ReconcileSettings::default()
        },
        identity: identity.clone(),
        leader: AtomicBool::new(false),
        wake: tokio::sync::Notify::new(),
        metrics,
        health,
        op_backoff: Default::default(),
        touched: Default::default(),
    });
    let apply_decommission_throttle = match args.apply_decommission_throttle.as_str() {
        "none" => None,
        rate => Some(fleet_manager::operations::reassign::moves::parse_rate(rate).map_err(|e| anyhow::anyhow!("--apply-decommission-throttle: {e}"))?),
    };
    let state = AppState::new(
        store,
        reconciler.clone(),
        tokens,
        host_tokens,
        api::ApiLimits {
            max_client_instances: args.max_client_instances.max(1),
            apply_decommission_throttle,
            report_ttl_ms: (args.client_report_ttl_secs.clamp(2, 3600) * 1000) as i64,
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, tls = tls_files.is_some(), identity = %identity, database = %redact(&database), "fleet manager serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut reconcile = tokio::spawn(reconciler.run(stop_rx));
    let stopping = Arc::new(AtomicBool::new(false));
    let stopping_flag = stopping.clone();
    let shutdown = async move {
        let signal = fleet_common::signals::stop_requested().await;
        tracing::info!(signal, "shutting down: finishing requests, leaving the election");
        stopping_flag.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = stop_tx.send(true);
    };
    let limits = fleet_common::serve::ServeLimits {
        header_read_timeout: Duration::from_secs(args.http_header_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(args.http_idle_timeout_secs.max(1)),
        request_timeout: Duration::from_secs(args.http_request_timeout_secs.max(61)),
        max_connections: args.http_max_connections.max(1),
    };
    let mut serve = Box::pin(fleet_common::https::serve(listener, api::router(state), tls, limits, shutdown));
    // Supervised: a reconciler that ends on its own (a panic outside a cluster's reconcile) takes
    // the process down, so the service manager restarts it and /healthz never claims a dead leader.
    let reconciler_ended = tokio::select! {
        served = &mut serve => {
            served.context("serving HTTP")?;
            false
        }
        ended = &mut reconcile => {
            if !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                match ended {
                    Err(e) if e.is_panic() => bail!("the reconciler panicked: {e}"),
                    _ => bail!("the reconciler stopped unexpectedly"),
                }
            }
            true
        }
    };
    if reconciler_ended {
        serve.await.context("serving HTTP")?;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(10), reconcile).await;
    }
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}
