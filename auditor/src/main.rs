use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use kafka_auditor::loadtest::{self, LoadReport, LoadSpec, SpecError};

/// Heartbeats brokers, load-tests them, replays message sets.
#[derive(Parser)]
#[command(name = "kafka-auditor", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Heartbeat every broker of the configured clusters; serve /metrics, /api/figures and the
    /// dashboard at /.
    Run {
        #[arg(long, short = 'c')]
        config: std::path::PathBuf,
    },
    /// Replay a message set (JSON Lines) to a topic, then verify exactly that set arrived.
    /// Exit 0 complete, 1 missing or unexpected records, 2 error (nothing sent on bad input).
    Replay {
        #[command(flatten)]
        set: SetArgs,
        /// Messages per second, or `max`.
        #[arg(long, default_value = "max", allow_hyphen_values = true)]
        rate: String,
        /// Send only.
        #[arg(long)]
        no_verify: bool,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Check that a topic holds exactly a message set (from the beginning to its current end).
    Verify {
        #[command(flatten)]
        set: SetArgs,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Produce at a rate (or `max`) for a duration; report msg/s, MB/s and ack latency.
    Loadtest {
        #[arg(long)]
        bootstrap_servers: String,
        #[arg(long)]
        topic: String,
        /// Messages per second over all producers, or `max`.
        #[arg(long, default_value = "max", allow_hyphen_values = true)]
        rate: String,
        /// Record size in bytes.
        #[arg(long, default_value = "100", allow_hyphen_values = true)]
        size: String,
        #[arg(long, default_value = "10s", allow_hyphen_values = true)]
        duration: String,
        /// 0, 1 or all.
        #[arg(long, default_value = "1")]
        acks: String,
        #[arg(long, default_value = "1", allow_hyphen_values = true)]
        producers: String,
        /// Extra librdkafka producer settings, key=value (repeatable).
        #[arg(long = "producer-config")]
        producer_config: Vec<String>,
        /// Also consume what is produced and report end-to-end latency.
        #[arg(long)]
        consume: bool,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

/// A message set and where it goes: shared by `replay` and `verify`.
#[derive(clap::Args)]
struct SetArgs {
    #[arg(long)]
    bootstrap_servers: String,
    #[arg(long)]
    topic: String,
    /// JSON Lines: {"key", "value", "headers", "delayMs"} per line.
    #[arg(long)]
    file: std::path::PathBuf,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEET_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn loadtest_spec(
    bootstrap_servers: String,
    topic: String,
    rate: &str,
    size: &str,
    duration: &str,
    acks: &str,
    producers: &str,
    producer_config: &[String],
) -> Result<LoadSpec, SpecError> {
    if topic.trim().is_empty() {
        return Err(SpecError::Topic);
    }
    let size = match size.parse::<i64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => n as usize,
        _ => return Err(SpecError::Size(size.to_string())),
    };
    let producers = match producers.parse::<i64>() {
        Ok(n) if (1..=64).contains(&n) => n as usize,
        _ => return Err(SpecError::Producers(producers.to_string())),
    };
    let mut extra = Vec::new();
    for kv in producer_config {
        let (k, v) = kv.split_once('=').filter(|(k, _)| !k.is_empty()).ok_or_else(|| SpecError::ProducerConfig(kv.clone()))?;
        extra.push((k.to_string(), v.to_string()));
    }
    Ok(LoadSpec {
        bootstrap_servers,
        topic,
        rate: loadtest::parse_rate(rate)?,
        size,
        duration: loadtest::parse_duration(duration)?,
        acks: loadtest::parse_acks(acks)?,
        producers,
        producer_config: extra,
        consume: false,
    })
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run { config } => {
            let config = kafka_auditor::config::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(serve(config))?;
            Ok(0)
        }
        Command::Replay { set: SetArgs { bootstrap_servers, topic, file }, rate, no_verify, output } => {
            use kafka_auditor::replay;
            let rate = loadtest::parse_rate(&rate)?;
            let records = replay::load(&file)?;
            let before = replay::end_offsets(&bootstrap_servers, &topic)?;
            let started = std::time::Instant::now();
            replay::send(&bootstrap_servers, &topic, &records, rate)?;
            let elapsed = started.elapsed().as_secs_f64();
            let verification = if no_verify {
                None
            } else {
                let after = replay::end_offsets(&bootstrap_servers, &topic)?;
                Some(replay::verify(&bootstrap_servers, &topic, &records, &before, &after)?)
            };
            let report = replay::ReplayReport { sent: records.len(), elapsed_s: elapsed, msgs_per_s: records.len() as f64 / elapsed.max(1e-9), verification };
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Table => {
                    println!("sent {} records in {:.2} s ({:.0} msg/s)", report.sent, report.elapsed_s, report.msgs_per_s);
                    if let Some(v) = &report.verification {
                        print_verification(v);
                    }
                }
            }
            Ok(match &report.verification {
                Some(v) if !v.complete => 1,
                _ => 0,
            })
        }
        Command::Verify { set: SetArgs { bootstrap_servers, topic, file }, output } => {
            use kafka_auditor::replay;
            let records = replay::load(&file)?;
            let to = replay::end_offsets(&bootstrap_servers, &topic)?;
            let v = replay::verify(&bootstrap_servers, &topic, &records, &std::collections::BTreeMap::new(), &to)?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                Output::Table => print_verification(&v),
            }
            Ok(if v.complete { 0 } else { 1 })
        }
        Command::Loadtest { bootstrap_servers, topic, rate, size, duration, acks, producers, producer_config, consume, output } => {
            let mut spec = loadtest_spec(bootstrap_servers, topic, &rate, &size, &duration, &acks, &producers, &producer_config)?;
            spec.consume = consume;
            let live = std::io::stderr().is_terminal() || output == Output::Table;
            let report = loadtest::run(&spec, |r| {
                if live {
                    eprintln!(
                        "{:>6.1}s  {:>10.0} msg/s  {:>8.2} MB/s  p99 {:>7.2} ms  errors {}",
                        r.elapsed_s, r.msgs_per_s, r.mb_per_s, r.latency_ms_p99, r.errors
                    );
                }
            })?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Table => print_table(&report),
            }
            Ok(if report.errors > 0 { 1 } else { 0 })
        }
    }
}

