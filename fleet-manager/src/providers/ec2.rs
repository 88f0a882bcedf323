//! EC2 hosts: `RunInstances` with user-data that runs `kafka-bootstrap`; hosts are found by tag.

use async_trait::async_trait;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use base64::Engine;
use fleet_common::cluster_file::{RawClusterFile, RawDns, RawFleetApi, RawProvider};

use super::{ErrorClass, FleetCoordinates, HostProvider, LaunchRequest, ProviderError, TAG_CLUSTER, TAG_LAUNCH_TOKEN, TAG_MANAGED_BY, TAG_ROLE};
use crate::plan::{HostRole, HostState, ObservedHost};


/// What hosts are launched from: a launch template (terraform's `brokers` module: image,
/// security groups, volumes, metadata options) or an image alone, plus what differs per launch.
#[derive(Clone, Debug)]
pub enum LaunchSource {
    Template(String),
    Image(String),
}

#[derive(Clone, Debug)]
pub struct Ec2Config {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub source: LaunchSource,
    /// What KRaft controller hosts are launched from (terraform's controller template: a small
    /// metadata volume); without one, controllers are launched like brokers.
    pub controller_source: Option<LaunchSource>,
    /// Where the image holds Kafka 4.x's jars: without it, hosts of KRaft clusters are not
    /// launched (an image with only 3.9 would boot none of them).
    pub kafka4_libs: Option<String>,
    /// Subnet per availability zone. When set, a zone without one is refused (terminal) rather
    /// than launched into the account's default subnet.
    pub subnet_ids: std::collections::BTreeMap<String, String>,
    pub security_group_ids: Vec<String>,
    /// A broker host's instance profile is this prefix followed by its cluster's family
    /// (terraform's per-family broker roles, limited to the family's DNS names).
    pub instance_profile_prefix: Option<String>,
    /// The Route53 zone brokers register in (goes into their cluster file).
    pub dns_zone: Option<String>,
    /// Secrets reach hosts through Secrets Manager, never in user-data (readable through the
    /// metadata service and `DescribeInstanceAttribute`): each cluster's host token is kept in
    /// the secret `<prefix>/hosts/<cluster>/fleet-api-token`, and user-data names it.
    pub secret_prefix: String,
    /// The secret (name or ARN) holding the fleet's ZooKeeper identity, created by the operator
    /// (terraform); named in the cluster file for hosts to read.
    pub zk_identity_secret: Option<String>,
}

/// A KRaft controller's listener on EC2 hosts.
pub const CONTROLLER_PORT: u16 = 9093;

/// The Secrets Manager name of a cluster's host token.
pub fn host_token_secret(prefix: &str, cluster: &str) -> String {
    format!("{}/hosts/{cluster}/fleet-api-token", prefix.trim_end_matches('/'))
}

/// `ZONE=SUBNET,...` (terraform's `FLEET_EC2_SUBNETS`), parsed raw into pairs; the error names
/// the entry and the form expected.
pub fn parse_subnets(entries: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for entry in entries.iter().flat_map(|e| e.split(',')).map(str::trim).filter(|e| !e.is_empty()) {
        let Some((zone, subnet)) = entry.split_once('=') else {
            return Err(format!("--ec2-subnet `{entry}`: expected ZONE=SUBNET_ID, e.g. us-east-1a=subnet-0abc"));
        };
        let (zone, subnet) = (zone.trim(), subnet.trim());
        if zone.is_empty() || !subnet.starts_with("subnet-") {
            return Err(format!("--ec2-subnet `{entry}`: expected ZONE=SUBNET_ID, e.g. us-east-1a=subnet-0abc"));
        }
        if let Some(previous) = out.insert(zone.to_string(), subnet.to_string()) {
            return Err(format!("--ec2-subnet: zone `{zone}` is given twice ({previous} and {subnet}); give one subnet per zone"));
        }
    }
    Ok(out)
}

