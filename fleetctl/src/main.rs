//! `fleetctl`: the operator's CLI for the fleet manager's API.
//!
//! Exit codes (scripts can rely on them):
//! 0 done; 1 other failure; 2 bad input or usage (nothing was written); 3 not found;
//! 4 conflict (stale generation, being deleted); 5 `--wait` timed out; 6 unauthorized/forbidden;
//! 7 the API is unreachable.

/// `print!` to stdout, except that a reader that went away (`fleetctl get ... | head`) ends
/// fleetctl quietly instead of with a panic.
macro_rules! out {
    ($($t:tt)*) => { $crate::write_out(format_args!($($t)*)) };
}
macro_rules! outln {
    ($($t:tt)*) => { $crate::write_out(format_args!("{}\n", format_args!($($t)*))) };
}

mod operations;
mod stream;

fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use fleet_api::client::{ClientRole, ClientView};
use fleet_api::model::{Plan, Seen};
use fleet_api::spec::{self, RawDocument};
use fleet_api::wire::{ApplyResponse, ClusterStatus, DeleteResponse, EffectiveSpec, JournalEntry, ResourceView};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(name = "fleetctl", version, about = "Declare and inspect the Kafka fleet")]
struct Cli {
    /// The fleet manager's API.
    #[arg(long, global = true, env = "FLEET_API", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Bearer token (read scope for reads, write for changes).
    #[arg(long, global = true, env = "FLEET_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A CA bundle (PEM) to verify an https fleet manager with, besides the system's roots.
    #[arg(long, global = true, env = "FLEET_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or update resources from YAML files (a folder: every .yaml/.yml/.json in it; `-`: stdin).
    #[command(after_help = "Examples:\n  fleetctl apply -f examples/fleet/\n  fleetctl apply -f cluster.yaml --dry-run\n  fleetctl get cluster demo -o yaml | fleetctl apply -f -\n  fleetctl apply -f cluster.yaml --wait --timeout 15m")]
    Apply {
        /// A YAML or JSON file, a folder of them, or `-` for stdin (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Validate and report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait until the reconciler has converged on this change.
        #[arg(long)]
        wait: bool,
        /// Accept that a cluster's new priority class changes the retention or
        /// min.insync.replicas of topics that inherit it (refused otherwise, naming them).
        #[arg(long)]
        confirm_class_change: bool,
        /// Accept that a lower `brokers` retires the highest brokers: a decommission (throttled)
        /// moves their replicas off first, and is created with the change.
        #[arg(long)]
        confirm_decommission: bool,
        /// How long --wait waits (e.g. 90s, 10m, 1h).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Show what the reconciler would do (for the stored specs, or with these files applied).
    #[command(after_help = "Examples:\n  fleetctl plan\n  fleetctl plan -f cluster.yaml")]
    Plan {
        /// Files to plan as if applied (nothing is written); none: the stored specs.
        #[arg(short = 'f', long = "filename")]
        files: Vec<PathBuf>,
    },
    /// List resources, or one by name (`-o yaml` prints documents `apply -f` takes again).
    #[command(after_help = "Examples:\n  fleetctl get clusters\n  fleetctl get cluster demo -o yaml > demo.yaml\n  fleetctl get topics --cluster demo\n  fleetctl get topic demo/events\n  fleetctl get operations --active")]
    Get {
        #[arg(value_enum)]
        what: Listing,
        /// One resource: a cluster, route or operation by name; a topic as CLUSTER/TOPIC (or
        /// TOPIC with --cluster); a client by instance.
        name: Option<String>,
        /// Only this cluster's topics (or operations).
        #[arg(long)]
        cluster: Option<String>,
        /// Only this route's clients.
        #[arg(long)]
        route: Option<String>,
        /// Operations: only those still running.
        #[arg(long)]
        active: bool,
        /// Print it again whenever it changes (Ctrl-C stops).
        #[arg(long, short = 'w')]
        watch: bool,
    },
    /// Everything about one resource: spec, status, hosts, topics, plan, recent journal.
    #[command(after_help = "Examples:\n  fleetctl describe cluster demo\n  fleetctl describe topic demo/events\n  fleetctl describe topic events --cluster demo\n  fleetctl describe operation scale-up-demo-3")]
    Describe {
        #[arg(value_enum)]
        what: Single,
        /// The resource's name (a topic as CLUSTER/TOPIC, or TOPIC with --cluster).
        name: String,
        /// The topic's cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Print it again whenever it changes (Ctrl-C stops).
        #[arg(long, short = 'w')]
        watch: bool,
    },
    /// Delete a resource (a cluster's hosts are terminated by the reconciler).
    #[command(after_help = "Examples:\n  fleetctl delete topic demo/events\n  fleetctl delete route events\n  fleetctl delete -f examples/fleet/ --wait")]
    Delete {
        #[arg(value_enum, required_unless_present = "files")]
        what: Option<Deletable>,
        #[arg(required_unless_present = "files")]
        name: Option<String>,
        /// The topic's cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Delete what these files declare (in reverse order: topics before their cluster).
        #[arg(short = 'f', long = "filename")]
        files: Vec<PathBuf>,
        /// Only if the resource is still at this generation.
        #[arg(long)]
        generation: Option<i64>,
        /// Make every check the delete makes (a route on the cluster, a standby, an operation
        /// using it) and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait until it is gone (a cluster: its hosts terminated).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits (e.g. 90s, 10m, 1h).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Add brokers and put new partitions on them in one atomic ZooKeeper commit (an operation).
    #[command(after_help = "Examples:\n  fleetctl scale-up demo --brokers 6 --dry-run\n  fleetctl scale-up demo --brokers 6 --class high --wait\n  fleetctl scale-up demo --brokers 6 --hold")]
    ScaleUp(operations::ScaleUpArgs),
    /// Move every replica off brokers at a controlled pace, then retire them (hosts, DNS, IDs).
    #[command(after_help = "Examples:\n  fleetctl decommission demo --brokers 4,5 --throttle 10MiB/s --dry-run\n  fleetctl decommission demo --count 1 --wait")]
    Decommission(operations::DecommissionArgs),
    /// Spread replicas and leaders evenly over every broker at a controlled pace.
    #[command(after_help = "Examples:\n  fleetctl rebalance demo --dry-run\n  fleetctl rebalance demo --throttle 20MiB/s --hold")]
    Rebalance(operations::RebalanceArgs),
    /// Restart every broker of a cluster, one at a time: a controlled shutdown, then the next
    /// once every broker is back, every partition in sync and the healthcheck finds nothing (the
    /// controller last). A ConfigRollout operation, as a brokerConfig change makes.
    #[command(after_help = "Examples:\n  fleetctl roll demo --dry-run\n  fleetctl roll demo --reason 'JDK security update' --wait\n  fleetctl describe operation rollout-demo-9")]
    Roll(operations::RollArgs),
    /// Move a route's producers, then consumers, to a healthy standby (--to) or a fresh,
    /// immutable build of its cluster (--build, the default).
    #[command(after_help = "Examples:\n  fleetctl failover events --reason 'AZ outage' --dry-run\n  fleetctl failover events --to demo-standby --wait\n  fleetctl failover events --build --deadline 2m")]
    Failover(operations::FailoverArgs),
    /// Move a failed-over route back to its original cluster (or, with --rebuild, a fresh build of it).
    #[command(after_help = "Examples:\n  fleetctl fallback events --dry-run\n  fleetctl fallback events --wait")]
    Fallback(operations::FallbackArgs),
    /// Stop a route's automatic failover and fallback (maintenance) until released.
    #[command(after_help = "Examples:\n  fleetctl hold events --reason 'broker maintenance, CHG-1234'\n  fleetctl release events")]
    Hold {
        route: String,
        /// Why (shown wherever the route is).
        #[arg(long)]
        reason: String,
        /// Replace a hold the route already has (refused otherwise, naming it).
        #[arg(long)]
        overwrite: bool,
    },
    /// Resume a held route's automation.
    #[command(after_help = "Examples:\n  fleetctl release events")]
    Release { route: String },
    /// Drop a route's warm standby (left by a failover or fallback): it is torn down once no
    /// client of the route uses it or has not drained it.
    #[command(after_help = "Examples:\n  fleetctl release-standby events")]
    ReleaseStandby { route: String },
    /// Approve an operation held at ProposalReady (`scale-up --hold`).
    #[command(after_help = "Examples:\n  fleetctl describe operation rebalance-demo-7\n  fleetctl approve operation rebalance-demo-7")]
    Approve {
        #[arg(value_enum)]
        what: OperationWord,
        id: String,
        /// Wait until it ends.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits (e.g. 90s, 10m, 1h).
        #[arg(long, default_value = "15m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Cancel an operation: in any phase before a failover switches producers or a
    /// decommission retires brokers (the batch of reassignments in flight is cancelled through
    /// Kafka and its replicas go back; moves already finished stay; throttles are cleared);
    /// refused after that (exit 4).
    #[command(after_help = "Examples:\n  fleetctl cancel operation decommission-demo-4\n  fleetctl get operations --active")]
    Cancel {
        #[arg(value_enum)]
        what: OperationWord,
        id: String,
    },
    /// Send stdin lines to a route's current cluster (a client-scope token is enough).
    #[command(after_help = "Examples:\n  echo hello | fleetctl produce events --topic events\n  fleetctl produce events --topic events < lines.txt")]
    Produce(stream::ProduceArgs),
    /// Print a route's records, following it across clusters (Ctrl-C stops and commits).
    #[command(after_help = "Examples:\n  fleetctl consume events --topic events --group audit --idle 5s\n  fleetctl consume events --topic events -o json")]
    Consume(stream::ConsumeArgs),
    /// What was done, newest first (oldest first with --since or --follow).
    #[command(after_help = "Examples:\n  fleetctl journal --cluster demo --limit 100\n  fleetctl journal --since 15m\n  fleetctl journal --cluster demo --follow")]
    Journal {
        /// Only this cluster's entries.
        #[arg(long)]
        cluster: Option<String>,
        /// At most this many entries (without --since).
        #[arg(long, default_value_t = 30)]
        limit: i64,
        /// Every entry of the last DURATION (e.g. 90s, 15m, 2h), oldest first.
        #[arg(long, value_parser = parse_duration)]
        since: Option<Duration>,
        /// Keep printing entries as they are written (Ctrl-C stops).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// What the fleet is doing now: clusters not converged, operations running, routes not
    /// Normal, holds. Exits 0 either way.
    #[command(after_help = "Examples:\n  fleetctl status\n  fleetctl status --watch\n  fleetctl status -o json")]
    Status {
        /// Print it again whenever it changes (Ctrl-C stops).
        #[arg(long, short = 'w')]
        watch: bool,
    },
    /// A shell completion script: `source <(fleetctl completion bash)`.
    #[command(after_help = "Examples:\n  source <(fleetctl completion bash)\n  fleetctl completion zsh > ~/.zfunc/_fleetctl\n  fleetctl completion fish > ~/.config/fish/completions/fleetctl.fish")]
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A kind as `get` takes it: plural or singular, as kubectl does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Listing {
    #[value(alias = "cluster", alias = "kafkacluster", alias = "kafkaclusters")]
    Clusters,
    #[value(alias = "topic")]
    Topics,
    #[value(alias = "route")]
    Routes,
    #[value(alias = "operation", alias = "op", alias = "ops")]
    Operations,
    /// Producer and consumer instances that reported in the last 30 seconds.
    #[value(alias = "client")]
    Clients,
}

/// `approve operation ID`, `cancel operation ID` (reads like `describe operation ID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OperationWord {
    Operation,
}

/// A kind as `describe` and `delete` take it: singular or plural.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Single {
    #[value(alias = "clusters", alias = "kafkacluster", alias = "kafkaclusters")]
    Cluster,
    #[value(alias = "topics")]
    Topic,
    #[value(alias = "routes")]
    Route,
    #[value(alias = "operations", alias = "op")]
    Operation,
}

/// What `delete` takes (operations are kept as a record: `cancel operation ID` stops one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Deletable {
    #[value(alias = "clusters", alias = "kafkacluster", alias = "kafkaclusters")]
    Cluster,
    #[value(alias = "topics")]
    Topic,
    #[value(alias = "routes")]
    Route,
}

/// A topic's API path from `CLUSTER/TOPIC`, or `TOPIC` with `--cluster` (both forms everywhere).
fn topic_path(name: &str, cluster: Option<&str>) -> Result<String> {
    match (name.split_once('/'), cluster) {
        (Some((c, _)), Some(other)) if c != other => Err(Failure::new(2, format!("topic {name} names cluster {c}, but --cluster says {other}: use one"))),
        (Some((c, t)), _) if !c.is_empty() && !t.is_empty() => Ok(format!("/v1/clusters/{c}/topics/{t}")),
        (None, Some(c)) => Ok(format!("/v1/clusters/{c}/topics/{name}")),
        _ => Err(Failure::new(2, format!("topic {name}: name it as CLUSTER/TOPIC, or TOPIC with --cluster CLUSTER"))),
    }
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration, e.g. 90s, 10m, 1h"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}`: use s, m or h, e.g. 90s")),
    }
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

