//! The Kafka protocol calls librdkafka has no binding for (DescribeLogDirs, AlterPartitionReassignments,
//! ListPartitionReassignments, ...), through the maintained `kafka-protocol` crate's generated
//! messages: one connection per call, ApiVersions first, and each request sent at the highest
//! version both this crate and the broker speak. Plain TCP (the fleet's listeners), short deadlines.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, ApiVersionsRequest, BrokerId, DescribeClusterRequest, DescribeLogDirsRequest, DescribeQuorumRequest,
    ListPartitionReassignmentsRequest, MetadataRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response larger than this is refused (a broker with ~100k partitions answers ~5 MB of log dirs).
const MAX_RESPONSE: usize = 64 << 20;
const CLIENT_ID: &str = "kafka-fleet";

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{address}: {source}")]
    Io { address: String, source: std::io::Error },
    #[error("{address}: no answer within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
    #[error("{address}: {what}")]
    Protocol { address: String, what: String },
    #[error("{address}: the broker does not support {api:?} (versions {ours})")]
    Unsupported { address: String, api: ApiKey, ours: String },
    #[error("{address}: {api:?} refused: error {code}{}", .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka { address: String, api: ApiKey, code: i16, message: Option<String> },
    #[error("none of {0:?} answered")]
    NoBroker(Vec<String>),
}

/// One connection to one broker, with the API versions it speaks.
pub struct Connection {
    stream: TcpStream,
    address: String,
    timeout: Duration,
    next_id: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects and asks the broker which API versions it speaks.
    pub async fn open(address: &str, timeout: Duration) -> Result<Self, WireError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| WireError::Timeout { address: address.to_string(), timeout })?
            .map_err(|source| WireError::Io { address: address.to_string(), source })?;
        let _ = stream.set_nodelay(true);
        let mut c = Self { stream, address: address.to_string(), timeout, next_id: 1, versions: HashMap::new() };
        // ApiVersions v0 is understood by every broker; its answer says what else is.
        let request = ApiVersionsRequest::default();
        let answer = c.exchange::<ApiVersionsRequest>(&request, 0).await?;
        if answer.error_code != 0 {
            return Err(WireError::Kafka { address: c.address.clone(), api: ApiKey::ApiVersions, code: answer.error_code, message: None });
        }
        c.versions = answer.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(c)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The version of `R` to send: the highest this crate and the broker both speak.
    pub fn version_of<R: Request>(&self) -> Result<i16, WireError> {
        let (broker_min, broker_max) = self.versions.get(&R::KEY).copied().unwrap_or((0, -1));
        let version = broker_max.min(R::VERSIONS.max);
        if version < broker_min.max(R::VERSIONS.min) {
            let api = ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions);
            return Err(WireError::Unsupported { address: self.address.clone(), api, ours: format!("{}..={}", R::VERSIONS.min, R::VERSIONS.max) });
        }
        Ok(version)
    }

    /// Sends `request` at the best common version and reads its response.
    pub async fn call<R: Request>(&mut self, request: &R) -> Result<(R::Response, i16), WireError> {
        let version = self.version_of::<R>()?;
        Ok((self.exchange::<R>(request, version).await?, version))
    }

    /// As [`Connection::call`], at most at `max` (a later version changes what the request
    /// must carry, e.g. Produce v13 names topics by ID).
    pub async fn call_at_most<R: Request>(&mut self, request: &R, max: i16) -> Result<(R::Response, i16), WireError> {
        let version = self.version_of::<R>()?.min(max);
        Ok((self.exchange::<R>(request, version).await?, version))
    }

    async fn exchange<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, WireError> {
        let protocol = |what: String| WireError::Protocol { address: self.address.clone(), what };
        let correlation_id = self.next_id;
        self.next_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
        let mut body = BytesMut::new();
        encode_request_header_into_buffer(&mut body, &header).map_err(|e| protocol(format!("encoding a request header: {e}")))?;
        request.encode(&mut body, version).map_err(|e| protocol(format!("encoding a request: {e}")))?;
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let address = self.address.clone();
        let timeout = self.timeout;
        let io = |source| WireError::Io { address: address.clone(), source };
        let roundtrip = async {
            self.stream.write_all(&frame).await.map_err(io)?;
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.map_err(io)?;
            let len = i32::from_be_bytes(len);
            if len < 4 || len as usize > MAX_RESPONSE {
                return Err(WireError::Protocol { address: address.clone(), what: format!("a response of {len} bytes") });
            }
            let mut buf = vec![0u8; len as usize];
            self.stream.read_exact(&mut buf).await.map_err(io)?;
            Ok(buf)
        };
        let buf = tokio::time::timeout(timeout, roundtrip).await.map_err(|_| WireError::Timeout { address: self.address.clone(), timeout })??;
        let mut bytes = bytes::Bytes::from(buf);
        let response_header = ResponseHeader::decode(&mut bytes, R::Response::header_version(version)).map_err(|e| protocol(format!("decoding a response header: {e}")))?;
        if response_header.correlation_id != correlation_id {
            return Err(protocol(format!("answer to request {} where {correlation_id} was sent", response_header.correlation_id)));
        }
        let response = R::Response::decode(&mut bytes, version).map_err(|e| protocol(format!("decoding a {:?} response: {e}", ApiKey::try_from(R::KEY).ok())))?;
        if bytes.has_remaining() {
            tracing::debug!(address = %self.address, left = bytes.remaining(), "response bytes left over");
        }
        Ok(response)
    }
}

