//! Automatic failover in the store: each route's trigger state (the leader's, fenced) and the
//! holds operators put on routes (`fleetctl hold`), journalled.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{now_ms, NewJournalEntry, Store, StoreError, Tx};
use fleet_api::route::{Hold, RouteStatus, TriggerState};

impl Store {
    /// Route -> the trigger state the leader last recorded.
    pub async fn trigger_states(&self) -> Result<BTreeMap<String, TriggerState>, StoreError> {
        self.json_by_route("route_triggers", "state", "trigger state").await
    }

    /// Route -> its hold.
    pub async fn holds(&self) -> Result<BTreeMap<String, Hold>, StoreError> {
        self.json_by_route("route_holds", "hold", "hold").await
    }

    /// `route -> value` of a per-route table holding JSON.
    pub(super) async fn json_by_route<T: serde::de::DeserializeOwned>(&self, table: &str, column: &str, what: &str) -> Result<BTreeMap<String, T>, StoreError> {
        let rows = sqlx::query(&format!("SELECT route, {column} FROM {table}")).fetch_all(&self.pool).await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let route: String = row.try_get(0)?;
            let text: String = row.try_get(1)?;
            let value = serde_json::from_str(&text).map_err(|e| StoreError::Unreadable { what: format!("{what} of {route}"), message: e.to_string() })?;
            out.insert(route, value);
        }
        Ok(out)
    }

    /// One route's value in a per-route table holding JSON.
    pub(super) async fn json_of_route<T: serde::de::DeserializeOwned>(&self, table: &str, column: &str, route: &str, what: &str) -> Result<Option<T>, StoreError> {
        let row = sqlx::query(&format!("SELECT {column} FROM {table} WHERE route = $1")).bind(route).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(0)?;
        serde_json::from_str(&text).map(Some).map_err(|e| StoreError::Unreadable { what: format!("{what} of {route}"), message: e.to_string() })
    }

    /// One route's status as failovers left it (`None`: never moved).
    pub async fn route_status_of(&self, route: &str) -> Result<Option<RouteStatus>, StoreError> {
        self.json_of_route("route_status", "status", route, "route status").await
    }

    /// What `describe route` shows besides the spec: its status, hold and trigger state.
    pub async fn route_extras(&self, route: &str) -> Result<(Option<RouteStatus>, Option<Hold>, Option<TriggerState>), StoreError> {
        Ok((
            self.route_status_of(route).await?,
            self.json_of_route("route_holds", "hold", route, "hold").await?,
            self.json_of_route("route_triggers", "state", route, "trigger state").await?,
        ))
    }

    /// Writes (or replaces) a route's row in a per-route table holding JSON.
    pub(super) async fn put_by_route(tx: &mut Tx<'_>, table: &str, column: &str, route: &str, value: &impl serde::Serialize) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO {table} (route, {column}, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (route) DO UPDATE SET {column} = excluded.{column}, updated_ms = excluded.updated_ms"
        ))
        .bind(route)
        .bind(serde_json::to_string(value).unwrap_or_default())
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The cluster a route points at, in a write; `NotFound` for an unknown route.
    async fn route_cluster(tx: &mut Tx<'_>, route: &str) -> Result<String, StoreError> {
        sqlx::query("SELECT cluster FROM resources WHERE kind = 'Route' AND name = $1")
            .bind(route)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound { kind: "Route", name: route.to_string() })
    }

    /// The leader's record of one evaluation: the route's trigger state and its journal entries.
    pub async fn record_trigger(&self, epoch: i64, route: &str, state: &TriggerState, journal: &[NewJournalEntry]) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::check_fence(&mut tx, epoch).await?;
        // A route deleted meanwhile keeps no state.
        let exists = sqlx::query("SELECT 1 FROM resources WHERE kind = 'Route' AND name = $1").bind(route).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            Self::put_by_route(&mut tx, "route_triggers", "state", route, state).await?;
        }
        for e in journal {
            Self::append_in(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Holds a route; `NotFound` for an unknown route. A route already held keeps its hold
    /// (`Conflict`, naming who and why) unless `overwrite` says to replace it.
    pub async fn hold_route(&self, route: &str, hold: &Hold, overwrite: bool) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::lock_for_write(&mut tx).await?;
        let cluster = Self::route_cluster(&mut tx, route).await?;
        if !overwrite {
            let held = sqlx::query("SELECT hold FROM route_holds WHERE route = $1").bind(route).fetch_optional(&mut *tx).await?;
            if let Some(row) = held {
                let text: String = row.try_get(0)?;
                let was: Option<Hold> = serde_json::from_str(&text).ok();
                let (by, reason) = was.map_or_else(|| ("?".to_string(), "?".to_string()), |h| (h.by, h.reason));
                return Err(StoreError::Conflict {
                    resource: format!("Route/{route}"),
                    message: format!("already held by {by}: {reason} (release it first, or hold with --overwrite to replace the reason)"),
                });
            }
        }
        Self::put_by_route(&mut tx, "route_holds", "hold", route, hold).await?;
        Self::append_in(
            &mut tx,
            &NewJournalEntry {
                actor: hold.by.clone(),
                cluster,
                action: "hold route".into(),
                detail: serde_json::json!({ "route": route, "reason": hold.reason }),
                outcome: "ok",
                message: format!("route {route} held: {}", hold.reason),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Releases a route's hold; `false` when it had none.
    pub async fn release_route(&self, route: &str, actor: &str) -> Result<bool, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::lock_for_write(&mut tx).await?;
        let cluster = Self::route_cluster(&mut tx, route).await?;
        let done = sqlx::query("DELETE FROM route_holds WHERE route = $1").bind(route).execute(&mut *tx).await?;
        if done.rows_affected() > 0 {
            Self::append_in(
                &mut tx,
                &NewJournalEntry {
                    actor: actor.to_string(),
                    cluster,
                    action: "release route".into(),
                    detail: serde_json::json!({ "route": route }),
                    outcome: "ok",
                    message: format!("route {route} released: automation resumes"),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
