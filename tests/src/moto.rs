//! `moto` in server mode: the EC2 and Route53 APIs, on loopback.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::ManagedProcess;
use crate::{free_port, repo_root, wait_until, RunDir};

pub struct Moto {
    pub port: u16,
    pub process: ManagedProcess,
    _run: RunDir,
}

/// Static credentials moto accepts; also exported to processes the tests start.
pub const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

pub fn moto_server_bin() -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dev/.venv/bin/moto_server"))
}

impl Moto {
    pub async fn start() -> Self {
        crate::init_logging();
        let run = RunDir::new("moto");
        let port = free_port();
        let mut cmd = Command::new(moto_server_bin());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let process = ManagedProcess::spawn("moto", cmd, &run.path.join("moto.log"))
            .unwrap_or_else(|e| panic!("cannot start {} (run `make moto`): {e}", moto_server_bin().display()));
        let moto = Self { port, process, _run: run };
        let url = moto.endpoint();
        wait_until(&format!("moto at {url}"), Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                let ok = reqwest::get(format!("{url}/moto-api/")).await.map(|r| r.status().is_success()).unwrap_or(false);
                Ok(ok.then_some(()))
            }
        })
        .await;
        moto
    }

    /// An IAM instance profile, through moto's IAM query API (the tests need no IAM SDK for one
    /// call; moto routes by the credential scope and does not check the signature).
    pub async fn create_instance_profile(&self, name: &str) {
        let response = reqwest::Client::new()
            .post(self.endpoint())
            .header("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
            .form(&[("Action", "CreateInstanceProfile"), ("Version", "2010-05-08"), ("InstanceProfileName", name)])
            .send()
            .await
            .expect("moto answers");
        let status = response.status();
        assert!(status.is_success(), "CreateInstanceProfile {name}: {status} {}", response.text().await.unwrap_or_default());
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn sdk_config(&self) -> aws_config::SdkConfig {
        let creds = aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "fleet-tests");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(creds)
            .load()
            .await
    }

    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config().await)
    }

    pub async fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    pub async fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.sdk_config().await)
    }

    /// Launches one instance in `az` (moto wants an AMI from its own catalogue); returns its ID.
    pub async fn run_instance(&self, az: &str, cluster: &str) -> String {
        let ec2 = self.ec2().await;
        let images = ec2.describe_images().send().await.expect("moto DescribeImages");
        let ami = images.images().first().and_then(|i| i.image_id()).expect("moto has an AMI").to_string();
        let tag = aws_sdk_ec2::types::Tag::builder().key("fleet:cluster").value(cluster).build();
        let tags = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
            .tags(tag)
            .build();
        let out = ec2
            .run_instances()
            .image_id(ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .placement(aws_sdk_ec2::types::Placement::builder().availability_zone(az).build())
            .tag_specifications(tags)
            .send()
            .await
            .expect("moto RunInstances");
        out.instances().first().and_then(|i| i.instance_id()).expect("an instance id").to_string()
    }

    pub async fn terminate(&self, instance_id: &str) {
        self.ec2().await.terminate_instances().instance_ids(instance_id).send().await.expect("moto TerminateInstances");
    }

    /// Creates a hosted zone; returns its ID.
    pub async fn create_zone(&self, zone: &str) -> String {
        let out = self
            .route53()
            .await
            .create_hosted_zone()
            .name(zone)
            .caller_reference(crate::unique("zone"))
            .send()
            .await
            .expect("moto CreateHostedZone");
        out.hosted_zone().map(|z| z.id().trim_start_matches("/hostedzone/").to_string()).expect("zone id")
    }

    /// `(name, type, set identifier, values)` of every record in the zone.
    pub async fn records(&self, zone_id: &str) -> Vec<(String, String, Option<String>, Vec<String>)> {
        let out = self
            .route53()
            .await
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .send()
            .await
            .expect("moto ListResourceRecordSets");
        out.resource_record_sets()
            .iter()
            .map(|r| {
                (
                    r.name().trim_end_matches('.').to_string(),
                    r.r#type().as_str().to_string(),
                    r.set_identifier().map(str::to_string),
                    r.resource_records().iter().map(|v| v.value().to_string()).collect(),
                )
            })
            .collect()
    }
}