type Result<T> = std::result::Result<T, Failure>;

struct Client {
    http: reqwest::Client,
    api: String,
    token: Option<String>,
}

impl Client {
    /// One call; the answer read as `T` (the API's wire types), errors mapped to exit codes.
    async fn send<T: DeserializeOwned>(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<T> {
        let url = format!("{}{path}", self.api.trim_end_matches('/'));
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| Failure::new(7, format!("cannot reach the fleet manager at {}: {} (set FLEET_API; FLEET_CA_FILE for a private CA)", self.api, fleet_client::error_chain(&e))))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| Failure::new(7, format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| Failure::new(1, format!("unexpected answer from {path} ({e}); is the fleet manager the same version as fleetctl?")));
        }
        let message = match serde_json::from_str::<fleet_api::wire::ErrorBody>(&text) {
            Ok(e) => e.message,
            // Not the fleet manager's error body: something else answered at FLEET_API.
            Err(_) => format!(
                "{} answered {path} with {}{}: is it a fleet manager? (set FLEET_API or --api)",
                self.api,
                status,
                if text.trim().is_empty() { String::new() } else { format!(" ({})", printable(text.trim(), 200)) }
            ),
        };
        let code = match status.as_u16() {
            400 | 413 | 422 => 2,
            401 | 403 => 6,
            404 => 3,
            409 => 4,
            _ => 1,
        };
        Err(Failure::new(code, format!("{} ({})", message, status.as_u16())))
    }
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(reqwest::Method::GET, path, None).await
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let watching = matches!(cli.command, Command::Get { watch: true, .. } | Command::Describe { watch: true, .. } | Command::Status { watch: true });
    let done = if watching { watch().await } else { run(cli).await };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("fleetctl: {}", printable_lines(&f.message));
            std::process::ExitCode::from(f.code)
        }
    }
}

