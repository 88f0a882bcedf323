//! `fleetctl scale-up`, `get operations`, `describe operation`, `approve`, `cancel`: operations
//! are resources the fleet manager drives through phases; these commands start, show and steer them.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use fleet_api::operation::{
    DecommissionRequest, MovePlan, Operation, OperationResponse, OperationSpec, PaceRequest, Phase, PlacementPlan, RebalanceRequest, RollRequest, ScaleUpRequest,
};
use serde_json::json;

use crate::{format_ms, print_value, table, Client, Failure, Output, Result};

#[derive(clap::Args, Debug)]
pub struct ScaleUpArgs {
    pub cluster: String,
    /// The cluster's broker count afterwards.
    #[arg(long)]
    pub brokers: i64,
    /// `all` (keyed topics left out), or topic names separated by commas.
    #[arg(long, default_value = "all", conflicts_with = "class")]
    pub topics: String,
    /// Only the topics of this priority class: low, medium or high.
    #[arg(long)]
    pub class: Option<String>,
    /// Partitions to add to each topic (default: keep the partitions per broker as they were).
    #[arg(long)]
    pub partitions_per_topic: Option<i64>,
    /// Scale named keyed topics too (their keys move to other partitions).
    #[arg(long)]
    pub allow_keyed: bool,
    /// Split a commit too large for one ZooKeeper request into several: no longer atomic.
    #[arg(long)]
    pub allow_split: bool,
    /// Stop when the plan is made, until `fleetctl approve operation ID`.
    #[arg(long)]
    pub hold: bool,
    /// Show the plan for the brokers expected; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the operation ends, showing its progress.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 10m, 1h).
    #[arg(long, default_value = "15m", value_parser = crate::parse_duration)]
    pub timeout: Duration,
}

pub async fn scale_up(client: &Client, args: ScaleUpArgs, output: Output) -> Result<()> {
    let topics = match args.topics.trim() {
        "all" | "" => None,
        list => Some(list.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect::<Vec<_>>()),
    };
    let request = ScaleUpRequest {
        cluster: args.cluster.clone(),
        brokers: args.brokers,
        topics,
        class: args.class.clone(),
        partitions_per_topic: args.partitions_per_topic,
        allow_keyed: args.allow_keyed,
        allow_split: args.allow_split,
        hold: args.hold,
    };
    let body = serde_json::to_value(&request).map_err(|e| Failure::new(1, e.to_string()))?;
    let answer: OperationResponse = client.send(reqwest::Method::POST, &format!("/v1/operations/scale-up?dryRun={}", args.dry_run), Some(body)).await?;
    if args.dry_run {
        return print_value(output, &answer, |a| {
            let mut out = String::new();
            if let Some(OperationSpec::ScaleUp(s)) = &a.spec {
                out.push_str(&format!("scale-up of {} from {} to {} brokers (dry run: nothing written)\n", args.cluster, s.from_brokers, s.brokers));
                for sk in &s.skipped {
                    out.push_str(&format!("  skipped {}: {}\n", sk.topic, sk.reason));
                }
            }
            match (&a.plan, &a.plan_error) {
                (Some(p), _) => out.push_str(&plan_text(p)),
                (None, Some(e)) => out.push_str(&format!("  no plan: {e}\n")),
                _ => {}
            }
            out
        });
    }
    let op = answer.operation.ok_or_else(|| Failure::new(1, "the fleet manager answered without the operation"))?;
    if output == Output::Table {
        outln!("operation {} created ({} -> {} brokers)", op.id, from_brokers(&op), args.brokers);
    }
    if !args.wait {
        if output != Output::Table {
            print_value(output, &op, |_| String::new())?;
        }
        return Ok(());
    }
    let done = wait(client, &op.id, args.timeout, output).await?;
    finish(done, output)
}

