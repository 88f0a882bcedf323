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
    /// Route -> its new status (its `cluster` is where its binding points).
    pub route_status: Option<(String, RouteStatus)>,
    /// Clusters to tear down (a fallback's `retain: teardown`, a cancelled build). One that a
    /// route still points at is left alone.
    pub delete_clusters: Vec<String>,
    /// Write this status only if no cancel has been asked for (the switch of a failover):
    /// [`StoreError::CancelRequested`] otherwise, nothing written.
    pub unless_cancelled: bool,
    /// Resume a paused operation: its `pausedBy` (this ID) is cleared.
    pub resume: Option<String>,
}

impl OperationEffects {
    /// Whether recording these effects writes anything besides the operation's status.
    pub fn writes_anything(&self) -> bool {
        self.changes_specs() || self.resume.is_some() || self.unless_cancelled
    }

    fn changes_specs(&self) -> bool {
        self.raise_brokers.is_some()
            || self.lower_brokers.is_some()
            || !self.topic_partitions.is_empty()
            || !self.declare.is_empty()
            || self.route_status.is_some()
            || !self.delete_clusters.is_empty()
    }
}

/// A one-shot command on an operation (Strimzi's annotations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationCommand {
    Approve,
    Cancel,
}

const COLUMNS: &str = "id, cluster, spec, status, approved, cancel_requested, created_ms, updated_ms, created_by, paused_by";

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
            paused_by: Some(row.try_get::<String, _>("paused_by")?).filter(|p| !p.is_empty()),
            id,
        })
    }

    /// Stores a new operation. A maintenance operation (scale-up, decommission, rebalance) is
    /// refused while any other operation runs on its cluster. A failover or fallback is refused
    /// only while another one moves the same route: maintenance on the cluster it leaves steps
    /// aside (it is paused, in this same write). Returns it with its ID.
    pub async fn create_operation(&self, cluster: &str, spec: &OperationSpec, actor: &str) -> Result<Operation, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::lock_for_write(&mut tx).await?;
        let id = Self::create_operation_in(&mut tx, cluster, spec, actor).await?;
        tx.commit().await?;
        self.operation(&id).await
    }

    /// [`Store::create_operation`] inside a write transaction; returns the new ID.
    pub(super) async fn create_operation_in(tx: &mut Tx<'_>, cluster: &str, spec: &OperationSpec, actor: &str) -> Result<String, StoreError> {
        let active = Self::active_operations_in(tx).await?;
        let emergency = spec.route().is_some();
        // One failover or fallback per route, whichever cluster it runs on.
        if let Some(route) = spec.route() {
            if let Some(other) = active.iter().find(|o| o.spec.route() == Some(route)) {
                return Err(StoreError::Conflict {
                    resource: format!("Route/{route}"),
                    message: format!("route: operation {} is moving it; wait for it (fleetctl get operations) or cancel it", other.id),
                });
            }
        }
        let on_cluster: Vec<&Operation> = active.iter().filter(|o| o.cluster == cluster).collect();
        if !emergency {
            if let Some(other) = on_cluster.first() {
                return Err(StoreError::Conflict {
                    resource: format!("KafkaCluster/{cluster}"),
                    message: format!("cluster: operation {} is still running on it; wait for it (fleetctl get operations) or cancel it", other.id),
                });
            }
        }
        let seq = Self::bump_counter(tx, "operation_seq").await?;
        let revision = Self::next_revision(tx).await?;
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
        .execute(&mut **tx)
        .await?;
        Self::append_in(
            tx,
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
        if emergency {
            // Maintenance on the cluster the route leaves steps aside for it.
            for other in on_cluster.iter().filter(|o| !o.is_emergency() && o.paused_by.is_none()) {
                sqlx::query("UPDATE operations SET paused_by = $1, revision = $2, updated_ms = $3 WHERE id = $4 AND active = 1")
                    .bind(&id)
                    .bind(revision)
                    .bind(now)
                    .bind(&other.id)
                    .execute(&mut **tx)
                    .await?;
                Self::append_in(
                    tx,
                    &NewJournalEntry {
                        actor: actor.to_string(),
                        cluster: cluster.to_string(),
                        action: "pause operation".into(),
                        detail: serde_json::json!({ "operation": other.id, "for": id }),
                        outcome: "ok",
                        message: format!("{} ({}, {}) pauses for {id}: its running batch finishes and its throttles are cleared; it plans again afterwards", other.id, other.spec.kind(), other.status.phase.as_str()),
                    },
                )
                .await?;
            }
        }
        Ok(id)
    }

    /// Every operation that has not ended, inside a transaction.
    pub(super) async fn active_operations_in(tx: &mut Tx<'_>) -> Result<Vec<Operation>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM operations WHERE active = 1 ORDER BY created_ms, id");
        let rows = sqlx::query(&sql).fetch_all(&mut **tx).await?;
        rows.iter().map(Self::row_to_operation).collect()
    }

    /// Route -> status, inside a transaction.
    pub(super) async fn route_statuses_in(tx: &mut Tx<'_>) -> Result<BTreeMap<String, RouteStatus>, StoreError> {
        let rows = sqlx::query("SELECT route, status FROM route_status").fetch_all(&mut **tx).await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let route: String = row.try_get(0)?;
            let text: String = row.try_get(1)?;
            let value = serde_json::from_str(&text).map_err(|e| StoreError::Unreadable { what: format!("route status of {route}"), message: e.to_string() })?;
            out.insert(route, value);
        }
        Ok(out)
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
        let current = {
            let sql = format!("SELECT {COLUMNS} FROM operations WHERE id = $1");
            match sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? {
                Some(row) => Self::row_to_operation(&row)?,
                None => return Err(StoreError::NotFound { kind: "operation", name: id.to_string() }),
            }
        };
        let revision = Self::next_revision(&mut tx).await?;
        let column = match command {
            OperationCommand::Approve => "approved",
            OperationCommand::Cancel => "cancel_requested",
        };
        // A compare-and-set on the phase: a cancel is taken only in a phase it applies to, as the
        // store has it now (the leader's switch checks for a cancel in its own write).
        let phases: Vec<&'static str> = match command {
            OperationCommand::Cancel => fleet_api::operation::cancellable_phases(&current.spec).iter().map(|p| p.as_str()).collect(),
            OperationCommand::Approve => Vec::new(),
        };
        let guard = if phases.is_empty() { String::new() } else { format!(" AND phase IN ({})", phases.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")) };
        let sql = format!("UPDATE operations SET {column} = 1, revision = $1, updated_ms = $2 WHERE id = $3 AND active = 1{guard}");
        let done = sqlx::query(&sql).bind(revision).bind(now_ms()).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() != 1 {
            let why = if current.status.phase.is_terminal() {
                format!("it has ended ({})", current.status.phase.as_str())
            } else {
                format!("it is {}, where a {column} is not taken", current.status.phase.as_str())
            };
            return Err(StoreError::Conflict { resource: format!("operation/{id}"), message: why });
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
        if effects.unless_cancelled {
            // The switch is a compare-and-set against a cancel: whichever is written first wins.
            let cancelled = sqlx::query("SELECT cancel_requested FROM operations WHERE id = $1").bind(&op.id).fetch_optional(&mut *tx).await?;
            if cancelled.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(0) != 0 {
                return Err(StoreError::CancelRequested { id: op.id.clone() });
            }
        }
        let revision = if effects.changes_specs() { Some(Self::next_revision(&mut tx).await?) } else { None };
        let now = now_ms();
        if let Some(rev) = revision {
            // Operations never write the user's spec: what they change is an override of it.
            if let Some(n) = effects.raise_brokers {
                let reason = format!("{} raised brokers to {n}: write brokers: {n} in the cluster's document", op.id);
                Self::set_effective(&mut tx, Kind::KafkaCluster, &op.cluster, "brokers", i64::from(n), &op.id, &reason, Raise::Only, rev, now).await?;
            }
            if let Some(n) = effects.lower_brokers {
                let reason = format!("{} retired brokers down to {n}: write brokers: {n} in the cluster's document", op.id);
                Self::set_effective(&mut tx, Kind::KafkaCluster, &op.cluster, "brokers", i64::from(n), &op.id, &reason, Raise::Any, rev, now).await?;
            }
            for (topic, n) in &effects.topic_partitions {
                let reason = format!("{} added partitions up to {n}: write partitions: {n} in the topic's document", op.id);
                Self::set_effective(&mut tx, Kind::Topic, &spec::topic_key(&op.cluster, topic), "partitions", i64::from(*n), &op.id, &reason, Raise::Only, rev, now).await?;
            }
            for d in &effects.declare {
                Self::declare_if_absent(&mut tx, d, rev, now).await?;
            }
            let statuses = Self::route_statuses_in(&mut tx).await?;
            for cluster in &effects.delete_clusters {
                // A cluster a route is on (or, never moved, is declared on) is left alone.
                let routes = sqlx::query("SELECT name, cluster FROM resources WHERE kind = 'Route'").fetch_all(&mut *tx).await?;
                let mut in_use = None;
                for r in routes {
                    let (name, home): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let on = match statuses.get(&name) {
                        Some(s) if effects.route_status.as_ref().is_some_and(|(n, _)| *n == name) => effects.route_status.as_ref().map(|(_, s)| s.cluster.clone()).unwrap_or_else(|| s.cluster.clone()),
                        Some(s) => s.cluster.clone(),
                        None => home,
                    };
                    if on == *cluster {
                        in_use = Some(name);
                    }
                }
                if let Some(route) = in_use {
                    tracing::warn!(cluster, route, "not torn down: a route is on it");
                    continue;
                }
                sqlx::query("UPDATE resources SET deleting = 1, revision = $1, updated_ms = $2 WHERE (kind = 'KafkaCluster' AND name = $3) OR (kind = 'Topic' AND cluster = $3)")
                    .bind(rev)
                    .bind(now)
                    .bind(cluster)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((route, rs)) = &effects.route_status {
                Self::put_route_status_in(&mut tx, route, &RouteStatus { revision: rev, ..rs.clone() }).await?;
            }
        }
        if let Some(resume) = &effects.resume {
            // The failover it stepped aside for has ended.
            sqlx::query("UPDATE operations SET paused_by = '' WHERE id = $1 AND paused_by = $2").bind(&op.id).bind(resume).execute(&mut *tx).await?;
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

    pub(super) async fn put_route_status_in(tx: &mut Tx<'_>, route: &str, status: &RouteStatus) -> Result<(), StoreError> {
        Self::put_by_route(tx, "route_status", "status", route, status).await
    }

    /// Route -> status as failovers left it (routes never moved have none).
    pub async fn route_statuses(&self) -> Result<BTreeMap<String, RouteStatus>, StoreError> {
        self.json_by_route("route_status", "status", "route status").await
    }

    /// Sets what the fleet works from for one top-level spec field of a resource to `value`,
    /// leaving the user's spec alone: an override, or none when the user's spec already says
    /// `value`. With [`Raise::Only`] a value the user's spec already reaches is left as it is.
    /// A resource that is gone or being deleted is left alone.
    #[allow(clippy::too_many_arguments)]
    async fn set_effective(tx: &mut Tx<'_>, kind: Kind, key: &str, field: &str, value: i64, operation: &str, reason: &str, how: Raise, revision: i64, now: i64) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT spec, overrides FROM resources WHERE kind = $1 AND name = $2 AND deleting = 0")
            .bind(kind.as_str())
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else { return Ok(()) };
        let unreadable = |e: serde_json::Error| StoreError::Unreadable { what: format!("{} {key}", kind.as_str()), message: e.to_string() };
        let spec: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>(0)?).map_err(unreadable)?;
        let mut overrides: spec::Overrides = serde_json::from_str(&row.try_get::<String, _>(1)?).map_err(unreadable)?;
        let user = spec.get(field).and_then(|v| v.as_i64()).unwrap_or(0);
        let before = overrides.clone();
        if user == value || (how == Raise::Only && user > value) {
            overrides.remove(field);
        } else {
            overrides.insert(field.to_string(), spec::SpecOverride { field: field.to_string(), value: serde_json::json!(value), operation: operation.to_string(), reason: reason.to_string(), at_ms: now });
        }
        if overrides == before {
            return Ok(());
        }
        sqlx::query("UPDATE resources SET overrides = $1, revision = $2, updated_ms = $3 WHERE kind = $4 AND name = $5")
            .bind(serde_json::to_string(&overrides).unwrap_or_else(|_| "{}".into()))
            .bind(revision)
            .bind(now)
            .bind(kind.as_str())
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Whether an operation's value may lower what the user declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Raise {
    /// A scale-up: the user's larger value stands.
    Only,
    /// A decommission's retirement: the count goes to the value.
    Any,
}

fn kind_slug(kind: &str) -> &'static str {
    match kind {
        "ScaleUp" => "scale-up",
        "Failover" => "failover",
        "Fallback" => "fallback",
        "Decommission" => "decommission",
        "Rebalance" => "rebalance",
        "ConfigRollout" => "rollout",
        _ => "operation",
    }
}

impl Store {
    /// Drops a route's warm standby: the route forgets it and the cluster is torn down by the
    /// reconciler. Refused (naming why) while anything still uses it: the route's clients
    /// (`in_use`, from their reports), another route, or an operation.
    pub async fn release_standby(&self, route: &str, actor: &str, in_use: &[String]) -> Result<String, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::lock_for_write(&mut tx).await?;
        let statuses = Self::route_statuses_in(&mut tx).await?;
        let conflict = |message: String| StoreError::Conflict { resource: format!("Route/{route}"), message };
        let Some(status) = statuses.get(route) else {
            return Err(conflict("it has no standby (it never failed over, or the standby was released)".into()));
        };
        let Some(standby) = status.standby.clone() else {
            return Err(conflict("it has no standby (it never failed over, or the standby was released)".into()));
        };
        if status.phase != fleet_api::route::RouteState::Normal && status.phase != fleet_api::route::RouteState::FailedOver {
            return Err(conflict(format!("it is {} (operation {}): wait for it to end", status.phase.as_str(), status.operation.as_deref().unwrap_or("-"))));
        }
        if !in_use.is_empty() {
            return Err(conflict(format!("standby {standby} is still used by {}: it is released once they have moved and drained (their reports lapse 30 s after they stop)", in_use.join(", "))));
        }
        for (other, s) in &statuses {
            if other != route && (s.cluster == standby || s.standby.as_deref() == Some(standby.as_str())) {
                return Err(conflict(format!("standby {standby} is also route {other}'s: release it there too, or keep it")));
            }
        }
        for op in Self::active_operations_in(&mut tx).await? {
            if op.cluster == standby || op.status.target.as_deref() == Some(standby.as_str()) {
                return Err(conflict(format!("operation {} uses {standby}: wait for it to end", op.id)));
            }
        }
        let rev = Self::next_revision(&mut tx).await?;
        let now = now_ms();
        // Torn down, it is sealed for nobody any more (a later cluster of its name starts open).
        let sealed = status.sealed.iter().filter(|c| **c != standby).cloned().collect();
        Self::put_route_status_in(&mut tx, route, &RouteStatus { standby: None, revision: rev, sealed, ..status.clone() }).await?;
        sqlx::query("UPDATE resources SET deleting = 1, revision = $1, updated_ms = $2 WHERE (kind = 'KafkaCluster' AND name = $3) OR (kind = 'Topic' AND cluster = $3)")
            .bind(rev)
            .bind(now)
            .bind(&standby)
            .execute(&mut *tx)
            .await?;
        Self::append_in(
            &mut tx,
            &NewJournalEntry {
                actor: actor.to_string(),
                cluster: standby.clone(),
                action: "release standby".into(),
                detail: serde_json::json!({ "route": route, "cluster": standby }),
                outcome: "ok",
                message: format!("route {route} released its standby {standby}; it is torn down"),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(standby)
    }
}