/// `-w/--watch`: the same command without the flag, run every 2 s; its output is printed again
/// (under the time it changed) whenever it differs. Ends on Ctrl-C, or when the command fails.
async fn watch() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "-w" && a != "--watch").collect();
    let exe = std::env::current_exe().map_err(|e| Failure::new(1, format!("cannot find fleetctl itself: {e}")))?;
    let stop = fleet_common::signals::stop_requested();
    tokio::pin!(stop);
    let mut last: Option<Vec<u8>> = None;
    loop {
        let run = tokio::process::Command::new(&exe).args(&args).kill_on_drop(true).output();
        let out = tokio::select! {
            out = run => out.map_err(|e| Failure::new(1, format!("running fleetctl: {e}")))?,
            _ = &mut stop => return Ok(()),
        };
        if !out.status.success() {
            let code = out.status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1);
            return Err(Failure::new(code, String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("fleetctl: ").to_string()));
        }
        if last.as_deref() != Some(out.stdout.as_slice()) {
            if last.is_some() {
                outln!("--- {}", format_time(now_ms()));
            }
            out!("{}", String::from_utf8_lossy(&out.stdout));
            last = Some(out.stdout);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = &mut stop => return Ok(()),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Reads and checks documents locally (stage 1), naming the file and document on error.
fn read_documents(files: &[PathBuf]) -> Result<Vec<Value>> {
    let mut paths = Vec::new();
    for f in files {
        if f.as_os_str() == "-" {
            paths.push(f.clone());
        } else if f.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(f)
                .map_err(|e| Failure::new(2, format!("{}: {e}", f.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")))
                .collect();
            entries.sort();
            paths.extend(entries);
        } else {
            paths.push(f.clone());
        }
    }
    let mut out = Vec::new();
    for p in paths {
        let text = if p.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| Failure::new(2, format!("stdin: {e}")))?
        } else {
            std::fs::read_to_string(&p).map_err(|e| Failure::new(2, format!("{}: {e}", p.display())))?
        };
        let docs = spec::parse_yaml_documents(&text).map_err(|e| Failure::new(2, format!("{}: {}", p.display(), e.message)))?;
        for (i, doc) in docs.into_iter().enumerate() {
            spec::validate_value(doc.clone()).map_err(|e| Failure::new(2, format!("{} (document {}): {e}", p.display(), i + 1)))?;
            out.push(doc);
        }
    }
    if out.is_empty() {
        return Err(Failure::new(2, "no documents in the given files"));
    }
    Ok(out)
}

/// Beside every epoch-milliseconds field (`createdMs`, `atMs`, `switchedAtMs`, ...) the same
/// instant in RFC 3339 (`created`, `at`, `switchedAt`), as kubectl prints times; the
/// milliseconds stay for scripts that read them.
fn with_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut add = Vec::new();
            for (k, v) in map.iter_mut() {
                with_times(v);
                if let (Some(base), Some(ms)) = (k.strip_suffix("Ms"), v.as_i64()) {
                    // Only instants (after 2001), not durations such as `deadlineMs`.
                    if ms >= 1_000_000_000_000 && !base.is_empty() {
                        add.push((base.to_string(), Value::String(format_time(ms))));
                    }
                }
            }
            for (k, v) in add {
                map.entry(k).or_insert(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(with_times),
        _ => {}
    }
}

fn print_value<T: Serialize>(output: Output, value: &T, table: impl FnOnce(&T) -> String) -> Result<()> {
    let timed = || {
        let mut v = serde_json::to_value(value).unwrap_or_default();
        with_times(&mut v);
        v
    };
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&timed()).unwrap_or_default()),
        Output::Yaml => out!("{}", serde_saphyr::to_string(&timed()).map_err(|e| Failure::new(1, e.to_string()))?),
        Output::Table => out!("{}", printable_lines(&table(value))),
    }
    Ok(())
}

/// The widest a table cell is shown: longer ones are cut with `…` (a report field can be long).
const MAX_CELL: usize = 120;

/// A string from the API made safe for a terminal: control characters (escape sequences, CR,
/// LF) shown escaped, and cut to `max` characters. Whatever a client sent, it cannot move the
/// cursor, recolour the screen or forge a line.
fn printable(text: &str, max: usize) -> String {
    fleet_common::kafka_config::shown_within(text, max)
}

/// Text made of lines, each made [`printable`] (line breaks kept, nothing cut).
fn printable_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        out.push_str(&printable(body, usize::MAX));
        out.push_str(newline);
    }
    out
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        // As kubectl says it: on stderr, so a script reading stdout reads nothing.
        eprintln!("No resources found.");
        return String::new();
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.iter().map(|c| printable(c, MAX_CELL)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ");
        s = s.trim_end().to_string();
        s.push('\n');
        s
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// A resource's document with what operations set in place of the user's values (a scale-up's
/// broker count and partitions; a route's cluster after a rebuild): what to write to catch up.
fn effective_document(v: &ResourceView) -> RawDocument {
    let mut doc = v.document.clone();
    let overrides: fleet_api::spec::Overrides = v.overrides.iter().map(|o| (o.field.clone(), o.clone())).collect();
    doc.spec = fleet_api::spec::with_overrides(&doc.spec, &overrides);
    if let Some(st) = &v.route_status {
        // Back home on another cluster (a fallback that rebuilt it): that cluster is its home now.
        if st.phase == fleet_api::route::RouteState::Normal && !st.cluster.is_empty() {
            doc.spec["cluster"] = Value::String(st.cluster.clone());
        }
    }
    doc
}

/// Documents as a YAML stream (`---` between them), the form `apply -f` reads.
fn print_documents(docs: &[RawDocument]) -> Result<()> {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(d).map_err(|e| Failure::new(1, e.to_string()))?);
    }
    out!("{out}");
    Ok(())
}

fn live_of(status: Option<&ClusterStatus>) -> String {
    match status.map(|s| &s.brokers.live) {
        Some(Seen::Known(live)) => live.len().to_string(),
        _ => "?".into(),
    }
}

fn cluster_spec(v: &ResourceView) -> Option<&spec::ClusterSpec> {
    match &v.effective {
        Some(EffectiveSpec::Cluster(c)) => Some(c),
        _ => None,
    }
}

