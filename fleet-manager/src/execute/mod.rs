//! `execute`: applying one plan step to the world. Every step is idempotent (a step already done
//! is a no-op), and every failure says whether trying again can help ([`StepError`]), told from
//! the provider's, Kafka's and ZooKeeper's error codes.

use std::time::Duration;

use async_trait::async_trait;
use fleet_common::FleetPaths;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use zookeeper_client as zk;

use crate::metrics::Metrics;
use crate::observe;
use crate::plan::{DesiredCluster, DnsRecordSet, HostRole, Step};
use crate::providers::{DnsZone, ErrorClass, HostProvider, HostProviders, LaunchRequest, ProviderError};
use crate::spec::ProviderKind;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Terminal(String),
}

impl StepError {
    pub fn class(&self) -> ErrorClass {
        match self {
            StepError::Retryable(_) => ErrorClass::Retryable,
            StepError::Terminal(_) => ErrorClass::Terminal,
        }
    }
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        match e.class() {
            ErrorClass::Retryable => StepError::Retryable(e.to_string()),
            ErrorClass::Terminal => StepError::Terminal(e.to_string()),
        }
    }
}

/// ZooKeeper errors that no retry fixes (permissions, a malformed request).
pub fn classify_zk(context: String, e: &zk::Error) -> StepError {
    match e {
        zk::Error::NoAuth | zk::Error::AuthFailed | zk::Error::InvalidAcl | zk::Error::BadArguments(_) => StepError::Terminal(format!("{context}: {e}")),
        _ => StepError::Retryable(format!("{context}: {e}")),
    }
}

/// What applies steps: the seam a simulated world replaces in tests.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Applies one step; `Ok` carries what happened (for a launch: the instance ID).
    async fn apply(&self, desired: &DesiredCluster, step: &Step) -> Result<String, StepError>;
}

/// The real world, for one cluster's reconcile by the current leader.
pub struct LiveExecutor<'a> {
    pub zk: &'a zk::Client,
    /// The leader's election znode: ZooKeeper writes check it in the same multi, so a deposed
    /// leader cannot write.
    pub leader_znode: &'a str,
    pub paths: &'a FleetPaths,
    pub hosts: &'a HostProviders,
    pub dns: &'a dyn DnsZone,
    pub metrics: &'a Metrics,
    pub step_timeout: Duration,
    /// Kafka's admin client, made on the first Kafka step of the reconcile.
    pub admin: Admin,
}

impl LiveExecutor<'_> {
    fn provider(&self, kind: ProviderKind) -> Result<&dyn HostProvider, StepError> {
        self.hosts.get(kind).ok_or_else(|| StepError::Terminal(format!("provider {kind:?} is not configured on this fleet manager")))
    }
}

