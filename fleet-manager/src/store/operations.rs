//! Operations (scale-up, ...) in the store: created by the API, advanced by the leader in fenced
//! transactions that also carry the operation's effects on specs (a raised broker count, new
//! partition counts) and its journal entries, so a phase and what it did are written together.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, NewJournalEntry, Store, StoreError, Tx};
use crate::spec::{self, Kind};
use fleet_api::operation::{Operation, OperationSpec, OperationStatus};
use fleet_api::route::RouteStatus;

/// Spec changes an operation's phase makes, written with its status.
#[derive(Clone, Debug, Default)]
pub struct OperationEffects {
    /// Declare this many brokers on the operation's cluster.
    pub raise_brokers: Option<u32>,
    /// A decommission's end: the cluster's declared brokers lowered to this.
    pub lower_brokers: Option<u32>,
    /// Topic -> partitions to declare (never lowered).
    pub topic_partitions: BTreeMap<String, u32>,
    /// Resources to declare when absent (a failover's fresh cluster, its topics); one that
    /// exists is left as it is, so a phase written twice declares once.
    pub declare: Vec<spec::Declared>,
    /// Route -> the cluster its binding points at.
    pub point_route: Option<(String, String)>,
    /// Route -> its new status.
    pub route_status: Option<(String, RouteStatus)>,
    /// Clusters to tear down (a fallback's `retain: teardown`, a cancelled build). One that a
    /// route still points at is left alone.
    pub delete_clusters: Vec<String>,
}

impl OperationEffects {
    fn changes_specs(&self) -> bool {
        self.raise_brokers.is_some()
            || self.lower_brokers.is_some()
            || !self.topic_partitions.is_empty()
            || !self.declare.is_empty()
            || self.point_route.is_some()
            || !self.delete_clusters.is_empty()
    }
}

/// A one-shot command on an operation (Strimzi's annotations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationCommand {
    Approve,
    Cancel,
}

const COLUMNS: &str = "id, cluster, spec, status, approved, cancel_requested, created_ms, updated_ms, created_by";

impl Store {
    fn row_to_operation(row: &AnyRow) -> Result<Operation, StoreError> {
        let id: String = row.try_get("id")?;
        let spec: String = row.try_get("spec")?;
        let status: String = row.try_get("status")?;
        let unreadable = |e: serde_json::Error| StoreError::Unreadable { what: format!("operation {id}"), message: e.to_string() };
        Ok(Operation {
            spec: serde_json::from_str::<OperationSpec>(&spec).map_err(unreadable)?,
            status: serde_json::from_str::<OperationStatus>(&status).map_err(unreadable)?,
            cluster: row.try_get("cluster")?,
            approved: row.try_get::<i64, _>("approved")? != 0,
            cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
            created_by: row.try_get("created_by")?,
            id,
        })
    }

