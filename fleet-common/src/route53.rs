//! Route53 look-ups shared by `kafka-bootstrap` (registering a broker) and the fleet manager
//! (removing stale records).

#[derive(Debug, thiserror::Error)]
pub enum ZoneLookupError {
    #[error("hosted zone `{0}` does not exist in Route53 (create it, or fix dns.zone)")]
    NoSuchZone(String),
    #[error("DNS call route53:ListHostedZonesByName failed: {0}")]
    Call(String),
}

/// The ID of the hosted zone named `zone` (without the `/hostedzone/` prefix).
pub async fn zone_id(client: &aws_sdk_route53::Client, zone: &str) -> Result<String, ZoneLookupError> {
    let wanted = format!("{zone}.");
    let out = client
        .list_hosted_zones_by_name()
        .dns_name(&wanted)
        .send()
        .await
        .map_err(|e| ZoneLookupError::Call(aws_sdk_route53::error::DisplayErrorContext(e).to_string()))?;
    out.hosted_zones()
        .iter()
        .find(|z| z.name() == wanted)
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .ok_or_else(|| ZoneLookupError::NoSuchZone(zone.to_string()))
}