/// Opens a connection to the first of `bootstrap` that answers.
pub async fn any_broker(bootstrap: &[String], timeout: Duration) -> Result<Connection, WireError> {
    let mut last = None;
    for address in bootstrap {
        match Connection::open(address, timeout).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| WireError::NoBroker(bootstrap.to_vec())))
}

/// The cluster's controller (in ZooKeeper mode, where reassignment requests go), through
/// Metadata from any broker.
pub async fn controller(bootstrap: &[String], timeout: Duration) -> Result<Connection, WireError> {
    let mut any = any_broker(bootstrap, timeout).await?;
    let mut request = MetadataRequest::default();
    request.topics = Some(Vec::new());
    let (answer, _) = any.call(&request).await?;
    let id = answer.controller_id;
    let broker = answer.brokers.iter().find(|b| b.node_id == id).ok_or_else(|| WireError::Protocol {
        address: any.address().to_string(),
        what: format!("no controller in the metadata (controller id {})", id.0),
    })?;
    let address = format!("{}:{}", broker.host, broker.port);
    if address == any.address() {
        return Ok(any);
    }
    Connection::open(&address, timeout).await
}

/// One replica of the KRaft metadata log, as the quorum's leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumReplica {
    pub node_id: i32,
    /// Its log directory's ID (Kafka's base64 form), when the quorum is dynamic (`kraft.version` 1).
    pub directory_id: Option<String>,
    pub log_end_offset: i64,
    /// Milliseconds since the epoch; -1 when unknown.
    pub last_caught_up_ms: i64,
    /// When it last fetched from the leader (ms since the epoch; -1 unknown).
    pub last_fetch_ms: i64,
}

/// A KRaft cluster's controller quorum (DescribeQuorum on `__cluster_metadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumInfo {
    /// -1 while there is no leader.
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
}

impl QuorumInfo {
    /// The leader's clock as of this description: the newest time it reported (its own entry
    /// carries its current time); `None` when it reported none.
    pub fn clock_ms(&self) -> Option<i64> {
        self.voters.iter().chain(&self.observers).flat_map(|r| [r.last_fetch_ms, r.last_caught_up_ms]).filter(|t| *t >= 0).max()
    }

    /// How long before [`Self::clock_ms`] the time `at_ms` was; `None` when either is unknown (-1).
    pub fn age_ms(&self, at_ms: i64) -> Option<i64> {
        let clock = self.clock_ms()?;
        (at_ms >= 0).then(|| (clock - at_ms).max(0))
    }

    /// How many records `r` is behind the high watermark.
    pub fn lag(&self, r: &QuorumReplica) -> i64 {
        (self.high_watermark - r.log_end_offset).max(0)
    }
}

/// Kafka's NOT_LEADER_OR_FOLLOWER: a controller that is not the quorum's leader.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// The quorum of the KRaft cluster `address` belongs to: asked of the quorum's leader (a
/// follower controller points to it; a broker forwards the request to it).
pub async fn describe_quorum(address: &str, timeout: Duration) -> Result<QuorumInfo, WireError> {
    match describe_quorum_at(address, timeout).await {
        Err(WireError::Kafka { code: NOT_LEADER_OR_FOLLOWER, .. }) => {
            // A follower: the active controller, as the controllers' DescribeCluster names it.
            let controllers = describe_controllers(address, timeout).await?;
            let leader = controllers.brokers.iter().find(|b| b.broker_id == controllers.controller_id).ok_or_else(|| WireError::Protocol {
                address: address.to_string(),
                what: format!("no active controller among the controllers (controller id {})", controllers.controller_id),
            })?;
            let host = if leader.host.contains(':') { format!("[{}]", leader.host) } else { leader.host.to_string() };
            describe_quorum_at(&format!("{host}:{}", leader.port), timeout).await
        }
        other => other,
    }
}