/// `fleetctl describe`: the resource and, for a cluster, its recent journal.
#[derive(Serialize)]
struct Described {
    #[serde(flatten)]
    view: ResourceView,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal: Option<Vec<JournalEntry>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deleted {
    deleted: String,
    revision: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
}

fn plan_text(plans: &[Plan]) -> String {
    let mut out = String::new();
    for plan in plans {
        out.push_str(&format!("cluster {}: {}\n", plan.cluster, if plan.converged() { "no changes" } else { "" }));
        if !plan.config_changes.is_empty() {
            out.push_str("  brokerConfig (a ConfigRollout carries it to the running brokers once applied):\n");
            for c in &plan.config_changes {
                out.push_str(&format!("  ~ {}: {} -> {}  [{}]\n", c.key, c.from.as_deref().unwrap_or("(not set)"), c.to.as_deref().unwrap_or("(not set)"), c.effect.describe()));
                if let Some(n) = &c.note {
                    out.push_str(&format!("      {n}\n"));
                }
            }
        }
        for st in &plan.steps {
            out.push_str(&format!("  + {}\n", st.describe()));
        }
        for w in &plan.waiting {
            out.push_str(&format!("  ~ waiting: {w}\n"));
        }
        for w in &plan.warnings {
            out.push_str(&format!("  ! {w}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("no clusters\n");
    }
    out
}

async fn run(cli: Cli) -> Result<()> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(path) = &cli.ca_file {
        let pem = std::fs::read(path).map_err(|e| Failure::new(2, format!("--ca-file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Failure::new(2, format!("--ca-file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Failure::new(2, format!("--ca-file {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)", path.display())));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let http = builder.build().map_err(|e| Failure::new(1, e.to_string()))?;
    let client = Client { http, api: cli.api.clone(), token: cli.token.clone() };
    let output = cli.output;
    match cli.command {
        Command::Apply { files, dry_run, wait, timeout, confirm_class_change, confirm_decommission } => {
            let docs = read_documents(&files)?;
            let path = format!("/v1/apply?dryRun={dry_run}&confirmClassChange={confirm_class_change}&confirmDecommission={confirm_decommission}");
            let answer: ApplyResponse = client.send(reqwest::Method::POST, &path, Some(json!({ "resources": docs }))).await?;
            print_value(output, &answer, |a| {
                let rows = a
                    .results
                    .iter()
                    .map(|r| {
                        let outcome = serde_json::to_value(r.outcome).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                        vec![r.kind.as_str().to_string(), r.name.clone(), format!("{outcome}{}", if dry_run { " (dry run)" } else { "" }), r.generation.to_string()]
                    })
                    .collect();
                let mut text = table(&["KIND", "NAME", "OUTCOME", "GENERATION"], rows);
                // What the apply started besides (a decommission, a config rollout), or would.
                for op in &a.operations {
                    if dry_run {
                        text.push_str(&format!("{op}\n"));
                    } else {
                        text.push_str(&format!("operation {op} started (fleetctl describe operation {op})\n"));
                    }
                }
                text
            })?;
            if wait && !dry_run {
                let started = Instant::now();
                // The operations the apply started (a lower `brokers`: a decommission) end first:
                // until they have, the cluster has not become what the documents say.
                for id in &answer.operations {
                    let op = operations::wait(&client, id, timeout.saturating_sub(started.elapsed()), output).await?;
                    if op.status.phase != fleet_api::operation::Phase::Succeeded {
                        return Err(Failure::new(1, format!("operation {id} {}: {}", op.status.phase.as_str(), op.status.message.unwrap_or_default())));
                    }
                    if output == Output::Table {
                        outln!("operation {id} succeeded");
                    }
                }
                let revisions: Vec<(String, i64)> = answer.revisions.iter().map(|(c, r)| (c.clone(), *r)).collect();
                wait_converged(&client, &revisions, timeout.saturating_sub(started.elapsed()), output).await?;
            }
            Ok(())
        }
        Command::Plan { files } => {
            let plans: Vec<Plan> = if files.is_empty() {
                client.get("/v1/plan").await?
            } else {
                let docs = read_documents(&files)?;
                client.send(reqwest::Method::POST, "/v1/plan", Some(json!({ "resources": docs }))).await?
            };
            print_value(output, &plans, |p| plan_text(p))
        }
        Command::ScaleUp(args) => operations::scale_up(&client, args, output).await,
        Command::Decommission(args) => operations::decommission(&client, args, output).await,
        Command::Rebalance(args) => operations::rebalance(&client, args, output).await,
        Command::Roll(args) => operations::roll(&client, args, output).await,
        Command::Failover(args) => operations::failover(&client, args, output).await,
        Command::Fallback(args) => operations::fallback(&client, args, output).await,
        Command::Hold { route, reason, overwrite } => {
            let hold: fleet_api::route::Hold = client.send(reqwest::Method::POST, &format!("/v1/routes/{route}/hold"), Some(serde_json::json!({ "reason": reason, "overwrite": overwrite }))).await?;
            print_value(output, &hold, |h| format!("route {route} held by {}: {} (automation stopped until `fleetctl release {route}`)\n", h.by, h.reason))
        }
        Command::Release { route } => {
            let was: bool = client.send(reqwest::Method::DELETE, &format!("/v1/routes/{route}/hold"), None).await?;
            let answer = json!({ "route": route, "wasHeld": was });
            print_value(output, &answer, |_| if was { format!("route {route} released: automation resumes\n") } else { format!("route {route} was not held\n") })
        }
        Command::ReleaseStandby { route } => {
            let released: Value = client.send(reqwest::Method::POST, &format!("/v1/routes/{route}/release-standby"), None).await?;
            print_value(output, &released, |r| format!("route {route}: standby {} released; it is torn down\n", r["cluster"].as_str().unwrap_or("?")))
        }
        Command::Approve { what: OperationWord::Operation, id, wait, timeout } => operations::command(&client, &id, "approve", wait.then_some(timeout), output).await,
        Command::Cancel { what: OperationWord::Operation, id } => operations::command(&client, &id, "cancel", None, output).await,
        Command::Get { what, name, cluster, route, active, .. } => {
            let path = match (what, &cluster, &name) {
                (Listing::Clusters, _, None) => "/v1/clusters".to_string(),
                (Listing::Clusters, _, Some(n)) => format!("/v1/clusters/{n}"),
                (Listing::Topics, Some(c), None) => format!("/v1/clusters/{c}/topics"),
                (Listing::Topics, None, None) => "/v1/topics".to_string(),
                (Listing::Topics, _, Some(n)) => topic_path(n, cluster.as_deref())?,
                (Listing::Routes, _, None) => "/v1/routes".to_string(),
                (Listing::Routes, _, Some(n)) => format!("/v1/routes/{n}"),
                (Listing::Operations, _, _) => return operations::list(&client, cluster.as_deref(), name.as_deref(), active, output).await,
                (Listing::Clients, _, _) => {
                    let path = route.map_or_else(|| "/v1/clients".to_string(), |r| format!("/v1/clients?route={r}"));
                    let mut list: Vec<ClientView> = client.get(&path).await?;
                    if let Some(n) = &name {
                        list.retain(|c| &c.report.instance == n);
                        if list.is_empty() {
                            return Err(Failure::new(3, format!("client {n} has not reported in the last 30 s (`fleetctl get clients` lists those that did)")));
                        }
                    }
                    return print_value(output, &list, clients_table);
                }
            };
            let list: Vec<ResourceView> = if name.is_some() { vec![client.get(&path).await?] } else { client.get(&path).await? };
            // Clusters: the operation running on each (a converged cluster may be mid-decommission).
            let running: Vec<fleet_api::operation::Operation> =
                if what == Listing::Clusters && output == Output::Table { client.get("/v1/operations?active=true").await.unwrap_or_default() } else { Vec::new() };
            if output == Output::Yaml {
                // The documents as the fleet works from them (what operations changed included),
                // one YAML document each, ready to apply again.
                let docs: Vec<RawDocument> = list.iter().map(effective_document).collect();
                return print_documents(&docs);
            }
            print_value(output, &list, |items| match what {
                Listing::Clusters => table(
                    &["NAME", "BROKERS", "LIVE", "PHASE", "OPERATION", "PROVIDER", "CLASS", "GENERATION", "AGE"],
                    items
                        .iter()
                        .map(|c| {
                            let phase = if c.deleting { "Deleting".to_string() } else { c.status.as_ref().map_or("Pending".to_string(), |s| s.phase.clone()) };
                            let spec = cluster_spec(c);
                            vec![
                                c.name.clone(),
                                spec.map_or("-".into(), |s| s.brokers.to_string()),
                                live_of(c.status.as_ref()),
                                phase,
                                running.iter().find(|o| o.cluster == c.name).map_or("-".into(), |o| format!("{} {}", o.id, o.status.phase.as_str())),
                                spec.map_or("-".into(), |s| format!("{:?}", s.provider).to_lowercase()),
                                spec.map_or("-".into(), |s| s.priority_class.as_str().to_string()),
                                c.generation.to_string(),
                                age(c.created_ms),
                            ]
                        })
                        .collect(),
                ),
                Listing::Topics => table(
                    &["CLUSTER", "NAME", "PARTITIONS", "REPLICATION", "MIN.ISR", "CLASS", "RETENTION", "GENERATION", "AGE"],
                    items
                        .iter()
                        .map(|t| match &t.effective {
                            Some(EffectiveSpec::Topic(e)) => vec![
                                e.cluster.clone(),
                                t.name.clone(),
                                e.partitions.to_string(),
                                e.replication_factor.to_string(),
                                e.configs.get("min.insync.replicas").cloned().unwrap_or_else(|| "-".into()),
                                e.priority_class.as_str().to_string(),
                                e.configs.get("retention.ms").map_or_else(|| "-".into(), |ms| retention_text(ms)),
                                t.generation.to_string(),
                                age(t.created_ms),
                            ],
                            _ => vec![t.cluster.clone().unwrap_or_default(), t.name.clone(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into(), t.generation.to_string(), age(t.created_ms)],
                        })
                        .collect(),
                ),
                // Listed above, with their own columns.
                Listing::Operations | Listing::Clients => String::new(),
                Listing::Routes => table(
                    &["NAME", "HOME", "CLUSTER", "PHASE", "STANDBY", "LAST MOVE", "CLIENTS", "HOLD", "GENERATION", "AGE"],
                    items
                        .iter()
                        .map(|r| {
                            let st = r.route_status.clone().unwrap_or_default();
                            // HOME is the user's spec.cluster; CLUSTER is where the traffic is now.
                            vec![
                                r.name.clone(),
                                r.cluster.clone().unwrap_or_default(),
                                if st.cluster.is_empty() { r.cluster.clone().unwrap_or_default() } else { st.cluster.clone() },
                                st.phase.as_str().to_string(),
                                st.standby.clone().unwrap_or_else(|| "-".into()),
                                st.last_move.as_ref().map_or("-".into(), |m| format!("{} {} -> {}", format_ms(m.at_ms), m.from, m.to)),
                                clients_text(&st.clients),
                                r.hold.as_ref().map_or("-".into(), |h| format!("held: {}", h.reason)),
                                r.generation.to_string(),
                                age(r.created_ms),
                            ]
                        })
                        .collect(),
                ),
            })
        }
        Command::Describe { what, name, cluster, .. } => {
            let path = match what {
                Single::Cluster => format!("/v1/clusters/{name}"),
                Single::Route => format!("/v1/routes/{name}"),
                Single::Operation => return operations::describe(&client, &name, output).await,
                Single::Topic => topic_path(&name, cluster.as_deref())?,
            };
            let view: ResourceView = client.get(&path).await?;
            if output == Output::Yaml {
                // The document, as `get NAME -o yaml` prints it: what `apply -f` takes again.
                return print_documents(&[effective_document(&view)]);
            }
            let journal = if what == Single::Cluster { client.get(&format!("/v1/journal?cluster={name}&limit=10")).await.ok() } else { None };
            print_value(output, &Described { view, journal }, describe_text)
        }
        Command::Delete { what, name, cluster, files, generation, dry_run, wait, timeout } => {
            let mut targets: Vec<(String, String)> = Vec::new(); // (path, display)
            if !files.is_empty() {
                for d in read_documents(&files)?.into_iter().rev() {
                    let declared = spec::validate_value(d).map_err(|e| Failure::new(2, e.to_string()))?;
                    let n = declared.name.clone();
                    let path = match &declared.spec {
                        spec::DeclaredSpec::KafkaCluster(_) => format!("/v1/clusters/{n}"),
                        spec::DeclaredSpec::Topic(t) => format!("/v1/clusters/{}/topics/{n}", t.cluster),
                        spec::DeclaredSpec::Route(_) => format!("/v1/routes/{n}"),
                    };
                    targets.push((path, format!("{}/{n}", declared.kind().as_str())));
                }
            } else if let (Some(what), Some(name)) = (what, name) {
                let path = match what {
                    Deletable::Cluster => format!("/v1/clusters/{name}"),
                    Deletable::Route => format!("/v1/routes/{name}"),
                    Deletable::Topic => topic_path(&name, cluster.as_deref())?,
                };
                targets.push((path, name));
            }
            let mut answers = Vec::new();
            for (path, display) in &targets {
                let mut q: Vec<String> = generation.map(|g| format!("generation={g}")).into_iter().collect();
                if dry_run {
                    q.push("dryRun=true".into());
                }
                let q = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
                let a: DeleteResponse = client.send(reqwest::Method::DELETE, &format!("{path}{q}"), None).await?;
                answers.push(Deleted { deleted: display.clone(), revision: a.revision, dry_run });
            }
            print_value(output, &answers, |a| {
                a.iter().map(|x| if x.dry_run { format!("{} would be marked for deletion (dry run: nothing written)\n", x.deleted) } else { format!("{} marked for deletion\n", x.deleted) }).collect()
            })?;
            if wait && !dry_run {
                let deadline = Instant::now() + timeout;
                for (path, display) in &targets {
                    loop {
                        match client.get::<ResourceView>(path).await {
                            Err(f) if f.code == 3 => break,
                            Err(f) => return Err(f),
                            Ok(_) if Instant::now() > deadline => return Err(Failure::new(5, format!("{display} still exists after {}s", timeout.as_secs()))),
                            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                        }
                    }
                    if output == Output::Table {
                        outln!("{display} gone");
                    }
                }
            }
            Ok(())
        }
        Command::Produce(args) => {
            check_route(&client, &args.route, std::slice::from_ref(&args.topic)).await?;
            let api = stream::Api { url: cli.api.clone(), token: cli.token.clone(), ca_file: cli.ca_file.clone() };
            tokio::task::spawn_blocking(move || stream::produce(&api, args, output))
                .await
                .map_err(|e| Failure::new(1, e.to_string()))?
        }
        Command::Consume(args) => {
            check_route(&client, &args.route, &args.topics).await?;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            tokio::spawn(async move {
                // SIGHUP too: a closed terminal stops the consumer as Ctrl-C does (committing).
                fleet_common::signals::stop_requested().await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let api = stream::Api { url: cli.api.clone(), token: cli.token.clone(), ca_file: cli.ca_file.clone() };
            tokio::task::spawn_blocking(move || stream::consume(&api, args, output, stop))
                .await
                .map_err(|e| Failure::new(1, e.to_string()))?
        }
        Command::Status { .. } => status(&client, output).await,
        Command::Completion { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "fleetctl", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
        Command::Journal { cluster, limit, since, follow } => {
            let mut path = format!("/v1/journal?limit={}", if since.is_some() { 500 } else { limit });
            if let Some(c) = &cluster {
                path.push_str(&format!("&cluster={c}"));
            }
            if since.is_some() || follow {
                return journal_stream(&client, &path, cluster.as_deref(), since, follow, output).await;
            }
            let entries: Vec<JournalEntry> = client.get(&path).await?;
            // A cluster with no entries that does not exist either is unknown (exit 3, as
            // everywhere); a deleted cluster's history is still shown.
            if let (true, Some(c)) = (entries.is_empty(), &cluster) {
                client.get::<ResourceView>(&format!("/v1/clusters/{c}")).await?;
            }
            print_value(output, &entries, |e| {
                table(
                    &["ID", "TIME", "ACTOR", "CLUSTER", "ACTION", "OUTCOME", "MESSAGE"],
                    e.iter()
                        .map(|x| vec![x.id.to_string(), format_ms(x.at_ms), x.actor.clone(), x.cluster.clone(), x.action.clone(), x.outcome.clone(), x.message.clone()])
                        .collect(),
                )
            })
        }
    }
}

/// `journal --since/--follow`: entries oldest first, one line each (JSON: one object a line),
/// then, following, each new one as it is written.
async fn journal_stream(client: &Client, path: &str, cluster: Option<&str>, since: Option<Duration>, follow: bool, output: Output) -> Result<()> {
    let line = |e: &JournalEntry| match output {
        Output::Table => format!("{}  {:<6}  {:<10}  {:<24}  {:<28}  {}", format_time(e.at_ms), e.outcome, e.cluster, printable(&e.actor, 40), printable(&e.action, 60), printable(&e.message, 400)),
        Output::Json | Output::Yaml => serde_json::to_string(e).unwrap_or_default(),
    };
    let mut entries: Vec<JournalEntry> = Vec::new();
    match since {
        Some(d) => {
            // Pages back (newest first) until an entry is older than the window.
            let from = now_ms() - d.as_millis() as i64;
            let mut before: Option<i64> = None;
            loop {
                let page_path = before.map_or_else(|| path.to_string(), |b| format!("{path}&before={b}"));
                let page: Vec<JournalEntry> = client.get(&page_path).await?;
                let done = page.is_empty() || page.iter().any(|e| e.at_ms < from);
                before = page.last().map(|e| e.id);
                entries.extend(page.into_iter().filter(|e| e.at_ms >= from));
                if done {
                    break;
                }
            }
        }
        // `path` already asks for at most `--limit` entries.
        None => entries = client.get::<Vec<JournalEntry>>(path).await?,
    }
    if entries.is_empty() {
        if let Some(c) = cluster {
            client.get::<ResourceView>(&format!("/v1/clusters/{c}")).await?;
        }
    }
    entries.sort_by_key(|e| e.id);
    let mut last = entries.last().map_or(0, |e| e.id);
    for e in &entries {
        outln!("{}", line(e));
    }
    if !follow {
        return Ok(());
    }
    let stop = fleet_common::signals::stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = &mut stop => return Ok(()),
        }
        let mut fresh: Vec<JournalEntry> = client.get::<Vec<JournalEntry>>(path).await?.into_iter().filter(|e| e.id > last).collect();
        fresh.sort_by_key(|e| e.id);
        for e in &fresh {
            outln!("{}", line(e));
            last = last.max(e.id);
        }
    }
}

/// `fleetctl status`: what is not at rest in the fleet now.
async fn status(client: &Client, output: Output) -> Result<()> {
    let clusters: Vec<ResourceView> = client.get("/v1/clusters").await?;
    let routes: Vec<ResourceView> = client.get("/v1/routes").await?;
    let ops: Vec<fleet_api::operation::Operation> = client.get("/v1/operations?active=true").await?;
    let unsettled: Vec<&ResourceView> = clusters.iter().filter(|c| c.deleting || c.status.as_ref().is_none_or(|s| s.phase != "Converged")).collect();
    let moving: Vec<&ResourceView> = routes.iter().filter(|r| r.route_status.as_ref().is_some_and(|s| s.phase != fleet_api::route::RouteState::Normal)).collect();
    let held: Vec<&ResourceView> = routes.iter().filter(|r| r.hold.is_some()).collect();
    let summary = json!({
        "clusters": clusters.len(),
        "clustersNotConverged": unsettled.iter().map(|c| json!({
            "name": c.name,
            "phase": if c.deleting { "Deleting".to_string() } else { c.status.as_ref().map_or("Pending".to_string(), |s| s.phase.clone()) },
            "liveBrokers": live_of(c.status.as_ref()),
            "message": c.status.as_ref().and_then(|s| s.message.clone().or_else(|| s.plan.waiting.first().cloned())),
        })).collect::<Vec<_>>(),
        "activeOperations": ops.iter().map(|o| json!({
            "id": o.id, "cluster": o.cluster, "kind": o.spec.kind(), "phase": o.status.phase.as_str(),
            "progress": operations::progress_text(o), "message": o.status.message,
            "since": format_time(o.status.since_ms()),
        })).collect::<Vec<_>>(),
        "routes": routes.len(),
        "routesNotNormal": moving.iter().map(|r| {
            let st = r.route_status.clone().unwrap_or_default();
            json!({ "name": r.name, "phase": st.phase.as_str(), "cluster": st.cluster, "standby": st.standby, "operation": st.operation })
        }).collect::<Vec<_>>(),
        "holds": held.iter().map(|r| {
            let h = r.hold.clone();
            json!({ "route": r.name, "by": h.as_ref().map(|h| h.by.clone()), "reason": h.as_ref().map(|h| h.reason.clone()), "since": h.as_ref().map(|h| format_time(h.at_ms)) })
        }).collect::<Vec<_>>(),
    });
    if output != Output::Table {
        return print_value(output, &summary, |_| String::new());
    }
    let mut text = String::new();
    let section = |title: &str, headers: &[&str], rows: Vec<Vec<String>>, text: &mut String| {
        if !rows.is_empty() {
            text.push_str(&format!("{title}:\n"));
            text.push_str(&table(headers, rows));
            text.push('\n');
        }
    };
    let rows = |key: &str, fields: &[&str]| -> Vec<Vec<String>> {
        summary[key].as_array().map_or_else(Vec::new, |items| {
            items.iter().map(|i| fields.iter().map(|f| match &i[*f] { Value::String(s) => s.clone(), Value::Null => "-".into(), v => v.to_string() }).collect()).collect()
        })
    };
    section("Clusters not converged", &["NAME", "PHASE", "LIVE", "WHY"], rows("clustersNotConverged", &["name", "phase", "liveBrokers", "message"]), &mut text);
    section("Operations running", &["ID", "CLUSTER", "KIND", "PHASE", "PROGRESS", "SINCE", "MESSAGE"], rows("activeOperations", &["id", "cluster", "kind", "phase", "progress", "since", "message"]), &mut text);
    section("Routes not Normal", &["NAME", "PHASE", "CLUSTER", "STANDBY", "OPERATION"], rows("routesNotNormal", &["name", "phase", "cluster", "standby", "operation"]), &mut text);
    section("Holds", &["ROUTE", "BY", "REASON", "SINCE"], rows("holds", &["route", "by", "reason", "since"]), &mut text);
    if text.is_empty() {
        text = format!("{} clusters converged, {} routes Normal, no operation running, no hold\n", clusters.len(), routes.len());
    }
    out!("{}", printable_lines(&text));
    Ok(())
}

/// `produce` and `consume` refuse an unknown route or topic at once (exit 3) when the fleet
/// manager can say so within a few seconds; when it cannot (down, slow), they go on with the
/// client library, which follows the route from its cache and never blocks on the fleet manager.
async fn check_route(client: &Client, route: &str, topics: &[String]) -> Result<()> {
    let asked = tokio::time::timeout(Duration::from_secs(3), client.get::<fleet_api::client::RouteBinding>(&format!("/v1/routes/{route}/binding"))).await;
    match asked {
        Ok(Err(f)) if f.code == 3 => Err(Failure::new(3, format!("route {route} not found (`fleetctl get routes` lists them)"))),
        Ok(Ok(binding)) => {
            for t in topics {
                if !binding.topics.contains_key(t) {
                    let known: Vec<&str> = binding.topics.keys().map(String::as_str).collect();
                    return Err(Failure::new(
                        3,
                        format!(
                            "topic {t} is not declared on route {route}'s cluster {} (its topics: {}); declare it with a Topic document",
                            binding.cluster,
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        ),
                    ));
                }
            }
            Ok(())
        }
        // No binding to give now (no broker live): the route's declared topics still say
        // whether the topic exists (a read token is needed for that; without one, go on).
        Ok(Err(f)) if f.code != 7 => {
            let Ok(Ok(view)) = tokio::time::timeout(Duration::from_secs(3), client.get::<ResourceView>(&format!("/v1/routes/{route}"))).await else { return Ok(()) };
            let cluster = view.route_status.as_ref().map(|s| s.cluster.clone()).filter(|c| !c.is_empty()).or_else(|| view.cluster.clone());
            let Some(cluster) = cluster.or_else(|| view.document.spec["cluster"].as_str().map(str::to_string)) else { return Ok(()) };
            for t in topics {
                if let Ok(Err(f)) = tokio::time::timeout(Duration::from_secs(3), client.get::<ResourceView>(&format!("/v1/clusters/{cluster}/topics/{t}"))).await {
                    if f.code == 3 {
                        return Err(Failure::new(3, format!("topic {t} is not declared on route {route}'s cluster {cluster}; declare it with a Topic document")));
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// RFC 3339 in UTC, to the second: `2026-12-07T08:31:22Z`.
fn format_time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Table times: the date and time, as in `format_time`.
fn format_ms(ms: i64) -> String {
    format_time(ms)
}

/// A topic's `retention.ms` as the specs write it (`retentionHours`): `168h`, `-1` forever.
fn retention_text(ms: &str) -> String {
    match ms.parse::<i64>() {
        Ok(-1) => "forever".into(),
        Ok(ms) if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        Ok(ms) => format!("{ms}ms"),
        Err(_) => ms.to_string(),
    }
}

/// How long ago, as kubectl's AGE column says it: `45s`, `12m`, `5h`, `3d`.
fn age(ms: i64) -> String {
    let secs = ((now_ms() - ms) / 1000).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Clients per cluster: `blue: 3 producers, 2 consumers (2 drained)`.
fn clients_text(tallies: &[fleet_api::route::ClientTally]) -> String {
    if tallies.is_empty() {
        return "-".into();
    }
    tallies
        .iter()
        .map(|t| {
            let drained = if t.drained > 0 { format!(" ({} drained)", t.drained) } else { String::new() };
            format!("{}: {}p {}c{drained}", if t.cluster.is_empty() { "none" } else { &t.cluster }, t.producers, t.consumers)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_text(d: &Described) -> String {
    let v = &d.view;
    let mut out = String::new();
    out.push_str(&format!("{}: {}\n", v.kind.as_str(), v.name));
    out.push_str(&format!("Generation: {}   Revision: {}   Deleting: {}\n", v.generation, v.revision, v.deleting));
    if let Some(e) = v.effective.as_ref().and_then(|e| serde_json::to_value(e).ok()) {
        out.push_str("Spec (effective):\n");
        for (k, val) in e.as_object().into_iter().flatten() {
            match val {
                // A map (brokerConfig, configs): one key a line, as the document writes it.
                Value::Object(m) if !m.is_empty() => {
                    out.push_str(&format!("  {k}:\n"));
                    for (key, v) in m {
                        out.push_str(&format!("    {key}: {}\n", v.as_str().map_or_else(|| v.to_string(), str::to_string)));
                    }
                }
                Value::String(s) => out.push_str(&format!("  {k}: {s}\n")),
                other => out.push_str(&format!("  {k}: {other}\n")),
            }
        }
    }
    if let Some(st) = &v.route_status {
        out.push_str(&format!("Phase: {}   Cluster: {}   Standby: {}\n", st.phase.as_str(), st.cluster, st.standby.as_deref().unwrap_or("-")));
        if let Some(op) = &st.operation {
            out.push_str(&format!("Operation: {op} (fleetctl describe operation {op})\n"));
        }
        if let Some(m) = &st.last_move {
            out.push_str(&format!("Last move: {} {} -> {} by {} ({})\n", format_ms(m.at_ms), m.from, m.to, m.operation, m.reason));
        }
        out.push_str(&format!("Clients: {}\n", clients_text(&st.clients)));
        if let Some(h) = &v.hold {
            out.push_str(&format!("HELD by {} at {}: {} (automation stopped; fleetctl release {})\n", h.by, format_ms(h.at_ms), h.reason, v.name));
        }
        if let Some(t) = &v.triggers {
            out.push_str(&format!("Automatic failover (evaluated {}):\n", format_ms(t.evaluated_ms)));
            for c in &t.conditions {
                let state = match (&c.unknown, c.holding_since_ms) {
                    (Some(why), _) => format!("UNKNOWN ({why})"),
                    (None, Some(since)) => format!("holding for {}s", (t.evaluated_ms - since) / 1000),
                    (None, None) => "not holding".into(),
                };
                let value = c.value.map(|v| format!(" = {v}")).unwrap_or_default();
                out.push_str(&format!("  {}{value}: {state}\n", c.condition));
            }
            if let Some(at) = t.last_fired_ms {
                out.push_str(&format!("  last fired {}\n", format_ms(at)));
            }
            if let Some(d) = &t.last_decision {
                out.push_str(&format!("  last decision: {d}\n"));
            }
        }
    }
    if let Some(st) = &v.status {
        out.push_str(&format!(
            "Status: {} (converged: {}, observed revision {} of {})\n",
            st.phase, st.converged, st.observed_revision, st.desired_revision
        ));
        if let Some(m) = &st.message {
            out.push_str(&format!("  {m}\n"));
        }
        let health = match st.phase.as_str() {
            "Converged" => "healthy: every declared broker live, the plan has nothing to do".to_string(),
            "Degraded" => format!("degraded: {} of {} brokers live", live_of(Some(st)), st.brokers.desired),
            other => other.to_lowercase(),
        };
        out.push_str(&format!("  Health: {health}\n"));
        out.push_str(&format!("  Brokers: {} live of {} desired\n", live_of(Some(st)), st.brokers.desired));
        if let Some(hosts) = &st.hosts {
            // Local hosts share 127.0.0.1 on ports of their own; EC2 hosts listen on Kafka's 9092.
            // Clients bootstrap from brokers: a KRaft cluster's controller hosts are left out.
            let servers: Vec<String> = hosts
                .iter()
                .filter(|h| h.role != fleet_api::model::HostRole::Controller && h.state.is_alive())
                .filter_map(|h| match (h.private_ip.as_deref(), h.port) {
                    (Some(ip), port) => Some(format!("{ip}:{}", port.unwrap_or(9092))),
                    (None, Some(port)) => Some(format!("127.0.0.1:{port}")),
                    (None, None) => None,
                })
                .collect();
            if !servers.is_empty() {
                out.push_str(&format!("  Bootstrap servers: {}\n", servers.join(",")));
            }
        }
        let role_of = |instance: &str| st.hosts.iter().flatten().find(|h| h.instance_id == instance).map(|h| h.role).unwrap_or_default();
        if let Some(id) = &st.kafka_cluster_id {
            out.push_str(&format!("  Kafka cluster ID: {id}\n"));
        }
        match &st.quorum {
            Some(Seen::Known(q)) => {
                let ids = |m: &[fleet_api::model::QuorumMember]| m.iter().map(|m| m.node_id.to_string()).collect::<Vec<_>>().join(",");
                let leader = q.leader_id.map(|l| l.to_string()).unwrap_or_else(|| "none".into());
                out.push_str(&format!("  Quorum: leader {leader} (epoch {}), voters [{}], observers [{}]\n", q.leader_epoch, ids(&q.voters), ids(&q.observers)));
            }
            Some(Seen::Unknown(why)) => out.push_str(&format!("  Quorum: unknown ({why})\n")),
            None => {}
        }
        if let Seen::Known(reg) = &st.brokers.registry {
            out.push_str("  Node IDs:\n");
            for (id, inst) in reg {
                out.push_str(&format!("    {} {id} on {inst}\n", role_of(inst).noun()));
            }
        }
        if let Some(hosts) = &st.hosts {
            out.push_str(&format!("  Hosts ({}):\n", hosts.len()));
            let kraft = hosts.iter().any(|h| h.role != fleet_api::model::HostRole::Broker);
            for h in hosts {
                let state = serde_json::to_value(h.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let role = if kraft { format!("  {}", h.role.as_str()) } else { String::new() };
                out.push_str(&format!("    {}  {}  {state}{role}\n", h.instance_id, h.availability_zone));
            }
        }
        if let Seen::Known(topics) = &st.topics {
            out.push_str(&format!("  Topics ({}):\n", topics.len()));
            for (name, t) in topics {
                out.push_str(&format!("    {name}: {} partitions, replication {}\n", t.partitions, t.replication_factor));
            }
        }
        for step in &st.plan.steps {
            out.push_str(&format!("  Planned: {}\n", step.describe()));
        }
        for w in &st.plan.waiting {
            out.push_str(&format!("  Waiting: {w}\n"));
        }
        for w in &st.plan.warnings {
            out.push_str(&format!("  Warning: {w}\n"));
        }
    } else if v.kind == spec::Kind::KafkaCluster {
        out.push_str("Status: not reconciled yet\n");
    }
    match &v.partitions {
        Some(Seen::Known(parts)) => {
            let offline = parts.iter().filter(|p| p.leader < 0).count();
            let under = parts.iter().filter(|p| p.isr.len() < p.replicas.len()).count();
            out.push_str(&format!("Partitions ({}; {offline} offline, {under} under-replicated), as Kafka has them now:\n", parts.len()));
            let list = |b: &[i32]| b.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            for p in parts {
                let leader = if p.leader < 0 { "none".to_string() } else { p.leader.to_string() };
                out.push_str(&format!("  {:>4}  leader {leader:<4}  replicas {:<12}  isr {}\n", p.partition, list(&p.replicas), list(&p.isr)));
            }
        }
        Some(Seen::Unknown(why)) => out.push_str(&format!("Partitions: unknown ({why})\n")),
        None => {}
    }
    if let Some(entries) = &d.journal {
        out.push_str("Recent journal:\n");
        for e in entries {
            out.push_str(&format!("  {} {} {} {}\n", format_ms(e.at_ms), e.outcome, e.action, e.message));
        }
    }
    out
}

/// Polls each cluster until its status reports convergence on `revision`.
async fn wait_converged(client: &Client, revisions: &[(String, i64)], timeout: Duration, output: Output) -> Result<()> {
    let clusters: Vec<String> = revisions.iter().map(|(c, _)| c.clone()).collect();
    let deadline = Instant::now() + timeout;
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let mut last_line = String::new();
    let mut pending: Vec<String> = clusters.to_vec();
    while !pending.is_empty() {
        let mut still = Vec::new();
        let mut lines = Vec::new();
        for c in &pending {
            let revision = revisions.iter().find(|(x, _)| x == c).map(|(_, r)| *r).unwrap_or(0);
            let v: ResourceView = client.get(&format!("/v1/clusters/{c}")).await?;
            let st = v.status.as_ref();
            if st.is_some_and(|s| s.converged && s.observed_revision >= revision) {
                if !tty && output == Output::Table {
                    eprintln!("{c}: converged");
                }
                continue;
            }
            // A status computed before this revision was taken up says nothing about it (its
            // phase may well be the old revision's "Converged").
            let seen = st;
            let st = st.filter(|s| s.desired_revision >= revision);
            let waiting = st.and_then(|s| s.plan.waiting.first().cloned()).unwrap_or_default();
            let step = st.and_then(|s| s.plan.steps.first().map(|x| x.describe())).unwrap_or_default();
            lines.push(format!(
                "{c}: {} - {}/{} brokers live{}{}",
                st.map_or_else(|| format!("Pending (revision {revision} not reconciled yet)"), |s| s.phase.clone()),
                live_of(seen),
                cluster_spec(&v).map_or("?".into(), |s| s.brokers.to_string()),
                if step.is_empty() { String::new() } else { format!(" - {step}") },
                if waiting.is_empty() { String::new() } else { format!(" - waiting: {waiting}") },
            ));
            still.push(c.clone());
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        let line = lines.join(" | ");
        match &bar {
            Some(b) => b.set_message(line.clone()),
            None if line != last_line => eprintln!("{line}"),
            None => {}
        }
        last_line = line;
        if Instant::now() > deadline {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            return Err(Failure::new(5, format!("not converged after {}s: {last_line}", timeout.as_secs())));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if output == Output::Table {
        outln!("converged: {}", clusters.join(", "));
    }
    Ok(())
}

#[allow(clippy::ptr_arg)] // print_value hands the printer a &T
fn clients_table(items: &Vec<ClientView>) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    table(
        &["ROUTE", "INSTANCE", "ROLE", "CLUSTER", "GENERATION", "SENT", "ACKED", "FAILED", "DROPPED", "BUFFERED", "LAG", "DRAINED", "AGE"],
        items
            .iter()
            .map(|c| {
                let r = &c.report;
                let n = &r.counters;
                let (lag, drained) = match (&r.role, &r.consumer) {
                    (ClientRole::Consumer, Some(s)) => (s.lag.to_string(), if s.drained { s.drained_cluster.clone().unwrap_or_else(|| "yes".into()) } else { "no".into() }),
                    _ => ("-".into(), "-".into()),
                };
                let sent = if r.role == ClientRole::Consumer { n.consumed } else { n.sent };
                vec![
                    r.route.clone(),
                    r.instance.clone(),
                    format!("{:?}", r.role).to_lowercase(),
                    if r.cluster.is_empty() { "-".into() } else { r.cluster.clone() },
                    r.generation.to_string(),
                    sent.to_string(),
                    n.acknowledged.to_string(),
                    n.failed.to_string(),
                    n.dropped.to_string(),
                    n.buffered.to_string(),
                    lag,
                    drained,
                    format!("{}s", (now - c.reported_ms).max(0) / 1000),
                ]
            })
            .collect(),
    )
}
