//! placement-rs: the OpenStack Placement API on PostgreSQL.
//!
//! Layers, one direction: `http` (actix, routes, negotiation, handlers) ->
//! `domain` (rules and operations) -> `storage` (diesel). `schemas` (wire
//! formats) and `policy` sit beside `http`.

pub mod config;
pub mod domain;
pub mod errors;
pub mod http;
pub mod policy;
pub mod schemas;
pub mod server;
pub mod state;
pub mod storage;
