//! The fleet manager: declarative specs in a SQL source of truth, a controller that makes the
//! fleet match them, an HTTP API and the `fleetctl` CLI. One folder per concern:
//!
//! - [`spec`] - the documents users write, parsed raw -> declared -> effective (in `fleet-api`,
//!   with the model and wire types the API shares with `fleetctl` and clients).
//! - [`store`] - the source of truth (SQLite or PostgreSQL through sqlx), fenced by leader epoch.
//! - [`plan`] - the pure `plan_cluster(desired, observed, intent) -> (Plan, intent)`.
//! - [`observe`] - what the world looks like (the [`observe::Observer`] seam).
//! - [`execute`] - applying one step (the [`execute::Executor`] seam), with typed errors.
//! - [`controller`] - per-cluster scheduling, leader election, the one recorder.
//! - [`providers`] - where hosts and DNS records come from (local, EC2, Route53).
//! - [`api`] - the HTTP API.
//! - [`failpoints`] - fault injection for the crash, retry and fencing tests.

pub mod api;
pub mod controller;
pub mod credentials;
pub mod execute;
pub mod failpoints;
pub mod metrics;
pub mod observe;
pub mod operations;
pub mod plan;
pub mod providers;
pub use fleet_api::spec;
pub mod store;
pub mod triggers;
