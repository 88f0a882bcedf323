//! Producers and consumers that follow a kafka-fleet route.
//!
//! librdkafka cannot move a running client to another cluster, so this library holds one client
//! per cluster and switches when the fleet manager's binding for the route changes. It follows the
//! source design's producer rules: a Kafka or fleet manager outage never stops an instance from
//! starting or running, producing resumes by itself, and `send` never blocks (a full buffer drops
//! and counts, or hands the record back).
//!
//! - [`FleetProducer`]: bounded buffer, delivery results, a switch that re-sends what the old
//!   cluster did not persist (and counts what may be duplicated), an ordered switch for keyed
//!   streams.
//! - [`FleetConsumer`]: drains the old cluster up to the end offsets taken at the switch, commits,
//!   reports itself drained, then reads the new cluster from the beginning. At-least-once.
//! - The last binding is cached on disk so a new instance starts from it while the fleet manager
//!   is unreachable.

mod config;
mod consumer;
mod follow;
mod metrics;
mod producer;

pub use config::{ClientConfig, ConfigError, FullBuffer};
pub use consumer::{ConsumedRecord, FleetConsumer};
pub use fleet_api::client::{ClientCounters, ClientRole, RouteBinding};
pub use follow::{error_chain, BindingCache};
pub use metrics::ClientMetrics;
pub use producer::{Delivered, Delivery, DeliveryError, FleetProducer, Record, SendError};