pub struct Ec2Hosts {
    client: aws_sdk_ec2::Client,
    secrets: aws_sdk_secretsmanager::Client,
    config: Ec2Config,
    fleet: FleetCoordinates,
}

impl Ec2Hosts {
    pub async fn new(config: Ec2Config, fleet: FleetCoordinates) -> Self {
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(config.region.clone()));
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        Self { client: aws_sdk_ec2::Client::new(&sdk), secrets: aws_sdk_secretsmanager::Client::new(&sdk), config, fleet }
    }

    /// The user-data a host boots with: its cluster file, then `kafka-bootstrap run` as a service.
    /// A KRaft cluster's file carries its cluster ID and quorum size; its hosts run Kafka 4.x's
    /// jars (`/opt/kafka4/libs` in the image) in the role they were launched for.
    pub fn user_data(&self, spec: &crate::spec::ClusterSpec, uid: &str, role: HostRole) -> String {
        let cluster = spec.name.as_str();
        let kraft = if spec.is_kraft() {
            fleet_api::spec::kafka_cluster_id(uid).map(|cluster_id| fleet_common::cluster_file::RawKraft { cluster_id, controllers: i64::from(spec.quorum_size()) })
        } else {
            None
        };
        let libs = match (spec.is_kraft(), &self.config.kafka4_libs) {
            (true, Some(libs)) => libs.as_str(),
            (true, None) => "/opt/kafka4/libs",
            (false, _) => "/opt/kafka/libs",
        };
        // Only KRaft hosts are told their role: an image whose bootstrap predates `--role` keeps
        // booting ZooKeeper-mode brokers.
        // A controller listens on Kafka's usual controller port, 9093 (terraform's port matrix
        // opens it to brokers and the fleet manager), a combined node on 9092 and 9093.
        let role = match (spec.is_kraft(), role) {
            (false, _) => String::new(),
            (true, HostRole::Broker) => " --role broker".to_string(),
            (true, HostRole::Controller) => format!(" --role controller --port {CONTROLLER_PORT}"),
            (true, HostRole::Combined) => format!(" --role combined --controller-port {CONTROLLER_PORT}"),
        };
        let file = RawClusterFile {
            cluster: cluster.to_string(),
            zookeeper: self.fleet.zookeeper.clone(),
            fleet_root: Some(self.fleet.fleet_root.clone()),
            broker_id_base: None,
            provider: RawProvider::Ec2 { region: self.config.region.clone(), endpoint_url: None },
            dns: Some(match &self.config.dns_zone {
                Some(zone) => RawDns::Route53 { zone: zone.clone(), endpoint_url: None, ttl: None },
                None => RawDns::None,
            }),
            fleet_api: Some(RawFleetApi {
                url: self.fleet.fleet_api_url.clone(),
                timeout_ms: Some(2000),
                token: None,
                token_secret: self.fleet.host_tokens.as_ref().map(|_| host_token_secret(&self.config.secret_prefix, cluster)),
                properties: None,
                wait_ms: None,
                ca_file: self.fleet.fleet_api_ca_file.clone(),
            }),
            zookeeper_identity_file: None,
            zookeeper_identity_secret: self.config.zk_identity_secret.clone(),
            insecure_zookeeper: self.config.zk_identity_secret.is_none() && self.fleet.insecure_zookeeper,
            properties: Default::default(),
            kraft,
        };
        // The definition is plain data: serializing it cannot fail short of a serde bug.
        let yaml = file.to_yaml().unwrap_or_else(|e| format!("# {e}\n"));
        // No instance ID here: kafka-bootstrap reads it from the instance metadata service itself,
        // through IMDSv2 (session token), which instances requiring IMDSv2 demand. No secret
        // either: the file names the secrets kafka-bootstrap reads with the host's role.
        // cloud-init runs user-data at the first boot only: the broker's start is also put among
        // its per-boot scripts, so a reboot (a rolling restart) starts the broker again.
        format!(
            "#!/bin/bash\nset -euo pipefail\ninstall -d -m 0700 /etc/kafka-fleet\numask 077\ncat > /etc/kafka-fleet/cluster.yaml <<'EOF'\n{yaml}EOF\n\
             cat > /etc/kafka-fleet/start-broker.sh <<'EOF'\n#!/bin/bash\n\
             exec /opt/kafka-fleet/bin/kafka-bootstrap run --cluster-file /etc/kafka-fleet/cluster.yaml \\\n  \
             --data-dir /var/lib/kafka --kafka-libs {libs}{role} --mode exec\nEOF\n\
             chmod 0700 /etc/kafka-fleet/start-broker.sh\ninstall -d /var/lib/cloud/scripts/per-boot\n\
             ln -sf /etc/kafka-fleet/start-broker.sh /var/lib/cloud/scripts/per-boot/50-kafka-broker.sh\n\
             exec /etc/kafka-fleet/start-broker.sh\n",
        )
    }

    /// Puts the cluster's host token in its secret (created on first use, tagged as the fleet's),
    /// before any host that reads it is launched. Idempotent.
    async fn store_host_token(&self, cluster: &str, uid: &str) -> Result<(), ProviderError> {
        let Some(token) = self.fleet.host_token(cluster, uid) else { return Ok(()) };
        let name = host_token_secret(&self.config.secret_prefix, cluster);
        let put = self.secrets.put_secret_value().secret_id(&name).secret_string(&token).send().await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                use aws_sdk_secretsmanager::types::Tag;
                match self
                    .secrets
                    .create_secret()
                    .name(&name)
                    .description(format!("kafka-fleet: the host token of cluster {cluster}'s broker hosts"))
                    .secret_string(&token)
                    .tags(Tag::builder().key(TAG_MANAGED_BY).value("kafka-fleet").build())
                    .tags(Tag::builder().key(TAG_CLUSTER).value(cluster).build())
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    // Another leader's launch created it first: it holds the same token.
                    Err(e) if e.code() == Some("ResourceExistsException") => Ok(()),
                    Err(e) => Err(secrets_err("secretsmanager:CreateSecret")(e)),
                }
            }
            Err(e) => Err(secrets_err("secretsmanager:PutSecretValue")(e)),
        }
    }

    /// A live instance already launched for `token` (the tag is set atomically at launch).
    async fn find_by_token(&self, cluster: &str, token: &str) -> Result<Option<String>, ProviderError> {
        Ok(self.list(cluster).await?.into_iter().find(|h| h.launch_token.as_deref() == Some(token) && h.state.is_alive()).map(|h| h.instance_id))
    }
}

