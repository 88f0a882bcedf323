//! Producers and consumers that follow a kafka-fleet route.
//!
//! librdkafka cannot move a running client to another cluster, so this library holds one client
//! per cluster and switches when the fleet manager's binding for the route changes. It follows the
//! source design's producer rules: a Kafka or fleet manager outage never stops an instance from
//! starting or running, producing resumes by itself, and `send` never blocks (a full buffer
//! refuses the record at once: dropped and counted, or left with the caller).
//!
//! - [`FleetProducer`]: bounded buffer, delivery results with Kafka's error codes, links to the
//!   next cluster built ahead of a switch, a switch that re-sends what the old cluster did not
//!   persist (counting what may be duplicated) and reports the old cluster drained only once
//!   librdkafka holds nothing more for it; order per key across a switch for keyed topics.
//! - [`FleetConsumer`]: drains each cluster the route left until its group has committed every
//!   partition to the end offsets taken after that cluster was sealed, then reads the new one.
//!   At-least-once; `poll`, a `Stream`, and explicit `commit`.
//! - The last binding is cached on disk so a new instance starts from it while the fleet manager
//!   is unreachable.
//!
//! Not supported: transactions and exactly-once (records may be duplicated across a switch, and
//! are counted when they may be), and consumers that manage their own partition assignment.

mod config;
mod consumer;
mod follow;
mod metrics;
mod producer;

pub use config::{ClientConfig, ConfigError, FullBuffer, MAX_BUFFER_BYTES, MAX_BUFFER_RECORDS, RESERVED_KAFKA_KEYS};
pub use consumer::{ConsumedRecord, FleetConsumer, RecordStream};
pub use fleet_api::client::{ClientCounters, ClientRole, RouteBinding};
pub use follow::{error_chain, BindingCache};
pub use metrics::ClientMetrics;
pub use producer::{Closed, Delivered, Delivery, DeliveryError, FleetProducer, FlushError, Record, SendError};
pub use rdkafka::types::RDKafkaErrorCode;
