//! Client reports: each producer or consumer instance's last report, kept until it expires. Not
//! resources (no revision, no journal): they are observations clients send every few seconds.

use sqlx::Row;

use super::{now_ms, Store, StoreError};
use fleet_api::client::{ClientReport, ClientView};

impl Store {
    /// Stores (replaces) an instance's report, kept for `ttl_ms`.
    pub async fn put_client_report(&self, report: &ClientReport, ttl_ms: i64) -> Result<ClientView, StoreError> {
        let now = now_ms();
        let text = serde_json::to_string(report).map_err(|e| StoreError::Unreadable { what: "client report".into(), message: e.to_string() })?;
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO client_reports (instance, route, report, reported_ms, expires_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (instance) DO UPDATE SET route = excluded.route, report = excluded.report, reported_ms = excluded.reported_ms, expires_ms = excluded.expires_ms",
        )
        .bind(&report.instance)
        .bind(&report.route)
        .bind(&text)
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(ClientView { report: report.clone(), reported_ms: now, expires_ms: now + ttl_ms })
    }

    /// Reports that have not expired, of one route or all, by route then instance.
    pub async fn client_reports(&self, route: Option<&str>) -> Result<Vec<ClientView>, StoreError> {
        let rows = sqlx::query(
            "SELECT instance, report, reported_ms, expires_ms FROM client_reports WHERE ($1 = '' OR route = $1) AND expires_ms > $2 ORDER BY route, instance LIMIT 10000",
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
                Ok(ClientView { report, reported_ms: row.try_get("reported_ms")?, expires_ms: row.try_get("expires_ms")? })
            })
            .collect()
    }

    /// Drops expired reports (the leader calls it now and then).
    pub async fn prune_client_reports(&self) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        Ok(sqlx::query("DELETE FROM client_reports WHERE expires_ms <= $1").bind(now_ms()).execute(&self.pool).await?.rows_affected())
    }
}