/// EC2's error codes that no retry of the same request can fix.
const TERMINAL_CODES: &[&str] = &[
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Malformed",
    "InvalidAMIID.Unavailable",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidGroupId.Malformed",
    "InvalidKeyPair.NotFound",
    "InvalidInstanceType",
    "UnauthorizedOperation",
    "AuthFailure",
    "OptInRequired",
    "Unsupported",
    "InvalidIamInstanceProfile.NotFound",
    "NoSuchEntity",
    "InvalidUserData.Malformed",
];

pub(crate) fn classify_code(code: Option<&str>) -> ErrorClass {
    match code {
        Some(c) if TERMINAL_CODES.contains(&c) => ErrorClass::Terminal,
        _ => ErrorClass::Retryable,
    }
}

fn ec2_err<E>(call: &'static str) -> impl Fn(aws_sdk_ec2::error::SdkError<E>) -> ProviderError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    move |e| {
        let class = classify_code(e.code());
        ProviderError::Call { call, message: aws_sdk_ec2::error::DisplayErrorContext(e).to_string(), class }
    }
}

fn secrets_err<E>(call: &'static str) -> impl Fn(aws_sdk_secretsmanager::error::SdkError<E>) -> ProviderError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    move |e| {
        let class = match e.code() {
            Some("AccessDeniedException" | "InvalidParameterException" | "InvalidRequestException" | "EncryptionFailure") => ErrorClass::Terminal,
            _ => ErrorClass::Retryable,
        };
        ProviderError::Call { call, message: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(), class }
    }
}

