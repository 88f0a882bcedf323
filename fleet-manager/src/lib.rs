//! The fleet manager: declarative specs in a SQL source of truth, a reconciler that makes the
//! fleet match them, an HTTP API and the `fleetctl` CLI.
//!
//! - [`spec`] - the documents users write, parsed raw -> declared -> effective.
//! - [`store`] - the source of truth (SQLite or PostgreSQL through sqlx).
//! - [`plan`] - the pure `diff(desired, observed) -> Plan`.
//! - [`observe`], [`provider`] - what the world looks like, and the seams that change it.
//! - [`reconciler`] - the controller loop and leader election.
//! - [`api`] - the HTTP API.

pub mod api;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod provider;
pub mod reconciler;
pub mod spec;
pub mod store;