/// The controllers, as a controller describes them (DescribeCluster with the controller
/// endpoint type): `brokers` are the controllers, `controller_id` the active one.
pub async fn describe_controllers(address: &str, timeout: Duration) -> Result<ClusterInfo, WireError> {
    const CONTROLLER_ENDPOINTS: i8 = 2;
    describe_cluster_as(address, false, CONTROLLER_ENDPOINTS, timeout).await
}

async fn describe_quorum_at(address: &str, timeout: Duration) -> Result<QuorumInfo, WireError> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let mut c = Connection::open(address, timeout).await?;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let (answer, _) = c.call(&request).await?;
    let refused = |code: i16, message: Option<String>| WireError::Kafka { address: address.to_string(), api: ApiKey::DescribeQuorum, code, message };
    if answer.error_code != 0 {
        return Err(refused(answer.error_code, answer.error_message.as_ref().map(|m| m.to_string())));
    }
    let partition = answer.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| WireError::Protocol {
        address: address.to_string(),
        what: "DescribeQuorum answered without the metadata partition".into(),
    })?;
    if partition.error_code != 0 {
        return Err(refused(partition.error_code, partition.error_message.as_ref().map(|m| m.to_string())));
    }
    let replica = |r: &kafka_protocol::messages::describe_quorum_response::ReplicaState| QuorumReplica {
        node_id: r.replica_id.0,
        directory_id: (!r.replica_directory_id.is_nil()).then(|| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r.replica_directory_id.as_bytes())
        }),
        log_end_offset: r.log_end_offset,
        last_caught_up_ms: r.last_caught_up_timestamp,
        last_fetch_ms: r.last_fetch_timestamp,
    };
    Ok(QuorumInfo {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: partition.current_voters.iter().map(replica).collect(),
        observers: partition.observers.iter().map(replica).collect(),
    })
}

/// One broker as the cluster's controller registered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredBroker {
    pub broker_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Registered but fenced: not serving (shut down, or its heartbeats stopped).
    pub fenced: bool,
}

/// The cluster behind `address` (DescribeCluster): its ID, active controller and brokers,
/// fenced ones included when asked (KRaft brokers stay registered while fenced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<RegisteredBroker>,
}

pub async fn describe_cluster(address: &str, include_fenced: bool, timeout: Duration) -> Result<ClusterInfo, WireError> {
    const BROKER_ENDPOINTS: i8 = 1;
    describe_cluster_as(address, include_fenced, BROKER_ENDPOINTS, timeout).await
}

async fn describe_cluster_as(address: &str, include_fenced: bool, endpoint_type: i8, timeout: Duration) -> Result<ClusterInfo, WireError> {
    let mut c = Connection::open(address, timeout).await?;
    // Fenced brokers are reported from v2 (Kafka 4.0); an older broker answers without them.
    let request = DescribeClusterRequest::default()
        .with_include_fenced_brokers(include_fenced && c.version_of::<DescribeClusterRequest>()? >= 2)
        .with_endpoint_type(endpoint_type);
    let (answer, _) = c.call(&request).await?;
    if answer.error_code != 0 {
        return Err(WireError::Kafka { address: address.to_string(), api: ApiKey::DescribeCluster, code: answer.error_code, message: answer.error_message.as_ref().map(|m| m.to_string()) });
    }
    Ok(ClusterInfo {
        cluster_id: answer.cluster_id.to_string(),
        controller_id: answer.controller_id.0,
        brokers: answer
            .brokers
            .iter()
            .map(|b| RegisteredBroker { broker_id: b.broker_id.0, host: b.host.to_string(), port: b.port, rack: b.rack.as_ref().map(|r| r.to_string()), fenced: b.is_fenced })
            .collect(),
    })
}

/// A topic as the cluster's metadata has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    /// Replicas of each partition, by partition index.
    pub partitions: BTreeMap<i32, Vec<i32>>,
    /// The topic's own configs (set on the topic, not inherited defaults).
    pub configs: BTreeMap<String, String>,
}

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Kafka's LEADER_NOT_AVAILABLE (a topic being created).
const LEADER_NOT_AVAILABLE: i16 = 5;
const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs' source of a config set on the topic itself.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;

