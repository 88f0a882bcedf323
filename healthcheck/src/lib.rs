//! `kafka-healthcheck`: reads ZooKeeper for signs of unhealthiness in Kafka clusters (ZooKeeper
//! mode), serves the verdict over HTTP and exports Prometheus metrics.

pub mod config;
pub mod findings;
pub mod http;
pub mod metrics;
pub mod observe;
pub mod scanner;
