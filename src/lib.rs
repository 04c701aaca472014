//! placement-rs: the OpenStack Placement API on PostgreSQL.
//!
//! Layers, one direction: `http` (actix, routes, negotiation, handlers) ->
//! `domain` (rules and operations) -> `storage` (diesel). `schemas` (wire
//! formats), `policy` and `auth` (who is asking) sit beside `http`;
//! `config` and `telemetry` are read by all. `view` is the in-memory
//! world that candidates, ranking, claims, affinity and the change feed read.

pub mod auth;
pub mod config;
pub mod domain;
pub mod errors;
pub mod http;
pub mod policy;
pub mod schemas;
pub mod server;
pub mod state;
pub mod status;
pub mod storage;
pub mod telemetry;
pub mod transfer;
pub mod view;