/// The named topics (absent ones left out) through Metadata and DescribeConfigs on one broker
/// of `bootstrap`: what KRaft clusters have in place of ZooKeeper's topic znodes.
pub async fn describe_topics(bootstrap: &[String], names: &[&str], timeout: Duration) -> Result<BTreeMap<String, TopicState>, WireError> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::DescribeConfigsRequest;
    let mut out = BTreeMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let mut c = any_broker(bootstrap, timeout).await?;
    let address = c.address().to_string();
    let request = MetadataRequest::default()
        .with_topics(Some(names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(n.to_string()))))).collect()))
        .with_allow_auto_topic_creation(false);
    let (answer, _) = c.call(&request).await?;
    for t in &answer.topics {
        let Some(name) = t.name.as_ref().map(|n| n.to_string()) else { continue };
        match t.error_code {
            0 => {}
            UNKNOWN_TOPIC_OR_PARTITION => continue,
            code => return Err(WireError::Kafka { address, api: ApiKey::Metadata, code, message: Some(format!("topic {name}")) }),
        }
        let partitions = t.partitions.iter().map(|p| (p.partition_index, p.replica_nodes.iter().map(|b| b.0).collect())).collect();
        out.insert(name, TopicState { partitions, configs: BTreeMap::new() });
    }
    if out.is_empty() {
        return Ok(out);
    }
    let request = DescribeConfigsRequest::default().with_resources(
        out.keys()
            .map(|n| DescribeConfigsResource::default().with_resource_type(TOPIC_RESOURCE).with_resource_name(StrBytes::from_string(n.clone())).with_configuration_keys(None))
            .collect(),
    );
    let (answer, _) = c.call(&request).await?;
    for r in &answer.results {
        let name = r.resource_name.to_string();
        match r.error_code {
            0 => {}
            // Deleted between the two calls.
            UNKNOWN_TOPIC_OR_PARTITION => {
                out.remove(&name);
                continue;
            }
            code => return Err(WireError::Kafka { address, api: ApiKey::DescribeConfigs, code, message: r.error_message.as_ref().map(|m| m.to_string()) }),
        }
        if let Some(topic) = out.get_mut(&name) {
            topic.configs = r
                .configs
                .iter()
                .filter(|e| e.config_source == DYNAMIC_TOPIC_CONFIG)
                .filter_map(|e| Some((e.name.to_string(), e.value.as_ref()?.to_string())))
                .collect();
        }
    }
    Ok(out)
}

/// One partition as the cluster's metadata has it: what the healthcheck judges a KRaft cluster by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// -1 while the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// Every topic's partitions (internal topics included) and effective `min.insync.replicas`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionsSnapshot {
    pub topics: BTreeMap<String, BTreeMap<i32, PartitionMetadata>>,
    /// The value each topic runs with (its own, else the broker's), when the broker said.
    pub min_isr: BTreeMap<String, i32>,
}

/// All topics through Metadata (all topics) and DescribeConfigs (`min.insync.replicas` only),
/// on one broker of `bootstrap`: a KRaft cluster's counterpart of ZooKeeper's topic and
/// partition-state znodes.
pub async fn describe_partitions(bootstrap: &[String], timeout: Duration) -> Result<PartitionsSnapshot, WireError> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::DescribeConfigsRequest;
    let mut c = any_broker(bootstrap, timeout).await?;
    let address = c.address().to_string();
    let request = MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(false);
    let (answer, _) = c.call(&request).await?;
    let mut out = PartitionsSnapshot::default();
    for t in &answer.topics {
        let Some(name) = t.name.as_ref().map(|n| n.to_string()) else { continue };
        match t.error_code {
            0 => {}
            // Being created or deleted: not a topic to judge yet.
            UNKNOWN_TOPIC_OR_PARTITION | LEADER_NOT_AVAILABLE => continue,
            code => return Err(WireError::Kafka { address, api: ApiKey::Metadata, code, message: Some(format!("topic {name}")) }),
        }
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    PartitionMetadata {
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    },
                )
            })
            .collect();
        out.topics.insert(name, partitions);
    }
    if out.topics.is_empty() {
        return Ok(out);
    }
    let key = StrBytes::from_static_str("min.insync.replicas");
    let request = DescribeConfigsRequest::default().with_resources(
        out.topics
            .keys()
            .map(|n| DescribeConfigsResource::default().with_resource_type(TOPIC_RESOURCE).with_resource_name(StrBytes::from_string(n.clone())).with_configuration_keys(Some(vec![key.clone()])))
            .collect(),
    );
    let (answer, _) = c.call(&request).await?;
    for r in &answer.results {
        match r.error_code {
            0 => {}
            // Deleted between the two calls.
            UNKNOWN_TOPIC_OR_PARTITION => continue,
            // A topic's min.insync.replicas unknown is not its default of 1: the answer fails.
            code => return Err(WireError::Kafka { address, api: ApiKey::DescribeConfigs, code, message: r.error_message.as_ref().map(|m| m.to_string()) }),
        }
        if let Some(v) = r.configs.iter().find(|e| e.name == key).and_then(|e| e.value.as_ref()?.parse().ok()) {
            out.min_isr.insert(r.resource_name.to_string(), v);
        }
    }
    Ok(out)
}

