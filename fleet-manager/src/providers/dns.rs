//! The DNS zone brokers register in (local routes or Route53), whose stale records the reconciler
//! removes.

use std::path::PathBuf;

use async_trait::async_trait;
use fleet_common::local;

use super::{call_err, ErrorClass, ProviderError};
use crate::plan::DnsRecordSet;


#[async_trait]
pub trait DnsZone: Send + Sync {
    /// The cluster's per-broker record sets.
    async fn list(&self, cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError>;
    async fn delete(&self, record: &DnsRecordSet) -> Result<(), ProviderError>;
}

/// A node's own name: `broker-<id>.…` or a KRaft controller's `controller-<id>.…`.
fn is_node_name(name: &str) -> bool {
    name.starts_with("broker-") || name.starts_with("controller-")
}

/// Whether a set still holds the values it was observed with (none recorded: any).
fn holds_observed(now: &[String], observed: &[String]) -> bool {
    if observed.is_empty() {
        return true;
    }
    let (mut now, mut observed) = (now.to_vec(), observed.to_vec());
    now.sort();
    observed.sort();
    now == observed
}

pub struct NoDns;

#[async_trait]
impl DnsZone for NoDns {
    async fn list(&self, _cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _record: &DnsRecordSet) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// Local routes: `<root>/<name>/<set>.json` (see `fleet_common::local`).
pub struct LocalDns {
    pub root: PathBuf,
}

#[async_trait]
impl DnsZone for LocalDns {
    async fn list(&self, cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError> {
        let suffix = format!(".{cluster}.local");
        let bootstrap = format!("{cluster}.local");
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(call_err("list local routes")(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let name = entry.map_err(call_err("list local routes"))?.file_name().to_string_lossy().into_owned();
            if name == bootstrap || (is_node_name(&name) && name.ends_with(&suffix)) {
                for set in local::read_record(&self.root, &name).map_err(call_err("read local route"))? {
                    out.push(DnsRecordSet { name: set.name, set_identifier: set.set_identifier, values: set.values });
                }
            }
        }
        out.sort_by(|a, b| (&a.name, &a.set_identifier).cmp(&(&b.name, &b.set_identifier)));
        Ok(out)
    }

    async fn delete(&self, record: &DnsRecordSet) -> Result<(), ProviderError> {
        let sets = local::read_record(&self.root, &record.name).map_err(call_err("read local route"))?;
        if let Some(now) = sets.iter().find(|s| s.set_identifier == record.set_identifier) {
            if !holds_observed(&now.values, &record.values) {
                tracing::info!(name = %record.name, set = %record.set_identifier, "left alone: rewritten since it was observed");
                return Ok(());
            }
        }
        let dir = local::record_dir(&self.root, &record.name);
        let path = dir.join(format!("{}.json", record.set_identifier));
        match std::fs::remove_file(&path) {
            Ok(()) => {
                // The name goes with its last set (fails, harmlessly, while others remain).
                let _ = std::fs::remove_dir(&dir);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(call_err("delete local route")(e)),
        }
    }
}

pub struct Route53Dns {
    client: aws_sdk_route53::Client,
    zone: String,
    /// Looked up once: a zone's ID does not change while it exists.
    zone_id: tokio::sync::OnceCell<String>,
}

impl Route53Dns {
    pub async fn new(zone: &str, endpoint_url: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new("us-east-1"));
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self { client: aws_sdk_route53::Client::new(&loader.load().await), zone: zone.to_string(), zone_id: tokio::sync::OnceCell::new() }
    }

    async fn zone_id(&self) -> Result<String, ProviderError> {
        self.zone_id.get_or_try_init(|| self.lookup_zone_id()).await.cloned()
    }

    async fn lookup_zone_id(&self) -> Result<String, ProviderError> {
        fleet_common::route53::zone_id(&self.client, &self.zone).await.map_err(|e| {
            let class = match e {
                fleet_common::route53::ZoneLookupError::NoSuchZone(_) => ErrorClass::Terminal,
                fleet_common::route53::ZoneLookupError::Call(_) => ErrorClass::Retryable,
            };
            ProviderError::Call { call: "route53 zone", message: e.to_string(), class }
        })
    }

    /// The cluster's record sets. Route53 lists names ordered by their reversed labels, so the
    /// cluster's records (`<cluster>.<zone>`, `broker-N.<cluster>.<zone>` and
    /// `controller-N.<cluster>.<zone>`) are one contiguous
    /// run starting at `<cluster>.<zone>`: the listing starts there and stops at the first name
    /// outside it, instead of scanning the whole zone.
    async fn sets(&self, cluster: &str) -> Result<(String, Vec<aws_sdk_route53::types::ResourceRecordSet>), ProviderError> {
        let zone_id = self.zone_id().await?;
        let bootstrap = format!("{cluster}.{}.", self.zone);
        let suffix = format!(".{cluster}.{}.", self.zone);
        let mut out = Vec::new();
        let mut start: Option<(String, Option<aws_sdk_route53::types::RrType>, Option<String>)> = Some((bootstrap.clone(), None, None));
        'pages: loop {
            let mut req = self.client.list_resource_record_sets().hosted_zone_id(&zone_id);
            if let Some((name, ty, id)) = start.take() {
                req = req.start_record_name(name).set_start_record_type(ty).set_start_record_identifier(id);
            }
            let page = req.send().await.map_err(|e| ProviderError::Call {
                class: ErrorClass::Retryable,
                call: "route53:ListResourceRecordSets",
                message: aws_sdk_route53::error::DisplayErrorContext(e).to_string(),
            })?;
            for set in page.resource_record_sets() {
                let name = set.name();
                if name == bootstrap || name.ends_with(&suffix) {
                    if name == bootstrap || is_node_name(name) {
                        out.push(set.clone());
                    }
                } else {
                    break 'pages;
                }
            }
            match (page.is_truncated(), page.next_record_name(), page.next_record_type()) {
                (true, Some(n), Some(t)) => start = Some((n.to_string(), Some(t.clone()), page.next_record_identifier().map(str::to_string))),
                _ => break,
            }
        }
        Ok((zone_id, out))
    }
}

#[async_trait]
impl DnsZone for Route53Dns {
    async fn list(&self, cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError> {
        let (_, sets) = self.sets(cluster).await?;
        Ok(sets
            .iter()
            .filter_map(|s| {
                Some(DnsRecordSet {
                    name: s.name().trim_end_matches('.').to_string(),
                    set_identifier: s.set_identifier()?.to_string(),
                    values: s.resource_records().iter().map(|r| r.value().to_string()).collect(),
                })
            })
            .collect())
    }

    async fn delete(&self, record: &DnsRecordSet) -> Result<(), ProviderError> {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
        let cluster = record
            .name
            .strip_suffix(&format!(".{}", self.zone))
            .map(|n| n.rsplit('.').next().unwrap_or(n).to_string())
            .unwrap_or_default();
        let (zone_id, sets) = self.sets(&cluster).await?;
        let wanted = format!("{}.", record.name);
        let Some(set) = sets.into_iter().find(|s| s.name() == wanted && s.set_identifier() == Some(&record.set_identifier)) else {
            return Ok(());
        };
        let now: Vec<String> = set.resource_records().iter().map(|r| r.value().to_string()).collect();
        if !holds_observed(&now, &record.values) {
            tracing::info!(name = %record.name, set = %record.set_identifier, "left alone: rewritten since it was observed");
            return Ok(());
        }
        let invalid = |e: aws_sdk_route53::error::BuildError| ProviderError::Call { call: "route53:ChangeResourceRecordSets", message: e.to_string(), class: ErrorClass::Terminal };
        let change = Change::builder().action(ChangeAction::Delete).resource_record_set(set).build().map_err(invalid)?;
        let batch = ChangeBatch::builder().changes(change).build().map_err(invalid)?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| ProviderError::Call {
                class: ErrorClass::Retryable,
                call: "route53:ChangeResourceRecordSets",
                message: aws_sdk_route53::error::DisplayErrorContext(e).to_string(),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_record_rewritten_since_it_was_observed_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dns = LocalDns { root: dir.path().to_path_buf() };
        let write = |value: &str| {
            local::upsert_record(dir.path(), &local::LocalRecordSet { name: "controller-2.k4.local".into(), set_identifier: "controller-2".into(), values: vec![value.into()] }).expect("write");
        };
        write("127.0.0.1:40001");
        let observed = dns.list("k4").await.expect("list");
        assert_eq!(observed.len(), 1);
        assert_eq!(observed[0].values, ["127.0.0.1:40001"]);
        // The node's replacement took the ID over and registered its own address meanwhile.
        write("127.0.0.1:40002");
        dns.delete(&observed[0]).await.expect("delete");
        assert_eq!(dns.list("k4").await.expect("list")[0].values, ["127.0.0.1:40002"], "the fresh record stays");
        // Still as observed: removed.
        let observed = dns.list("k4").await.expect("list");
        dns.delete(&observed[0]).await.expect("delete");
        assert!(dns.list("k4").await.expect("list").is_empty());
    }
}
