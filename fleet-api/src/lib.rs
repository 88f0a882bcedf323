//! The fleet manager's API as data: the documents users write ([`spec`]), what the fleet manager
//! knows and decides of a cluster ([`model`]), and the API's requests and answers ([`wire`]).
//! Shared by the fleet manager, `fleetctl` and the client library; no I/O, few dependencies.

pub mod client;
pub mod json;
pub mod model;
pub mod operation;
pub mod route;
pub mod spec;
pub mod wire;