/// Kafka's ELECTION_NOT_NEEDED: the preferred replica leads already.
const ELECTION_NOT_NEEDED: i16 = 84;

/// A preferred-replica election of `partitions` of `topic` (ElectLeaders, as
/// `kafka-leader-election --election-type preferred` sends it), to the controller named by the
/// cluster's metadata: in ZooKeeper mode the controller broker, in KRaft mode a broker, which
/// forwards it to the quorum's leader. Returns the partitions Kafka refused, with why; one that
/// needed no election is not refused.
pub async fn elect_preferred_leaders(bootstrap: &[String], topic: &str, partitions: &[i32], timeout: Duration) -> Result<BTreeMap<i32, String>, WireError> {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::ElectLeadersRequest;
    const PREFERRED: i8 = 0;
    let mut c = controller(bootstrap, timeout).await?;
    let request = ElectLeadersRequest::default()
        .with_election_type(PREFERRED)
        .with_topic_partitions(Some(vec![TopicPartitions::default().with_topic(TopicName(StrBytes::from_string(topic.to_string()))).with_partitions(partitions.to_vec())]))
        // Half the client's deadline: the broker answers (with what it got done) before this
        // side gives up on it.
        .with_timeout_ms((timeout.as_millis() / 2).min(i32::MAX as u128) as i32);
    let (answer, _) = c.call(&request).await?;
    if answer.error_code != 0 {
        return Err(WireError::Kafka { address: c.address().to_string(), api: ApiKey::ElectLeaders, code: answer.error_code, message: None });
    }
    Ok(answer
        .replica_election_results
        .iter()
        .flat_map(|t| t.partition_result.iter())
        .filter(|p| p.error_code != 0 && p.error_code != ELECTION_NOT_NEEDED)
        .map(|p| (p.partition_id, format!("error {}{}", p.error_code, p.error_message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())))
        .collect())
}

/// A controller listener a new voter is reached at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterListener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// A directory ID in Kafka's base64 form as the protocol carries it.
fn directory_uuid(address: &str, directory_id: &str) -> Result<uuid::Uuid, WireError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(directory_id).ok().and_then(|b| <[u8; 16]>::try_from(b).ok());
    bytes.map(uuid::Uuid::from_bytes).ok_or_else(|| WireError::Protocol { address: address.to_string(), what: format!("`{directory_id}` is not a directory ID (22 characters of base64url)") })
}