async fn serve(config: kafka_auditor::config::Config) -> Result<()> {
    use std::sync::Arc;
    let heartbeats: Vec<_> = config.clusters.into_iter().map(kafka_auditor::heartbeat::Heartbeat::new).collect();
    for hb in &heartbeats {
        let hb = hb.clone();
        tokio::spawn(async move {
            let cluster = hb.spec().cluster.clone();
            if let Err(e) = kafka_auditor::heartbeat::run(hb).await {
                tracing::error!(cluster = %cluster, error = %e, "heartbeat stopped");
            }
        });
    }
    let mut routes = Vec::new();
    for spec in config.routes {
        let audit = kafka_auditor::routes::RouteAudit::start(spec)?;
        tokio::spawn(audit.clone().run());
        routes.push(audit);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (field `listen`): {e}", config.listen))?;
    let tls = config.tls.as_ref().map(fleet_common::https::server_config).transpose().map_err(|e| anyhow::anyhow!("tls: {e}"))?;
    eprintln!("kafka-auditor: dashboard at {}://{}/", fleet_common::https::scheme(tls.is_some()), config.listen);
    let app = kafka_auditor::server::router(kafka_auditor::server::AppState { heartbeats: Arc::new(heartbeats), routes: Arc::new(routes) });
    fleet_common::https::serve(listener, app, tls, fleet_common::serve::ServeLimits::default(), async {
        let signal = fleet_common::signals::stop_requested().await;
        eprintln!("kafka-auditor: {signal}, stopping");
    })
    .await?;
    Ok(())
}

fn print_verification(v: &kafka_auditor::replay::Verification) {
    println!(
        "{}: expected {}, found {}, missing {}, unexpected {}",
        if v.complete { "COMPLETE" } else { "INCOMPLETE" },
        v.expected,
        v.found,
        v.missing.len(),
        v.unexpected.len()
    );
    for (what, list) in [("missing", &v.missing), ("unexpected", &v.unexpected)] {
        for r in list.iter().take(20) {
            println!("  {what}: key {:?} value {:?}", r.key, r.value);
        }
        if list.len() > 20 {
            println!("  ... and {} more {what}", list.len() - 20);
        }
    }
}

fn print_table(r: &LoadReport) {
    println!("{:<14} {:>14}", "elapsed", format!("{:.1} s", r.elapsed_s));
    println!("{:<14} {:>14}", "acked", r.acked);
    println!("{:<14} {:>14}", "errors", r.errors);
    println!("{:<14} {:>14.0}", "msg/s", r.msgs_per_s);
    println!("{:<14} {:>14.2}", "MB/s", r.mb_per_s);
    println!("{:<14} {:>14.2}", "p50 ms", r.latency_ms_p50);
    println!("{:<14} {:>14.2}", "p99 ms", r.latency_ms_p99);
    println!("{:<14} {:>14.2}", "p99.9 ms", r.latency_ms_p999);
    println!("{:<14} {:>14.2}", "max ms", r.latency_ms_max);
    if let Some(e) = &r.first_error {
        println!("{:<14} {e}", "first error");
    }
    if let Some(c) = &r.consumed {
        println!("{:<14} {:>14}", "consumed", c.consumed);
        println!("{:<14} {:>14.0}", "consumed/s", c.msgs_per_s);
        println!("{:<14} {:>14.2}", "e2e p50 ms", c.end_to_end_ms_p50);
        println!("{:<14} {:>14.2}", "e2e p99 ms", c.end_to_end_ms_p99);
        println!("{:<14} {:>14.2}", "e2e p99.9 ms", c.end_to_end_ms_p999);
    }
}