#[async_trait]
impl HostProvider for Ec2Hosts {
    async fn list(&self, cluster: &str) -> Result<Vec<ObservedHost>, ProviderError> {
        use aws_sdk_ec2::types::{Filter, InstanceStateName as S};
        let filter = Filter::builder().name(format!("tag:{TAG_CLUSTER}")).values(cluster).build();
        let mut pages = self.client.describe_instances().filters(filter).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(ec2_err("ec2:DescribeInstances"))?;
            for r in page.reservations() {
                for i in r.instances() {
                    let state = match i.state().and_then(|s| s.name()) {
                        Some(S::Pending) => HostState::Pending,
                        Some(S::Running) => HostState::Running,
                        Some(S::Stopping) => HostState::Stopping,
                        Some(S::Stopped) => HostState::Stopped,
                        Some(S::ShuttingDown) => HostState::Terminating,
                        _ => HostState::Terminated,
                    };
                    let role = i.tags().iter().find(|t| t.key() == Some(TAG_ROLE)).and_then(|t| t.value()).and_then(HostRole::parse).unwrap_or_default();
                    out.push(ObservedHost {
                        instance_id: i.instance_id().unwrap_or_default().to_string(),
                        availability_zone: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
                        state,
                        launched_ms: i.launch_time().map(|t| t.to_millis().unwrap_or(0)).unwrap_or(0),
                        launch_token: i.tags().iter().find(|t| t.key() == Some(TAG_LAUNCH_TOKEN)).and_then(|t| t.value()).map(str::to_string),
                        private_ip: i.private_ip_address().map(str::to_string),
                        // The listener the fleet manager asks it on (user-data's ports).
                        port: (role == HostRole::Controller).then_some(CONTROLLER_PORT),
                        role,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(out)
    }

    async fn launch(&self, request: LaunchRequest<'_>) -> Result<String, ProviderError> {
        use aws_sdk_ec2::types::{InstanceType, Placement, ResourceType, Tag, TagSpecification};
        let LaunchRequest { cluster, cluster_uid, availability_zone, instance_type, token, role } = request;
        if cluster.is_kraft() && self.config.kafka4_libs.is_none() {
            return Err(ProviderError::Call {
                class: ErrorClass::Terminal,
                call: "ec2:RunInstances",
                message: format!(
                    "cluster {} runs Kafka {} (KRaft): start the fleet manager with --ec2-kafka4-libs DIR (FLEET_EC2_KAFKA4_LIBS: where the hosts' image holds Kafka 4.x's jars, e.g. /opt/kafka4/libs) once the image has them",
                    cluster.name, cluster.kafka_version
                ),
            });
        }
        // A retry of a launch whose answer was lost: the instance made for this token is the
        // answer. (ClientToken below gives the same guarantee on AWS within its idempotency
        // window, including while DescribeInstances has not caught up.)
        if let Some(existing) = self.find_by_token(&cluster.name, token).await? {
            tracing::info!(instance = %existing, token, "launch already done for this token");
            return Ok(existing);
        }
        self.store_host_token(&cluster.name, cluster_uid).await?;
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key(TAG_CLUSTER).value(&cluster.name).build())
            .tags(Tag::builder().key(TAG_MANAGED_BY).value("kafka-fleet").build())
            .tags(Tag::builder().key(TAG_LAUNCH_TOKEN).value(token).build())
            .tags(Tag::builder().key(TAG_ROLE).value(role.as_str()).build())
            .tags(Tag::builder().key("Name").value(format!("{}-{}", cluster.name, role.as_str())).build())
            .build();
        let mut request = self.client.run_instances();
        let source = match (role, &self.config.controller_source) {
            (HostRole::Controller, Some(source)) => source,
            _ => &self.config.source,
        };
        request = match source {
            LaunchSource::Image(image) => request.image_id(image),
            LaunchSource::Template(template) => {
                let spec = aws_sdk_ec2::types::LaunchTemplateSpecification::builder().version("$Default");
                request.launch_template(if template.starts_with("lt-") { spec.launch_template_id(template) } else { spec.launch_template_name(template) }.build())
            }
        };
        let mut request = request
            .instance_type(InstanceType::from(instance_type))
            .min_count(1)
            .max_count(1)
            .placement(Placement::builder().availability_zone(availability_zone).build())
            .user_data(base64::engine::general_purpose::STANDARD.encode(self.user_data(cluster, cluster_uid, role)))
            .tag_specifications(tags)
            .client_token(token);
        match self.config.subnet_ids.get(availability_zone) {
            Some(subnet) => request = request.subnet_id(subnet),
            None if !self.config.subnet_ids.is_empty() => {
                return Err(ProviderError::Call {
                    call: "ec2:RunInstances",
                    message: format!("no subnet for zone `{availability_zone}` (--ec2-subnet has {}): add one, or remove the zone from the cluster", self.config.subnet_ids.keys().cloned().collect::<Vec<_>>().join(", ")),
                    class: ErrorClass::Terminal,
                })
            }
            None => {}
        }
        for sg in &self.config.security_group_ids {
            request = request.security_group_ids(sg);
        }
        if let Some(prefix) = &self.config.instance_profile_prefix {
            let profile = format!("{prefix}{}", fleet_api::spec::cluster_family(&cluster.name));
            request = request.iam_instance_profile(aws_sdk_ec2::types::IamInstanceProfileSpecification::builder().name(profile).build());
        }
        let out = request.send().await.map_err(ec2_err("ec2:RunInstances"))?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .ok_or(ProviderError::Call { call: "ec2:RunInstances", message: "no instance in the answer".into(), class: ErrorClass::Retryable })
    }

    async fn terminate(&self, _cluster: &str, instance_id: &str) -> Result<(), ProviderError> {
        self.client
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(ec2_err("ec2:TerminateInstances"))?;
        Ok(())
    }

    /// A reboot: systemd stops `kafka-bootstrap` with SIGTERM (Kafka's controlled shutdown) and
    /// starts it at boot, which fetches the cluster's properties again; the EBS data stays.
    async fn restart(&self, _cluster: &str, instance_id: &str) -> Result<(), ProviderError> {
        self.client.reboot_instances().instance_ids(instance_id).send().await.map_err(ec2_err("ec2:RebootInstances"))?;
        Ok(())
    }
}


#[cfg(test)]
mod tests {
    use super::parse_subnets;

    #[test]
    fn subnets_parse_from_terraform_output_and_repeated_flags() {
        let parsed = parse_subnets(&["us-east-1a=subnet-0a, us-east-1b=subnet-0b".into(), "us-east-1c=subnet-0c".into()]).expect("parses");
        assert_eq!(parsed.get("us-east-1b").map(String::as_str), Some("subnet-0b"));
        assert_eq!(parsed.len(), 3);
        assert!(parse_subnets(&[]).expect("empty").is_empty());
    }

    #[test]
    fn malformed_subnets_name_the_entry_and_the_form() {
        let err = parse_subnets(&["us-east-1a:subnet-0a".into()]).expect_err("no =");
        assert!(err.contains("`us-east-1a:subnet-0a`") && err.contains("ZONE=SUBNET_ID"), "{err}");
        let err = parse_subnets(&["us-east-1a=sg-0a".into()]).expect_err("not a subnet");
        assert!(err.contains("ZONE=SUBNET_ID"), "{err}");
        let err = parse_subnets(&["us-east-1a=subnet-1,us-east-1a=subnet-2".into()]).expect_err("twice");
        assert!(err.contains("given twice"), "{err}");
    }
}