/// The active controller's connection, found through the controllers' DescribeCluster asked of
/// any of `controllers` (voter changes are the quorum leader's to make).
async fn active_controller(controllers: &[String], timeout: Duration) -> Result<Connection, WireError> {
    let mut last = None;
    for address in controllers {
        match describe_controllers(address, timeout).await {
            Ok(info) => {
                let Some(active) = info.brokers.iter().find(|b| b.broker_id == info.controller_id) else {
                    last = Some(WireError::Protocol { address: address.clone(), what: format!("no active controller (controller id {})", info.controller_id) });
                    continue;
                };
                let host = if active.host.contains(':') { format!("[{}]", active.host) } else { active.host.clone() };
                return Connection::open(&format!("{host}:{}", active.port), timeout).await;
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| WireError::NoBroker(controllers.to_vec())))
}

/// Adds a caught-up observer to the controller quorum's voters (AddRaftVoter, KIP-853: what
/// `kafka-metadata-quorum add-controller` sends), asked of the active controller.
pub async fn add_raft_voter(
    controllers: &[String],
    cluster_id: Option<&str>,
    voter_id: i32,
    directory_id: &str,
    listeners: &[VoterListener],
    timeout: Duration,
) -> Result<(), WireError> {
    use kafka_protocol::messages::add_raft_voter_request::Listener;
    use kafka_protocol::messages::AddRaftVoterRequest;
    let mut c = active_controller(controllers, timeout).await?;
    let address = c.address().to_string();
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(cluster_id.map(|id| StrBytes::from_string(id.to_string())))
        .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_voter_id(voter_id)
        .with_voter_directory_id(directory_uuid(&address, directory_id)?)
        .with_listeners(
            listeners
                .iter()
                .map(|l| Listener::default().with_name(StrBytes::from_string(l.name.clone())).with_host(StrBytes::from_string(l.host.clone())).with_port(l.port))
                .collect(),
        );
    let (answer, _) = c.call(&request).await?;
    if answer.error_code != 0 {
        return Err(WireError::Kafka { address, api: ApiKey::AddRaftVoter, code: answer.error_code, message: answer.error_message.as_ref().map(|m| m.to_string()) });
    }
    Ok(())
}

/// Removes one voter, named by node ID and directory ID, from the controller quorum
/// (RemoveRaftVoter: `kafka-metadata-quorum remove-controller`), asked of the active controller.
pub async fn remove_raft_voter(controllers: &[String], cluster_id: Option<&str>, voter_id: i32, directory_id: &str, timeout: Duration) -> Result<(), WireError> {
    use kafka_protocol::messages::RemoveRaftVoterRequest;
    let mut c = active_controller(controllers, timeout).await?;
    let address = c.address().to_string();
    let request = RemoveRaftVoterRequest::default()
        .with_cluster_id(cluster_id.map(|id| StrBytes::from_string(id.to_string())))
        .with_voter_id(voter_id)
        .with_voter_directory_id(directory_uuid(&address, directory_id)?);
    let (answer, _) = c.call(&request).await?;
    if answer.error_code != 0 {
        return Err(WireError::Kafka { address, api: ApiKey::RemoveRaftVoter, code: answer.error_code, message: answer.error_message.as_ref().map(|m| m.to_string()) });
    }
    Ok(())
}

/// `(topic, partition) -> bytes` on one broker (future replicas of an intra-broker move left out).
pub type BrokerSizes = BTreeMap<(String, u32), u64>;

/// Every partition's size on the broker at `address` (DescribeLogDirs, all topics).
pub async fn describe_log_dirs(address: &str, timeout: Duration) -> Result<BrokerSizes, WireError> {
    let mut c = Connection::open(address, timeout).await?;
    // `topics: None` is every topic; the crate's default is `Some(empty)`, which is none.
    let request = DescribeLogDirsRequest::default().with_topics(None);
    let (answer, _) = c.call(&request).await?;
    if answer.error_code != 0 {
        return Err(WireError::Kafka { address: address.to_string(), api: ApiKey::DescribeLogDirs, code: answer.error_code, message: None });
    }
    let mut out = BrokerSizes::new();
    for dir in answer.results.iter().filter(|d| d.error_code == 0) {
        for topic in &dir.topics {
            for p in topic.partitions.iter().filter(|p| !p.is_future_key) {
                let e = out.entry((topic.name.0.to_string(), p.partition_index.max(0) as u32)).or_default();
                *e = (*e).max(p.partition_size.max(0) as u64);
            }
        }
    }
    Ok(out)
}

/// One partition being reassigned, as the controller reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reassignment {
    /// The replica set while the move lasts (old and new).
    pub replicas: Vec<i32>,
    /// Replicas being added: they catch up before joining the ISR.
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// The partitions a KRaft cluster's controller is reassigning now (ListPartitionReassignments,
/// asked of any broker: KRaft brokers forward it to the active controller).
pub async fn list_reassignments(bootstrap: &[String], timeout: Duration) -> Result<BTreeMap<(String, u32), Reassignment>, WireError> {
    let mut c = any_broker(bootstrap, timeout).await?;
    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32);
    let (answer, _) = c.call(&request).await?;
    if answer.error_code != 0 {
        return Err(WireError::Kafka {
            address: c.address().to_string(),
            api: ApiKey::ListPartitionReassignments,
            code: answer.error_code,
            message: answer.error_message.map(|m| m.to_string()),
        });
    }
    let mut out = BTreeMap::new();
    for t in &answer.topics {
        for p in &t.partitions {
            let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
            out.insert(
                (t.name.0.to_string(), p.partition_index.max(0) as u32),
                Reassignment { replicas: ids(&p.replicas), adding: ids(&p.adding_replicas), removing: ids(&p.removing_replicas) },
            );
        }
    }
    Ok(out)
}