#[async_trait]
impl Executor for LiveExecutor<'_> {
    #[tracing::instrument(skip_all, fields(cluster = %desired.spec.name, step = step.name()))]
    async fn apply(&self, desired: &DesiredCluster, step: &Step) -> Result<String, StepError> {
        let cluster = desired.spec.name.as_str();
        match step {
            Step::LaunchHost { availability_zone, instance_type, token, role, .. } => {
                self.metrics.provider_call("hosts:launch");
                let request = LaunchRequest { cluster: &desired.spec, cluster_uid: &desired.uid, availability_zone, instance_type, token, role: *role };
                let id = self.provider(desired.spec.provider)?.launch(request).await?;
                tracing::info!(instance = %id, az = %availability_zone, token = %token, role = role.as_str(), "launched host");
                if crate::failpoints::lose_launch_answer() {
                    return Err(StepError::Retryable("failpoint: launch answer lost (connection reset)".into()));
                }
                Ok(id)
            }
            Step::TerminateHost { instance_id, .. } => {
                self.metrics.provider_call("hosts:terminate");
                self.provider(desired.spec.provider)?.terminate(cluster, instance_id).await?;
                tracing::info!(instance = %instance_id, "terminated host");
                Ok(format!("terminated {instance_id}"))
            }
            Step::DeleteDnsRecord { name, set_identifier, values } => {
                self.metrics.provider_call("dns:delete");
                self.dns.delete(&DnsRecordSet { name: name.clone(), set_identifier: set_identifier.clone(), values: values.clone() }).await?;
                Ok(format!("deleted {name} {set_identifier}"))
            }
            Step::DeleteClusterState => delete_cluster_state(self.zk, self.leader_znode, self.paths.cluster(cluster).base()).await,
            // The recorder drops the rows, in the same transaction as the journal.
            Step::ForgetCluster => Ok("forgotten".into()),
            Step::ForgetTopic { topic } => Ok(format!("forgot {topic}")),
            Step::ReleaseBrokerId { broker_id } => release_broker_id(self.zk, self.leader_znode, &self.paths.cluster(cluster).broker_id(*broker_id)).await,
            Step::RemoveVoter { node_id, directory_id, .. } | Step::AddVoter { node_id, directory_id, .. } => {
                use fleet_common::kafka_wire::{add_raft_voter, remove_raft_voter, VoterListener, WireError};
                let hosts = self.provider(desired.spec.provider)?.list(cluster).await?;
                let controllers = observe::host_endpoints(&hosts, &[HostRole::Controller]);
                let cluster_id = crate::spec::kafka_cluster_id(&desired.uid);
                let timeout = self.step_timeout.min(Duration::from_secs(30));
                let result = match step {
                    Step::AddVoter { host, port, .. } => {
                        let listener = VoterListener { name: "CONTROLLER".into(), host: host.clone(), port: *port };
                        add_raft_voter(&controllers, cluster_id.as_deref(), *node_id, directory_id, &[listener], timeout).await
                    }
                    _ => remove_raft_voter(&controllers, cluster_id.as_deref(), *node_id, directory_id, timeout).await,
                };
                match result {
                    Ok(()) => {
                        tracing::info!(node = node_id, directory = %directory_id, step = step.name(), "controller quorum changed");
                        Ok(format!("{} {node_id} ({directory_id})", if matches!(step, Step::AddVoter { .. }) { "added voter" } else { "removed voter" }))
                    }
                    // A broker or controller too old for dynamic quorums: no retry helps.
                    Err(e @ WireError::Unsupported { .. }) => Err(StepError::Terminal(e.to_string())),
                    // Refusals (one change at a time, not caught up, a leader change) pass: the
                    // next observation decides again.
                    Err(e) => Err(StepError::Retryable(e.to_string())),
                }
            }
            Step::CreateTopic { .. } | Step::CreatePartitions { .. } | Step::AlterTopicConfigs { .. } | Step::DeleteTopic { .. } => {
                let admin = self
                    .admin
                    .get_or_try_init(|| async {
                        let servers = if desired.spec.is_kraft() {
                            // No ZooKeeper registrations: the provider's running broker hosts.
                            let hosts = self.provider(desired.spec.provider)?.list(cluster).await?;
                            observe::host_endpoints(&hosts, &[HostRole::Broker, HostRole::Combined])
                        } else {
                            observe::bootstrap_servers(self.zk, &self.paths.cluster(cluster)).await.map_err(StepError::Retryable)?
                        };
                        if servers.is_empty() {
                            return Err(StepError::Retryable("no live broker to talk to".into()));
                        }
                        rdkafka::ClientConfig::new()
                            .set("bootstrap.servers", servers.join(","))
                            .set("socket.timeout.ms", "10000")
                            .create::<AdminClient<DefaultClientContext>>()
                            .map_err(|e| StepError::Terminal(format!("admin client: {e}")))
                    })
                    .await?;
                kafka_step(admin, step, self.step_timeout).await
            }
        }
    }
}

/// Removes a cluster's subtree, deepest znodes first, in multis that each also check the leader's
/// election znode (a deposed leader's multi fails as a whole). Idempotent: a partial run leaves a
/// smaller tree that the next pass removes.
async fn delete_cluster_state(client: &zk::Client, leader_znode: &str, base: &str) -> Result<String, StepError> {
    let mut paths = Vec::new();
    let mut stack = vec![base.to_string()];
    while let Some(path) = stack.pop() {
        match client.list_children(&path).await {
            Ok(children) => {
                for c in children {
                    stack.push(format!("{path}/{c}"));
                }
                paths.push(path);
            }
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(classify_zk(format!("list {path}"), &e)),
        }
    }
    if paths.is_empty() {
        return Ok(format!("{base} already gone"));
    }
    // Children after their parents in `paths`: delete from the end.
    paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    let total = paths.len();
    for chunk in paths.chunks(200) {
        let mut writer = client
            .new_check_writer(leader_znode, None)
            .map_err(|e| StepError::Terminal(format!("check {leader_znode}: {e}")))?;
        for p in chunk {
            writer.add_delete(p, None).map_err(|e| StepError::Terminal(format!("delete {p}: {e}")))?;
        }
        match writer.commit().await {
            Ok(_) => {}
            Err(zk::CheckWriteError::CheckFailed { source }) => {
                return Err(StepError::Terminal(format!("no longer the leader ({leader_znode}: {source}); nothing deleted by this batch")))
            }
            Err(zk::CheckWriteError::OperationFailed { source: zk::Error::NoNode | zk::Error::NotEmpty, .. }) => {
                return Err(StepError::Retryable(format!("{base} changed while it was deleted; the next pass deletes the rest")))
            }
            Err(zk::CheckWriteError::OperationFailed { source, .. } | zk::CheckWriteError::RequestFailed { source }) => {
                return Err(classify_zk(format!("delete under {base}"), &source))
            }
        }
    }
    Ok(format!("deleted {base} ({total} znodes)"))
}