fn from_brokers(op: &Operation) -> u32 {
    match &op.spec {
        OperationSpec::ScaleUp(s) => s.from_brokers,
        OperationSpec::Decommission(s) | OperationSpec::Rebalance(s) => s.from_brokers,
        OperationSpec::Failover(_) | OperationSpec::Fallback(_) | OperationSpec::ConfigRollout(_) => 0,
    }
}

/// How replicas move: shared by `decommission` and `rebalance`.
#[derive(clap::Args, Debug)]
pub struct PaceArgs {
    /// Replication throttle per broker while moving, e.g. 10MiB/s (default: unthrottled).
    #[arg(long)]
    pub throttle: Option<String>,
    /// Moves in flight touching any one broker.
    #[arg(long)]
    pub max_moves_per_broker: Option<i64>,
    /// Moves in flight in the whole cluster.
    #[arg(long)]
    pub max_moves: Option<i64>,
    /// Stop when the plan is made, until `fleetctl approve operation ID`.
    #[arg(long)]
    pub hold: bool,
    /// Show the moves; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the operation ends, showing its progress.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 10m, 1h).
    #[arg(long, default_value = "2h", value_parser = crate::parse_duration)]
    pub timeout: Duration,
}

impl PaceArgs {
    fn request(&self) -> PaceRequest {
        PaceRequest { throttle: self.throttle.clone(), max_moves_per_broker: self.max_moves_per_broker, max_moves: self.max_moves, hold: self.hold }
    }
}

#[derive(clap::Args, Debug)]
pub struct DecommissionArgs {
    pub cluster: String,
    /// Broker IDs that leave, separated by commas (e.g. 4,5).
    #[arg(long, value_delimiter = ',', required_unless_present = "count")]
    pub brokers: Vec<i64>,
    /// Or how many leave: the highest IDs.
    #[arg(long, conflicts_with = "brokers")]
    pub count: Option<i64>,
    #[command(flatten)]
    pub pace: PaceArgs,
}

#[derive(clap::Args, Debug)]
pub struct RollArgs {
    pub cluster: String,
    /// Why (kept with the operation and in the journal).
    #[arg(long)]
    pub reason: Option<String>,
    /// Check that it may start (the cluster, no other operation on it); start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until every broker has restarted, showing progress.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 10m, 1h).
    #[arg(long, default_value = "1h", value_parser = crate::parse_duration)]
    pub timeout: Duration,
}

pub async fn roll(client: &Client, args: RollArgs, output: Output) -> Result<()> {
    let body = serde_json::to_value(RollRequest { cluster: args.cluster.clone(), reason: args.reason.clone() }).map_err(|e| Failure::new(1, e.to_string()))?;
    let answer: OperationResponse = client.send(reqwest::Method::POST, &format!("/v1/operations/roll?dryRun={}", args.dry_run), Some(body)).await?;
    if args.dry_run {
        return print_value(output, &answer, |_| format!("roll of {} (dry run: nothing started): every broker restarts, one at a time, the controller last\n", args.cluster));
    }
    created(client, answer, args.wait.then_some(args.timeout), output).await
}

#[derive(clap::Args, Debug)]
pub struct RebalanceArgs {
    pub cluster: String,
    #[command(flatten)]
    pub pace: PaceArgs,
}

pub async fn decommission(client: &Client, args: DecommissionArgs, output: Output) -> Result<()> {
    let request = DecommissionRequest {
        cluster: args.cluster.clone(),
        brokers: (!args.brokers.is_empty()).then(|| args.brokers.clone()),
        count: args.count,
        pace: args.pace.request(),
    };
    let body = serde_json::to_value(&request).map_err(|e| Failure::new(1, e.to_string()))?;
    start_moves(client, "decommission", &args.cluster, body, &args.pace, output).await
}

pub async fn rebalance(client: &Client, args: RebalanceArgs, output: Output) -> Result<()> {
    let request = RebalanceRequest { cluster: args.cluster.clone(), pace: args.pace.request() };
    let body = serde_json::to_value(&request).map_err(|e| Failure::new(1, e.to_string()))?;
    start_moves(client, "rebalance", &args.cluster, body, &args.pace, output).await
}

