//! `kafka-auditor`: proves that every broker accepts and delivers messages, measures how fast,
//! and loads a cluster on demand.

pub mod config;
pub mod heartbeat;
pub mod loadtest;
pub mod replay;
pub mod routes;
pub mod server;
