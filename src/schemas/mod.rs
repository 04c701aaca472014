//! Request JSON Schemas per resource and microversion, and the validator
//! that checks bodies and query strings against them. Answers to upstream's
//! `placement/schemas/`.

pub mod aggregates;
pub mod allocation_candidates;
pub mod allocations;
pub mod claims;
pub mod common;
pub mod inventories;
pub mod query;
pub mod reshaper;
pub mod resource_classes;
pub mod resource_providers;
pub mod traits;
pub mod usages;
pub mod validator;