async fn start_moves(client: &Client, verb: &str, cluster: &str, body: serde_json::Value, pace: &PaceArgs, output: Output) -> Result<()> {
    let answer: OperationResponse = client.send(reqwest::Method::POST, &format!("/v1/operations/{verb}?dryRun={}", pace.dry_run), Some(body)).await?;
    if pace.dry_run {
        return print_value(output, &answer, |a| {
            let mut out = format!("{verb} of {cluster} (dry run: nothing written)\n");
            if let Some(OperationSpec::Decommission(s)) = &a.spec {
                out.push_str(&format!("  leaving: {}\n", s.leaving.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")));
            }
            if let Some(p) = &a.moves {
                out.push_str(&moves_text(p));
            }
            out
        });
    }
    created(client, answer, pace.wait.then_some(pace.timeout), output).await
}

/// Shows the operation just created; with a timeout, waits until it ends.
async fn created(client: &Client, answer: OperationResponse, wait_for: Option<Duration>, output: Output) -> Result<()> {
    let op = answer.operation.ok_or_else(|| Failure::new(1, "the fleet manager answered without the operation"))?;
    if output == Output::Table {
        let held = serde_json::to_value(&op.spec).ok().is_some_and(|v| v["hold"] == true);
        if held {
            outln!("operation {} created; once its plan is ready: fleetctl describe operation {}, then fleetctl approve operation {} (or cancel operation {})", op.id, op.id, op.id, op.id);
        } else {
            outln!("operation {} created (fleetctl describe operation {})", op.id, op.id);
        }
    }
    let Some(timeout) = wait_for else {
        if output != Output::Table {
            print_value(output, &op, |_| String::new())?;
        }
        return Ok(());
    };
    let done = wait(client, &op.id, timeout, output).await?;
    finish(done, output)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn moves_text(p: &MovePlan) -> String {
    let mut out = String::new();
    let bytes: u64 = p.moves.iter().map(|m| m.bytes).sum();
    out.push_str(&format!("  {} partition moves in {} batches ({})\n", p.moves.len(), p.batches.len(), mib(bytes)));
    let counts = |c: &std::collections::BTreeMap<i32, u32>| c.iter().map(|(b, n)| format!("{b}={n}")).collect::<Vec<_>>().join(" ");
    out.push_str(&format!("  replicas per broker: {}  ->  {}\n", counts(&p.replicas_before), counts(&p.replicas_after)));
    out.push_str(&format!("  preferred leaders per broker: {}  ->  {}\n", counts(&p.leaders_before), counts(&p.leaders_after)));
    if p.leaders_to_move > 0 {
        out.push_str(&format!("  leadership of {} partitions moves first\n", p.leaders_to_move));
    }
    let mut start = 0usize;
    for (i, n) in p.batches.iter().enumerate() {
        let batch = &p.moves[start..start + *n as usize];
        let shown: Vec<String> = batch.iter().take(6).map(|m| format!("{}-{} {:?}->{:?}", m.topic, m.partition, m.from, m.to)).collect();
        let more = if batch.len() > 6 { format!(" … +{}", batch.len() - 6) } else { String::new() };
        out.push_str(&format!("  batch {}: {}{more}\n", i + 1, shown.join(", ")));
        start += *n as usize;
    }
    out
}

/// Prints the ended operation; a failed or cancelled one is exit code 1.
fn finish(op: Operation, output: Output) -> Result<()> {
    print_value(output, &op, describe_text)?;
    match op.status.phase {
        Phase::Succeeded => Ok(()),
        Phase::ProposalReady => Ok(()),
        phase => Err(Failure::new(1, format!("operation {} {}: {}", op.id, phase.as_str(), op.status.message.clone().unwrap_or_default()))),
    }
}

/// Polls the operation until it ends (or is held for approval), showing phase and progress.
pub async fn wait(client: &Client, id: &str, timeout: Duration, output: Output) -> Result<Operation> {
    let deadline = Instant::now() + timeout;
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let mut last = String::new();
    loop {
        let op: Operation = client.get(&format!("/v1/operations/{id}")).await?;
        let progress = op
            .status
            .progress
            .map(|p| format!(" [{}/{}]", p.done, p.total))
            .or_else(|| op.status.roll.as_ref().filter(|r| !r.registrations.is_empty()).map(|r| format!(" [{}/{} brokers]", r.restarted.len(), r.registrations.len())))
            .unwrap_or_default();
        let bytes = op.status.bytes.filter(|b| b.total > 0).map(|b| format!(" {} of {}", mib(b.done), mib(b.total))).unwrap_or_default();
        let eta = op.status.eta_seconds.map(|s| format!(" ETA {s}s")).unwrap_or_default();
        let progress = format!("{progress}{bytes}{eta}");
        let line = format!("{id}: {}{progress} - {}", op.status.phase.as_str(), op.status.message.as_deref().unwrap_or(""));
        match &bar {
            Some(b) => b.set_message(line.clone()),
            None if line != last && output == Output::Table => eprintln!("{line}"),
            None => {}
        }
        last = line;
        // A held plan ends the wait until it is approved.
        if op.status.phase.is_terminal() || (op.status.phase == Phase::ProposalReady && !op.approved) {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            return Ok(op);
        }
        if Instant::now() > deadline {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            return Err(Failure::new(5, format!("operation {id} has not ended after {}s: {last}", timeout.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn list(client: &Client, cluster: Option<&str>, id: Option<&str>, active: bool, output: Output) -> Result<()> {
    let ops: Vec<Operation> = match id {
        Some(id) => vec![client.get(&format!("/v1/operations/{id}")).await?],
        None => {
            let mut query: Vec<String> = Vec::new();
            if let Some(c) = cluster {
                query.push(format!("cluster={c}"));
            }
            if active {
                query.push("active=true".into());
            }
            let q = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
            client.get(&format!("/v1/operations{q}")).await?
        }
    };
    print_value(output, &ops, |ops| {
        table(
            &["ID", "CLUSTER", "KIND", "PHASE", "PROGRESS", "AGE", "MESSAGE"],
            ops.iter()
                .map(|o| {
                    vec![
                        o.id.clone(),
                        o.cluster.clone(),
                        o.spec.kind().to_string(),
                        o.status.phase.as_str().to_string(),
                        progress_text(o).unwrap_or_else(|| "-".into()),
                        crate::age(o.created_ms),
                        o.status.message.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        )
    })
}

pub async fn describe(client: &Client, id: &str, output: Output) -> Result<()> {
    let op: Operation = client.get(&format!("/v1/operations/{id}")).await?;
    print_value(output, &op, describe_text)
}

pub async fn command(client: &Client, id: &str, verb: &str, wait_for: Option<Duration>, output: Output) -> Result<()> {
    let op: Operation = client.send(reqwest::Method::POST, &format!("/v1/operations/{id}/{verb}"), Some(json!({}))).await?;
    match wait_for {
        Some(timeout) => finish(wait(client, &op.id, timeout, output).await?, output),
        None => print_value(output, &op, |o| format!("operation {}: {verb} recorded (phase {})\n", o.id, o.status.phase.as_str())),
    }
}

fn plan_text(p: &PlacementPlan) -> String {
    let mut out = String::new();
    let predicted = if p.predicted { " (expected IDs and racks)" } else { "" };
    out.push_str(&format!("  new brokers{predicted}: {}\n", p.new_brokers.iter().map(|b| format!("{b} ({})", p.racks.get(b).map_or("-", |r| r.as_str()))).collect::<Vec<_>>().join(", ")));
    for t in &p.topics {
        let parts: Vec<String> = t.new_partitions.iter().map(|(n, r)| format!("{n}:{r:?}")).collect();
        out.push_str(&format!("  {}: {} -> {} partitions  {}\n", t.topic, t.from, t.to, parts.join(" ")));
    }
    out.push_str(&format!(
        "  leaders per broker: {}\n  replicas per broker: {}\n",
        p.leaders_per_broker.iter().map(|(b, n)| format!("{b}={n}")).collect::<Vec<_>>().join(" "),
        p.replicas_per_broker.iter().map(|(b, n)| format!("{b}={n}")).collect::<Vec<_>>().join(" ")
    ));
    let atomic = if p.commits > 1 { format!("{} ZooKeeper multis (split: NOT atomic)", p.commits) } else { "one ZooKeeper multi (atomic)".into() };
    out.push_str(&format!("  commit: {} new partitions in {atomic}, {} bytes\n", p.new_partition_count(), p.commit_bytes));
    out
}

/// `done/total` of what the operation counts: partitions, or brokers restarted.
pub fn progress_text(o: &Operation) -> Option<String> {
    o.status
        .progress
        .map(|p| format!("{}/{}", p.done, p.total))
        .or_else(|| o.status.roll.as_ref().filter(|r| !r.registrations.is_empty()).map(|r| format!("{}/{} brokers", r.restarted.len(), r.registrations.len())))
}

fn describe_text(o: &Operation) -> String {
    let mut out = format!("Operation: {} ({} on {})\n", o.id, o.spec.kind(), o.cluster);
    out.push_str(&format!("Phase: {}\n", o.status.phase.as_str()));
    // What the phase waits for, or how it ended.
    if let Some(m) = &o.status.message {
        out.push_str(&format!("{}: {m}\n", if o.status.phase.is_terminal() { "Outcome" } else { "Waiting for" }));
    }
    if let Some(by) = &o.paused_by {
        out.push_str(&format!("Paused by: {by} (a failover or fallback on its cluster; it plans again once that has ended)\n"));
    }
    if o.cancel_requested && !o.status.phase.is_terminal() {
        out.push_str("Cancel: asked for; being carried out\n");
    }
    match &o.spec {
        OperationSpec::ScaleUp(s) => {
            out.push_str(&format!("Brokers: {} -> {}   Topics: {}\n", s.from_brokers, s.brokers, s.topics.join(", ")));
            for sk in &s.skipped {
                out.push_str(&format!("  skipped {}: {}\n", sk.topic, sk.reason));
            }
        }
        OperationSpec::Decommission(s) | OperationSpec::Rebalance(s) => {
            if !s.leaving.is_empty() {
                out.push_str(&format!("Leaving: {}\n", s.leaving.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")));
            }
            let throttle = s.throttle_bytes.map(|t| format!("{}/s per broker", mib(t))).unwrap_or_else(|| "none".into());
            out.push_str(&format!("Throttle: {throttle}   Moves in flight: {} per broker, {} in all\n", s.max_moves_per_broker, s.max_moves));
        }
        OperationSpec::Failover(s) | OperationSpec::Fallback(s) => {
            let to = match (&s.to, &s.build, &o.status.target) {
                (Some(to), _, _) => to.clone(),
                (None, Some(b), Some(t)) => format!("{t} (built from {}, {} brokers)", b.source, b.brokers),
                (None, Some(b), None) => format!("a fresh build of {} ({} brokers)", b.source, b.brokers),
                _ => "-".into(),
            };
            out.push_str(&format!("Route: {}   From: {}   To: {to}\n", s.route, s.from));
            out.push_str(&format!("Reason: {}   Client deadline: {}s\n", s.reason, s.deadline_ms / 1000));
            if let Some(ms) = o.status.canary_millis {
                out.push_str(&format!("Canary: {ms} ms round trip\n"));
            }
            if !o.status.stragglers.is_empty() {
                out.push_str(&format!("Stragglers: {}\n", o.status.stragglers.join(", ")));
            }
        }
        OperationSpec::ConfigRollout(s) => {
            if let Some(r) = &s.reason {
                out.push_str(&format!("Reason: {r}\n"));
            }
            if s.changes.is_empty() {
                out.push_str("Changes: none (a rolling restart)\n");
            } else {
                out.push_str("Changes:\n");
                for c in &s.changes {
                    out.push_str(&format!("  {}: {} -> {}  [{}]\n", c.key, c.from.as_deref().unwrap_or("(not set)"), c.to.as_deref().unwrap_or("(not set)"), c.effect.describe()));
                if let Some(n) = &c.note {
                    out.push_str(&format!("      {n}\n"));
                }
                }
            }
            if let Some(r) = &o.status.roll {
                if !r.registrations.is_empty() {
                    let took = |b: &i32| r.millis.get(b).map(|ms| format!(" ({:.0}s)", *ms as f64 / 1000.0)).unwrap_or_default();
                    let done: Vec<String> = r.restarted.iter().map(|b| format!("{b}{}", took(b))).collect();
                    out.push_str(&format!("Restarted: {} of {} brokers: {}\n", r.restarted.len(), r.registrations.len(), if done.is_empty() { "-".into() } else { done.join(", ") }));
                }
                if let Some(c) = r.current.filter(|_| !o.status.phase.is_terminal()) {
                    let since = r.requested_ms.map(|at| format!(" (asked for at {}, {}s ago)", format_ms(at), (crate::now_ms() - at).max(0) / 1000)).unwrap_or_default();
                    out.push_str(&format!("Restarting now: broker {c}{since}\n"));
                }
                if let Some(p) = &r.paused_by {
                    out.push_str(&format!("Paused: {p} (the next restart waits until it clears)\n"));
                }
                if r.unprotected_count > 0 {
                    let more = r.unprotected_count as usize - r.unprotected.len();
                    out.push_str(&format!(
                        "Unprotected: {} partitions have a replication factor at or below min.insync.replicas: acks=all writes to each fail while one of its brokers restarts (raise their replication factor to avoid it): {}{}\n",
                        r.unprotected_count,
                        r.unprotected.join(", "),
                        if more > 0 { format!(" and {more} more") } else { String::new() }
                    ));
                }
            }
        }
    }
    if let Some(p) = &o.status.moves {
        out.push_str("Moves:\n");
        out.push_str(&moves_text(p));
        out.push_str(&format!("Batch: {} of {}\n", (o.status.batch as usize + 1).min(p.batches.len()), p.batches.len()));
    }
    if let Some(b) = o.status.bytes.filter(|b| b.total > 0) {
        let eta = o.status.eta_seconds.map(|s| format!(", about {s}s left")).unwrap_or_default();
        out.push_str(&format!("Bytes: {} of {}{eta}\n", mib(b.done), mib(b.total)));
    }
    if let Some(t) = &o.status.throttled {
        out.push_str(&format!("Throttled now: {} on brokers {:?}, {} topics\n", mib(t.rate) + "/s", t.brokers, t.topics.len()));
        for (b, p) in &t.prior {
            out.push_str(&format!("  broker {b} had its own rates (leader {}, follower {}): kept, and put back after\n", p.leader.as_deref().unwrap_or("-"), p.follower.as_deref().unwrap_or("-")));
        }
    }
    if let Some(p) = &o.status.plan {
        out.push_str("Plan:\n");
        out.push_str(&plan_text(p));
    }
    if let Some(ms) = o.status.commit_millis {
        out.push_str(&format!("Commit: {ms} ms\n"));
    }
    if let Some(ms) = o.status.leaders_millis {
        out.push_str(&format!("All new partitions led: {ms} ms after the commit\n"));
    }
    if let Some(p) = o.status.progress {
        let what = match o.spec {
            OperationSpec::ScaleUp(_) => "new partitions with a leader",
            _ => "partitions moved",
        };
        out.push_str(&format!("Progress: {}/{} {what}\n", p.done, p.total));
    }
    out.push_str("History:\n");
    for (i, h) in o.status.history.iter().enumerate() {
        // How long each phase lasted (the last one: until now or its end).
        let took = o.status.history.get(i + 1).map(|n| format!(" ({:.1}s)", (n.at_ms - h.at_ms) as f64 / 1000.0)).unwrap_or_default();
        out.push_str(&format!("  {} {}{took}{}\n", format_ms(h.at_ms), h.phase.as_str(), h.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()));
    }
    out
}

#[derive(clap::Args, Debug)]
pub struct SwitchArgs {
    /// How long producers get to report the new cluster, then consumers to drain the old one
    /// (e.g. 30s, 5m); stragglers are named and the operation goes on.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub deadline: Duration,
    /// Why (recorded with the move).
    #[arg(long)]
    pub reason: Option<String>,
    /// Check every guard rail (the route, the target's health, maintenance, holds) and show
    /// the operation that would be made; make nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the operation ends, showing its phases.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 10m, 1h).
    #[arg(long, default_value = "15m", value_parser = crate::parse_duration)]
    pub timeout: Duration,
}

impl SwitchArgs {
    fn request(&self) -> fleet_api::operation::SwitchRequest {
        fleet_api::operation::SwitchRequest { deadline_secs: Some(self.deadline.as_secs() as i64), reason: self.reason.clone(), dry_run: self.dry_run }
    }
}

#[derive(clap::Args, Debug)]
pub struct FailoverArgs {
    pub route: String,
    /// A healthy standby cluster to move to.
    #[arg(long, conflicts_with_all = ["build", "size_up"])]
    pub to: Option<String>,
    /// Build a fresh, immutable clone of the route's cluster (the default without --to).
    #[arg(long)]
    pub build: bool,
    /// Brokers added to the clone.
    #[arg(long)]
    pub size_up: Option<i64>,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

#[derive(clap::Args, Debug)]
pub struct FallbackArgs {
    pub route: String,
    /// Replace the original by a fresh build instead of returning to it.
    #[arg(long)]
    pub rebuild: bool,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

pub async fn failover(client: &Client, args: FailoverArgs, output: Output) -> Result<()> {
    let request = fleet_api::operation::FailoverRequest {
        route: args.route.clone(),
        to: args.to.clone(),
        build: args.build,
        size_up: args.size_up,
        pace: args.switch.request(),
    };
    let body = serde_json::to_value(&request).map_err(|e| Failure::new(1, e.to_string()))?;
    start_switch(client, "failover", body, &args.switch, output).await
}

pub async fn fallback(client: &Client, args: FallbackArgs, output: Output) -> Result<()> {
    let request = fleet_api::operation::FallbackRequest { route: args.route.clone(), rebuild: args.rebuild, pace: args.switch.request() };
    let body = serde_json::to_value(&request).map_err(|e| Failure::new(1, e.to_string()))?;
    start_switch(client, "fallback", body, &args.switch, output).await
}

async fn start_switch(client: &Client, verb: &str, body: serde_json::Value, switch: &SwitchArgs, output: Output) -> Result<()> {
    let answer: OperationResponse = client.send(reqwest::Method::POST, &format!("/v1/operations/{verb}"), Some(body)).await?;
    if answer.dry_run {
        return print_value(output, &answer, |a| {
            let spec = a.spec.as_ref().and_then(|s| serde_json::to_value(s).ok()).unwrap_or_default();
            let to = spec["to"].as_str().map(str::to_string).or_else(|| spec["build"]["source"].as_str().map(|s| format!("a fresh build of {s} ({} brokers)", spec["build"]["brokers"])));
            format!(
                "{verb} of route {} from {} to {} would be made (dry run: nothing written); deadline {}s, the cluster left is kept as {}\n",
                spec["route"].as_str().unwrap_or("?"),
                spec["from"].as_str().unwrap_or("?"),
                to.unwrap_or_else(|| "?".into()),
                spec["deadlineMs"].as_i64().unwrap_or(0) / 1000,
                spec["retain"].as_str().unwrap_or("?"),
            )
        });
    }
    created(client, answer, switch.wait.then_some(switch.timeout), output).await
}