    /// Stores a new operation; refused (conflict on `cluster`) while another one on the same
    /// cluster has not ended. Returns it with its ID.
    pub async fn create_operation(&self, cluster: &str, spec: &OperationSpec, actor: &str) -> Result<Operation, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::lock_for_write(&mut tx).await?;
        let running: Option<String> = sqlx::query("SELECT id FROM operations WHERE cluster = $1 AND active = 1")
            .bind(cluster)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?;
        if let Some(id) = running {
            return Err(StoreError::Conflict {
                resource: format!("KafkaCluster/{cluster}"),
                message: format!("cluster: operation {id} is still running on it; wait for it (fleetctl get operations) or cancel it"),
            });
        }
        // One failover or fallback per route, whichever cluster it runs on.
        if let Some(route) = spec.route() {
            if let Some(id) = Self::operation_moving(&mut tx, route).await? {
                return Err(StoreError::Conflict {
                    resource: format!("Route/{route}"),
                    message: format!("route: operation {id} is moving it; wait for it (fleetctl get operations) or cancel it"),
                });
            }
        }
        let seq = Self::bump_counter(&mut tx, "operation_seq").await?;
        let revision = Self::next_revision(&mut tx).await?;
        let now = now_ms();
        let kind = spec.kind();
        let id = format!("{}-{cluster}-{seq}", kind_slug(kind));
        let status = OperationStatus::new(now);
        sqlx::query(
            "INSERT INTO operations (id, cluster, kind, spec, status, phase, active, approved, cancel_requested, revision, created_ms, updated_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, 0, 0, $7, $8, $8, $9)",
        )
        .bind(&id)
        .bind(cluster)
        .bind(kind)
        .bind(serde_json::to_string(spec).unwrap_or_default())
        .bind(serde_json::to_string(&status).unwrap_or_default())
        .bind(status.phase.as_str())
        .bind(revision)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        Self::append_in(
            &mut tx,
            &NewJournalEntry {
                actor: actor.to_string(),
                cluster: cluster.to_string(),
                action: format!("create {kind}"),
                detail: serde_json::json!({ "operation": id, "spec": spec }),
                outcome: "ok",
                message: format!("operation {id} created"),
            },
        )
        .await?;
        tx.commit().await?;
        self.operation(&id).await
    }

    /// The failover or fallback under way on `route`, if any.
    pub(super) async fn operation_moving(tx: &mut Tx<'_>, route: &str) -> Result<Option<String>, StoreError> {
        let rows = sqlx::query("SELECT id, spec FROM operations WHERE active = 1 AND kind IN ('Failover', 'Fallback')").fetch_all(&mut **tx).await?;
        for row in rows {
            let spec: Option<OperationSpec> = serde_json::from_str(&row.try_get::<String, _>(1)?).ok();
            if spec.as_ref().and_then(|o| o.route()) == Some(route) {
                return Ok(Some(row.try_get(0)?));
            }
        }
        Ok(None)
    }

    async fn bump_counter(tx: &mut Tx<'_>, name: &str) -> Result<i64, StoreError> {
        let updated = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1").bind(name).execute(&mut **tx).await?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 1)").bind(name).execute(&mut **tx).await?;
        }
        let row = sqlx::query("SELECT value FROM counters WHERE name = $1").bind(name).fetch_one(&mut **tx).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    pub async fn operation(&self, id: &str) -> Result<Operation, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM operations WHERE id = $1");
        match sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await? {
            Some(row) => Self::row_to_operation(&row),
            None => Err(StoreError::NotFound { kind: "operation", name: id.to_string() }),
        }
    }

    /// Newest first.
    pub async fn operations(&self, cluster: Option<&str>, active_only: bool) -> Result<Vec<Operation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM operations WHERE ($1 = '' OR cluster = $1) AND ($2 = 0 OR active = 1) ORDER BY created_ms DESC, id DESC LIMIT 500"
        );
        let rows = sqlx::query(&sql).bind(cluster.unwrap_or("")).bind(i64::from(active_only)).fetch_all(&self.pool).await?;
        rows.iter().map(Self::row_to_operation).collect()
    }

    /// Clusters with an operation that has not ended (the leader drives them).
    pub async fn clusters_with_active_operations(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT cluster FROM operations WHERE active = 1").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    /// Records an approve or cancel for the leader to act on.
    pub async fn command_operation(&self, id: &str, command: OperationCommand, actor: &str) -> Result<Operation, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::lock_for_write(&mut tx).await?;
        let revision = Self::next_revision(&mut tx).await?;
        let column = match command {
            OperationCommand::Approve => "approved",
            OperationCommand::Cancel => "cancel_requested",
        };
        let sql = format!("UPDATE operations SET {column} = 1, revision = $1, updated_ms = $2 WHERE id = $3 AND active = 1");
        let done = sqlx::query(&sql).bind(revision).bind(now_ms()).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict { resource: format!("operation/{id}"), message: "it has ended (or does not exist)".into() });
        }
        let cluster: String = sqlx::query("SELECT cluster FROM operations WHERE id = $1").bind(id).fetch_one(&mut *tx).await?.try_get(0)?;
        Self::append_in(
            &mut tx,
            &NewJournalEntry {
                actor: actor.to_string(),
                cluster,
                action: format!("{column} operation"),
                detail: serde_json::json!({ "operation": id }),
                outcome: "ok",
                message: format!("operation {id}: {column}"),
            },
        )
        .await?;
        tx.commit().await?;
        self.operation(id).await
    }

    /// The leader's write of an operation's new status, with the phase's effects on specs and its
    /// journal entries, in one fenced transaction.
    pub async fn advance_operation(
        &self,
        epoch: i64,
        op: &Operation,
        status: &OperationStatus,
        effects: &OperationEffects,
        journal: &[NewJournalEntry],
    ) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::check_fence(&mut tx, epoch).await?;
        Self::lock_for_write(&mut tx).await?;
        let revision = if effects.changes_specs() { Some(Self::next_revision(&mut tx).await?) } else { None };
        let now = now_ms();
        if let (Some(n), Some(rev)) = (effects.raise_brokers, revision) {
            Self::edit_spec(&mut tx, Kind::KafkaCluster, &op.cluster, rev, now, |spec| {
                let current = spec.get("brokers").and_then(|v| v.as_i64()).unwrap_or(0);
                if current < i64::from(n) {
                    spec["brokers"] = serde_json::json!(n);
                    true
                } else {
                    false
                }
            })
            .await?;
        }
        if let (Some(n), Some(rev)) = (effects.lower_brokers, revision) {
            Self::edit_spec(&mut tx, Kind::KafkaCluster, &op.cluster, rev, now, |spec| {
                let current = spec.get("brokers").and_then(|v| v.as_i64()).unwrap_or(0);
                if current > i64::from(n) {
                    spec["brokers"] = serde_json::json!(n);
                    true
                } else {
                    false
                }
            })
            .await?;
        }
        if let Some(rev) = revision {
            for (topic, n) in &effects.topic_partitions {
                Self::edit_spec(&mut tx, Kind::Topic, &spec::topic_key(&op.cluster, topic), rev, now, |spec| {
                    let current = spec.get("partitions").and_then(|v| v.as_i64()).unwrap_or(0);
                    if current < i64::from(*n) {
                        spec["partitions"] = serde_json::json!(n);
                        true
                    } else {
                        false
                    }
                })
                .await?;
            }
        }
        if let Some(rev) = revision {
            for d in &effects.declare {
                Self::declare_if_absent(&mut tx, d, rev, now).await?;
            }
            if let Some((route, cluster)) = &effects.point_route {
                Self::edit_spec(&mut tx, Kind::Route, route, rev, now, |spec| {
                    if spec.get("cluster").and_then(|c| c.as_str()) == Some(cluster.as_str()) {
                        return false;
                    }
                    spec["cluster"] = serde_json::json!(cluster);
                    true
                })
                .await?;
                sqlx::query("UPDATE resources SET cluster = $1 WHERE kind = 'Route' AND name = $2").bind(cluster).bind(route).execute(&mut *tx).await?;
            }
            for cluster in &effects.delete_clusters {
                let pointed: Option<String> = sqlx::query("SELECT name FROM resources WHERE kind = 'Route' AND cluster = $1")
                    .bind(cluster)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get::<String, _>(0))
                    .transpose()?;
                if let Some(route) = pointed {
                    tracing::warn!(cluster, route, "not torn down: a route points at it");
                    continue;
                }
                sqlx::query("UPDATE resources SET deleting = 1, revision = $1, updated_ms = $2 WHERE (kind = 'KafkaCluster' AND name = $3) OR (kind = 'Topic' AND cluster = $3)")
                    .bind(rev)
                    .bind(now)
                    .bind(cluster)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if let Some((route, rs)) = &effects.route_status {
            Self::put_route_status_in(&mut tx, route, rs).await?;
        }
        let active = i64::from(!status.phase.is_terminal());
        sqlx::query("UPDATE operations SET status = $1, phase = $2, active = $3, updated_ms = $4 WHERE id = $5")
            .bind(serde_json::to_string(status).unwrap_or_default())
            .bind(status.phase.as_str())
            .bind(active)
            .bind(now)
            .bind(&op.id)
            .execute(&mut *tx)
            .await?;
        for e in journal {
            Self::append_in(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn declare_if_absent(tx: &mut Tx<'_>, d: &spec::Declared, revision: i64, now: i64) -> Result<(), StoreError> {
        let key = d.key();
        let exists = sqlx::query("SELECT 1 FROM resources WHERE kind = $1 AND name = $2").bind(d.kind().as_str()).bind(&key).fetch_optional(&mut **tx).await?;
        if exists.is_some() {
            return Ok(());
        }
        Self::insert_resource(tx, d, revision, now).await
    }

    async fn put_route_status_in(tx: &mut Tx<'_>, route: &str, status: &RouteStatus) -> Result<(), StoreError> {
        Self::put_by_route(tx, "route_status", "status", route, status).await
    }

    /// Route -> status as failovers left it (routes never moved have none).
    pub async fn route_statuses(&self) -> Result<BTreeMap<String, RouteStatus>, StoreError> {
        self.json_by_route("route_status", "status", "route status").await
    }

    /// Rewrites one stored spec through `edit` (which says whether it changed anything), bumping
    /// its generation. A resource that is gone or being deleted is left alone.
    async fn edit_spec(tx: &mut Tx<'_>, kind: Kind, key: &str, revision: i64, now: i64, edit: impl FnOnce(&mut serde_json::Value) -> bool) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT spec FROM resources WHERE kind = $1 AND name = $2 AND deleting = 0")
            .bind(kind.as_str())
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else { return Ok(()) };
        let text: String = row.try_get(0)?;
        let mut spec: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| StoreError::Unreadable { what: format!("{} {key}", kind.as_str()), message: e.to_string() })?;
        if !edit(&mut spec) {
            return Ok(());
        }
        sqlx::query("UPDATE resources SET spec = $1, generation = generation + 1, revision = $2, updated_ms = $3 WHERE kind = $4 AND name = $5")
            .bind(spec.to_string())
            .bind(revision)
            .bind(now)
            .bind(kind.as_str())
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

fn kind_slug(kind: &str) -> &'static str {
    match kind {
        "ScaleUp" => "scale-up",
        "Failover" => "failover",
        "Fallback" => "fallback",
        "Decommission" => "decommission",
        "Rebalance" => "rebalance",
        _ => "operation",
    }
}