/// Cancels the reassignment of each partition (AlterPartitionReassignments with no target, as
/// `kafka-reassign-partitions --cancel` does since KIP-455): Kafka puts its replicas back where
/// they were. A partition that is not being reassigned is no error. Returns what refused, if any.
pub async fn cancel_reassignments(bootstrap: &[String], partitions: &[(String, u32)], timeout: Duration) -> Result<Vec<String>, WireError> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(*p as i32);
    }
    let topics = by_topic
        .into_iter()
        .map(|(t, ps)| {
            ReassignableTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                .with_partitions(ps.into_iter().map(|p| ReassignablePartition::default().with_partition_index(p).with_replicas(None)).collect())
        })
        .collect();
    let request = AlterPartitionReassignmentsRequest::default().with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32).with_topics(topics);
    let mut c = controller(bootstrap, timeout).await?;
    let (answer, _) = c.call(&request).await?;
    if answer.error_code != 0 {
        return Err(WireError::Kafka {
            address: c.address().to_string(),
            api: ApiKey::AlterPartitionReassignments,
            code: answer.error_code,
            message: answer.error_message.map(|m| m.to_string()),
        });
    }
    // NO_REASSIGNMENT_IN_PROGRESS (85): it had finished already; nothing to cancel.
    const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    let mut refused = Vec::new();
    for t in &answer.responses {
        for p in t.partitions.iter().filter(|p| p.error_code != 0 && p.error_code != NO_REASSIGNMENT_IN_PROGRESS) {
            refused.push(format!("{}-{}: error {}{}", t.name.0, p.partition_index, p.error_code, p.error_message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()));
        }
    }
    Ok(refused)
}

/// Kafka's config resource type of a broker (`ConfigResource.Type.BROKER`).
const BROKER_RESOURCE: i8 = 4;

/// One broker config as a broker reports it: its value and where it came from (Kafka's
/// `ConfigSource`: 2 dynamic per broker, 3 dynamic default, 4 static, 5 Kafka's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfigEntry {
    pub value: Option<String>,
    pub source: i8,
}

pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT: i8 = 3;

/// Sets (`Some`) or deletes (`None`) broker configs through IncrementalAlterConfigs, as
/// `kafka-configs --alter --entity-type brokers` does: `resource` is a broker ID, or `""` for
/// the cluster-wide default. In ZooKeeper mode a broker's own configs go to that broker, and the
/// default to any broker (`address`). Kafka validates every value before it stores any.
pub async fn alter_broker_configs(address: &str, resource: &str, configs: &[(String, Option<String>)], timeout: Duration) -> Result<(), WireError> {
    alter_or_validate(address, resource, configs, false, timeout).await
}

/// As [`alter_broker_configs`] with `validate_only`: Kafka checks the values as it would for a
/// change and stores nothing.
pub async fn validate_broker_configs(address: &str, resource: &str, configs: &[(String, Option<String>)], timeout: Duration) -> Result<(), WireError> {
    alter_or_validate(address, resource, configs, true, timeout).await
}

async fn alter_or_validate(address: &str, resource: &str, configs: &[(String, Option<String>)], validate_only: bool, timeout: Duration) -> Result<(), WireError> {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    let configs = configs
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(if v.is_some() { SET } else { DELETE })
                .with_value(v.clone().map(StrBytes::from_string))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(BROKER_RESOURCE)
        .with_resource_name(StrBytes::from_string(resource.to_string()))
        .with_configs(configs)])
        .with_validate_only(validate_only);
    let mut c = Connection::open(address, timeout).await?;
    let (answer, _) = c.call(&request).await?;
    if let Some(r) = answer.responses.iter().find(|r| r.error_code != 0) {
        return Err(WireError::Kafka {
            address: address.to_string(),
            api: ApiKey::IncrementalAlterConfigs,
            code: r.error_code,
            message: r.error_message.as_ref().map(|m| m.to_string()),
        });
    }
    Ok(())
}

/// The named configs of broker `resource` (an ID, or `""` for the dynamic defaults only) as
/// the broker at `address` reports them (DescribeConfigs). A key the broker does not report is
/// left out.
pub async fn describe_broker_configs(address: &str, resource: &str, keys: &[String], timeout: Duration) -> Result<BTreeMap<String, BrokerConfigEntry>, WireError> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::DescribeConfigsRequest;
    let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(BROKER_RESOURCE)
        .with_resource_name(StrBytes::from_string(resource.to_string()))
        .with_configuration_keys(Some(keys.iter().map(|k| StrBytes::from_string(k.clone())).collect()))]);
    let mut c = Connection::open(address, timeout).await?;
    let (answer, _) = c.call(&request).await?;
    let mut out = BTreeMap::new();
    for r in &answer.results {
        if r.error_code != 0 {
            return Err(WireError::Kafka {
                address: address.to_string(),
                api: ApiKey::DescribeConfigs,
                code: r.error_code,
                message: r.error_message.as_ref().map(|m| m.to_string()),
            });
        }
        for e in &r.configs {
            out.insert(e.name.to_string(), BrokerConfigEntry { value: e.value.as_ref().map(|v| v.to_string()), source: e.config_source });
        }
    }
    Ok(out)
}