/// Deletes a retired broker's registry entry, fenced by the leader's election znode.
async fn release_broker_id(client: &zk::Client, leader_znode: &str, path: &str) -> Result<String, StepError> {
    let mut writer = client.new_check_writer(leader_znode, None).map_err(|e| StepError::Terminal(format!("check {leader_znode}: {e}")))?;
    writer.add_delete(path, None).map_err(|e| StepError::Terminal(format!("delete {path}: {e}")))?;
    match writer.commit().await {
        Ok(_) | Err(zk::CheckWriteError::OperationFailed { source: zk::Error::NoNode, .. }) => Ok(format!("released {path}")),
        Err(zk::CheckWriteError::CheckFailed { source }) => Err(StepError::Terminal(format!("no longer the leader ({leader_znode}: {source})"))),
        Err(zk::CheckWriteError::OperationFailed { source, .. } | zk::CheckWriteError::RequestFailed { source }) => Err(classify_zk(format!("delete {path}"), &source)),
    }
}

/// Kafka's admin client for one cluster pass, created lazily.
type Admin = tokio::sync::OnceCell<AdminClient<DefaultClientContext>>;

async fn kafka_step(admin: &AdminClient<DefaultClientContext>, step: &Step, timeout: Duration) -> Result<String, StepError> {
    let options = AdminOptions::new().operation_timeout(Some(timeout.min(Duration::from_secs(30))));
    let kafka_err = |e: rdkafka::error::KafkaError| StepError::Retryable(e.to_string());
    match step {
        Step::CreateTopic { topic, partitions, replication_factor, configs, assignment } => {
            let explicit: Vec<&[i32]> = assignment.iter().flatten().map(Vec::as_slice).collect();
            let replication = match assignment {
                Some(_) => TopicReplication::Variable(&explicit),
                None => TopicReplication::Fixed(i32::from(*replication_factor)),
            };
            let mut new = NewTopic::new(topic, *partitions as i32, replication);
            for (k, v) in configs {
                new = new.set(k, v);
            }
            let results = admin.create_topics([&new], &options).await.map_err(kafka_err)?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, code)) => return Err(classify(format!("create topic {t}: {code}"), code)),
                }
            }
            Ok(format!("created {topic}"))
        }
        Step::CreatePartitions { topic, to, assignment, .. } => {
            let explicit: Vec<&[i32]> = assignment.iter().flatten().map(Vec::as_slice).collect();
            let mut new = NewPartitions::new(topic, *to as usize);
            if assignment.is_some() {
                new = new.assign(&explicit);
            }
            let results = admin.create_partitions([&new], &options).await.map_err(kafka_err)?;
            for r in results {
                if let Err((t, code)) = r {
                    return Err(classify(format!("create partitions of {t}: {code}"), code));
                }
            }
            Ok(format!("{topic} now has {to} partitions"))
        }
        Step::AlterTopicConfigs { topic, configs, .. } => {
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
            for (k, v) in configs {
                alter = alter.set(k, v);
            }
            let results = admin.alter_configs([&alter], &options).await.map_err(kafka_err)?;
            for r in results {
                if let Err((_, code)) = r {
                    return Err(classify(format!("alter configs of {topic}: {code}"), code));
                }
            }
            Ok(format!("configs of {topic} set"))
        }
        Step::DeleteTopic { topic } => {
            let results = admin.delete_topics(&[topic.as_str()], &options).await.map_err(kafka_err)?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                    Err((t, code)) => return Err(classify(format!("delete topic {t}: {code}"), code)),
                }
            }
            Ok(format!("deleted {topic}"))
        }
        _ => Err(StepError::Terminal("not a Kafka step".into())),
    }
}

fn classify(message: String, code: RDKafkaErrorCode) -> StepError {
    match code {
        RDKafkaErrorCode::InvalidConfig
        | RDKafkaErrorCode::InvalidPartitions
        | RDKafkaErrorCode::InvalidReplicationFactor
        | RDKafkaErrorCode::PolicyViolation
        | RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed => StepError::Terminal(message),
        _ => StepError::Retryable(message),
    }
}

