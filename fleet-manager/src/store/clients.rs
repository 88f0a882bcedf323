//! Client reports: each producer or consumer instance's last report, kept until it expires. Not
//! resources (no revision, no journal): they are observations clients send every few seconds.
//!
//! An instance is bound to the token that sent its first report and to a credential answered to
//! that report: while its report is live, only that token presenting that credential may replace
//! it, so one client cannot speak for another instance (and so decide a failover for it).

use sqlx::Row;

use super::{now_ms, Store, StoreError};
use fleet_api::client::{ClientReport, ClientView};

/// What storing a report came to.
#[derive(Debug)]
pub enum ReportOutcome {
    Stored(ClientView),
    /// The instance is bound to another token, or the credential is missing or wrong.
    Forbidden(String),
    /// The token already has its maximum of live instances.
    TooMany(String),
}

fn credential_digest(credential: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(credential.as_bytes()))
}

impl Store {
    /// Stores (replaces) an instance's report, kept for `ttl_ms`, for `token` (the configured
    /// token's name) presenting `credential`.
    pub async fn put_client_report(
        &self,
        report: &ClientReport,
        ttl_ms: i64,
        token: &str,
        credential: Option<&str>,
        max_instances_per_token: i64,
    ) -> Result<ReportOutcome, StoreError> {
        let now = now_ms();
        let text = serde_json::to_string(report).map_err(|e| StoreError::Unreadable { what: "client report".into(), message: e.to_string() })?;
        let presented = credential.map(credential_digest).unwrap_or_default();
        let _writer = self.writer().await;
        // Conditional writes, no read-then-write: a report replaces a live one only with its
        // token and credential, and a new instance is claimed only where none is live.
        let updated = sqlx::query(
            "UPDATE client_reports SET route = $2, report = $3, reported_ms = $4, expires_ms = $5 \
             WHERE instance = $1 AND expires_ms > $4 AND token = $6 AND credential = $7 AND credential <> ''",
        )
        .bind(&report.instance)
        .bind(&report.route)
        .bind(&text)
        .bind(now)
        .bind(now + ttl_ms)
        .bind(token)
        .bind(&presented)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(ReportOutcome::Stored(ClientView { report: report.clone(), reported_ms: now, expires_ms: now + ttl_ms, credential: None }));
        }
        let instance = fleet_common::kafka_config::shown(&report.instance);
        let owner: Option<String> = sqlx::query("SELECT token FROM client_reports WHERE instance = $1 AND expires_ms > $2")
            .bind(&report.instance)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get("token"))
            .transpose()?;
        match owner {
            Some(owner) if owner != token => {
                return Ok(ReportOutcome::Forbidden(format!(
                    "instance `{instance}` reports through another token: an instance is bound to the token of its first report"
                )))
            }
            Some(_) => {
                return Ok(ReportOutcome::Forbidden(format!(
                    "instance `{instance}`: send the credential its first report was answered with (header X-Fleet-Instance-Credential)"
                )))
            }
            None => {}
        }
        let live: i64 = sqlx::query("SELECT COUNT(*) FROM client_reports WHERE token = $1 AND expires_ms > $2")
            .bind(token)
            .bind(now)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        if live >= max_instances_per_token {
            return Ok(ReportOutcome::TooMany(format!(
                "token `{token}` already reports for {live} live instances, its limit (--max-client-instances); wait for stale ones to expire ({} s) or raise the limit",
                ttl_ms / 1000
            )));
        }
        let fresh = crate::credentials::random_key().map_err(|e| StoreError::Unreadable { what: "/dev/urandom".into(), message: e.to_string() })?;
        let claimed = sqlx::query(
            "INSERT INTO client_reports (instance, route, report, reported_ms, expires_ms, token, credential) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (instance) DO UPDATE SET route = excluded.route, report = excluded.report, reported_ms = excluded.reported_ms, \
             expires_ms = excluded.expires_ms, token = excluded.token, credential = excluded.credential WHERE client_reports.expires_ms <= $4",
        )
        .bind(&report.instance)
        .bind(&report.route)
        .bind(&text)
        .bind(now)
        .bind(now + ttl_ms)
        .bind(token)
        .bind(credential_digest(&fresh))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(ReportOutcome::Forbidden(format!("instance `{instance}` was claimed by another report at the same moment")));
        }
        Ok(ReportOutcome::Stored(ClientView { report: report.clone(), reported_ms: now, expires_ms: now + ttl_ms, credential: Some(fresh) }))
    }

    /// Reports that have not expired, of one route (every one of them: operations decide on
    /// them) or of all routes, by route then instance.
    pub async fn client_reports(&self, route: Option<&str>) -> Result<Vec<ClientView>, StoreError> {
        let rows = sqlx::query(
            "SELECT instance, report, reported_ms, expires_ms FROM client_reports WHERE ($1 = '' OR route = $1) AND expires_ms > $2 ORDER BY route, instance",
        )
        .bind(route.unwrap_or(""))
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let instance: String = row.try_get("instance")?;
                let text: String = row.try_get("report")?;
                let report = serde_json::from_str(&text).map_err(|e| StoreError::Unreadable { what: format!("client report of {instance}"), message: e.to_string() })?;
                Ok(ClientView { report, reported_ms: row.try_get("reported_ms")?, expires_ms: row.try_get("expires_ms")?, credential: None })
            })
            .collect()
    }

    /// Drops expired reports (the leader calls it now and then).
    pub async fn prune_client_reports(&self) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        Ok(sqlx::query("DELETE FROM client_reports WHERE expires_ms <= $1").bind(now_ms()).execute(&self.pool).await?.rows_affected())
    }
}