/// A broker ID as the protocol carries it.
pub fn broker_id(id: i32) -> BrokerId {
    BrokerId(id)
}

/// How a partition's leader answers a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteProbe {
    /// Refused for its size (`max.message.bytes` below any batch: the topic is sealed).
    Refused,
    /// It would take the write.
    Open,
    /// No answer that says (leader unknown or down, another error).
    Unknown(String),
}

/// Kafka's error codes the probe tells apart.
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;

/// A one-record batch with a wrong CRC. A broker checks a batch's size against the topic's
/// `max.message.bytes` before its CRC, so a sealed topic answers MESSAGE_TOO_LARGE and an open
/// one CORRUPT_MESSAGE: the probe tells them apart and is never written either way.
fn probe_batch() -> Result<bytes::Bytes, String> {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        key: None,
        value: Some(bytes::Bytes::from_static(b"kafka-fleet write probe (never written)")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, [&record], &RecordEncodeOptions { version: 2, compression: Compression::None }).map_err(|e| format!("encoding the probe: {e}"))?;
    // baseOffset (8) + batchLength (4) + partitionLeaderEpoch (4) + magic (1): the CRC's first byte.
    const CRC_AT: usize = 17;
    if buf.len() <= CRC_AT {
        return Err(format!("a probe batch of {} bytes", buf.len()));
    }
    buf[CRC_AT] ^= 0xff;
    Ok(buf.freeze())
}

/// For every partition of `topics`, whether its leader takes writes ([`WriteProbe`]). Nothing is
/// written: the probe is a batch no broker appends.
pub async fn probe_writes(bootstrap: &[String], topics: &[String], timeout: Duration) -> Result<BTreeMap<(String, i32), WriteProbe>, WireError> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ProduceRequest;
    let mut any = any_broker(bootstrap, timeout).await?;
    let mut request = MetadataRequest::default();
    request.topics = Some(topics.iter().map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.clone()))))).collect());
    request.allow_auto_topic_creation = false;
    let (meta, _) = any.call(&request).await?;
    let brokers: BTreeMap<i32, String> = meta.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port))).collect();
    let mut out = BTreeMap::new();
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for t in &meta.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        if t.error_code != 0 {
            out.insert((name, -1), WriteProbe::Unknown(format!("metadata error {}", t.error_code)));
            continue;
        }
        for p in &t.partitions {
            if p.leader_id.0 < 0 || !brokers.contains_key(&p.leader_id.0) {
                out.insert((name.clone(), p.partition_index), WriteProbe::Unknown("no leader".into()));
            } else {
                by_leader.entry(p.leader_id.0).or_default().push((name.clone(), p.partition_index));
            }
        }
    }
    let batch = probe_batch().map_err(|what| WireError::Protocol { address: any.address().to_string(), what })?;
    for (leader, partitions) in by_leader {
        let address = &brokers[&leader];
        let mut per_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &partitions {
            per_topic.entry(t.as_str()).or_default().push(*p);
        }
        let mut produce = ProduceRequest::default().with_acks(1).with_timeout_ms(timeout.as_millis().min(30_000) as i32);
        produce.topic_data = per_topic
            .iter()
            .map(|(t, ps)| {
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partition_data(ps.iter().map(|p| PartitionProduceData::default().with_index(*p).with_records(Some(batch.clone()))).collect())
            })
            .collect();
        let answer = match Connection::open(address, timeout).await {
            Ok(mut c) => c.call_at_most(&produce, 12).await.map(|(a, _)| a),
            Err(e) => Err(e),
        };
        match answer {
            Ok(a) => {
                for t in &a.responses {
                    for p in &t.partition_responses {
                        let verdict = match p.error_code {
                            MESSAGE_TOO_LARGE => WriteProbe::Refused,
                            CORRUPT_MESSAGE => WriteProbe::Open,
                            code => WriteProbe::Unknown(format!("error {code} from broker {leader}")),
                        };
                        out.insert((t.name.0.to_string(), p.index), verdict);
                    }
                }
            }
            Err(e) => {
                for key in partitions {
                    out.insert(key, WriteProbe::Unknown(e.to_string()));
                }
            }
        }
    }
    Ok(out)
}
